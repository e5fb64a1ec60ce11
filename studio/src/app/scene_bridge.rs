//! Lesson scene state → the renderer's inputs (transfer function, options).
//!
//! Known debt: the `scene` module of the studio branch owns this conversion (plus overlays for
//! strokes, glasses and hands). This file is the minimum the window needs before that lands
//! and is replaced by it on merge; keep it to these few functions.

use glam::{DVec3, Vec3};
use twinray_lessons::event::{ClipPlane as SceneClip, CropBox as SceneCrop, TransferPoint};
use twinray_lessons::state::SceneState;
use twinray_renderer::{ClipPlane, CropBox, RenderOptions};
use twinray_segmentation::Geometry;
use twinray_transfer_functions::{ColourPoint, OpacityPoint, Preset, TransferFunction};

/// The preset a scene without one shows.
pub const DEFAULT_PRESET: &str = "ct-bone";

/// The preset named by the scene (built-in), or the default one when unknown.
pub fn preset(scene: &SceneState) -> Preset {
    let name = scene.preset.as_deref().unwrap_or(DEFAULT_PRESET);
    Preset::load(name)
        .or_else(|_| Preset::load(DEFAULT_PRESET))
        .unwrap_or_else(|_| Preset {
            name: name.to_owned(),
            description: String::new(),
            blend: twinray_transfer_functions::Blend::Composite,
            shading: twinray_transfer_functions::Shading {
                enabled: false,
                ambient: 1.0,
                diffuse: 0.0,
                specular: 0.0,
                specular_power: 1.0,
            },
            colour: Vec::new(),
            opacity: Vec::new(),
        })
}

/// The curve in effect: the scene's edited curve, or the preset's own ramps merged into one.
pub fn effective_curve(scene: &SceneState) -> Vec<TransferPoint> {
    if !scene.transfer_curve.is_empty() {
        return scene.transfer_curve.clone();
    }
    curve_of_preset(&preset(scene))
}

/// A preset's colour and opacity ramps as one list of control points (at every HU where either
/// ramp has a point).
pub fn curve_of_preset(preset: &Preset) -> Vec<TransferPoint> {
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
pub fn transfer_function(scene: &SceneState) -> TransferFunction {
    let mut preset = preset(scene);
    if !scene.transfer_curve.is_empty() {
        preset.colour = scene
            .transfer_curve
            .iter()
            .map(|p| ColourPoint {
                hu: p.density_hu,
                rgb: [p.rgba[0], p.rgba[1], p.rgba[2]],
            })
            .collect();
        preset.opacity = scene
            .transfer_curve
            .iter()
            .map(|p| OpacityPoint {
                hu: p.density_hu,
                alpha: p.rgba[3],
            })
            .collect();
    }
    let mut tf = TransferFunction::new(preset);
    for (&label, style) in &scene.labels {
        let Ok(id) = u8::try_from(label) else {
            continue;
        };
        tf.labels.set_visible(id, style.visible);
        tf.labels.set_opacity(id, style.opacity);
        if let Some(rgb) = style.colour_rgb {
            tf.labels.set_colour(id, rgb.map(|c| f32::from(c) / 255.0));
        }
    }
    tf
}

/// Clip plane and crop box of the scene as render options.
pub fn render_options(scene: &SceneState, geometry: &Geometry) -> RenderOptions {
    RenderOptions {
        clip_plane: scene.clip_plane.map(render_clip),
        crop: scene
            .crop_box
            .map_or_else(CropBox::default, |c| render_crop(&c, geometry)),
        ..RenderOptions::default()
    }
}

/// The lesson keeps `normal · p <= distance`; the renderer keeps `n · p + offset >= 0`.
fn render_clip(plane: SceneClip) -> ClipPlane {
    ClipPlane {
        normal: -plane.normal.as_dvec3(),
        offset_mm: f64::from(plane.distance_mm),
    }
}

/// A patient-space box as fractions of the texture along each voxel axis.
fn render_crop(crop: &SceneCrop, geometry: &Geometry) -> CropBox {
    let voxel_from_patient = geometry.voxel_from_patient();
    let (lo, hi) = (crop.min_mm.as_dvec3(), crop.max_mm.as_dvec3());
    let mut min = [1.0f32; 3];
    let mut max = [0.0f32; 3];
    for c in 0..8 {
        let corner = DVec3::new(
            if c & 1 == 0 { lo.x } else { hi.x },
            if c & 2 == 0 { lo.y } else { hi.y },
            if c & 4 == 0 { lo.z } else { hi.z },
        );
        let ijk = voxel_from_patient.transform_point3(corner);
        for axis in 0..3 {
            let t = ((ijk[axis] + 0.5) / geometry.dims[axis] as f64).clamp(0.0, 1.0) as f32;
            min[axis] = min[axis].min(t);
            max[axis] = max[axis].max(t);
        }
    }
    CropBox { min, max }
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
