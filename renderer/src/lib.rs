//! Vulkan compute ray-marcher that renders a CT volume with its label mask, without meshing.
//!
//! The CT is a 16-bit 3D texture sampled trilinearly, the labels an 8-bit integer 3D texture read
//! nearest-neighbour, and the transfer function a lookup table with one row per label, so that
//! hiding or recolouring a structure only rewrites the table. The same code renders on a
//! discrete GPU or on Mesa's lavapipe (CPU), headless, into an image that is read back.
//!
//! Overlays (pen strokes, the avatar's glasses and hands) are [`Capsule`]s composited with the
//! volume by depth inside the same pass (`VolumeRenderer::set_overlays`), and
//! `VolumeRenderer::pick` finds the first opaque sample under a pixel with that same shader, so
//! strokes land on the surface the user sees; [`surface`] is its CPU twin, kept beside the
//! shader it must agree with. Textured rectangles ([`Quad`]: X-ray boards, text labels) are
//! composited the same way (`VolumeRenderer::set_quad_images`, `VolumeRenderer::set_quads`).
//!
//! The renderer knows nothing of windows, XR runtimes, lessons or inference: callers give it a
//! [`Camera`] (a pose plus the four frustum tangents OpenXR reports per eye) and get pixels back.

mod bricks;
mod camera;
mod context;
mod external;
mod image;
mod normals;
mod overlay;
mod quad_atlas;
pub mod quads;
pub mod surface;
mod volume_renderer;

pub use bricks::{BrickStats, BRICK_VOXELS};
pub use camera::{Camera, Frustum};
pub use context::{DevicePreference, GpuContext};
pub use external::{ExternalFormat, ExternalHandles, VulkanCreator, EXTERNAL_API_VERSION};
pub use image::RgbaImage;
pub use normals::{normal_factor, volume_bytes, NormalVolume, VOLUME_MEMORY_BUDGET};
pub use overlay::{Capsule, MAX_OVERLAY_CAPSULES};
pub use quad_atlas::{QuadImage, QuadImageKey, QuadUpload, LARGE_IMAGE_MIN_PX};
pub use quads::{Quad, QuadHit, MAX_QUADS};
pub use volume_renderer::{ClipPlane, CropBox, FrameStats, RenderOptions, VolumeRenderer};

use std::path::PathBuf;

/// Everything that can stop a frame from being rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The Vulkan loader or instance is missing.
    #[error("Vulkan is not available ({reason}); install a driver, e.g. `apt-get install mesa-vulkan-drivers libvulkan1` for the CPU renderer")]
    NoVulkan {
        /// What the loader said.
        reason: String,
    },
    /// No device of the requested kind.
    #[error("no Vulkan device of the kind asked for ({preference:?}); devices found: {found}")]
    NoDevice {
        /// What was asked for.
        preference: DevicePreference,
        /// The devices that exist.
        found: String,
    },
    /// The device cannot sample or store a format the renderer needs.
    #[error("the device {device} does not support the texture format {format} the renderer needs")]
    MissingFormat {
        /// The format.
        format: String,
        /// The device.
        device: String,
    },
    /// The volume is larger than the device's 3D textures.
    #[error(
        "the volume's {dims:?} voxels exceed the device's largest 3D texture ({max} per side)"
    )]
    VolumeTooLarge {
        /// Volume dimensions.
        dims: [usize; 3],
        /// Device limit.
        max: usize,
    },
    /// The label map's grid is not the CT's.
    #[error("the label map's grid ({label_dims:?} voxels) differs from the CT's ({ct_dims:?} voxels, or the same size placed differently): labels must be on the CT's own grid")]
    LabelGridMismatch {
        /// CT dimensions.
        ct_dims: [usize; 3],
        /// Label dimensions.
        label_dims: [usize; 3],
    },
    /// A label id is beyond what the lookup table holds.
    #[error("label id {id} is above 255, the largest label id the renderer can colour")]
    LabelOutOfRange {
        /// The offending id.
        id: u16,
    },
    /// `render` was called before `set_volume`.
    #[error("no volume has been loaded")]
    NoVolume,
    /// Zero or absurd image size.
    #[error("image size {size:?} is not between 1 and 16384 pixels per side")]
    BadImageSize {
        /// Requested size.
        size: [u32; 2],
    },
    /// `set_overlays` was given more capsules than the renderer draws.
    #[error("{count} overlay capsules exceed the renderer's limit of {max}; draw long strokes with fewer, longer segments")]
    TooManyOverlays {
        /// Capsules given.
        count: usize,
        /// The limit, [`MAX_OVERLAY_CAPSULES`].
        max: usize,
    },
    /// An overlay capsule is unusable.
    #[error("overlay capsule {index} is invalid: {reason}")]
    BadOverlay {
        /// Its position in the slice given to `set_overlays`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `set_quads` was given more quads than the renderer draws.
    #[error("{count} quads exceed the renderer's limit of {max}")]
    TooManyQuads {
        /// Quads given.
        count: usize,
        /// The limit, [`MAX_QUADS`].
        max: usize,
    },
    /// A quad is unusable.
    #[error("quad {index} is invalid: {reason}")]
    BadQuad {
        /// Its position in the slice given to `set_quads`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The quad images do not fit the atlas.
    #[error("{count} quad images do not fit the quad atlas (at most {max_images} images in {max_layers} layers of {layer_px}x{layer_px} texels)")]
    TooManyQuadImages {
        /// Images given.
        count: usize,
        /// The most images, [`quads::MAX_QUAD_IMAGES`].
        max_images: usize,
        /// The most layers, [`quads::MAX_ATLAS_LAYERS`].
        max_layers: usize,
        /// A layer's edge, [`quads::ATLAS_LAYER_PX`].
        layer_px: u32,
    },
    /// A quad image is unusable.
    #[error("quad image {index} is invalid: {reason}")]
    BadQuadImage {
        /// Its position in the slice given to `set_quad_images`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The frame could not be written.
    #[error("cannot write {path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Vulkan call failed.
    #[error("Vulkan error while {context}: {message}")]
    Vulkan {
        /// What the renderer was doing.
        context: &'static str,
        /// The driver's message.
        message: String,
    },
}

impl RenderError {
    pub(crate) fn vulkan(context: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Vulkan {
            context,
            message: error.to_string(),
        }
    }
}
