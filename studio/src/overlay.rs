//! The seam to the renderer's overlay API (capsules composited by depth in the ray-march).
//!
//! Until the renderer's `Capsule`/`set_overlays` land, this holds a stand-in with the same
//! fields and a no-op upload, so the rest of the studio is written against the final API:
//! switching over changes only this file.

use twinray_renderer::{RenderError, VolumeRenderer};

/// A capsule (a segment with a radius) drawn over the volume: patient LPS mm, straight alpha.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capsule {
    /// One end, patient mm.
    pub a_mm: glam::Vec3,
    /// The other end (equal to `a_mm` for a sphere).
    pub b_mm: glam::Vec3,
    /// Radius, mm.
    pub radius_mm: f32,
    /// Colour and opacity, straight alpha.
    pub rgba: [f32; 4],
}

/// Hands the capsules to the renderer for the next frames.
///
/// # Errors
/// If the renderer cannot upload them.
pub fn set_overlays(
    renderer: &mut VolumeRenderer,
    capsules: &[Capsule],
) -> Result<(), RenderError> {
    let _ = (renderer, capsules);
    Ok(())
}
