//! The precomputed gradient volume: one RGBA16F texel per voxel (or per 2×2×2 voxels when the
//! full resolution would not fit the device-memory budget) holding the index-space central
//! difference of the density, so that shading a sample costs one trilinear fetch instead of six.
//!
//! The central difference of a trilinear field, taken one voxel either side, equals the trilinear
//! interpolation of the voxels' own central differences, so fetching the precomputed gradients
//! trilinearly gives the gradient the shader used to compute from six density fetches (up to
//! half-float rounding and the clamping at the volume's faces). An RGBA8 unit normal was
//! measured too: normalising before filtering gives weak, noisy soft-tissue gradients the weight
//! of bone edges, which changed the shaded goldens by 3–10× the FLIP bound.

use half::f16;

/// Device memory the renderer aims to stay under for one volume (density, labels and normals).
pub const VOLUME_MEMORY_BUDGET: u64 = 512 * 1024 * 1024;

/// The gradient texture of a volume: its size, how many voxels one texel spans per axis, and the
/// texels (RGBA16F, xyz = half the difference of the neighbours' u16 densities, i.e. the
/// index-space gradient of the normalised density times 65535; w = 1).
#[derive(Debug, Clone)]
pub struct NormalVolume {
    /// Texels along x, y, z.
    pub dims: [usize; 3],
    /// Voxels per texel along each axis (1, or 2 when reduced to fit the budget).
    pub factor: usize,
    /// RGBA16F texels, x fastest.
    pub texels: Vec<[f16; 4]>,
}

/// Bytes per gradient texel (RGBA16F).
const NORMAL_TEXEL_BYTES: u64 = 8;

/// Device bytes for density (R16), labels (R8, when present) and gradients at `factor`.
pub fn volume_bytes(dims: [usize; 3], labels: bool, factor: usize) -> u64 {
    let voxels = dims.iter().map(|&n| n as u64).product::<u64>();
    let normal_texels = dims
        .iter()
        .map(|&n| n.div_ceil(factor) as u64)
        .product::<u64>();
    voxels * (2 + u64::from(labels)) + normal_texels * NORMAL_TEXEL_BYTES
}

/// The largest resolution (factor 1, else 2) whose total stays within the budget.
pub fn normal_factor(dims: [usize; 3], labels: bool) -> usize {
    if volume_bytes(dims, labels, 1) <= VOLUME_MEMORY_BUDGET {
        1
    } else {
        2
    }
}

impl NormalVolume {
    /// Computes the normals of a volume of normalised densities (u16 of [0, 1], x fastest).
    pub fn compute(dims: [usize; 3], density: &[u16], factor: usize) -> Self {
        let factor = factor.max(1);
        let ndims = dims.map(|n| n.div_ceil(factor));
        let mut texels = vec![[f16::ZERO; 4]; ndims[0] * ndims[1] * ndims[2]];
        let per_slice = ndims[0] * ndims[1];
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let slices_per_worker = ndims[2].div_ceil(workers).max(1);
        let mut not_started = Vec::new();
        std::thread::scope(|scope| {
            for (chunk, out) in texels.chunks_mut(slices_per_worker * per_slice).enumerate() {
                let first = chunk * slices_per_worker;
                let spawned = std::thread::Builder::new()
                    .name("twinray-normals".into())
                    .spawn_scoped(scope, move || {
                        fill(dims, ndims, factor, density, first, out);
                    });
                if spawned.is_err() {
                    not_started.push(first);
                }
            }
        });
        for first in not_started {
            let span =
                first * per_slice..((first + slices_per_worker) * per_slice).min(texels.len());
            fill(dims, ndims, factor, density, first, &mut texels[span]);
        }
        Self {
            dims: ndims,
            factor,
            texels,
        }
    }

    /// Multiplies a texture coordinate of the density to the same point in this texture.
    pub fn tex_scale(&self, dims: [usize; 3]) -> [f32; 3] {
        [0, 1, 2].map(|a| dims[a] as f32 / (self.factor * self.dims[a]) as f32)
    }
}

/// Fills the texels of slices `first_z..` (as many as `out` holds).
fn fill(
    dims: [usize; 3],
    ndims: [usize; 3],
    factor: usize,
    density: &[u16],
    first_z: usize,
    out: &mut [[f16; 4]],
) {
    let [nx, ny, nz] = dims;
    let at = |x: usize, y: usize, z: usize| f32::from(density[(z * ny + y) * nx + x]);
    let per_slice = ndims[0] * ndims[1];
    for (slot, texel) in out.iter_mut().enumerate() {
        let z = first_z + slot / per_slice;
        let y = (slot % per_slice) / ndims[0];
        let x = slot % ndims[0];
        // The mean gradient over the voxels this texel spans (one voxel at factor 1).
        let mut g = [0.0f32; 3];
        for dz in 0..factor {
            for dy in 0..factor {
                for dx in 0..factor {
                    let (i, j, k) = (
                        (x * factor + dx).min(nx - 1),
                        (y * factor + dy).min(ny - 1),
                        (z * factor + dz).min(nz - 1),
                    );
                    g[0] += at((i + 1).min(nx - 1), j, k) - at(i.saturating_sub(1), j, k);
                    g[1] += at(i, (j + 1).min(ny - 1), k) - at(i, j.saturating_sub(1), k);
                    g[2] += at(i, j, (k + 1).min(nz - 1)) - at(i, j, k.saturating_sub(1));
                }
            }
        }
        let mean = 0.5 / (factor * factor * factor) as f32;
        *texel = [g[0] * mean, g[1] * mean, g[2] * mean, 1.0].map(f16::from_f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_along_x_points_along_x_and_flat_voxels_stay_flat() {
        let dims = [4, 3, 2];
        let density: Vec<u16> = (0..24)
            .map(|i| if i % 4 == 3 { 0 } else { (i % 4) * 1000 })
            .collect();
        let n = NormalVolume::compute(dims, &density, 1);
        assert_eq!(n.dims, dims);
        // Voxel (1, 0, 0): neighbours 0 and 2000 along x.
        let t = n.texels[1].map(f32::from);
        assert_eq!(t, [1000.0, 0.0, 0.0, 1.0]);
        let flat = vec![7u16; 24];
        let n = NormalVolume::compute(dims, &flat, 1);
        assert!(n
            .texels
            .iter()
            .all(|t| t[..3].iter().all(|&c| c == f16::ZERO)));
    }

    #[test]
    fn a_512_cube_with_labels_and_normals_fits_the_budget() {
        let dims = [512; 3];
        let factor = normal_factor(dims, true);
        assert_eq!(factor, 2);
        assert!(volume_bytes(dims, true, factor) <= VOLUME_MEMORY_BUDGET);
        assert_eq!(normal_factor([256; 3], true), 1);
    }
}
