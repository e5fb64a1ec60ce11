//! What the app asks of the [`crate::scene`] module (the one place that turns lesson scene
//! state into render inputs), plus the curve editor's view of a preset.

use glam::Vec3;
use twinray_lessons::event::{CropBox as SceneCrop, TransferPoint};
use twinray_lessons::state::{LessonState, SceneState};
use twinray_renderer::{Capsule, RenderOptions};
use twinray_segmentation::Geometry;
use twinray_transfer_functions::{Preset, TransferFunction};

use crate::scene::{self, SceneBuilder};

pub use crate::scene::DEFAULT_PRESET;

/// The preset named by the scene (built-in), or the default one when unknown.
pub fn preset(scene: &SceneState, geometry: &Geometry) -> Preset {
    transfer_function(scene, geometry).preset
}

/// The curve in effect: the scene's edited curve, or the preset's own ramps merged into one
/// list of control points (what the curve editor shows and edits).
pub fn effective_curve(scene: &SceneState, geometry: &Geometry) -> Vec<TransferPoint> {
    if !scene.transfer_curve.is_empty() {
        return scene.transfer_curve.clone();
    }
    let preset = preset(scene, geometry);
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

/// The transfer function for a scene: preset, edited curve, per-label styles.
pub fn transfer_function(scene: &SceneState, geometry: &Geometry) -> TransferFunction {
    SceneBuilder::new(*geometry).transfer_function(scene)
}

/// Clip plane and crop box of the scene as render options.
pub fn render_options(scene: &SceneState, geometry: &Geometry) -> RenderOptions {
    SceneBuilder::new(*geometry).render_options(scene)
}

/// Overlay capsules of a replayed instant: strokes drawn so far, and the instructor's avatar
/// (the scene module leaves the glasses out when the learner looks through them).
pub fn replay_overlays(state: &LessonState, geometry: &Geometry, following: bool) -> Vec<Capsule> {
    let orbit = scene::OrbitView::default();
    let view = if following {
        scene::LearnerView::FollowInstructor(orbit)
    } else {
        scene::LearnerView::Orbit(orbit)
    };
    SceneBuilder::new(*geometry)
        .frame(state, &view, [1, 1])
        .overlays
        .all()
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
