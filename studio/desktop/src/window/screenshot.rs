//! `--screenshot`: copies the finished window image (egui and the 3D view, exactly what was
//! presented) to the CPU and writes it as a PNG. Used by the Xvfb smoke test.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use twinray_renderer::RgbaImage;
use vulkano::buffer::{Buffer, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::command_buffer::{
    AutoCommandBufferBuilder, CommandBufferUsage, CopyImageToBufferInfo,
};
use vulkano::format::Format;
use vulkano::image::view::ImageView;
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};
use vulkano::sync::GpuFuture;
use vulkano_util::context::VulkanoContext;

/// The GPU work that ends with the copy, and the host buffer the copy lands in.
pub type PendingCopy = (Box<dyn GpuFuture>, Subbuffer<[u8]>);

/// Appends a copy of `target` into a host buffer after `before`.
pub fn copy_after(
    context: &VulkanoContext,
    before: Box<dyn GpuFuture>,
    target: &Arc<ImageView>,
) -> Result<PendingCopy> {
    let image = target.image().clone();
    let [w, h, _] = image.extent();
    let buffer = Buffer::new_slice::<u8>(
        context.memory_allocator().clone(),
        BufferCreateInfo {
            usage: BufferUsage::TRANSFER_DST,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_HOST
                | MemoryTypeFilter::HOST_RANDOM_ACCESS,
            ..Default::default()
        },
        u64::from(w) * u64::from(h) * 4,
    )
    .context("allocating the screenshot buffer")?;
    let queue = context.graphics_queue().clone();
    let allocator = Arc::new(StandardCommandBufferAllocator::new(
        context.device().clone(),
        Default::default(),
    ));
    let mut cb = AutoCommandBufferBuilder::primary(
        allocator,
        queue.queue_family_index(),
        CommandBufferUsage::OneTimeSubmit,
    )
    .context("recording the screenshot copy")?;
    cb.copy_image_to_buffer(CopyImageToBufferInfo::image_buffer(image, buffer.clone()))
        .context("recording the screenshot copy")?;
    let cb = cb.build().context("recording the screenshot copy")?;
    let after = before
        .then_execute(queue, cb)
        .context("submitting the screenshot copy")?
        .boxed();
    Ok((after, buffer))
}

/// Writes the copied window image as an RGBA PNG.
pub fn save(buffer: &Subbuffer<[u8]>, extent: [u32; 3], format: Format, path: &Path) -> Result<()> {
    let bytes = buffer.read().context("reading the screenshot back")?;
    let mut pixels = bytes.to_vec();
    match format {
        Format::B8G8R8A8_UNORM | Format::B8G8R8A8_SRGB => {
            for px in pixels.chunks_exact_mut(4) {
                px.swap(0, 2);
            }
        }
        Format::R8G8B8A8_UNORM | Format::R8G8B8A8_SRGB => {}
        other => bail!("cannot save a screenshot of a {other:?} window"),
    }
    // The window is opaque; some surfaces leave alpha undefined.
    for px in pixels.chunks_exact_mut(4) {
        px[3] = 255;
    }
    RgbaImage {
        width: extent[0],
        height: extent[1],
        pixels,
    }
    .write_png(path)
    .with_context(|| format!("writing the screenshot {}", path.display()))
}
