//! The seam to the renderer's overlay API (capsules composited by depth in the ray-march).

use twinray_renderer::{RenderError, VolumeRenderer};

pub use twinray_renderer::Capsule;

/// Hands the capsules to the renderer for the next frames.
///
/// # Errors
/// If the renderer cannot upload them.
pub fn set_overlays(
    renderer: &mut VolumeRenderer,
    capsules: &[Capsule],
) -> Result<(), RenderError> {
    renderer.set_overlays(capsules)
}
