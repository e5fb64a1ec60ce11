//! The Vulkan instance, device and queue, and how the device is chosen.

use std::sync::Arc;

use vulkano::buffer::{Buffer, BufferContents, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::device::physical::{PhysicalDevice, PhysicalDeviceType};
use vulkano::device::{Device, DeviceCreateInfo, Queue, QueueCreateInfo, QueueFlags};
use vulkano::instance::{Instance, InstanceCreateFlags, InstanceCreateInfo};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter, StandardMemoryAllocator};
use vulkano::VulkanLibrary;

use crate::RenderError;

/// Which kind of Vulkan device to render on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// The best available: discrete GPU, then integrated, then virtual, then CPU (lavapipe).
    #[default]
    Auto,
    /// A hardware GPU (discrete, integrated or virtual); fails when there is none.
    Gpu,
    /// A CPU implementation such as Mesa's lavapipe; fails when there is none.
    Cpu,
}

impl DevicePreference {
    /// Parses `cpu`, `gpu` or `auto`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "gpu" => Some(Self::Gpu),
            "cpu" => Some(Self::Cpu),
            _ => None,
        }
    }

    /// Rank of a device type under this preference; `None` excludes it.
    fn rank(self, ty: PhysicalDeviceType) -> Option<u8> {
        let hardware = match ty {
            PhysicalDeviceType::DiscreteGpu => Some(0),
            PhysicalDeviceType::IntegratedGpu => Some(1),
            PhysicalDeviceType::VirtualGpu => Some(2),
            _ => None,
        };
        match self {
            Self::Auto => Some(hardware.unwrap_or(match ty {
                PhysicalDeviceType::Cpu => 3,
                _ => 4,
            })),
            Self::Gpu => hardware,
            Self::Cpu => (ty == PhysicalDeviceType::Cpu).then_some(0),
        }
    }
}

/// A Vulkan device and the allocators every GPU resource of the renderer comes from.
pub struct GpuContext {
    pub(crate) device: Arc<Device>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) memory: Arc<StandardMemoryAllocator>,
    pub(crate) descriptors: Arc<StandardDescriptorSetAllocator>,
    pub(crate) commands: Arc<StandardCommandBufferAllocator>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("device", &self.device_name())
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the Vulkan loader and the preferred device with a compute queue.
    pub fn new(preference: DevicePreference) -> Result<Arc<Self>, RenderError> {
        let library = VulkanLibrary::new().map_err(|e| RenderError::NoVulkan {
            reason: e.to_string(),
        })?;
        let instance = Instance::new(
            library,
            InstanceCreateInfo {
                flags: InstanceCreateFlags::ENUMERATE_PORTABILITY,
                application_name: Some("twinray".into()),
                ..Default::default()
            },
        )
        .map_err(|e| RenderError::NoVulkan {
            reason: e.to_string(),
        })?;
        let devices: Vec<Arc<PhysicalDevice>> = instance
            .enumerate_physical_devices()
            .map_err(|e| RenderError::NoVulkan {
                reason: e.to_string(),
            })?
            .collect();
        let found: Vec<String> = devices.iter().map(|d| describe(d)).collect();
        let (physical, queue_family_index) = devices
            .into_iter()
            .filter_map(|p| {
                let rank = preference.rank(p.properties().device_type)?;
                let family = p
                    .queue_family_properties()
                    .iter()
                    .position(|q| q.queue_flags.intersects(QueueFlags::COMPUTE))?;
                Some((rank, p, family as u32))
            })
            .min_by_key(|(rank, _, _)| *rank)
            .map(|(_, p, f)| (p, f))
            .ok_or_else(|| RenderError::NoDevice {
                preference,
                found: if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                },
            })?;
        let (device, mut queues) = Device::new(
            physical,
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo {
                    queue_family_index,
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .map_err(|e| RenderError::vulkan("creating the device", e))?;
        let queue = queues.next().ok_or_else(|| RenderError::Vulkan {
            context: "creating the device",
            message: "the device returned no queue".into(),
        })?;
        Ok(Arc::new(Self::with_allocators(device, queue)))
    }

    /// A context around `device` and its compute queue, however the device was created (here,
    /// or by an XR runtime), with the allocators every resource comes from.
    pub(crate) fn with_allocators(device: Arc<Device>, queue: Arc<Queue>) -> Self {
        Self {
            memory: Arc::new(StandardMemoryAllocator::new_default(device.clone())),
            descriptors: Arc::new(StandardDescriptorSetAllocator::new(
                device.clone(),
                Default::default(),
            )),
            commands: Arc::new(StandardCommandBufferAllocator::new(
                device.clone(),
                Default::default(),
            )),
            device,
            queue,
        }
    }

    /// A host-written buffer holding `data`, the source of a copy into an image.
    pub(crate) fn staging_buffer<T, I>(&self, data: I) -> Result<Subbuffer<[T]>, RenderError>
    where
        T: BufferContents,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        Buffer::from_iter(
            self.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::TRANSFER_SRC,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_HOST
                    | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
                ..Default::default()
            },
            data,
        )
        .map_err(|e| RenderError::vulkan("allocating an upload buffer", e))
    }

    /// The device's name and type, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) [cpu]`.
    pub fn device_name(&self) -> String {
        describe(self.device.physical_device())
    }

    /// Whether rendering happens on a CPU implementation (lavapipe).
    pub fn is_cpu(&self) -> bool {
        self.device.physical_device().properties().device_type == PhysicalDeviceType::Cpu
    }
}

fn describe(p: &PhysicalDevice) -> String {
    let props = p.properties();
    let kind = match props.device_type {
        PhysicalDeviceType::DiscreteGpu => "discrete GPU",
        PhysicalDeviceType::IntegratedGpu => "integrated GPU",
        PhysicalDeviceType::VirtualGpu => "virtual GPU",
        PhysicalDeviceType::Cpu => "cpu",
        _ => "other",
    };
    format!("{} [{kind}]", props.device_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_rank_device_types() {
        use PhysicalDeviceType as T;
        assert!(DevicePreference::Auto.rank(T::DiscreteGpu) < DevicePreference::Auto.rank(T::Cpu));
        assert!(
            DevicePreference::Auto.rank(T::IntegratedGpu) < DevicePreference::Auto.rank(T::Cpu)
        );
        assert_eq!(DevicePreference::Gpu.rank(T::Cpu), None);
        assert_eq!(DevicePreference::Cpu.rank(T::DiscreteGpu), None);
        assert_eq!(
            DevicePreference::parse(" CPU "),
            Some(DevicePreference::Cpu)
        );
        assert_eq!(DevicePreference::parse("fastest"), None);
    }
}
