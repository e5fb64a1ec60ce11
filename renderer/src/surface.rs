//! "The surface under the pen": where a ray first becomes opaque, on the CPU.
//!
//! Strokes land on the anatomy the learner sees, so this follows exactly the definition of
//! `VolumeRenderer::pick` (the ray-march shader, `shaders/glsl/raymarch.comp`, run on one
//! pixel): the ray enters the crop box (and the kept side of the clip plane), samples are taken
//! every `step_voxels` × the smallest voxel spacing from that entry, without jitter; each sample
//! reads the CT trilinearly as the renderer's 16-bit normalised texture holds it (clamped at the
//! edges), the label by nearest voxel, and the baked [`Lut`] row of that label with linear
//! filtering between density bins of its optical depth; opacities are per unit distance (the
//! preset's `opacity_unit_mm`, else the smallest voxel spacing) and corrected to the step; the point returned is the sample at which
//! the accumulated opacity first reaches [`SURFACE_OPACITY`].
//!
//! It is the one CPU implementation, used by the demo script (which records without a GPU) and
//! by the window's pen, which needs an answer on the UI thread at once: a GPU pick would queue
//! behind frames that take seconds on lavapipe. The tests crate checks it against the GPU pick.

use crate::{Camera, RenderOptions};
use glam::DVec3;
use twinray_transfer_functions::{DensityRange, Lut, LUT_BINS};
use twinray_volume::{CtVolume, LabelVolume};

/// Accumulated opacity at which a ray has reached the surface: the renderer's pick threshold.
pub const SURFACE_OPACITY: f64 = 0.5;

/// Largest opacity per unit distance the renderer's table holds (it stores log2(1 − α) in half
/// floats, so α = 1 is capped to stay finite).
const MAX_ALPHA: f32 = 0.9999;

/// The ray through `pixel` (x right, y down, in pixels of an image of `size`; the centre of the
/// top-left pixel is `[0.5, 0.5]`) as the renderer casts it: from the eye, unit direction.
pub fn pixel_ray(camera: &Camera, size: [u32; 2], pixel: [f64; 2]) -> (DVec3, DVec3) {
    let f = &camera.frustum;
    let u = pixel[0] / f64::from(size[0].max(1));
    let v = pixel[1] / f64::from(size[1].max(1));
    let tan_x = f.tan_left + (f.tan_right - f.tan_left) * u;
    let tan_y = f.tan_up + (f.tan_down - f.tan_up) * v;
    let dir = camera
        .world_from_view
        .transform_vector3(DVec3::new(tan_x, tan_y, -1.0))
        .normalize_or_zero();
    (camera.eye(), dir)
}

/// The surface point under `pixel` of the view `camera` renders into an image of `size`, or
/// `None` when the ray stays transparent: the CPU twin of `VolumeRenderer::pick`.
pub fn pick(
    ct: &CtVolume,
    labels: Option<&LabelVolume>,
    lut: &Lut,
    camera: &Camera,
    options: &RenderOptions,
    size: [u32; 2],
    pixel: [f64; 2],
) -> Option<DVec3> {
    let (eye, dir) = pixel_ray(camera, size, pixel);
    surface_along(ct, labels, lut, options, eye, dir)
}

/// The first point along the ray from `origin` in direction `dir` (patient mm) where the
/// accumulated opacity reaches [`SURFACE_OPACITY`], sampled as the renderer samples it.
pub fn surface_along(
    ct: &CtVolume,
    labels: Option<&LabelVolume>,
    lut: &Lut,
    options: &RenderOptions,
    origin: DVec3,
    dir: DVec3,
) -> Option<DVec3> {
    let dir = dir.normalize_or_zero();
    if dir == DVec3::ZERO {
        return None;
    }
    let g = ct.geometry();
    let dims = g.dims;
    if dims.contains(&0) {
        return None;
    }
    // Texture space: [0, 1]^3 over the voxel cells, voxel centres at (i + 0.5) / n.
    let voxel_from_world = g.voxel_from_patient();
    let n = DVec3::new(dims[0] as f64, dims[1] as f64, dims[2] as f64);
    let o = (voxel_from_world.transform_point3(origin) + 0.5) / n;
    let d = voxel_from_world.transform_vector3(dir) / n;
    let crop_lo = options.crop.min.map(|v| f64::from(v.clamp(0.0, 1.0)));
    let crop_hi = options.crop.max.map(|v| f64::from(v.clamp(0.0, 1.0)));
    let (mut t0, mut t1) = slab(o, d, crop_lo, crop_hi);
    t0 = t0.max(0.0);
    if let Some(clip) = options.clip_plane {
        let len = clip.normal.length();
        if len > 0.0 {
            let normal = clip.normal / len;
            let side = normal.dot(origin) + clip.offset_mm / len;
            let rate = normal.dot(dir);
            if rate.abs() < 1e-9 {
                if side < 0.0 {
                    return None;
                }
            } else {
                let t_cross = -side / rate;
                if rate > 0.0 {
                    t0 = t0.max(t_cross);
                } else {
                    t1 = t1.min(t_cross);
                }
            }
        }
    }
    if t0 >= t1 {
        return None;
    }
    let smallest_mm = g.spacing_mm().iter().copied().fold(f64::INFINITY, f64::min);
    let step_mm = f64::from(options.step_voxels.max(0.01)) * smallest_mm;
    let exponent = step_mm / lut.opacity_unit_mm_on(smallest_mm);
    let mut transmittance = 1.0f64;
    let mut k = 0u64;
    loop {
        let t = t0 + k as f64 * step_mm;
        if t > t1 {
            return None;
        }
        k += 1;
        let tex = o + d * t;
        let label = labels.map_or(0, |l| label_at(l, tex));
        let density = density_at(ct, lut.range(), tex);
        let log_t = log_transmittance(lut, label, density);
        if log_t >= 0.0 {
            continue;
        }
        transmittance *= (log_t * exponent).exp2();
        if 1.0 - transmittance >= SURFACE_OPACITY {
            return Some(origin + dir * t);
        }
    }
}

/// Entry and exit of the ray `o + t·d` through the box `[lo, hi]` (empty when entry ≥ exit).
fn slab(o: DVec3, d: DVec3, lo: [f64; 3], hi: [f64; 3]) -> (f64, f64) {
    let (mut near, mut far) = (f64::NEG_INFINITY, f64::INFINITY);
    for a in 0..3 {
        // As the shader: near-zero components become tiny, so axis-parallel rays stay finite.
        let da = if d[a].abs() < 1e-12 { 1e-12 } else { d[a] };
        let ta = (lo[a] - o[a]) / da;
        let tb = (hi[a] - o[a]) / da;
        near = near.max(ta.min(tb));
        far = far.min(ta.max(tb));
    }
    (near, far)
}

/// The label under a texture-space point, nearest voxel and clamped, as `texelFetch` reads it.
/// Ids above 255 (which the renderer refuses) read as unlabelled.
fn label_at(labels: &LabelVolume, tex: DVec3) -> u8 {
    let dims = labels.geometry().dims;
    let idx = [0, 1, 2].map(|a| {
        let i = (tex[a] * dims[a] as f64).floor();
        i.clamp(0.0, (dims[a].max(1) - 1) as f64) as usize
    });
    labels
        .get(idx[0], idx[1], idx[2])
        .and_then(|&id| u8::try_from(id).ok())
        .unwrap_or(0)
}

/// The normalised density at a texture-space point: trilinear over voxel centres, clamped to
/// the edge voxels, of the values the renderer uploads (normalised over the table's range and
/// rounded to 16 bits).
fn density_at(ct: &CtVolume, range: DensityRange, tex: DVec3) -> f32 {
    let dims = ct.geometry().dims;
    let mut lo = [0usize; 3];
    let mut hi = [0usize; 3];
    let mut w = [0.0f64; 3];
    for a in 0..3 {
        let x = tex[a] * dims[a] as f64 - 0.5;
        let base = x.floor();
        w[a] = x - base;
        let max = (dims[a] - 1) as f64;
        lo[a] = base.clamp(0.0, max) as usize;
        hi[a] = (base + 1.0).clamp(0.0, max) as usize;
    }
    let texel = |i: usize, j: usize, k: usize| -> f64 {
        let value = ct.get(i, j, k).copied().unwrap_or(range.low);
        f64::from(range.to_u16(value)) / 65535.0
    };
    let mut acc = 0.0;
    for c in 0..8 {
        let pick = |a: usize| (c >> a) & 1 == 1;
        let i = if pick(0) { hi[0] } else { lo[0] };
        let j = if pick(1) { hi[1] } else { lo[1] };
        let k = if pick(2) { hi[2] } else { lo[2] };
        let weight: f64 = (0..3)
            .map(|a| if pick(a) { w[a] } else { 1.0 - w[a] })
            .product();
        if weight > 0.0 {
            acc += weight * texel(i, j, k);
        }
    }
    acc as f32
}

/// log2(1 − opacity per unit distance) of a label row at a normalised density, interpolated
/// between neighbouring bins as the renderer's linearly filtered table does (0: transparent).
fn log_transmittance(lut: &Lut, label: u8, density: f32) -> f64 {
    let x = f64::from(density.clamp(0.0, 1.0)) * (LUT_BINS - 1) as f64;
    let b0 = x.floor() as usize;
    let f = x - b0 as f64;
    let at = |b: usize| f64::from((1.0 - lut.texel(label, b)[3].clamp(0.0, MAX_ALPHA)).log2());
    if f > 0.0 {
        (1.0 - f) * at(b0) + f * at(b0 + 1)
    } else {
        at(b0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinray_transfer_functions::{Preset, TransferFunction};
    use twinray_volume::{Geometry, Volume};

    /// Where a ray along +x first reaches opacity 0.5 in a uniform block of 2 mm voxels
    /// (spanning x = −1…31 mm) whose tissue has opacity 0.3 per unit distance, sampled every
    /// 1 mm (half a voxel) from the block's face.
    fn surface_x_mm(opacity_unit_mm: Option<f32>) -> f64 {
        let grid = Geometry::axis_aligned([16, 16, 16], [2.0; 3], [0.0; 3]).expect("grid");
        let ct = Volume::from_fn(grid, |_, _, _| 400.0f32);
        let mut preset = Preset::parse(
            "name = 'u'\ndescription = ''\nblend = 'composite'\n[shading]\nenabled = false\n\
             [[colour]]\nhu = 0\nrgb = [1, 1, 1]\n[[opacity]]\nhu = 0\nalpha = 0.3\n",
            "test",
        )
        .expect("preset");
        preset.opacity_unit_mm = opacity_unit_mm;
        let lut = TransferFunction::new(preset).bake();
        let options = RenderOptions {
            jitter_seed: None,
            ..RenderOptions::default()
        };
        let origin = DVec3::new(-20.0, 15.0, 15.0);
        surface_along(&ct, None, &lut, &options, origin, DVec3::X)
            .expect("the ray reaches the surface")
            .x
    }

    #[test]
    fn opacity_is_per_the_presets_unit_distance() {
        // Per 1 mm (Slicer's presets): each 1 mm sample lets 0.7 through; 0.7² < 0.5, so the
        // second sample, 1 mm in, is the surface.
        assert!((surface_x_mm(Some(1.0)) - 0.0).abs() < 1e-9);
        // Per voxel (2 mm, twinray's presets): each sample lets √0.7 through; it takes four.
        assert!((surface_x_mm(None) - 2.0).abs() < 1e-9);
    }
}
