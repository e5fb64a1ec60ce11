//! The quad images on the GPU, kept between calls so that changing one uploads only that one.
//!
//! Each image is named by a [`QuadImageKey`] (a content hash): an image whose key is already
//! in the atlas at the place the new layout gives it is not uploaded again. Large images
//! (boards: taller than [`LARGE_IMAGE_MIN_PX`]) are packed into layers of their own, sorted by
//! height and key, and small ones (text labels) after them in the order given; so a
//! measurement's text changing moves no board, and the board's megabytes stay where they are.
//! A text change uploads that text (and the texts shelved after it in its layer, which are
//! small). When the atlas must grow or shrink, a new texture is allocated and the images that
//! keep their place are copied into it on the GPU rather than uploaded from the CPU again.
//!
//! Why not one texture per image: the ray-march shader samples one `sampler2DArray`, and the
//! quads carry a layer and a rectangle in it; keeping that contract leaves the shader alone.

use std::collections::HashMap;
use std::sync::Arc;

use vulkano::command_buffer::{
    AutoCommandBufferBuilder, BufferImageCopy, CommandBufferUsage, CopyBufferToImageInfo,
    CopyImageInfo, ImageCopy,
};
use vulkano::format::Format;
use vulkano::image::view::{ImageView, ImageViewCreateInfo, ImageViewType};
use vulkano::image::{
    Image, ImageAspects, ImageCreateInfo, ImageSubresourceLayers, ImageType, ImageUsage,
};
use vulkano::memory::allocator::AllocationCreateInfo;

use crate::context::GpuContext;
use crate::image::RgbaImage;
use crate::quads::{
    fitted_size, resample_premultiplied, Place, ATLAS_LAYER_PX, MAX_ATLAS_LAYERS, MAX_QUAD_IMAGES,
};
use crate::RenderError;

/// Images taller than this (as stored) are large: they are shelved in layers apart from the
/// small ones, so that small images coming and going never move them.
pub const LARGE_IMAGE_MIN_PX: u32 = 256;

/// Names the pixels of a quad image: two images with the same key must have the same size and
/// pixels (a content hash, e.g. a board's image hash or [`QuadImageKey::of_pixels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuadImageKey(pub [u8; 32]);

impl QuadImageKey {
    /// The BLAKE3 hash of the size and pixels: a key for an image the caller has no name for.
    #[must_use]
    pub fn of_pixels(width: u32, height: u32, pixels: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&width.to_le_bytes());
        hasher.update(&height.to_le_bytes());
        hasher.update(pixels);
        Self(*hasher.finalize().as_bytes())
    }
}

/// One image for [`crate::VolumeRenderer::set_quad_images_keyed`]: straight-alpha RGBA8, rows
/// top down, borrowed so that an image already on the GPU costs no copy.
#[derive(Debug, Clone, Copy)]
pub struct QuadImage<'a> {
    /// What the pixels are; an image whose key is on the GPU already is not read.
    pub key: QuadImageKey,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 4` bytes.
    pub pixels: &'a [u8],
}

impl<'a> QuadImage<'a> {
    /// `image` keyed by the hash of its pixels.
    #[must_use]
    pub fn hashed(image: &'a RgbaImage) -> Self {
        Self {
            key: QuadImageKey::of_pixels(image.width, image.height, &image.pixels),
            width: image.width,
            height: image.height,
            pixels: &image.pixels,
        }
    }
}

/// What one call of [`crate::VolumeRenderer::set_quad_images_keyed`] put on the GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuadUpload {
    /// Images copied from the CPU (each distinct key once).
    pub images: usize,
    /// Texel bytes copied from the CPU.
    pub bytes: u64,
    /// Whether the atlas texture was allocated again (its size or layer count changed); the
    /// images that kept their place were then copied on the GPU.
    pub reallocated: bool,
}

/// Where every image goes, and which must be written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Width and height of every layer.
    pub layer_size: [u32; 2],
    pub layers: u32,
    /// Per image given.
    pub places: Vec<Place>,
    /// Each distinct key and its place.
    pub resident: HashMap<QuadImageKey, Place>,
    /// Index (into the images given) of each distinct key not already at its place.
    pub upload: Vec<usize>,
}

/// Lays out images of `sizes` (as given, keyed) given what is `before` in the atlas: large ones
/// shelved tallest first (ties by key) from layer 0, small ones in the order given from the
/// next free layer. A layer set of one layer is trimmed to what it holds.
pub(crate) fn plan(
    images: &[(QuadImageKey, [u32; 2])],
    before: &HashMap<QuadImageKey, Place>,
) -> Result<Plan, RenderError> {
    let too_many = || RenderError::TooManyQuadImages {
        count: images.len(),
        max_images: MAX_QUAD_IMAGES,
        max_layers: MAX_ATLAS_LAYERS as usize,
        layer_px: ATLAS_LAYER_PX,
    };
    if images.len() > MAX_QUAD_IMAGES {
        return Err(too_many());
    }
    // Each distinct key once, first occurrence.
    let mut first: HashMap<QuadImageKey, usize> = HashMap::new();
    let mut distinct = Vec::new();
    for (i, (key, _)) in images.iter().enumerate() {
        if !first.contains_key(key) {
            first.insert(*key, i);
            distinct.push(i);
        }
    }
    let fitted = |i: usize| fitted_size(images[i].1);
    let (mut large, small): (Vec<usize>, Vec<usize>) = distinct
        .iter()
        .partition(|&&i| fitted(i)[1] > LARGE_IMAGE_MIN_PX);
    large.sort_by_key(|&i| (std::cmp::Reverse(fitted(i)[1]), images[i].0));

    let mut resident = HashMap::with_capacity(distinct.len());
    let mut shelf = Shelves::default();
    for &i in &large {
        resident.insert(images[i].0, shelf.place(fitted(i)).ok_or_else(too_many)?);
    }
    if !large.is_empty() && !small.is_empty() {
        shelf.next_layer();
    }
    for &i in &small {
        resident.insert(images[i].0, shelf.place(fitted(i)).ok_or_else(too_many)?);
    }
    let layers = shelf.layer + 1;
    let layer_size = if layers == 1 {
        shelf.used
    } else {
        [ATLAS_LAYER_PX; 2]
    };
    let places = images
        .iter()
        .map(|(key, _)| resident.get(key).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(too_many)?;
    let upload = distinct
        .into_iter()
        .filter(|&i| before.get(&images[i].0) != resident.get(&images[i].0))
        .collect();
    Ok(Plan {
        layer_size,
        layers,
        places,
        resident,
        upload,
    })
}

/// Shelf packing through the layers: each image takes its size plus one gutter texel to the
/// right and below, so neighbours are a transparent texel apart.
struct Shelves {
    layer: u32,
    x: u32,
    shelf_y: u32,
    shelf_h: u32,
    /// Extent used in any layer.
    used: [u32; 2],
}

impl Default for Shelves {
    fn default() -> Self {
        Self {
            layer: 0,
            x: 0,
            shelf_y: 0,
            shelf_h: 0,
            used: [1, 1],
        }
    }
}

impl Shelves {
    fn next_layer(&mut self) {
        self.layer += 1;
        self.shelf_y = 0;
        self.x = 0;
        self.shelf_h = 0;
    }

    /// A place for an image of `[w, h]` (at most a layer less the gutter); `None` past the
    /// last layer.
    fn place(&mut self, [w, h]: [u32; 2]) -> Option<Place> {
        let (slot_w, slot_h) = (w + 1, h + 1);
        if self.x + slot_w > ATLAS_LAYER_PX {
            self.shelf_y += self.shelf_h;
            self.x = 0;
            self.shelf_h = 0;
        }
        if self.shelf_y + slot_h > ATLAS_LAYER_PX {
            self.next_layer();
        }
        if self.layer >= MAX_ATLAS_LAYERS {
            return None;
        }
        let place = Place {
            layer: self.layer,
            x: self.x,
            y: self.shelf_y,
            width: w,
            height: h,
        };
        self.used = [
            self.used[0].max(self.x + w),
            self.used[1].max(self.shelf_y + h),
        ];
        self.x += slot_w;
        self.shelf_h = self.shelf_h.max(slot_h);
        Some(place)
    }
}

/// The atlas texture and what it holds.
pub(crate) struct AtlasCache {
    /// `None` until the first images are set.
    image: Option<Arc<Image>>,
    layer_size: [u32; 2],
    layers: u32,
    resident: HashMap<QuadImageKey, Place>,
}

/// The atlas after an update, for the renderer to bind.
pub(crate) struct Updated {
    pub view: Arc<ImageView>,
    pub places: Vec<Place>,
    pub layer_size: [u32; 2],
    pub upload: QuadUpload,
}

impl AtlasCache {
    pub fn new() -> Self {
        Self {
            image: None,
            layer_size: [0, 0],
            layers: 0,
            resident: HashMap::new(),
        }
    }

    /// Makes the atlas hold `images`, writing only what is not there yet at its place.
    pub fn update(
        &mut self,
        ctx: &GpuContext,
        images: &[QuadImage<'_>],
    ) -> Result<Updated, RenderError> {
        for (index, image) in images.iter().enumerate() {
            let bytes = u64::from(image.width) * u64::from(image.height) * 4;
            if image.width == 0 || image.height == 0 || bytes != image.pixels.len() as u64 {
                return Err(RenderError::BadQuadImage {
                    index,
                    reason:
                        "width and height must be at least 1 and the pixels width·height·4 bytes",
                });
            }
        }
        let keyed: Vec<(QuadImageKey, [u32; 2])> = images
            .iter()
            .map(|i| (i.key, [i.width, i.height]))
            .collect();
        let mut plan = plan(&keyed, &self.resident)?;
        let mut cb = AutoCommandBufferBuilder::primary(
            ctx.commands.clone(),
            ctx.queue.queue_family_index(),
            CommandBufferUsage::OneTimeSubmit,
        )
        .map_err(|e| RenderError::vulkan("creating a command buffer", e))?;
        let reallocate = self.image.is_none()
            || self.layer_size != plan.layer_size
            || self.layers != plan.layers;
        let image = match (&self.image, reallocate) {
            (Some(image), false) => image.clone(),
            (old, _) => {
                let new = new_atlas(ctx, plan.layer_size, plan.layers)?;
                // Images that keep their place move over on the GPU.
                let kept: Vec<ImageCopy> = match old {
                    Some(_) => plan
                        .resident
                        .iter()
                        .filter(|&(key, place)| self.resident.get(key) == Some(place))
                        .map(|(_, p)| {
                            let layers = ImageSubresourceLayers {
                                aspects: ImageAspects::COLOR,
                                mip_level: 0,
                                array_layers: p.layer..p.layer + 1,
                            };
                            ImageCopy {
                                src_subresource: layers.clone(),
                                src_offset: [p.x, p.y, 0],
                                dst_subresource: layers,
                                dst_offset: [p.x, p.y, 0],
                                extent: [p.width, p.height, 1],
                                ..Default::default()
                            }
                        })
                        .collect(),
                    None => Vec::new(),
                };
                if let (Some(old), false) = (old, kept.is_empty()) {
                    cb.copy_image(CopyImageInfo {
                        regions: kept.into(),
                        ..CopyImageInfo::images(old.clone(), new.clone())
                    })
                    .map_err(|e| RenderError::vulkan("recording an atlas copy", e))?;
                }
                if images.is_empty() {
                    // Nothing to show: one transparent texel, written so it is defined.
                    plan.upload.clear();
                    let staging = ctx.staging_buffer([0u8; 4])?;
                    cb.copy_buffer_to_image(CopyBufferToImageInfo::buffer_image(
                        staging,
                        new.clone(),
                    ))
                    .map_err(|e| RenderError::vulkan("recording an upload", e))?;
                }
                new
            }
        };
        let mut upload = QuadUpload {
            reallocated: reallocate,
            ..QuadUpload::default()
        };
        if !plan.upload.is_empty() {
            let mut texels = Vec::new();
            let mut regions = Vec::with_capacity(plan.upload.len());
            for &i in &plan.upload {
                let given = &images[i];
                let place = plan.places[i];
                let offset = texels.len() as u64;
                texels.extend(resample_premultiplied(
                    [given.width, given.height],
                    given.pixels,
                    [place.width, place.height],
                ));
                regions.push(BufferImageCopy {
                    buffer_offset: offset,
                    image_subresource: ImageSubresourceLayers {
                        aspects: ImageAspects::COLOR,
                        mip_level: 0,
                        array_layers: place.layer..place.layer + 1,
                    },
                    image_offset: [place.x, place.y, 0],
                    image_extent: [place.width, place.height, 1],
                    ..Default::default()
                });
            }
            upload.images = regions.len();
            upload.bytes = texels.len() as u64;
            let staging = ctx.staging_buffer(texels)?;
            cb.copy_buffer_to_image(CopyBufferToImageInfo {
                regions: regions.into(),
                ..CopyBufferToImageInfo::buffer_image(staging, image.clone())
            })
            .map_err(|e| RenderError::vulkan("recording an upload", e))?;
        }
        if reallocate || upload.images > 0 {
            crate::volume_renderer::submit_and_wait(ctx, cb)?;
        }
        let view = ImageView::new(
            image.clone(),
            ImageViewCreateInfo {
                view_type: ImageViewType::Dim2dArray,
                ..ImageViewCreateInfo::from_image(&image)
            },
        )
        .map_err(|e| RenderError::vulkan("creating a view", e))?;
        self.image = Some(image);
        self.layer_size = plan.layer_size;
        self.layers = plan.layers;
        self.resident = plan.resident;
        Ok(Updated {
            view,
            places: plan.places,
            layer_size: plan.layer_size,
            upload,
        })
    }
}

/// The quad images' texture: `layers` layers of `size` RGBA8 texels (premultiplied, raw bytes);
/// a source of copies too, for when it is replaced by a larger one. The renderer's one-texel
/// placeholder (a frame without quads) is one too.
pub(crate) fn new_atlas(
    ctx: &GpuContext,
    size: [u32; 2],
    layers: u32,
) -> Result<Arc<Image>, RenderError> {
    Image::new(
        ctx.memory.clone(),
        ImageCreateInfo {
            image_type: ImageType::Dim2d,
            format: Format::R8G8B8A8_UNORM,
            extent: [size[0], size[1], 1],
            array_layers: layers,
            usage: ImageUsage::TRANSFER_DST | ImageUsage::TRANSFER_SRC | ImageUsage::SAMPLED,
            ..Default::default()
        },
        AllocationCreateInfo::default(),
    )
    .map_err(|e| RenderError::vulkan("allocating the quad atlas", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> QuadImageKey {
        QuadImageKey([n; 32])
    }

    fn apart(a: &Place, b: &Place) -> bool {
        a.layer != b.layer
            || a.x + a.width < b.x
            || b.x + b.width < a.x
            || a.y + a.height < b.y
            || b.y + b.height < a.y
    }

    #[test]
    fn small_images_share_a_trimmed_layer_one_texel_apart() {
        let small: Vec<_> = (0..50).map(|n| (key(n), [200, 32])).collect();
        let p = plan(&small, &HashMap::new()).expect("fits");
        assert_eq!(p.layers, 1);
        assert!(p.layer_size[1] < 512, "{:?}", p.layer_size);
        assert_eq!(p.upload.len(), 50);
        for (i, a) in p.places.iter().enumerate() {
            for b in &p.places[i + 1..] {
                assert!(apart(a, b), "{a:?} and {b:?} touch");
            }
        }
    }

    #[test]
    fn large_images_fill_layers_and_are_downscaled_to_fit() {
        let big = [(key(1), [2000, 2000]), (key(2), [4000, 2000])];
        let p = plan(&big, &HashMap::new()).expect("fits");
        assert_eq!(p.layers, 2);
        assert_eq!(p.layer_size, [ATLAS_LAYER_PX; 2]);
        assert_eq!(p.places[0].width, 2000);
        assert_eq!([p.places[1].width, p.places[1].height], [2047, 1024]);
        let nine: Vec<_> = (0..9).map(|n| (key(n), [2000, 2000])).collect();
        assert!(matches!(
            plan(&nine, &HashMap::new()),
            Err(RenderError::TooManyQuadImages { count: 9, .. })
        ));
    }

    /// The bug this module fixes: a text changing beside a radiograph re-uploaded the
    /// radiograph. Now only the new text is written, the board and the other texts stay.
    #[test]
    fn a_text_change_uploads_that_text_only() {
        let board = (key(200), [1760, 2140]);
        let before = plan(
            &[board, (key(1), [120, 40]), (key(2), [90, 40])],
            &HashMap::new(),
        )
        .expect("fits");
        assert_eq!(before.upload, vec![0, 1, 2]);
        // The last text changes (same width or not): only it is written.
        let after = plan(
            &[board, (key(1), [120, 40]), (key(3), [150, 40])],
            &before.resident,
        )
        .expect("fits");
        assert_eq!(after.upload, vec![2]);
        assert_eq!(after.places[0], before.places[0]);
        assert_eq!(
            (after.layers, after.layer_size),
            (before.layers, before.layer_size)
        );
        // A text added before the board in the list, the board shown twice: still no board.
        let again = plan(&[(key(4), [60, 40]), board, board], &after.resident).expect("fits");
        assert_eq!(again.upload, vec![0]);
        assert_eq!(again.places[1], before.places[0]);
        assert_eq!(again.places[2], before.places[0]);
        // The same set again: nothing.
        let same = plan(&[(key(4), [60, 40]), board, board], &again.resident).expect("fits");
        assert!(same.upload.is_empty());
        // A second board does not move the first when it is shorter.
        let second = plan(&[board, (key(201), [1000, 1000])], &same.resident).expect("fits");
        assert_eq!(second.upload, vec![1]);
        assert_eq!(second.places[0], before.places[0]);
    }
}
