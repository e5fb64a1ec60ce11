//! The model's voxel grid for one CT: the CT's voxel axes permuted and flipped to run closest to
//! the model's axes, each resampled to the model's spacing; and the way back.
//!
//! This is what nnU-Net and TotalSegmentator do (reorient to the closest canonical axes, then
//! resample in voxel space, voxel centres spread evenly over the CT's extent as skimage's
//! `resize` does), so an oblique CT is fed in its own slice orientation, as those models saw
//! during training. Each model axis runs along exactly one CT axis, so sampling is
//! separable: trilinear for the CT, nearest for labels going back. An axis whose spacing already
//! matches the model's within 1e-4 mm is copied, not interpolated, so a CT stored at the model's
//! spacing reaches the model bit for bit.

use glam::{DMat4, DVec4};
use twinray_volume::{CtVolume, Geometry, LabelVolume, Volume, VolumeError};

use crate::model::ModelDescription;

/// Spacing difference (mm) under which an axis is copied rather than resampled.
pub const EXACT_SPACING_MM: f64 = 1e-4;

/// How one model array axis maps onto the CT's voxel coordinates.
///
/// Resampled axes follow nnU-Net (skimage's `resize`, `align_corners=False`): `len =
/// round(n · spacing / model_spacing)` voxels whose centres split the CT's extent evenly, array
/// index `j` sampling canonical coordinate `(j + 0.5) · n / len − 0.5` (canonical: counted from
/// the end the model's direction starts at, i.e. after the flip).
#[derive(Debug, Clone, Copy, PartialEq)]
struct AxisMap {
    /// CT voxel axis (0 = i, 1 = j, 2 = k) this array axis runs along.
    ct_axis: usize,
    /// The array runs against the CT's index.
    flip: bool,
    /// CT voxels along `ct_axis`.
    n: usize,
    /// Array length.
    len: usize,
    /// Copied, not interpolated (same spacing).
    exact: bool,
}

impl AxisMap {
    /// CT voxel coordinate (continuous) of array index `j`.
    fn ct_coordinate(&self, j: usize) -> f64 {
        let canonical = if self.exact {
            j as f64
        } else {
            (j as f64 + 0.5) * (self.n as f64 / self.len as f64) - 0.5
        };
        if self.flip {
            (self.n - 1) as f64 - canonical
        } else {
            canonical
        }
    }

    /// Array index whose voxel holds CT index `i` (nearest, same centre mapping).
    fn array_index(&self, i: usize) -> usize {
        let canonical = if self.flip { self.n - 1 - i } else { i };
        if self.exact {
            canonical
        } else {
            let j = ((canonical as f64 + 0.5) * (self.len as f64 / self.n as f64)).floor();
            (j as usize).min(self.len - 1)
        }
    }
}

/// A CT's voxels as the model's arrays: array axis 0 is the slowest.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelGrid {
    axes: [AxisMap; 3],
    ct: Geometry,
}

impl ModelGrid {
    /// The grid for `ct` under `model`'s axes and spacing.
    pub fn new(ct: &Geometry, model: &ModelDescription) -> Self {
        let m = ct.patient_from_voxel;
        let dirs = [m.x_axis, m.y_axis, m.z_axis].map(|c| c.truncate().normalize_or_zero());
        let wanted = model.axes.map(crate::model::Direction::lps);
        // The CT axis for each model axis: the permutation with the largest total alignment
        // (for an axis-aligned CT this is the obvious one; for an oblique one, the closest).
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let score =
            |p: &[usize; 3]| -> f64 { (0..3).map(|a| dirs[p[a]].dot(wanted[a]).abs()).sum() };
        let perm = perms
            .iter()
            .copied()
            .max_by(|p, q| score(p).total_cmp(&score(q)))
            .unwrap_or([0, 1, 2]);
        let spacing = ct.spacing_mm();
        let axes = std::array::from_fn(|a| {
            let k = perm[a];
            let n = ct.dims[k];
            let (s, t) = (spacing[k], model.spacing_mm[a]);
            let exact = (s - t).abs() <= EXACT_SPACING_MM;
            AxisMap {
                ct_axis: k,
                flip: dirs[k].dot(wanted[a]) < 0.0,
                n,
                len: if exact {
                    n
                } else {
                    ((n as f64 * s / t).round() as usize).max(1)
                },
                exact,
            }
        });
        Self { axes, ct: *ct }
    }

    /// Array shape, slowest axis first.
    pub fn shape(&self) -> [usize; 3] {
        self.axes.map(|a| a.len)
    }

    /// True when no axis is interpolated (the CT already has the model's spacing).
    pub fn is_exact(&self) -> bool {
        self.axes.iter().all(|a| a.exact)
    }

    /// The model grid placed in the patient, as a [`Geometry`] whose voxel `(i, j, k)` is array
    /// element `[k][j][i]` (the last array axis runs fastest, as `i` does).
    pub fn geometry(&self) -> Result<Geometry, VolumeError> {
        let mut ct_from_model = DMat4::ZERO;
        let mut w = DVec4::new(0.0, 0.0, 0.0, 1.0);
        for (col, a) in self.axes.iter().rev().enumerate() {
            let origin = a.ct_coordinate(0);
            let mut v = DVec4::ZERO;
            v[a.ct_axis] = a.ct_coordinate(1) - origin;
            *ct_from_model.col_mut(col) = v;
            w[a.ct_axis] = origin;
        }
        *ct_from_model.col_mut(3) = w;
        let shape = self.shape();
        Geometry::new(
            [shape[2], shape[1], shape[0]],
            self.ct.patient_from_voxel * ct_from_model,
        )
    }

    /// The CT's HU on the model grid (array order), trilinear along resampled axes.
    pub fn sample(&self, ct: &CtVolume) -> Vec<f32> {
        let dims = self.ct.dims;
        let strides = [1, dims[0], dims[0] * dims[1]];
        // Per array axis and index: two CT offsets and the weight of the second.
        let taps: [Vec<(usize, usize, f32)>; 3] = std::array::from_fn(|a| {
            let m = self.axes[a];
            let n = dims[m.ct_axis];
            let stride = strides[m.ct_axis];
            (0..m.len)
                .map(|j| {
                    if m.exact {
                        let i = m.ct_coordinate(j) as usize;
                        (i * stride, i * stride, 0.0)
                    } else {
                        let x = m.ct_coordinate(j).clamp(0.0, n as f64 - 1.0);
                        let i0 = x.floor() as usize;
                        let i1 = (i0 + 1).min(n - 1);
                        (i0 * stride, i1 * stride, (x - i0 as f64) as f32)
                    }
                })
                .collect()
        });
        let v = ct.voxels();
        let shape = self.shape();
        let mut out = Vec::with_capacity(shape.iter().product());
        if self.is_exact() {
            for &(o0, _, _) in &taps[0] {
                for &(o1, _, _) in &taps[1] {
                    out.extend(taps[2].iter().map(|&(o2, _, _)| v[o0 + o1 + o2]));
                }
            }
            return out;
        }
        for &(a0, b0, w0) in &taps[0] {
            for &(a1, b1, w1) in &taps[1] {
                for &(a2, b2, w2) in &taps[2] {
                    let lerp = |p: f32, q: f32, w: f32| p + (q - p) * w;
                    let c00 = lerp(v[a0 + a1 + a2], v[a0 + a1 + b2], w2);
                    let c01 = lerp(v[a0 + b1 + a2], v[a0 + b1 + b2], w2);
                    let c10 = lerp(v[b0 + a1 + a2], v[b0 + a1 + b2], w2);
                    let c11 = lerp(v[b0 + b1 + a2], v[b0 + b1 + b2], w2);
                    out.push(lerp(lerp(c00, c01, w1), lerp(c10, c11, w1), w0));
                }
            }
        }
        out
    }

    /// Labels on the model grid (array order) put back on the CT's own grid: each CT voxel
    /// takes the label of the nearest model voxel.
    pub fn labels_onto_ct(&self, labels: &[u16]) -> LabelVolume {
        let shape = self.shape();
        // For each CT axis: which array axis runs along it, and the array index per CT index.
        let mut lookup: [(usize, Vec<usize>); 3] = Default::default();
        for (a, m) in self.axes.iter().enumerate() {
            let n = self.ct.dims[m.ct_axis];
            let index = (0..n).map(|i| m.array_index(i)).collect();
            lookup[m.ct_axis] = (a, index);
        }
        let array_strides = [shape[1] * shape[2], shape[2], 1];
        let stride_of = |ct_axis: usize| array_strides[lookup[ct_axis].0];
        let (si, sj, sk) = (stride_of(0), stride_of(1), stride_of(2));
        Volume::from_fn(self.ct, |i, j, k| {
            labels[lookup[0].1[i] * si + lookup[1].1[j] * sj + lookup[2].1[k] * sk]
        })
    }
}

#[cfg(test)]
mod tests {
    use glam::DVec3;

    use super::*;
    use crate::model::{Direction, ModelDescription};

    fn model(axes: [Direction; 3], spacing: [f64; 3]) -> ModelDescription {
        let mut d: ModelDescription = serde_json::from_str(
            r#"{"format": "twinray-segmentation-model", "version": 1, "name": "t", "onnx": "t.onnx",
                "axes": ["S", "A", "R"], "spacing_mm": [3, 3, 3], "patch_size": [4, 4, 4],
                "normalization": {"scheme": "ct", "clip_low": -1000, "clip_high": 1000, "mean": 0, "std": 1},
                "classes": [{"channel": 0, "id": 0, "name": "bg"}, {"channel": 1, "id": 1, "name": "x"}]}"#,
        )
        .expect("valid");
        d.axes = axes;
        d.spacing_mm = spacing;
        d
    }

    #[test]
    fn an_lps_ct_at_model_spacing_is_a_flipped_transpose() {
        use Direction::{A, R, S};
        let g = Geometry::axis_aligned([4, 3, 2], [3.0; 3], [0.0; 3]).expect("grid");
        let ct = Volume::from_fn(g, |i, j, k| (i + 10 * j + 100 * k) as f32);
        let grid = ModelGrid::new(&g, &model([S, A, R], [3.0; 3]));
        assert!(grid.is_exact());
        assert_eq!(grid.shape(), [2, 3, 4]);
        let a = grid.sample(&ct);
        // Array [z][y][x]: z up (= k), y anterior (= -j), x right (= -i).
        assert_eq!(a[0], 0.0 + 10.0 * 2.0 + 3.0);
        assert_eq!(a[(3 + 2) * 4 + 3], 100.0, "z = 1, y = 2, x = 3");
        // Back onto the CT: the identity.
        let labels: Vec<u16> = a.iter().map(|&v| v as u16).collect();
        let back = grid.labels_onto_ct(&labels);
        assert!(back
            .voxels()
            .iter()
            .zip(ct.voxels())
            .all(|(&l, &v)| l as f32 == v));
        // The model grid's geometry places array voxels where the CT has them.
        let mg = grid.geometry().expect("geometry");
        let p = mg.patient_from_index(DVec3::new(3.0, 2.0, 1.0));
        assert!((p - g.patient_from_index(DVec3::new(0.0, 0.0, 1.0))).length() < 1e-9);
    }

    #[test]
    fn resampling_keeps_the_extent_and_interpolates_linearly() {
        use Direction::{A, R, S};
        // 1 mm CT along i, model at 2 mm: 8 voxels -> 4, centred.
        let g = Geometry::axis_aligned([8, 2, 2], [1.0, 2.0, 2.0], [0.0; 3]).expect("grid");
        let ct = Volume::from_fn(g, |i, _, _| i as f32 * 10.0);
        let grid = ModelGrid::new(&g, &model([S, A, R], [2.0; 3]));
        assert!(!grid.is_exact());
        assert_eq!(grid.shape(), [2, 2, 4]);
        let a = grid.sample(&ct);
        // R runs towards -i: array x = 0 is CT i = 3.5 + 1.5 * 2 = 6.5.
        assert_eq!(&a[..4], &[65.0, 45.0, 25.0, 5.0]);
        let labels: Vec<u16> = (0..16).map(|n| (n % 4) as u16).collect();
        let back = grid.labels_onto_ct(&labels);
        let row: Vec<u16> = (0..8).map(|i| *back.get(i, 0, 0).expect("in")).collect();
        assert_eq!(row, vec![3, 3, 2, 2, 1, 1, 0, 0]);
    }
}
