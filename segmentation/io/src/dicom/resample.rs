//! Resampling a tilted or irregularly spaced slice stack onto the plan's regular grid.

use super::SeriesPlan;

/// Bilinear sample of one slice at continuous pixel (x, y); `background` outside.
fn bilinear(slice: &[f32], [nx, ny]: [usize; 2], x: f64, y: f64, background: f32) -> f32 {
    if !(x > -1.0 && y > -1.0 && x < nx as f64 && y < ny as f64) {
        return background;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let at = |i: f64, j: f64| -> f32 {
        if i < 0.0 || j < 0.0 || i >= nx as f64 || j >= ny as f64 {
            background
        } else {
            slice[i as usize + nx * j as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Resamples `stack` (sorted slices of `in_dims` pixels) onto `plan.geometry`: each output
/// voxel is projected along the normal onto the two nearest slices, sampled bilinearly in
/// each and interpolated linearly between them; `background` (air on a CT) outside the data.
pub(crate) fn resample(
    stack: &[f32],
    in_dims: [usize; 2],
    plan: &SeriesPlan,
    background: f32,
) -> Vec<f32> {
    let [nx, ny, nz] = plan.geometry.dims;
    let plane_in = in_dims[0] * in_dims[1];
    let k_step = plan.geometry.spacing_mm()[2];
    let positions = &plan.slice_positions;
    let mut out = vec![background; nx * ny * nz];
    let sample = |slice: usize, i: usize, j: usize| {
        let (_, du, dv) = positions[slice];
        bilinear(
            &stack[slice * plane_in..(slice + 1) * plane_in],
            in_dims,
            i as f64 - du,
            j as f64 - dv,
            background,
        )
    };
    use rayon::prelude::*;
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, plane)| {
            let s = k as f64 * k_step;
            // The slice at or below s, and the weight of the one above it.
            let below = positions
                .partition_point(|p| p.0 <= s + 1e-9)
                .saturating_sub(1);
            let above = (below + 1).min(positions.len() - 1);
            let gap = positions[above].0 - positions[below].0;
            let w = if gap > 0.0 {
                ((s - positions[below].0) / gap).clamp(0.0, 1.0) as f32
            } else {
                0.0
            };
            for j in 0..ny {
                for i in 0..nx {
                    let a = sample(below, i, j);
                    plane[i + nx * j] = if w > 0.0 {
                        a * (1.0 - w) + sample(above, i, j) * w
                    } else {
                        a
                    };
                }
            }
        });
    out
}
