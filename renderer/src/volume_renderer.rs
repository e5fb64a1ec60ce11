//! The ray-march pass: volume, label and lookup textures on the GPU, and one dispatch per frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use glam::{DMat4, DVec3, DVec4};
use half::f16;
use twinray_shaders::raymarch;
use twinray_transfer_functions::{Blend, DensityRange, Lut, TransferFunction, LUT_BINS, LUT_ROWS};
use twinray_volume::{CtVolume, Geometry, LabelVolume};
use vulkano::buffer::{Buffer, BufferContents, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::{
    AutoCommandBufferBuilder, CommandBufferUsage, CopyBufferToImageInfo, CopyImageToBufferInfo,
    PrimaryAutoCommandBuffer,
};
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::format::{Format, FormatFeatures};
use vulkano::image::sampler::{Filter, Sampler, SamplerAddressMode, SamplerCreateInfo};
use vulkano::image::view::{ImageView, ImageViewCreateInfo, ImageViewType};
use vulkano::image::{Image, ImageCreateInfo, ImageType, ImageUsage};
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};
use vulkano::pipeline::compute::ComputePipelineCreateInfo;
use vulkano::pipeline::layout::PipelineDescriptorSetLayoutCreateInfo;
use vulkano::pipeline::{
    ComputePipeline, PipelineBindPoint, PipelineLayout, PipelineShaderStageCreateInfo,
};
use vulkano::shader::{ShaderModule, SpecializationConstant};
use vulkano::sync::GpuFuture;

use crate::bricks::{BrickStats, BRICK_VOXELS};
use crate::camera::Camera;
use crate::context::GpuContext;
use crate::image::RgbaImage;
use crate::normals::{normal_factor, volume_bytes, NormalVolume};
use crate::overlay::{self, Bins, Capsule};
use crate::quad_atlas::{AtlasCache, QuadImage, QuadUpload};
use crate::quads::{self, Place, Quad};
use crate::RenderError;

/// How long a frame may take before we give up on the device (a lavapipe frame of a large
/// volume at high resolution takes seconds; a hung driver takes forever).
const FRAME_TIMEOUT: Duration = Duration::from_secs(300);

/// A plane in world (patient LPS mm) coordinates; the renderer keeps `normal · p + offset_mm ≥ 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipPlane {
    /// Direction pointing into the kept half-space (need not be unit length).
    pub normal: DVec3,
    /// Signed offset in millimetres (for a unit normal).
    pub offset_mm: f64,
}

impl ClipPlane {
    /// The plane through `point` with `normal` pointing into the kept half.
    pub fn through(point: DVec3, normal: DVec3) -> Self {
        let n = normal.normalize_or_zero();
        Self {
            normal: n,
            offset_mm: -n.dot(point),
        }
    }
}

/// A crop box as fractions of the volume along each voxel axis, `[0, 1]` keeping everything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    /// Lower corner, each in [0, 1].
    pub min: [f32; 3],
    /// Upper corner, each in [0, 1].
    pub max: [f32; 3],
}

impl Default for CropBox {
    fn default() -> Self {
        Self {
            min: [0.0; 3],
            max: [1.0; 3],
        }
    }
}

/// Per-frame settings that are not part of the transfer function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Distance between samples, in units of the smallest voxel spacing (0.5 = half a voxel).
    pub step_voxels: f32,
    /// Stop a ray once its accumulated opacity reaches this.
    pub early_termination: f32,
    /// Seed of the per-pixel start jitter, `None` for none; a fixed seed keeps frames
    /// reproducible (tests), jitter hides the wood-grain rings of step-aligned sampling.
    pub jitter_seed: Option<u32>,
    /// Overrides the preset's blend mode.
    pub blend: Option<Blend>,
    /// An optional clip plane.
    pub clip_plane: Option<ClipPlane>,
    /// The crop box.
    pub crop: CropBox,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            step_voxels: 0.5,
            early_termination: 0.99,
            jitter_seed: Some(0x7717_4a11),
            blend: None,
            clip_plane: None,
            crop: CropBox::default(),
        }
    }
}

/// What a frame cost, for benchmarks and the VR comfort budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameStats {
    /// Step between samples in millimetres.
    pub step_mm: f32,
    /// Density samples the rays took (after empty-space skipping and early termination).
    pub samples: u64,
    /// What a plain ray-marcher would take: pixels × steps across the volume's diagonal.
    pub max_samples: u64,
}

struct GpuVolume {
    geometry: Geometry,
    /// The values the density texture's 0…65535 stand for; the lookup table is baked over it.
    range: DensityRange,
    density: Arc<ImageView>,
    /// Precomputed central differences (RGBA16F, trilinear), full or half resolution.
    normals: Arc<ImageView>,
    /// Multiplies a density texture coordinate into the normal texture's.
    normal_scale: [f32; 3],
    /// Device bytes of the volume's textures (density, labels, normals).
    bytes: u64,
    labels: Option<Arc<ImageView>>,
    bricks: BrickStats,
    occupancy: Arc<Image>,
    occupancy_view: Arc<ImageView>,
}

struct Target {
    size: [u32; 2],
    image: Arc<Image>,
    view: Arc<ImageView>,
    readback: Subbuffer<[u8]>,
    /// The shader's `Counters`: samples taken, then the pick depth (f32 bits).
    counters: Subbuffer<[u32]>,
}

/// The overlay set on the CPU (for the per-frame binning) and on the GPU.
struct Overlays {
    /// Packed as the shader's `Capsules` (three vec4 per capsule); empty when there are none.
    packed: Vec<[f32; 4]>,
    /// The same on the GPU; one zero capsule when there are none (a buffer cannot be empty).
    gpu: Subbuffer<[[f32; 4]]>,
    /// Bins bound when there are no overlays (the shader does not read them then).
    no_bins: Subbuffer<[u32]>,
    /// The quads, packed as the shader's `Quads` with their bounding capsules; empty when none.
    quads: quads::Packed,
    /// The same on the GPU; one zero quad when there are none.
    quads_gpu: Subbuffer<[[f32; 4]]>,
    /// Where each image given to `set_quad_images` lies in the atlas.
    places: Vec<Place>,
    /// Texels per atlas layer.
    layer_size: [u32; 2],
    /// The quad images (a 1×1 transparent layer before any are set).
    atlas: Arc<ImageView>,
    /// What the atlas holds, so that unchanged images are not uploaded again.
    atlas_cache: AtlasCache,
    /// Whether overlays are culled and binned per screen tile (else every pixel tests every
    /// overlay); off only to check that culling changes no pixel.
    culling: bool,
}

/// What a frame's pipeline is specialised for (the shader's specialisation constants 0–5).
/// On a CPU device both sides of every branch are executed under a lane mask, so deciding these
/// per frame in the shader made every step pay for the other modes' texture fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Variant {
    mip: bool,
    labels: bool,
    shading: bool,
    /// Some overlay (capsule or quad) can touch the frame; without one the overlay code is
    /// compiled out.
    overlays: bool,
    /// Some capsule can touch the frame; without one the capsule test is compiled out.
    capsules: bool,
    /// Some quad can touch the frame; without one the quad test is compiled out.
    quads: bool,
}

impl Variant {
    /// The variant a frame under `tf` and `options` needs.
    fn of(
        tf: &TransferFunction,
        options: &RenderOptions,
        labels: bool,
        bins: Option<&Bins>,
    ) -> Self {
        let mip = options.blend.unwrap_or(tf.preset.blend) == Blend::Mip;
        Self {
            mip,
            labels,
            shading: tf.preset.shading.enabled && !mip,
            overlays: bins.is_some(),
            capsules: bins.is_some_and(|b| b.visible > b.visible_quads),
            quads: bins.is_some_and(|b| b.visible_quads > 0),
        }
    }
}

/// Renders one CT volume (with optional labels) under a transfer function.
pub struct VolumeRenderer {
    ctx: Arc<GpuContext>,
    shader: Arc<ShaderModule>,
    layout: Arc<PipelineLayout>,
    /// One pipeline per variant, created when a frame first needs it.
    pipelines: HashMap<Variant, Arc<ComputePipeline>>,
    linear: Arc<Sampler>,
    nearest: Arc<Sampler>,
    lut: Arc<Image>,
    lut_view: Arc<ImageView>,
    lut_cpu: Lut,
    /// [`transparent_below`] of the current lookup table.
    transparent_below: f32,
    transfer_function: TransferFunction,
    volume: Option<GpuVolume>,
    target: Option<Target>,
    /// The 1×1 target of `pick`, kept apart so picking does not reallocate the frame.
    pick_target: Option<Target>,
    overlays: Overlays,
    /// A 1-voxel label texture bound when the volume has no labels (the shader never reads it).
    no_labels: Arc<ImageView>,
}

impl std::fmt::Debug for VolumeRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeRenderer")
            .field("device", &self.ctx.device_name())
            .field("preset", &self.transfer_function.preset.name)
            .finish_non_exhaustive()
    }
}

impl VolumeRenderer {
    /// Builds the pipeline and an initial transfer function; no volume yet.
    pub fn new(ctx: Arc<GpuContext>, tf: &TransferFunction) -> Result<Self, RenderError> {
        let device = ctx.device.clone();
        check_formats(&ctx)?;
        let shader = raymarch::load(device.clone())
            .map_err(|e| RenderError::vulkan("loading the ray-march shader", e))?;
        let entry = shader
            .entry_point("main")
            .ok_or_else(|| RenderError::Vulkan {
                context: "loading the ray-march shader",
                message: "no entry point `main`".into(),
            })?;
        let stage = PipelineShaderStageCreateInfo::new(entry);
        let layout = PipelineLayout::new(
            device.clone(),
            PipelineDescriptorSetLayoutCreateInfo::from_stages([&stage])
                .into_pipeline_layout_create_info(device.clone())
                .map_err(|e| RenderError::vulkan("creating the pipeline layout", e.error))?,
        )
        .map_err(|e| RenderError::vulkan("creating the pipeline layout", e))?;
        let sampler = |filter| {
            Sampler::new(
                device.clone(),
                SamplerCreateInfo {
                    mag_filter: filter,
                    min_filter: filter,
                    address_mode: [SamplerAddressMode::ClampToEdge; 3],
                    ..Default::default()
                },
            )
            .map_err(|e| RenderError::vulkan("creating a sampler", e))
        };
        let lut = new_image(
            &ctx,
            ImageType::Dim2d,
            Format::R16G16B16A16_SFLOAT,
            [LUT_BINS as u32, LUT_ROWS as u32, 1],
        )?;
        let no_labels = new_image(&ctx, ImageType::Dim3d, Format::R8_UINT, [1, 1, 1])?;
        let no_atlas = crate::quad_atlas::new_atlas(&ctx, [1, 1], 1)?;
        let mut init = command_builder(&ctx)?;
        upload(&ctx, &mut init, &no_labels, [0u8])?;
        upload(&ctx, &mut init, &no_atlas, [0u8; 4])?;
        submit_and_wait(&ctx, init)?;
        let overlays = Overlays {
            packed: Vec::new(),
            gpu: storage_buffer(&ctx, [[0.0f32; 4]; overlay::CAPSULE_VEC4S])?,
            no_bins: storage_buffer(&ctx, [0u32; 4])?,
            quads: quads::Packed::default(),
            quads_gpu: storage_buffer(&ctx, [[0.0f32; 4]; quads::QUAD_VEC4S])?,
            places: Vec::new(),
            layer_size: [1, 1],
            atlas: atlas_view(&no_atlas)?,
            atlas_cache: AtlasCache::new(),
            culling: true,
        };
        let mut renderer = Self {
            overlays,
            pick_target: None,
            linear: sampler(Filter::Linear)?,
            nearest: sampler(Filter::Nearest)?,
            no_labels: view(&no_labels)?,
            lut_view: view(&lut)?,
            lut,
            lut_cpu: tf.bake(),
            transparent_below: -1.0,
            transfer_function: tf.clone(),
            volume: None,
            target: None,
            shader,
            layout,
            pipelines: HashMap::new(),
            ctx,
        };
        renderer.set_transfer_function(tf)?;
        Ok(renderer)
    }

    /// The device this renderer runs on.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The transfer function in use.
    pub fn transfer_function(&self) -> &TransferFunction {
        &self.transfer_function
    }

    /// The values the uploaded image's texture spans (`None` before [`Self::set_volume`]): to
    /// upload another label map on the same image with the same range.
    #[must_use]
    pub fn density_range(&self) -> Option<DensityRange> {
        self.volume.as_ref().map(|v| v.range)
    }

    /// Uploads an image (CT or MR) and, optionally, its label map (which must share its grid).
    /// Its values are normalised over `range` into the 16-bit texture ([`DensityRange::of`]
    /// the image: −1024…3071 HU for a CT, the image's own span otherwise), and from now on the
    /// lookup table is baked over the same range, whatever a transfer function's own
    /// [`TransferFunction::range`] says: the texture and the table cannot disagree.
    pub fn set_volume(
        &mut self,
        ct: &CtVolume,
        labels: Option<&LabelVolume>,
        range: DensityRange,
    ) -> Result<(), RenderError> {
        let geometry = *ct.geometry();
        let max = self
            .ctx
            .device
            .physical_device()
            .properties()
            .max_image_dimension3_d as usize;
        if geometry.dims.iter().any(|&n| n > max) {
            return Err(RenderError::VolumeTooLarge {
                dims: geometry.dims,
                max,
            });
        }
        let label_ids: Option<Vec<u8>> = match labels {
            None => None,
            Some(l) => {
                if !l.geometry().same_grid(&geometry, 0.01) {
                    return Err(RenderError::LabelGridMismatch {
                        ct_dims: geometry.dims,
                        label_dims: l.geometry().dims,
                    });
                }
                let mut ids = Vec::with_capacity(l.voxels().len());
                for &id in l.voxels() {
                    ids.push(u8::try_from(id).map_err(|_| RenderError::LabelOutOfRange { id })?);
                }
                Some(ids)
            }
        };
        let density: Vec<u16> = ct.voxels().iter().map(|&v| range.to_u16(v)).collect();
        if self.lut_cpu.range() != range {
            self.lut_cpu = Lut::bake(
                &self.transfer_function.preset,
                &self.transfer_function.labels,
                range,
            );
            self.upload_lut()?;
        }
        let bricks = BrickStats::compute(geometry.dims, &density, label_ids.as_deref());
        let factor = normal_factor(geometry.dims, label_ids.is_some());
        let normals = NormalVolume::compute(geometry.dims, &density, factor);
        let normal_scale = normals.tex_scale(geometry.dims);
        let bytes = volume_bytes(geometry.dims, label_ids.is_some(), factor);
        let extent = geometry.dims.map(|n| n as u32);
        let density_image = new_image(&self.ctx, ImageType::Dim3d, Format::R16_UNORM, extent)?;
        let normal_image = new_image(
            &self.ctx,
            ImageType::Dim3d,
            Format::R16G16B16A16_SFLOAT,
            normals.dims.map(|n| n as u32),
        )?;
        let occupancy = new_image(
            &self.ctx,
            ImageType::Dim3d,
            Format::R16G16_UINT,
            bricks.dims.map(|n| n as u32),
        )?;
        let mut cb = command_builder(&self.ctx)?;
        upload(&self.ctx, &mut cb, &density_image, density)?;
        upload(&self.ctx, &mut cb, &normal_image, normals.texels)?;
        let labels = match label_ids {
            None => None,
            Some(ids) => {
                let image = new_image(&self.ctx, ImageType::Dim3d, Format::R8_UINT, extent)?;
                upload(&self.ctx, &mut cb, &image, ids)?;
                Some(view(&image)?)
            }
        };
        upload(
            &self.ctx,
            &mut cb,
            &occupancy,
            bricks.skip_texels(&self.lut_cpu),
        )?;
        submit_and_wait(&self.ctx, cb)?;
        self.volume = Some(GpuVolume {
            geometry,
            range,
            density: view(&density_image)?,
            normals: view(&normal_image)?,
            normal_scale,
            bytes,
            labels,
            bricks,
            occupancy_view: view(&occupancy)?,
            occupancy,
        });
        Ok(())
    }

    /// Device bytes of the current volume's textures (density, labels, normals), 0 with none.
    pub fn volume_bytes(&self) -> u64 {
        self.volume.as_ref().map_or(0, |v| v.bytes)
    }

    /// The lookup table in use (baked over the volume's range once one is uploaded): what the
    /// CPU twin of the pick ([`crate::surface`]) must be given to agree with the GPU.
    pub fn lut(&self) -> &Lut {
        &self.lut_cpu
    }

    /// Uploads [`Self::lut`] to the GPU's table, with its transparent threshold.
    fn upload_lut(&mut self) -> Result<(), RenderError> {
        let texels = lut_texels(&self.lut_cpu);
        let below = transparent_below(&texels);
        let mut cb = command_builder(&self.ctx)?;
        upload(&self.ctx, &mut cb, &self.lut, texels)?;
        submit_and_wait(&self.ctx, cb)?;
        self.transparent_below = below;
        Ok(())
    }

    /// Replaces the transfer function: rewrites the lookup table and the occupancy bricks only.
    /// The table is baked over the uploaded volume's range (before any volume, over
    /// `tf.range`).
    pub fn set_transfer_function(&mut self, tf: &TransferFunction) -> Result<(), RenderError> {
        let range = self.volume.as_ref().map_or(tf.range, |v| v.range);
        let lut = Lut::bake(&tf.preset, &tf.labels, range);
        let texels = lut_texels(&lut);
        let below = transparent_below(&texels);
        let mut cb = command_builder(&self.ctx)?;
        upload(&self.ctx, &mut cb, &self.lut, texels)?;
        if let Some(volume) = &self.volume {
            upload(
                &self.ctx,
                &mut cb,
                &volume.occupancy,
                volume.bricks.skip_texels(&lut),
            )?;
        }
        submit_and_wait(&self.ctx, cb)?;
        self.transparent_below = below;
        self.lut_cpu = lut;
        self.transfer_function = tf.clone();
        Ok(())
    }

    /// Replaces the overlay set drawn by every later `render` (empty = none).
    ///
    /// Capsules are composited with the volume by depth: tissue in front tints them by its
    /// opacity, opaque tissue hides them, and they draw outside the volume's box as well. At
    /// most [`crate::MAX_OVERLAY_CAPSULES`]; capsules with zero radius or opacity are dropped.
    pub fn set_overlays(&mut self, capsules: &[Capsule]) -> Result<(), RenderError> {
        let packed = overlay::pack(capsules)?;
        self.overlays.gpu = if packed.is_empty() {
            storage_buffer(&self.ctx, [[0.0f32; 4]; overlay::CAPSULE_VEC4S])?
        } else {
            storage_buffer(&self.ctx, packed.iter().copied())?
        };
        self.overlays.packed = packed;
        Ok(())
    }

    /// Replaces the images quads show ([`Quad::image`] indexes this slice) and clears the quad
    /// set (call [`Self::set_quads`] again).
    ///
    /// Images are straight-alpha RGBA8, rows top down, and their bytes reach the frame
    /// unchanged (no sRGB decoding; the frame is written as raw UNORM bytes too): an opaque
    /// white texel in front of everything is a white pixel. They are premultiplied and packed
    /// into the layers of one 2D array texture, [`quads::ATLAS_LAYER_PX`]² texels each, with a
    /// transparent texel between neighbours, and sampled bilinearly (no mipmaps) with each
    /// image's edge texels clamped. An image wider or taller than a layer less its gutter
    /// (2047 texels) is box-filtered down to fit, keeping its aspect. At most
    /// [`quads::MAX_QUAD_IMAGES`] images in [`quads::MAX_ATLAS_LAYERS`] layers
    /// ([`RenderError::TooManyQuadImages`] beyond; a 2000×2000 radiograph takes a layer of its
    /// own, fifty text labels share one). An image already in the atlas (by the hash of its
    /// pixels) at the place the new set gives it is not uploaded again.
    pub fn set_quad_images(&mut self, images: &[RgbaImage]) -> Result<(), RenderError> {
        let keyed: Vec<QuadImage<'_>> = images.iter().map(QuadImage::hashed).collect();
        self.set_quad_images_keyed(&keyed).map(|_| ())
    }

    /// [`Self::set_quad_images`] with images named by the caller (a board's image hash), so
    /// that an image already on the GPU is neither hashed nor uploaded again: a text changing
    /// beside a radiograph uploads the text only. Returns what was uploaded.
    pub fn set_quad_images_keyed(
        &mut self,
        images: &[QuadImage<'_>],
    ) -> Result<QuadUpload, RenderError> {
        let updated = self.overlays.atlas_cache.update(&self.ctx, images)?;
        self.overlays.atlas = updated.view;
        self.overlays.places = updated.places;
        self.overlays.layer_size = updated.layer_size;
        self.set_quads(&[])?;
        Ok(updated.upload)
    }

    /// Replaces the quads drawn by every later `render` (empty = none). Cheap enough to call
    /// every frame (labels turning to face the camera): it uploads only the quads, 96 bytes
    /// each.
    ///
    /// Quads are composited with the volume and the capsules by depth: tissue in front tints
    /// them, opaque tissue hides them, a texel of alpha 1 in front hides what is behind and one
    /// of alpha 0 lets the ray through. Under MIP they are drawn in front of the projection,
    /// as capsules are. At most [`MAX_QUADS`](crate::MAX_QUADS)
    /// ([`RenderError::TooManyQuads`]); a non-finite or degenerate quad, or one showing an
    /// image not set by [`Self::set_quad_images`], is refused with
    /// [`RenderError::BadQuad`] naming its index; quads with `tint[3] == 0` are dropped.
    pub fn set_quads(&mut self, quads: &[Quad]) -> Result<(), RenderError> {
        let packed = quads::pack(quads, &self.overlays.places, self.overlays.layer_size)?;
        self.overlays.quads_gpu = if packed.gpu.is_empty() {
            storage_buffer(&self.ctx, [[0.0f32; 4]; quads::QUAD_VEC4S])?
        } else {
            storage_buffer(&self.ctx, packed.gpu.iter().copied())?
        };
        self.overlays.quads = packed;
        Ok(())
    }

    /// Turns the per-tile culling of overlays off (every pixel then tests every capsule and
    /// quad) or back on (the default). The frame is the same either way, only slower without
    /// it: this exists for the test that checks so.
    #[doc(hidden)]
    pub fn set_overlay_culling(&mut self, on: bool) {
        self.overlays.culling = on;
    }

    /// Renders a frame of `size` pixels and reads it back.
    pub fn render(
        &mut self,
        camera: &Camera,
        options: &RenderOptions,
        size: [u32; 2],
    ) -> Result<(RgbaImage, FrameStats), RenderError> {
        let (image, stats, _) = self.dispatch(camera, options, size, false)?;
        Ok((image, stats))
    }

    /// Patient-space point of the first opaque volume sample (accumulated opacity crossing 0.5,
    /// same transfer function, label visibility, clip plane and crop as `render`) along the ray
    /// through pixel centre `pixel` (x right, y down, in pixels of an image of `size`), or None
    /// when the ray hits nothing. Overlays are ignored.
    ///
    /// It runs the ray-march shader on a one-pixel image whose frustum is narrowed to that
    /// pixel's ray, so it sees exactly what `render` draws, with two differences: no start
    /// jitter (the point is a sample on the step grid from the ray's entry, within one step
    /// behind the surface), and MIP presets are marched as composite (a projection has no depth).
    pub fn pick(
        &mut self,
        camera: &Camera,
        options: &RenderOptions,
        size: [u32; 2],
        pixel: [f64; 2],
    ) -> Result<Option<DVec3>, RenderError> {
        if size[0] == 0 || size[1] == 0 || size[0] > 16384 || size[1] > 16384 {
            return Err(RenderError::BadImageSize { size });
        }
        let f = camera.frustum;
        let u = pixel[0] / f64::from(size[0]);
        let v = pixel[1] / f64::from(size[1]);
        let tan_x = f.tan_left + (f.tan_right - f.tan_left) * u;
        let tan_y = f.tan_up + (f.tan_down - f.tan_up) * v;
        let ray = Camera {
            world_from_view: camera.world_from_view,
            frustum: crate::Frustum {
                tan_left: tan_x,
                tan_right: tan_x,
                tan_up: tan_y,
                tan_down: tan_y,
            },
        };
        let options = RenderOptions {
            early_termination: 0.5,
            jitter_seed: None,
            blend: Some(Blend::Composite),
            ..*options
        };
        let (_, _, depth_mm) = self.dispatch(&ray, &options, [1, 1], true)?;
        if depth_mm.is_nan() || depth_mm < 0.0 {
            return Ok(None);
        }
        let dir = camera
            .world_from_view
            .transform_vector3(DVec3::new(tan_x, tan_y, -1.0))
            .normalize_or_zero();
        Ok(Some(camera.eye() + dir * f64::from(depth_mm)))
    }

    /// The pipeline specialised for `variant`, created on first use.
    fn pipeline(&mut self, variant: Variant) -> Result<Arc<ComputePipeline>, RenderError> {
        if let Some(pipeline) = self.pipelines.get(&variant) {
            return Ok(pipeline.clone());
        }
        let constants = [
            variant.mip,
            variant.labels,
            variant.shading,
            variant.overlays,
            variant.capsules,
            variant.quads,
        ]
        .into_iter()
        .zip(0u32..)
        .map(|(on, id)| (id, SpecializationConstant::Bool(on)))
        .collect();
        let entry = self
            .shader
            .specialize(constants)
            .map_err(|e| RenderError::vulkan("specialising the ray-march shader", e))?
            .entry_point("main")
            .ok_or_else(|| RenderError::Vulkan {
                context: "specialising the ray-march shader",
                message: "no entry point `main`".into(),
            })?;
        let pipeline = ComputePipeline::new(
            self.ctx.device.clone(),
            None,
            ComputePipelineCreateInfo::stage_layout(
                PipelineShaderStageCreateInfo::new(entry),
                self.layout.clone(),
            ),
        )
        .map_err(|e| RenderError::vulkan("creating the ray-march pipeline", e))?;
        self.pipelines.insert(variant, pipeline.clone());
        Ok(pipeline)
    }

    /// One ray-march dispatch and its read-back; `pick` renders into the pick target, without
    /// overlays, and returns the depth where the opacity reached the early-termination level.
    fn dispatch(
        &mut self,
        camera: &Camera,
        options: &RenderOptions,
        size: [u32; 2],
        pick: bool,
    ) -> Result<(RgbaImage, FrameStats, f32), RenderError> {
        if size[0] == 0 || size[1] == 0 || size[0] > 16384 || size[1] > 16384 {
            return Err(RenderError::BadImageSize { size });
        }
        let has_labels = self
            .volume
            .as_ref()
            .ok_or(RenderError::NoVolume)?
            .labels
            .is_some();
        let overlays = &self.overlays;
        let bins = if pick || (overlays.packed.is_empty() && overlays.quads.is_empty()) {
            None
        } else {
            Some(Bins::build(
                &overlays.packed,
                &overlays.quads.corners,
                camera,
                size,
                overlays.culling,
            ))
        }
        .filter(|b| b.visible > 0);
        let variant = Variant::of(&self.transfer_function, options, has_labels, bins.as_ref());
        let pipeline = self.pipeline(variant)?;
        let volume = self.volume.as_ref().ok_or(RenderError::NoVolume)?;
        let slot = if pick {
            &mut self.pick_target
        } else {
            &mut self.target
        };
        if slot.as_ref().is_none_or(|t| t.size != size) {
            *slot = Some(new_target(&self.ctx, size)?);
        }
        let target = slot.as_ref().ok_or(RenderError::NoVolume)?;
        let (mut params, stats) = frame_params(
            volume,
            &self.transfer_function,
            self.transparent_below,
            camera,
            options,
            size,
        );
        let bins_buffer = match &bins {
            Some(b) => {
                let capsules = (self.overlays.packed.len() / overlay::CAPSULE_VEC4S) as u32;
                params.overlay = [b.tiles[0], b.tiles[1], b.tile_px, capsules];
                storage_buffer(&self.ctx, b.words.iter().copied())?
            }
            None => self.overlays.no_bins.clone(),
        };
        if pick {
            params.image[3] |= 8;
        }
        let ubo = Buffer::from_data(
            self.ctx.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::UNIFORM_BUFFER,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE
                    | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
                ..Default::default()
            },
            params,
        )
        .map_err(|e| RenderError::vulkan("allocating frame parameters", e))?;
        let labels = volume
            .labels
            .clone()
            .unwrap_or_else(|| self.no_labels.clone());
        let set = DescriptorSet::new(
            self.ctx.descriptors.clone(),
            self.layout.set_layouts()[0].clone(),
            [
                WriteDescriptorSet::image_view_sampler(
                    0,
                    volume.density.clone(),
                    self.linear.clone(),
                ),
                WriteDescriptorSet::image_view_sampler(1, labels, self.nearest.clone()),
                WriteDescriptorSet::image_view_sampler(
                    2,
                    self.lut_view.clone(),
                    self.linear.clone(),
                ),
                WriteDescriptorSet::image_view_sampler(
                    3,
                    volume.occupancy_view.clone(),
                    self.nearest.clone(),
                ),
                WriteDescriptorSet::image_view(4, target.view.clone()),
                WriteDescriptorSet::buffer(5, ubo),
                WriteDescriptorSet::buffer(6, target.counters.clone()),
                WriteDescriptorSet::buffer(7, self.overlays.gpu.clone()),
                WriteDescriptorSet::buffer(8, bins_buffer),
                WriteDescriptorSet::image_view_sampler(
                    9,
                    volume.normals.clone(),
                    self.linear.clone(),
                ),
                WriteDescriptorSet::buffer(10, self.overlays.quads_gpu.clone()),
                WriteDescriptorSet::image_view_sampler(
                    11,
                    self.overlays.atlas.clone(),
                    self.linear.clone(),
                ),
            ],
            [],
        )
        .map_err(|e| RenderError::vulkan("binding textures", e))?;
        target
            .counters
            .write()
            .map_err(|e| RenderError::vulkan("resetting the sample counter", e))?
            .copy_from_slice(&[0, (-1.0f32).to_bits()]);
        let mut cb = command_builder(&self.ctx)?;
        cb.bind_pipeline_compute(pipeline)
            .and_then(|cb| {
                cb.bind_descriptor_sets(PipelineBindPoint::Compute, self.layout.clone(), 0, set)
            })
            .map_err(|e| RenderError::vulkan("recording the frame", e))?;
        // SAFETY: the shader bounds-checks the pixel against the image size from the uniform
        // block, reads textures only through clamped coordinates, and every loop advances `t`
        // by at least one positive step, so the dispatch cannot read out of bounds or hang.
        unsafe { cb.dispatch([size[0].div_ceil(8), size[1].div_ceil(8), 1]) }
            .map_err(|e| RenderError::vulkan("recording the frame", e))?;
        cb.copy_image_to_buffer(CopyImageToBufferInfo::image_buffer(
            target.image.clone(),
            target.readback.clone(),
        ))
        .map_err(|e| RenderError::vulkan("recording the read-back", e))?;
        submit_and_wait(&self.ctx, cb)?;
        let pixels = target
            .readback
            .read()
            .map_err(|e| RenderError::vulkan("reading the frame back", e))?
            .to_vec();
        let mut stats = stats;
        let counters = target
            .counters
            .read()
            .map_err(|e| RenderError::vulkan("reading the sample counter", e))?;
        stats.samples = counters.first().copied().map_or(0, u64::from);
        let depth_mm = counters.get(1).copied().map_or(-1.0, f32::from_bits);
        drop(counters);
        Ok((
            RgbaImage {
                width: size[0],
                height: size[1],
                pixels,
            },
            stats,
            depth_mm,
        ))
    }
}

/// Fills the shader's uniform block for one frame.
fn frame_params(
    volume: &GpuVolume,
    tf: &TransferFunction,
    transparent_below: f32,
    camera: &Camera,
    options: &RenderOptions,
    size: [u32; 2],
) -> (raymarch::Params, FrameStats) {
    let geometry = &volume.geometry;
    let brick_dims = volume.bricks.dims;
    let normal_scale = volume.normal_scale;
    let dims = geometry.dims.map(|n| n as f64);
    let voxel_from_world = geometry.voxel_from_patient();
    let tex_from_voxel = DMat4::from_scale(DVec3::new(1.0 / dims[0], 1.0 / dims[1], 1.0 / dims[2]))
        * DMat4::from_translation(DVec3::splat(0.5));
    let tex_from_world = tex_from_voxel * voxel_from_world;
    let a = glam::DMat3::from_mat4(voxel_from_world).transpose();
    let grad = DMat4::from_mat3(a);
    let spacing = geometry.spacing_mm();
    let smallest_mm = spacing.iter().copied().fold(f64::INFINITY, f64::min);
    let step_mm = (f64::from(options.step_voxels.max(0.01)) * smallest_mm) as f32;
    // What the preset's opacities are per: 1 mm for Slicer's, else the smallest spacing.
    let opacity_unit_mm = tf.preset.opacity_unit_mm_on(smallest_mm);
    let f = camera.frustum;
    let clip = options.clip_plane.map_or(DVec4::ZERO, |c| {
        let len = c.normal.length();
        if len > 0.0 {
            (c.normal / len).extend(c.offset_mm / len)
        } else {
            DVec4::ZERO
        }
    });
    let shading = tf.preset.shading;
    let mut flags = 0u32;
    if options.jitter_seed.is_some() {
        flags |= 2;
    }
    let m = |m: DMat4| m.as_mat4().to_cols_array_2d();
    let crop_lo = options.crop.min.map(|v| v.clamp(0.0, 1.0));
    let crop_hi = options.crop.max.map(|v| v.clamp(0.0, 1.0));
    let diagonal_mm = geometry.bounding_radius_mm() * 2.0 + spacing.iter().sum::<f64>();
    let params = raymarch::Params {
        tex_from_world: m(tex_from_world),
        world_from_view: m(camera.world_from_view),
        world_grad_from_index_grad: m(grad),
        tangents: [f.tan_left, f.tan_right, f.tan_up, f.tan_down].map(|t| t as f32),
        clip_plane: clip.as_vec4().to_array(),
        crop_min: [crop_lo[0], crop_lo[1], crop_lo[2], 0.0],
        crop_max: [crop_hi[0], crop_hi[1], crop_hi[2], 0.0],
        march: [
            step_mm,
            opacity_unit_mm as f32,
            options.early_termination,
            transparent_below,
        ],
        shading: [
            shading.ambient,
            shading.diffuse,
            shading.specular,
            shading.specular_power,
        ],
        dims: [
            geometry.dims[0] as u32,
            geometry.dims[1] as u32,
            geometry.dims[2] as u32,
            0,
        ],
        bricks: [
            brick_dims[0] as u32,
            brick_dims[1] as u32,
            brick_dims[2] as u32,
            BRICK_VOXELS as u32,
        ],
        image: [size[0], size[1], options.jitter_seed.unwrap_or(0), flags],
        overlay: [0; 4],
        normal_scale: [normal_scale[0], normal_scale[1], normal_scale[2], 0.0],
    };
    let stats = FrameStats {
        step_mm,
        samples: 0,
        max_samples: u64::from(size[0])
            * u64::from(size[1])
            * (diagonal_mm / f64::from(step_mm)).ceil() as u64,
    };
    (params, stats)
}

/// The GPU's lookup-table texels: the shader wants log2(1 − alpha) (see raymarch.comp);
/// opacity 1 is capped so it stays finite in half floats.
fn lut_texels(lut: &Lut) -> Vec<f16> {
    lut.texels()
        .iter()
        .flat_map(|t| {
            let log_transmittance = (1.0 - t[3].min(0.9999)).log2();
            [t[0], t[1], t[2], log_transmittance].map(f16::from_f32)
        })
        .collect()
}

/// The normalised density at or below which the lookup table (`texels` as uploaded: RGBA16F,
/// `LUT_BINS` per row, log2 transmittance in A) is exactly transparent in every row, filtering
/// between bins included; -1 when bin 0 is visible somewhere, 2 (all) when nothing is. The shader steps over such samples
/// with one density fetch instead of a density, label, LUT and gradient fetch.
fn transparent_below(texels: &[f16]) -> f32 {
    // A: 0 (or -0) is transparent; anything below 0 has some opacity.
    let first_visible_bin = texels
        .chunks_exact(4)
        .enumerate()
        .filter(|(_, t)| t[3] < f16::ZERO)
        .map(|(i, _)| i % LUT_BINS)
        .min();
    match first_visible_bin {
        None => 2.0,
        Some(0) => -1.0,
        // The shader reads bin coordinate v · (LUT_BINS − 1) with linear filtering, so v up to
        // (b − 1) / (LUT_BINS − 1) weighs bin b by 0; the margin (a tenth of a bin) absorbs the
        // sampler's coordinate rounding.
        Some(b) => (b as f32 - 1.1) / (LUT_BINS - 1) as f32,
    }
}

fn check_formats(ctx: &GpuContext) -> Result<(), RenderError> {
    let physical = ctx.device.physical_device();
    let needs = [
        (
            Format::R16_UNORM,
            FormatFeatures::SAMPLED_IMAGE | FormatFeatures::SAMPLED_IMAGE_FILTER_LINEAR,
        ),
        (Format::R8_UINT, FormatFeatures::SAMPLED_IMAGE),
        (Format::R16G16_UINT, FormatFeatures::SAMPLED_IMAGE),
        (
            Format::R16G16B16A16_SFLOAT,
            FormatFeatures::SAMPLED_IMAGE | FormatFeatures::SAMPLED_IMAGE_FILTER_LINEAR,
        ),
        (Format::R8G8B8A8_UNORM, FormatFeatures::STORAGE_IMAGE),
        (
            Format::R8G8B8A8_UNORM,
            FormatFeatures::SAMPLED_IMAGE | FormatFeatures::SAMPLED_IMAGE_FILTER_LINEAR,
        ),
    ];
    for (format, features) in needs {
        let props = physical
            .format_properties(format)
            .map_err(|e| RenderError::vulkan("querying format support", e))?;
        if !props.optimal_tiling_features.contains(features) {
            return Err(RenderError::MissingFormat {
                format: format!("{format:?}"),
                device: ctx.device_name(),
            });
        }
    }
    Ok(())
}

fn new_image(
    ctx: &GpuContext,
    image_type: ImageType,
    format: Format,
    extent: [u32; 3],
) -> Result<Arc<Image>, RenderError> {
    Image::new(
        ctx.memory.clone(),
        ImageCreateInfo {
            image_type,
            format,
            extent,
            usage: ImageUsage::TRANSFER_DST | ImageUsage::SAMPLED,
            ..Default::default()
        },
        AllocationCreateInfo::default(),
    )
    .map_err(|e| RenderError::vulkan("allocating a texture", e))
}

/// An array view of the atlas, even with one layer (the shader samples a `sampler2DArray`).
fn atlas_view(image: &Arc<Image>) -> Result<Arc<ImageView>, RenderError> {
    ImageView::new(
        image.clone(),
        ImageViewCreateInfo {
            view_type: ImageViewType::Dim2dArray,
            ..ImageViewCreateInfo::from_image(image)
        },
    )
    .map_err(|e| RenderError::vulkan("creating a view", e))
}

fn view(image: &Arc<Image>) -> Result<Arc<ImageView>, RenderError> {
    ImageView::new_default(image.clone()).map_err(|e| RenderError::vulkan("creating a view", e))
}

fn new_target(ctx: &GpuContext, size: [u32; 2]) -> Result<Target, RenderError> {
    let image = Image::new(
        ctx.memory.clone(),
        ImageCreateInfo {
            image_type: ImageType::Dim2d,
            format: Format::R8G8B8A8_UNORM,
            extent: [size[0], size[1], 1],
            usage: ImageUsage::STORAGE | ImageUsage::TRANSFER_SRC,
            ..Default::default()
        },
        AllocationCreateInfo::default(),
    )
    .map_err(|e| RenderError::vulkan("allocating the frame", e))?;
    let readback = Buffer::new_slice::<u8>(
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
        u64::from(size[0]) * u64::from(size[1]) * 4,
    )
    .map_err(|e| RenderError::vulkan("allocating the read-back buffer", e))?;
    let counters = Buffer::from_iter(
        ctx.memory.clone(),
        BufferCreateInfo {
            usage: BufferUsage::STORAGE_BUFFER,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_DEVICE
                | MemoryTypeFilter::HOST_RANDOM_ACCESS,
            ..Default::default()
        },
        [0u32, (-1.0f32).to_bits()],
    )
    .map_err(|e| RenderError::vulkan("allocating the sample counter", e))?;
    Ok(Target {
        size,
        counters,
        view: view(&image)?,
        image,
        readback,
    })
}

/// A host-written storage buffer holding `data` (overlay capsules, bins).
fn storage_buffer<T, I>(ctx: &GpuContext, data: I) -> Result<Subbuffer<[T]>, RenderError>
where
    T: BufferContents,
    I: IntoIterator<Item = T>,
    I::IntoIter: ExactSizeIterator,
{
    Buffer::from_iter(
        ctx.memory.clone(),
        BufferCreateInfo {
            usage: BufferUsage::STORAGE_BUFFER,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_DEVICE
                | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
            ..Default::default()
        },
        data,
    )
    .map_err(|e| RenderError::vulkan("allocating an overlay buffer", e))
}

fn command_builder(
    ctx: &GpuContext,
) -> Result<AutoCommandBufferBuilder<PrimaryAutoCommandBuffer>, RenderError> {
    AutoCommandBufferBuilder::primary(
        ctx.commands.clone(),
        ctx.queue.queue_family_index(),
        CommandBufferUsage::OneTimeSubmit,
    )
    .map_err(|e| RenderError::vulkan("creating a command buffer", e))
}

/// Records a copy of `data` into the whole of `image` through a staging buffer.
fn upload<T, I>(
    ctx: &GpuContext,
    cb: &mut AutoCommandBufferBuilder<PrimaryAutoCommandBuffer>,
    image: &Arc<Image>,
    data: I,
) -> Result<(), RenderError>
where
    T: BufferContents,
    I: IntoIterator<Item = T>,
    I::IntoIter: ExactSizeIterator,
{
    let staging = ctx.staging_buffer(data)?;
    cb.copy_buffer_to_image(CopyBufferToImageInfo::buffer_image(staging, image.clone()))
        .map_err(|e| RenderError::vulkan("recording an upload", e))?;
    Ok(())
}

/// Submits `cb` and waits for it, reporting a device that takes longer than [`FRAME_TIMEOUT`]
/// as failed: every upload and frame of the renderer goes through here.
pub(crate) fn submit_and_wait(
    ctx: &GpuContext,
    cb: AutoCommandBufferBuilder<PrimaryAutoCommandBuffer>,
) -> Result<(), RenderError> {
    let cb = cb
        .build()
        .map_err(|e| RenderError::vulkan("finishing a command buffer", e))?;
    vulkano::sync::now(ctx.device.clone())
        .then_execute(ctx.queue.clone(), cb)
        .map_err(|e| RenderError::vulkan("submitting work", e))?
        .then_signal_fence_and_flush()
        .map_err(|e| RenderError::vulkan("submitting work", e))?
        .wait(Some(FRAME_TIMEOUT))
        .map_err(|e| RenderError::vulkan("waiting for the GPU", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinray_transfer_functions::Preset;

    /// A of the uploaded table in `row` at normalised density `v`, filtered between bins as the
    /// shader's sampler does (bin coordinate `v · (LUT_BINS − 1)`).
    fn filtered_log_transmittance(texels: &[f16], row: usize, v: f32) -> f32 {
        let x = v.clamp(0.0, 1.0) * (LUT_BINS - 1) as f32;
        let bin = (x.floor() as usize).min(LUT_BINS - 1);
        let weight = x - bin as f32;
        let a = |b: usize| f32::from(texels[(row * LUT_BINS + b.min(LUT_BINS - 1)) * 4 + 3]);
        a(bin) * (1.0 - weight) + a(bin + 1) * weight
    }

    #[test]
    fn samples_up_to_the_transparent_density_are_invisible_and_one_bin_more_is_not() {
        for name in ["ct-bone", "ct-soft-tissue", "mip"] {
            let mut tf = TransferFunction::new(Preset::load(name).expect("preset"));
            // A hidden label must not hold the threshold down.
            tf.labels.set_visible(5, false);
            let texels = lut_texels(&tf.bake());
            let below = transparent_below(&texels);
            assert!(below > 0.0, "{name}: some densities are transparent");
            for row in 0..LUT_ROWS {
                for i in 0..=1000 {
                    let v = below * i as f32 / 1000.0;
                    let a = filtered_log_transmittance(&texels, row, v);
                    assert!(a >= 0.0, "{name}: row {row} visible at {v} <= {below}");
                }
            }
            let one_bin_more = below + 1.2 / (LUT_BINS - 1) as f32;
            assert!(
                (0..LUT_ROWS)
                    .any(|row| filtered_log_transmittance(&texels, row, one_bin_more) < 0.0),
                "{name}: the threshold {below} is more than a bin below the first visible density"
            );
        }
    }
}
