//! The surface point under the mouse, for the 3D pen.
//!
//! Known debt: the renderer's `VolumeRenderer::pick` (overlay branch) answers this on the GPU
//! with exactly the shader's sampling; this CPU stand-in (nearest-voxel march, same transfer
//! function, clip plane and crop box) is replaced by it on merge.

use glam::DVec3;
use twinray_renderer::{Camera, RenderOptions};
use twinray_segmentation::{CtVolume, LabelVolume};
use twinray_transfer_functions::TransferFunction;

/// Opacity per unit step at which a sample counts as the surface.
const SURFACE_OPACITY: f32 = 0.05;

/// The first visible sample along the ray through `pixel` (x right, y down, in `size` pixels).
pub fn pick(
    ct: &CtVolume,
    labels: Option<&LabelVolume>,
    tf: &TransferFunction,
    camera: &Camera,
    options: &RenderOptions,
    size: [u32; 2],
    pixel: [f64; 2],
) -> Option<DVec3> {
    let f = &camera.frustum;
    let u = pixel[0] / f64::from(size[0].max(1));
    let v = pixel[1] / f64::from(size[1].max(1));
    let dir_view = DVec3::new(
        f.tan_left + u * (f.tan_right - f.tan_left),
        f.tan_up - v * (f.tan_up - f.tan_down),
        -1.0,
    );
    let dir = camera
        .world_from_view
        .transform_vector3(dir_view)
        .normalize_or_zero();
    let eye = camera.eye();
    let g = ct.geometry();
    let step_mm = g.spacing_mm().iter().copied().fold(f64::MAX, f64::min) * 0.5;
    let centre = g.centre_mm();
    let radius = g.bounding_radius_mm();
    // Only the stretch of the ray inside the volume's bounding sphere can hit anything.
    let along = (centre - eye).dot(dir);
    let (t0, t1) = ((along - radius).max(0.0), along + radius);
    let voxel_from_patient = g.voxel_from_patient();
    let mut t = t0;
    while t <= t1 {
        let p = eye + dir * t;
        t += step_mm;
        if let Some(clip) = options.clip_plane {
            if clip.normal.dot(p) + clip.offset_mm < 0.0 {
                continue;
            }
        }
        let ijk = voxel_from_patient.transform_point3(p);
        let inside_crop = (0..3).all(|a| {
            let frac = ((ijk[a] + 0.5) / g.dims[a] as f64) as f32;
            (options.crop.min[a]..=options.crop.max[a]).contains(&frac)
        });
        let r = ijk.round();
        if !inside_crop || r.min_element() < 0.0 {
            continue;
        }
        let [i, j, k] = [r.x as usize, r.y as usize, r.z as usize];
        let Some(&hu) = ct.get(i, j, k) else {
            continue;
        };
        let label = labels
            .and_then(|l| l.get(i, j, k).copied())
            .and_then(|l| u8::try_from(l).ok())
            .unwrap_or(0);
        let style = tf.labels.get(label);
        if style.visible && tf.preset.opacity_at(hu) * style.opacity >= SURFACE_OPACITY {
            return Some(p);
        }
    }
    None
}
