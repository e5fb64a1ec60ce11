//! The curve editor's view of a preset, and the volume's box for the crop editor. Everything
//! else about turning the scene into render inputs is the scene crate's [`SceneBuilder`]
//! (through `App::frame`).
//!
//! [`SceneBuilder`]: twinray_scene::SceneBuilder

use glam::Vec3;
use twinray_io::Geometry;
use twinray_lessons::event::{CropBox as SceneCrop, TransferPoint};
use twinray_lessons::state::SceneState;
use twinray_transfer_functions::Preset;

pub use twinray_scene::DEFAULT_PRESET;

/// The curve in effect: the scene's edited curve, or `preset`'s own ramps (the preset the
/// scene shows) merged into one list of control points (what the curve editor shows and edits).
pub fn effective_curve(scene: &SceneState, preset: &Preset) -> Vec<TransferPoint> {
    if !scene.transfer_curve.is_empty() {
        return scene.transfer_curve.clone();
    }
    let mut hus: Vec<f32> = preset
        .colour
        .iter()
        .map(|c| c.hu)
        .chain(preset.opacity.iter().map(|o| o.hu))
        .collect();
    hus.sort_by(f32::total_cmp);
    hus.dedup();
    hus.into_iter()
        .map(|hu| {
            let [r, g, b] = preset.colour_at(hu);
            TransferPoint {
                density_hu: hu,
                rgba: [r, g, b, preset.opacity_at(hu)],
            }
        })
        .collect()
}

/// The patient-space box of the whole volume (voxel centres).
pub fn volume_box_mm(geometry: &Geometry) -> SceneCrop {
    let corners = geometry.corners_mm();
    let mut min = Vec3::splat(f32::MAX);
    let mut max = Vec3::splat(f32::MIN);
    for c in corners {
        min = min.min(c.as_vec3());
        max = max.max(c.as_vec3());
    }
    SceneCrop {
        min_mm: min,
        max_mm: max,
    }
}
