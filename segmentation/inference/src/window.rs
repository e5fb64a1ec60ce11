//! The sliding-window arithmetic of nnU-Net v2: where the windows start, how each window's
//! prediction is weighted, and how a volume is padded to hold at least one window.
//!
//! Every formula here reproduces nnU-Net's (and `../shared/peers/onnx_sliding_window.py`, the
//! reference the tests compare against) operation for operation, so that the Rust and Python
//! predictions agree bit for bit, not merely approximately.

/// Start offsets of the windows along each axis, as nnU-Net's
/// `compute_steps_for_sliding_window`: `n = ceil((size - patch) / (patch · step)) + 1` windows
/// spread evenly, so the first starts at 0 and the last touches the far edge; starts are rounded
/// half to even, as NumPy's `round`.
///
/// `size[a] >= patch[a]` must hold (pad first, see [`padding`]).
pub fn window_starts(size: [usize; 3], patch: [usize; 3], step_fraction: f64) -> [Vec<usize>; 3] {
    std::array::from_fn(|a| {
        let (size, tile) = (size[a], patch[a]);
        let target = tile as f64 * step_fraction;
        let span = size.saturating_sub(tile);
        let n = (span as f64 / target).ceil() as usize + 1;
        if n > 1 {
            let actual = span as f64 / (n - 1) as f64;
            (0..n)
                .map(|i| (actual * i as f64).round_ties_even() as usize)
                .collect()
        } else {
            vec![0]
        }
    })
}

/// Constant padding before and after each axis so that the volume holds at least one patch,
/// centred as nnU-Net's `pad_nd_image` (the odd voxel goes after).
pub fn padding(shape: [usize; 3], patch: [usize; 3]) -> ([usize; 3], [usize; 3]) {
    let before: [usize; 3] = std::array::from_fn(|a| patch[a].saturating_sub(shape[a]) / 2);
    let after: [usize; 3] = std::array::from_fn(|a| patch[a].saturating_sub(shape[a] + before[a]));
    (before, after)
}

/// nnU-Net's Gaussian importance map for a patch (σ = patch/8 per axis, truncated at 4σ as
/// SciPy's `gaussian_filter` does, scaled so that its maximum is 10, zeros replaced by the
/// smallest non-zero value), in array order (last axis fastest).
///
/// Computed in `f64` in closed form and rounded to `f32` once, exactly as the reference does.
pub fn gaussian_importance(patch: [usize; 3]) -> Vec<f32> {
    let axes: [Vec<f64>; 3] = std::array::from_fn(|a| {
        let t = patch[a];
        let centre = (t / 2) as f64;
        let sigma = t as f64 / 8.0;
        let radius = (4.0 * sigma + 0.5).floor();
        (0..t)
            .map(|i| {
                let d = i as f64 - centre;
                if d.abs() > radius {
                    0.0
                } else {
                    (-0.5 * (d / sigma).powi(2)).exp()
                }
            })
            .collect()
    });
    let mut max = 0.0f64;
    for &g0 in &axes[0] {
        for &g1 in &axes[1] {
            for &g2 in &axes[2] {
                max = max.max(g0 * g1 * g2);
            }
        }
    }
    let scale = max / 10.0;
    let mut map = Vec::with_capacity(patch.iter().product());
    for &g0 in &axes[0] {
        for &g1 in &axes[1] {
            for &g2 in &axes[2] {
                map.push((g0 * g1 * g2 / scale) as f32);
            }
        }
    }
    let min_nonzero = map
        .iter()
        .copied()
        .filter(|&v| v != 0.0)
        .fold(f32::INFINITY, f32::min);
    if min_nonzero.is_finite() {
        for v in &mut map {
            if *v == 0.0 {
                *v = min_nonzero;
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_match_nnunet() {
        // 27 windows for example_ct (112 x 101 x 122 voxels, z y x) at patch 64 and step 0.5,
        // the figures the peer benchmark prints.
        let s = window_starts([112, 101, 122], [64; 3], 0.5);
        assert_eq!(s[0], vec![0, 24, 48]);
        assert_eq!(s[1], vec![0, 18, 37]);
        assert_eq!(s[2], vec![0, 29, 58]);
        assert_eq!(window_starts([64, 64, 65], [64; 3], 0.5)[2], vec![0, 1]);
        assert_eq!(window_starts([64, 64, 64], [64; 3], 0.5)[0], vec![0]);
        // Rounding is half to even: span 3 over 2 intervals puts the middle start at 1.5 -> 2.
        assert_eq!(window_starts([7, 4, 4], [4; 3], 0.5)[0], vec![0, 2, 3]);
    }

    #[test]
    fn padding_is_centred_with_the_odd_voxel_after() {
        assert_eq!(padding([10, 64, 70], [64; 3]), ([27, 0, 0], [27, 0, 0]));
        assert_eq!(padding([11, 64, 70], [64; 3]), ([26, 0, 0], [27, 0, 0]));
    }

    #[test]
    fn gaussian_peaks_at_ten_in_the_centre_and_has_no_zeros() {
        let g = gaussian_importance([8, 8, 16]);
        assert_eq!(g.len(), 8 * 8 * 16);
        let centre = (4 * 8 + 4) * 16 + 8;
        assert_eq!(g[centre], 10.0);
        assert!(g.iter().all(|&v| v > 0.0 && v <= 10.0));
        // Symmetric about the centre along the last axis.
        assert_eq!(g[centre - 3], g[centre + 3]);
    }
}
