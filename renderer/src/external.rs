//! A [`GpuContext`] on a Vulkan instance and device that someone else creates, and copies into
//! images that someone else owns.
//!
//! An XR runtime must create the Vulkan instance and device itself (OpenXR's
//! `XR_KHR_vulkan_enable2`: `xrCreateVulkanInstanceKHR` / `xrCreateVulkanDeviceKHR`) so that it
//! can add the extensions its compositor needs, and it hands out its swapchain images as raw
//! `VkImage`s. This module keeps the renderer ignorant of OpenXR: the renderer fills in the
//! create infos it needs, a [`VulkanCreator`] turns them into raw handles (in the studio, by
//! calling the runtime), and vulkano wraps the handles.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use vulkano::command_buffer::{
    BufferImageCopy, CommandBufferBeginInfo, CommandBufferLevel, CommandBufferUsage,
    CopyBufferToImageInfo, RecordingCommandBuffer,
};
use vulkano::device::physical::PhysicalDevice;
use vulkano::device::{Device, DeviceCreateInfo, QueueCreateInfo, QueueFlags};
use vulkano::format::Format;
use vulkano::image::sys::RawImage;
use vulkano::image::{
    ImageCreateInfo, ImageLayout, ImageSubresourceLayers, ImageSubresourceRange, ImageType,
    ImageUsage,
};
use vulkano::instance::{Instance, InstanceCreateInfo};
use vulkano::sync::fence::{Fence, FenceCreateInfo};
use vulkano::sync::{AccessFlags, DependencyInfo, ImageMemoryBarrier, PipelineStages};
use vulkano::{Handle, ValidationError, Version, VulkanLibrary, VulkanObject};

use crate::context::GpuContext;
use crate::RenderError;

/// How long a copy into an external image may take before it counts as a lost device.
const COPY_TIMEOUT: Duration = Duration::from_secs(10);

/// The Vulkan API version the renderer asks for on an external instance and device.
pub const EXTERNAL_API_VERSION: Version = Version::V1_1;

/// Creates a Vulkan instance and device for the renderer (an XR runtime, in the studio).
///
/// Each method gets the loader's `vkGetInstanceProcAddr` (as an untyped pointer, to be cast to
/// the creator's own function-pointer type) and a pointer to the create info to use unchanged;
/// it returns the raw handle or a message saying why it failed.
pub trait VulkanCreator {
    /// Creates the instance from a `VkInstanceCreateInfo`.
    ///
    /// # Safety
    /// `create_info` points to a valid `VkInstanceCreateInfo` for the duration of the call.
    unsafe fn create_instance(
        &mut self,
        get_instance_proc_addr: *const c_void,
        create_info: *const c_void,
    ) -> Result<u64, String>;

    /// The physical device to render on, for the instance just created.
    ///
    /// # Safety
    /// `instance` is the handle returned by `create_instance`.
    unsafe fn physical_device(&mut self, instance: u64) -> Result<u64, String>;

    /// Creates the device from a `VkDeviceCreateInfo`.
    ///
    /// # Safety
    /// `create_info` points to a valid `VkDeviceCreateInfo` for the duration of the call.
    unsafe fn create_device(
        &mut self,
        get_instance_proc_addr: *const c_void,
        physical_device: u64,
        create_info: *const c_void,
    ) -> Result<u64, String>;
}

/// Raw handles of an external context, for the creator's session (e.g. `XrGraphicsBindingVulkanKHR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalHandles {
    /// `VkInstance`.
    pub instance: u64,
    /// `VkPhysicalDevice`.
    pub physical_device: u64,
    /// `VkDevice`.
    pub device: u64,
    /// Family of the one queue the renderer uses.
    pub queue_family_index: u32,
    /// Index of that queue in its family.
    pub queue_index: u32,
}

/// Pixel layouts of external 8-bit images the renderer can copy into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalFormat {
    /// `VK_FORMAT_R8G8B8A8_SRGB`.
    Rgba8Srgb,
    /// `VK_FORMAT_R8G8B8A8_UNORM`.
    Rgba8Unorm,
    /// `VK_FORMAT_B8G8R8A8_SRGB`.
    Bgra8Srgb,
    /// `VK_FORMAT_B8G8R8A8_UNORM`.
    Bgra8Unorm,
}

impl ExternalFormat {
    /// The supported formats, preferred first (sRGB, because the renderer's pixels are sRGB).
    pub const PREFERRED: [Self; 4] = [
        Self::Rgba8Srgb,
        Self::Bgra8Srgb,
        Self::Rgba8Unorm,
        Self::Bgra8Unorm,
    ];

    /// The raw `VkFormat` value.
    pub fn vk_format(self) -> i64 {
        i64::from(ash_format(self).as_raw())
    }

    fn vulkano(self) -> Format {
        match self {
            Self::Rgba8Srgb => Format::R8G8B8A8_SRGB,
            Self::Rgba8Unorm => Format::R8G8B8A8_UNORM,
            Self::Bgra8Srgb => Format::B8G8R8A8_SRGB,
            Self::Bgra8Unorm => Format::B8G8R8A8_UNORM,
        }
    }
}

fn ash_format(f: ExternalFormat) -> ash::vk::Format {
    f.vulkano().into()
}

impl GpuContext {
    /// A context on an instance and device created by `creator`, with one queue that can do
    /// graphics (what XR compositors expect) and compute (what the ray-marcher needs).
    ///
    /// # Errors
    /// When the loader is missing, the creator fails, or the device has no such queue.
    pub fn with_external_vulkan(
        creator: &mut dyn VulkanCreator,
    ) -> Result<(Arc<Self>, ExternalHandles), RenderError> {
        let library = VulkanLibrary::new().map_err(|e| RenderError::NoVulkan {
            reason: e.to_string(),
        })?;
        // The runtime calls the loader itself; vulkano does not hand out the raw entry point,
        // so ash opens the same loader (libvulkan.so.1) for it.
        // SAFETY: the system's Vulkan loader is trusted to follow the specification.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| RenderError::NoVulkan {
            reason: e.to_string(),
        })?;
        let gipa = entry.static_fn().get_instance_proc_addr as *const c_void;

        let app_name = c"twinray";
        let app_info = ash::vk::ApplicationInfo::default()
            .application_name(app_name)
            .api_version(ash::vk::make_api_version(0, 1, 1, 0));
        let instance_info = ash::vk::InstanceCreateInfo::default().application_info(&app_info);
        // SAFETY: `instance_info` and what it points to live until the end of this function.
        let raw_instance =
            unsafe { creator.create_instance(gipa, std::ptr::from_ref(&instance_info).cast()) }
                .map_err(|reason| RenderError::NoVulkan { reason })?;
        // SAFETY: the handle was created from this library with exactly this create info.
        let instance = unsafe {
            Instance::from_handle(
                library,
                ash::vk::Instance::from_raw(raw_instance),
                InstanceCreateInfo {
                    application_name: Some("twinray".into()),
                    max_api_version: Some(EXTERNAL_API_VERSION),
                    ..Default::default()
                },
            )
        };
        // SAFETY: `raw_instance` is the instance just created.
        let raw_physical = unsafe { creator.physical_device(raw_instance) }
            .map_err(|reason| RenderError::NoVulkan { reason })?;
        let physical: Arc<PhysicalDevice> = instance
            .enumerate_physical_devices()
            .map_err(|e| RenderError::vulkan("listing devices", e))?
            .find(|p| p.handle().as_raw() == raw_physical)
            .ok_or_else(|| RenderError::Vulkan {
                context: "finding the XR runtime's device",
                message: "the device the runtime named is not among the instance's devices".into(),
            })?;
        let family = physical
            .queue_family_properties()
            .iter()
            .position(|q| {
                q.queue_flags
                    .contains(QueueFlags::GRAPHICS | QueueFlags::COMPUTE)
            })
            .ok_or_else(|| RenderError::Vulkan {
                context: "choosing a queue",
                message: "the XR runtime's device has no queue family with graphics and compute"
                    .into(),
            })? as u32;
        let priorities = [1.0f32];
        let queue_info = [ash::vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family)
            .queue_priorities(&priorities)];
        let device_info = ash::vk::DeviceCreateInfo::default().queue_create_infos(&queue_info);
        // SAFETY: `device_info` and what it points to live until the end of this function.
        let raw_device = unsafe {
            creator.create_device(gipa, raw_physical, std::ptr::from_ref(&device_info).cast())
        }
        .map_err(|reason| RenderError::Vulkan {
            context: "creating the device through the XR runtime",
            message: reason,
        })?;
        // SAFETY: the device was created on `physical` with one queue of `family` and nothing
        // else the renderer relies on; the runtime's own extensions are invisible to vulkano.
        let (device, mut queues) = unsafe {
            Device::from_handle(
                physical,
                ash::vk::Device::from_raw(raw_device),
                DeviceCreateInfo {
                    queue_create_infos: vec![QueueCreateInfo {
                        queue_family_index: family,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
        };
        let queue = queues.next().ok_or_else(|| RenderError::Vulkan {
            context: "creating the device through the XR runtime",
            message: "the device returned no queue".into(),
        })?;
        let handles = ExternalHandles {
            instance: raw_instance,
            physical_device: raw_physical,
            device: raw_device,
            queue_family_index: family,
            queue_index: 0,
        };
        let ctx = Self::with_allocators(device, queue);
        Ok((Arc::new(ctx), handles))
    }

    /// Copies RGBA8 pixels (`size` pixels, rows top to bottom) into layer `layer` of a 2D
    /// image this context's device does not own (an XR swapchain image), which must have been
    /// created with transfer-destination usage, `format`, `size` and `array_layers` layers.
    /// Waits for the copy to finish.
    ///
    /// OpenXR hands colour swapchain images over in `COLOR_ATTACHMENT_OPTIMAL` and expects
    /// them back in it at `xrReleaseSwapchainImage`. vulkano's automatic builder cannot be told
    /// an image's layout on entry or exit (it would assume `UNDEFINED` and leave the image in
    /// the transfer layout), so the copy is recorded with explicit barriers instead: layer
    /// `layer` goes `COLOR_ATTACHMENT_OPTIMAL` → `TRANSFER_DST_OPTIMAL` → copy →
    /// `COLOR_ATTACHMENT_OPTIMAL`; other layers are not touched.
    ///
    /// # Safety
    /// `image` is a live `VkImage` of this device matching the description above, with layer
    /// `layer` in `COLOR_ATTACHMENT_OPTIMAL` (as after `xrWaitSwapchainImage`), not in use by
    /// the GPU during the call.
    ///
    /// # Errors
    /// When the pixel count does not match or a Vulkan call fails.
    pub unsafe fn copy_into_external_image(
        &self,
        image: u64,
        format: ExternalFormat,
        size: [u32; 2],
        array_layers: u32,
        layer: u32,
        rgba: &[u8],
    ) -> Result<(), RenderError> {
        if rgba.len() != size[0] as usize * size[1] as usize * 4 || layer >= array_layers {
            return Err(RenderError::BadImageSize { size });
        }
        let bgra = matches!(
            format,
            ExternalFormat::Bgra8Srgb | ExternalFormat::Bgra8Unorm
        );
        let staging = self.staging_buffer(
            rgba.chunks_exact(4)
                .flat_map(|p| {
                    if bgra {
                        [p[2], p[1], p[0], p[3]]
                    } else {
                        [p[0], p[1], p[2], p[3]]
                    }
                })
                .collect::<Vec<u8>>(),
        )?;
        // SAFETY: the caller guarantees the handle and its description; borrowed, so vulkano
        // does not destroy the runtime's image.
        let raw = unsafe {
            RawImage::from_handle_borrowed(
                self.device.clone(),
                ash::vk::Image::from_raw(image),
                ImageCreateInfo {
                    image_type: ImageType::Dim2d,
                    format: format.vulkano(),
                    extent: [size[0], size[1], 1],
                    array_layers,
                    usage: ImageUsage::TRANSFER_DST | ImageUsage::COLOR_ATTACHMENT,
                    ..Default::default()
                },
            )
        }
        .map_err(|e| RenderError::vulkan("wrapping an external image", e))?;
        // SAFETY: the runtime bound the image's memory.
        let target = Arc::new(unsafe { raw.assume_bound() });
        let mut subresource = ImageSubresourceLayers::from_parameters(format.vulkano(), 1);
        subresource.array_layers = layer..layer + 1;
        let range = ImageSubresourceRange::from(subresource.clone());
        let copy = CopyBufferToImageInfo {
            regions: [BufferImageCopy {
                image_subresource: subresource,
                image_extent: [size[0], size[1], 1],
                ..Default::default()
            }]
            .into(),
            ..CopyBufferToImageInfo::buffer_image(staging, target.clone())
        };
        // Before: whatever last used the image (the compositor, an earlier frame) finishes
        // before the layout changes; the runtime has already ordered its own work against
        // ours by the time `xrWaitSwapchainImage` returns, so this is belt and braces.
        let to_transfer = ImageMemoryBarrier {
            src_stages: PipelineStages::ALL_COMMANDS,
            src_access: AccessFlags::MEMORY_WRITE,
            dst_stages: PipelineStages::ALL_TRANSFER,
            dst_access: AccessFlags::TRANSFER_WRITE,
            old_layout: ImageLayout::ColorAttachmentOptimal,
            new_layout: ImageLayout::TransferDstOptimal,
            subresource_range: range.clone(),
            ..ImageMemoryBarrier::image(target.clone())
        };
        // After: the runtime may next sample, blit or render to the image, so every later
        // stage waits for the copy's writes.
        let to_attachment = ImageMemoryBarrier {
            src_stages: PipelineStages::ALL_TRANSFER,
            src_access: AccessFlags::TRANSFER_WRITE,
            dst_stages: PipelineStages::ALL_COMMANDS,
            dst_access: AccessFlags::MEMORY_READ | AccessFlags::MEMORY_WRITE,
            old_layout: ImageLayout::TransferDstOptimal,
            new_layout: ImageLayout::ColorAttachmentOptimal,
            subresource_range: range,
            ..ImageMemoryBarrier::image(target)
        };
        // SAFETY: the barriers name the layout the caller guarantees and the layer written;
        // `copy` holds the staging buffer and image until the submission has finished.
        unsafe {
            self.submit_untracked(copy, |cb, copy| {
                cb.pipeline_barrier(&DependencyInfo {
                    image_memory_barriers: std::iter::once(to_transfer).collect(),
                    ..Default::default()
                })?
                .copy_buffer_to_image(copy)?
                .pipeline_barrier(&DependencyInfo {
                    image_memory_barriers: std::iter::once(to_attachment).collect(),
                    ..Default::default()
                })?;
                Ok(())
            })
        }
    }

    /// Records commands into a one-time command buffer without vulkano's resource tracking
    /// (for images whose layouts someone else manages), submits it and waits for it.
    ///
    /// `resources` holds what the commands use; it is dropped once the GPU is done with it, or
    /// leaked if the wait fails, so a hung GPU never reads freed memory.
    ///
    /// # Safety
    /// The recorded commands must be correctly synchronised, use nothing beyond `resources`
    /// that could be freed meanwhile, and leave every image in the layout its owner expects.
    unsafe fn submit_untracked<T>(
        &self,
        resources: T,
        record: impl FnOnce(&mut RecordingCommandBuffer, &T) -> Result<(), Box<ValidationError>>,
    ) -> Result<(), RenderError> {
        let mut recording = RecordingCommandBuffer::new(
            self.commands.clone(),
            self.queue.queue_family_index(),
            CommandBufferLevel::Primary,
            CommandBufferBeginInfo {
                usage: CommandBufferUsage::OneTimeSubmit,
                ..Default::default()
            },
        )
        .map_err(|e| RenderError::vulkan("recording a copy", e))?;
        record(&mut recording, &resources)
            .map_err(|e| RenderError::vulkan("recording a copy", e))?;
        // SAFETY: recording started above and every command was validated by vulkano.
        let cb = unsafe { recording.end() }
            .map_err(|e| RenderError::vulkan("finishing a command buffer", e))?;
        let fence = Fence::new(self.device.clone(), FenceCreateInfo::default())
            .map_err(|e| RenderError::vulkan("creating a fence", e))?;
        let buffers = [cb.handle()];
        let submit = ash::vk::SubmitInfo::default().command_buffers(&buffers);
        // vulkano only submits its tracked command buffers, so this one goes to the queue
        // directly, with the queue's lock held as vulkano's own submissions do.
        let submitted = self.queue.with(|_locked| {
            let fns = self.device.fns();
            // SAFETY: a finished primary command buffer of this queue's family, an unsignalled
            // fence of this device, and exclusive use of the queue while the lock is held.
            unsafe { (fns.v1_0.queue_submit)(self.queue.handle(), 1, &submit, fence.handle()) }
                .result()
        });
        submitted
            .map_err(|e| RenderError::vulkan("submitting a copy", vulkano::VulkanError::from(e)))?;
        if let Err(e) = fence.wait(Some(COPY_TIMEOUT)) {
            // The GPU may still use the command buffer and fence: leak them rather than free
            // them under it (the device is as good as lost anyway).
            std::mem::forget(cb);
            std::mem::forget(fence);
            std::mem::forget(resources);
            return Err(RenderError::vulkan("waiting for a copy", e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Camera, Frustum, RenderOptions, VolumeRenderer};
    use glam::DVec3;
    use twinray_transfer_functions::{Preset, TransferFunction};
    use twinray_volume::{Geometry, Volume};
    use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage};
    use vulkano::command_buffer::CopyImageToBufferInfo;
    use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};
    use vulkano::sync::BufferMemoryBarrier;

    /// Creates the instance and device with the system loader, as an XR runtime would (minus
    /// its own extensions): the real Vulkan path of `with_external_vulkan`, on lavapipe.
    struct LoaderCreator {
        entry: ash::Entry,
        instance: Option<ash::Instance>,
    }

    impl VulkanCreator for LoaderCreator {
        unsafe fn create_instance(
            &mut self,
            _gipa: *const c_void,
            create_info: *const c_void,
        ) -> Result<u64, String> {
            // SAFETY: the renderer passes a valid VkInstanceCreateInfo.
            let info = unsafe { &*create_info.cast::<ash::vk::InstanceCreateInfo<'_>>() };
            // SAFETY: as above.
            let instance =
                unsafe { self.entry.create_instance(info, None) }.map_err(|e| e.to_string())?;
            let raw = instance.handle().as_raw();
            self.instance = Some(instance);
            Ok(raw)
        }

        unsafe fn physical_device(&mut self, _instance: u64) -> Result<u64, String> {
            let instance = self.instance.as_ref().ok_or("no instance")?;
            // SAFETY: the instance is alive.
            let devices =
                unsafe { instance.enumerate_physical_devices() }.map_err(|e| e.to_string())?;
            devices
                .into_iter()
                .find(|&d| {
                    // SAFETY: `d` comes from this instance.
                    let props = unsafe { instance.get_physical_device_properties(d) };
                    props.device_type == ash::vk::PhysicalDeviceType::CPU
                })
                .map(Handle::as_raw)
                .ok_or_else(|| "no CPU (lavapipe) device".to_owned())
        }

        unsafe fn create_device(
            &mut self,
            _gipa: *const c_void,
            physical_device: u64,
            create_info: *const c_void,
        ) -> Result<u64, String> {
            let instance = self.instance.as_ref().ok_or("no instance")?;
            // SAFETY: the renderer passes a valid VkDeviceCreateInfo for this device.
            let device = unsafe {
                instance.create_device(
                    ash::vk::PhysicalDevice::from_raw(physical_device),
                    &*create_info.cast::<ash::vk::DeviceCreateInfo<'_>>(),
                    None,
                )
            }
            .map_err(|e| e.to_string())?;
            Ok(device.handle().as_raw())
        }
    }

    /// Reads layer `layer` of a 32×32 RGBA8 image that is in COLOR_ATTACHMENT_OPTIMAL, and
    /// leaves it there (the validation layer checks that the copy did too).
    fn read_layer(ctx: &GpuContext, image: &Arc<vulkano::image::Image>, layer: u32) -> Vec<u8> {
        let out = Buffer::new_slice::<u8>(
            ctx.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::TRANSFER_DST,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_HOST
                    | MemoryTypeFilter::HOST_RANDOM_ACCESS,
                ..Default::default()
            },
            32 * 32 * 4,
        )
        .expect("read-back buffer");
        let mut layers = ImageSubresourceLayers::from_parameters(Format::R8G8B8A8_SRGB, 1);
        layers.array_layers = layer..layer + 1;
        let range = ImageSubresourceRange::from(layers.clone());
        let copy = CopyImageToBufferInfo {
            regions: [BufferImageCopy {
                image_subresource: layers,
                image_extent: [32, 32, 1],
                ..Default::default()
            }]
            .into(),
            ..CopyImageToBufferInfo::image_buffer(image.clone(), out.clone())
        };
        let barrier = |old_layout, new_layout| ImageMemoryBarrier {
            src_stages: PipelineStages::ALL_COMMANDS,
            src_access: AccessFlags::MEMORY_WRITE,
            dst_stages: PipelineStages::ALL_COMMANDS,
            dst_access: AccessFlags::MEMORY_READ | AccessFlags::MEMORY_WRITE,
            old_layout,
            new_layout,
            subresource_range: range.clone(),
            ..ImageMemoryBarrier::image(image.clone())
        };
        let before = barrier(
            ImageLayout::ColorAttachmentOptimal,
            ImageLayout::TransferSrcOptimal,
        );
        let after = barrier(
            ImageLayout::TransferSrcOptimal,
            ImageLayout::ColorAttachmentOptimal,
        );
        // SAFETY: the test's own idle image and buffer, kept alive by `copy`.
        unsafe {
            ctx.submit_untracked(copy, |cb, copy| {
                cb.pipeline_barrier(&DependencyInfo {
                    image_memory_barriers: std::iter::once(before).collect(),
                    ..Default::default()
                })?
                .copy_image_to_buffer(copy)?
                .pipeline_barrier(&DependencyInfo {
                    buffer_memory_barriers: std::iter::once(BufferMemoryBarrier {
                        src_stages: PipelineStages::ALL_TRANSFER,
                        src_access: AccessFlags::TRANSFER_WRITE,
                        dst_stages: PipelineStages::HOST,
                        dst_access: AccessFlags::HOST_READ,
                        range: copy.dst_buffer.offset()
                            ..copy.dst_buffer.offset() + copy.dst_buffer.size(),
                        ..BufferMemoryBarrier::buffer(copy.dst_buffer.buffer().clone())
                    })
                    .collect(),
                    image_memory_barriers: std::iter::once(after).collect(),
                    ..Default::default()
                })?;
                Ok(())
            })
        }
        .expect("read back");
        let pixels = out.read().expect("map read-back").to_vec();
        pixels
    }

    #[test]
    fn an_externally_created_device_renders_and_fills_an_external_image() {
        // SAFETY: the system's loader.
        let entry = unsafe { ash::Entry::load() }.expect("a Vulkan loader");
        let mut creator = LoaderCreator {
            entry,
            instance: None,
        };
        let (ctx, handles) = GpuContext::with_external_vulkan(&mut creator).expect("context");
        assert!(ctx.is_cpu(), "{}", ctx.device_name());
        assert_eq!(handles.device, ctx.device.handle().as_raw());

        // The ray-marcher runs on it: a bright cube in the middle of the view.
        let g = Geometry::axis_aligned([16, 16, 16], [1.0; 3], [-7.5; 3]).expect("grid");
        let ct = Volume::from_fn(g, |i, j, k| {
            if [i, j, k].iter().all(|&c| (4..12).contains(&c)) {
                1500.0
            } else {
                -1000.0
            }
        });
        let tf = TransferFunction::new(Preset::load("ct-bone").expect("preset"));
        let mut renderer = VolumeRenderer::new(ctx.clone(), &tf).expect("renderer");
        renderer
            .set_volume(&ct, None, twinray_transfer_functions::DensityRange::CT)
            .expect("volume");
        let camera = Camera::orbit(DVec3::ZERO, 60.0, 0.0, 0.0, Frustum::symmetric(30.0, 1.0));
        let (image, _) = renderer
            .render(&camera, &RenderOptions::default(), [32, 32])
            .expect("render");
        assert!(image.pixel(16, 16)[3] > 200 && image.pixel(1, 1)[3] < 10);

        // An image the "runtime" owns (created with vulkano here, handed over as a raw handle
        // with two layers like the XR swapchain) receives both eyes.
        let owned = vulkano::image::Image::new(
            ctx.memory.clone(),
            ImageCreateInfo {
                image_type: ImageType::Dim2d,
                format: Format::R8G8B8A8_SRGB,
                extent: [32, 32, 1],
                array_layers: 2,
                // Transfer source only so the test can read it back.
                usage: ImageUsage::TRANSFER_DST
                    | ImageUsage::COLOR_ATTACHMENT
                    | ImageUsage::TRANSFER_SRC,
                ..Default::default()
            },
            AllocationCreateInfo::default(),
        )
        .expect("image");
        // The runtime hands swapchain images over in COLOR_ATTACHMENT_OPTIMAL; under the
        // validation layer (see below) a copy that assumed another layout fails.
        let whole = ImageSubresourceRange::from_parameters(Format::R8G8B8A8_SRGB, 1, 2);
        // SAFETY: the test's own idle image.
        unsafe {
            ctx.submit_untracked((), |cb, ()| {
                cb.pipeline_barrier(&DependencyInfo {
                    image_memory_barriers: std::iter::once(ImageMemoryBarrier {
                        dst_stages: PipelineStages::COLOR_ATTACHMENT_OUTPUT,
                        dst_access: AccessFlags::COLOR_ATTACHMENT_WRITE,
                        old_layout: ImageLayout::Undefined,
                        new_layout: ImageLayout::ColorAttachmentOptimal,
                        subresource_range: whole,
                        ..ImageMemoryBarrier::image(owned.clone())
                    })
                    .collect(),
                    ..Default::default()
                })?;
                Ok(())
            })
        }
        .expect("hand the image over as the runtime does");
        // Left eye: the render; right eye: a gradient, so a copy into the wrong layer shows.
        let gradient: Vec<u8> = (0..32u8)
            .flat_map(|y| (0..32u8).flat_map(move |x| [x * 8, y * 8, 128, 255]))
            .collect();
        let eyes = [&image.pixels, &gradient];
        for (layer, pixels) in (0..2).zip(eyes) {
            // SAFETY: a live image of this device with exactly this description, idle, in
            // COLOR_ATTACHMENT_OPTIMAL.
            unsafe {
                ctx.copy_into_external_image(
                    owned.handle().as_raw(),
                    ExternalFormat::Rgba8Srgb,
                    [32, 32],
                    2,
                    layer,
                    pixels,
                )
            }
            .expect("copy into the external image");
        }
        for (layer, pixels) in (0..2).zip(eyes) {
            assert!(
                read_layer(&ctx, &owned, layer) == *pixels,
                "layer {layer} does not hold what was copied into it"
            );
        }
        // SAFETY: as above; a wrong pixel count is refused, not copied.
        let short = unsafe {
            ctx.copy_into_external_image(
                owned.handle().as_raw(),
                ExternalFormat::Rgba8Srgb,
                [32, 32],
                2,
                0,
                &image.pixels[..100],
            )
        };
        assert!(short.is_err());
    }

    #[test]
    fn filling_an_external_image_passes_vulkan_validation() {
        // The Khronos validation layer tracks image layouts across submissions and prints
        // "Validation Error" when a barrier's old layout is not the image's real one; the
        // test above runs again in a child process with the layer on.
        let layer = std::path::Path::new(
            "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json",
        );
        assert!(
            layer.exists(),
            "the Vulkan validation layer is missing: apt-get install vulkan-validationlayers (make test does)"
        );
        let name =
            "external::tests::an_externally_created_device_renders_and_fills_an_external_image";
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .env("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation")
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .output()
            .expect("the test binary runs");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{all}");
        assert!(all.contains("1 passed"), "{all}");
        assert!(!all.contains("Validation Error"), "{all}");
    }

    #[test]
    fn formats_map_to_vulkan_codes() {
        // VK_FORMAT_R8G8B8A8_SRGB = 43, VK_FORMAT_B8G8R8A8_SRGB = 50.
        assert_eq!(ExternalFormat::Rgba8Srgb.vk_format(), 43);
        assert_eq!(ExternalFormat::Bgra8Srgb.vk_format(), 50);
    }
}
