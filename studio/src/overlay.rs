//! The seam to the renderer's overlay API (capsules composited by depth in the ray-march), so
//! the rest of the studio names one type and one call.

pub use twinray_renderer::Capsule;
use twinray_renderer::{RenderError, VolumeRenderer};

/// Hands the capsules to the renderer for the next frames.
///
/// # Errors
/// If there are more than the renderer draws, or one is not finite.
pub fn set_overlays(
    renderer: &mut VolumeRenderer,
    capsules: &[Capsule],
) -> Result<(), RenderError> {
    renderer.set_overlays(capsules)
}
