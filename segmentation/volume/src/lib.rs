//! Voxel volumes with patient geometry: the types every twinray crate shares.
//!
//! A CT series, a NIfTI file and a segmentation all end up as a regular voxel grid plus the
//! transform that places it in the patient. This crate holds only that: no file formats, no GPU,
//! so that readers, the renderer and the lesson tools agree on one meaning of "voxel (i, j, k)".
//!
//! # Frames
//! - **voxel**: continuous indices; voxel `(i, j, k)` has its centre at integer coordinates and
//!   `i` runs fastest in memory.
//! - **patient**: DICOM's patient coordinate system, in millimetres, LPS+: `+x` towards the
//!   patient's left, `+y` towards posterior, `+z` towards superior (head). NIfTI readers convert
//!   from NIfTI's RAS+ when they load, so everything downstream sees LPS.

use glam::{DMat4, DVec3, DVec4};

/// Errors raised when a grid or its data are inconsistent.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VolumeError {
    /// A dimension is zero.
    #[error("volume dimensions {dims:?} contain a zero")]
    EmptyDimension {
        /// The offending dimensions.
        dims: [usize; 3],
    },
    /// The voxel buffer does not have `dims[0]·dims[1]·dims[2]` elements.
    #[error("volume of {dims:?} voxels needs {expected} values, got {actual}")]
    DataLength {
        /// Grid dimensions.
        dims: [usize; 3],
        /// Voxel count implied by `dims`.
        expected: usize,
        /// Values supplied.
        actual: usize,
    },
    /// The voxel-to-patient transform cannot be inverted (a zero spacing or collinear axes).
    #[error("the voxel-to-patient transform is singular (zero spacing or collinear axes)")]
    SingularTransform,
}

/// Where a voxel grid sits in the patient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Affine map from voxel indices to LPS patient millimetres.
    pub patient_from_voxel: DMat4,
}

impl Geometry {
    /// Builds a geometry, rejecting empty grids and singular transforms.
    pub fn new(dims: [usize; 3], patient_from_voxel: DMat4) -> Result<Self, VolumeError> {
        if dims.contains(&0) {
            return Err(VolumeError::EmptyDimension { dims });
        }
        let det = patient_from_voxel.determinant();
        if !det.is_finite() || det.abs() < 1e-12 {
            return Err(VolumeError::SingularTransform);
        }
        Ok(Self {
            dims,
            patient_from_voxel,
        })
    }

    /// An axis-aligned grid (voxel axes along patient x, y, z) with its first voxel at `origin_mm`.
    pub fn axis_aligned(
        dims: [usize; 3],
        spacing_mm: [f64; 3],
        origin_mm: [f64; 3],
    ) -> Result<Self, VolumeError> {
        let m = DMat4::from_cols(
            DVec4::new(spacing_mm[0], 0.0, 0.0, 0.0),
            DVec4::new(0.0, spacing_mm[1], 0.0, 0.0),
            DVec4::new(0.0, 0.0, spacing_mm[2], 0.0),
            DVec4::new(origin_mm[0], origin_mm[1], origin_mm[2], 1.0),
        );
        Self::new(dims, m)
    }

    /// Number of voxels.
    pub fn voxel_count(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    /// Distance in millimetres between neighbouring voxel centres along i, j and k.
    pub fn spacing_mm(&self) -> [f64; 3] {
        let m = self.patient_from_voxel;
        [
            m.x_axis.truncate().length(),
            m.y_axis.truncate().length(),
            m.z_axis.truncate().length(),
        ]
    }

    /// The inverse transform, from LPS millimetres to voxel indices.
    pub fn voxel_from_patient(&self) -> DMat4 {
        self.patient_from_voxel.inverse()
    }

    /// Patient position of a (continuous) voxel index.
    pub fn patient_from_index(&self, ijk: DVec3) -> DVec3 {
        self.patient_from_voxel.transform_point3(ijk)
    }

    /// Centre of the grid in patient millimetres.
    pub fn centre_mm(&self) -> DVec3 {
        let d = self.dims.map(|n| (n as f64 - 1.0) * 0.5);
        self.patient_from_index(DVec3::new(d[0], d[1], d[2]))
    }

    /// The eight corners of the voxel-centre bounding box, in patient millimetres.
    pub fn corners_mm(&self) -> [DVec3; 8] {
        let hi = self.dims.map(|n| n as f64 - 1.0);
        std::array::from_fn(|c| {
            let pick = |bit: usize, axis: usize| if c & bit != 0 { hi[axis] } else { 0.0 };
            self.patient_from_index(DVec3::new(pick(1, 0), pick(2, 1), pick(4, 2)))
        })
    }

    /// Radius of the sphere around [`Self::centre_mm`] that holds every voxel centre.
    pub fn bounding_radius_mm(&self) -> f64 {
        let c = self.centre_mm();
        self.corners_mm()
            .iter()
            .map(|p| p.distance(c))
            .fold(0.0, f64::max)
    }

    /// True when both grids have the same dimensions and place voxels within `tolerance_mm` of
    /// each other (checked at the grid's corners).
    pub fn same_grid(&self, other: &Self, tolerance_mm: f64) -> bool {
        self.dims == other.dims
            && self
                .corners_mm()
                .iter()
                .zip(other.corners_mm().iter())
                .all(|(a, b)| a.distance(*b) <= tolerance_mm)
    }

    /// Linear index of voxel `(i, j, k)` (i fastest).
    pub fn linear_index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }
}

/// A scalar voxel grid with its geometry. `T` is the stored sample type.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T> {
    geometry: Geometry,
    voxels: Vec<T>,
}

impl<T> Volume<T> {
    /// Wraps voxels (i fastest) on a grid, checking that their number matches the grid.
    pub fn new(geometry: Geometry, voxels: Vec<T>) -> Result<Self, VolumeError> {
        let expected = geometry.voxel_count();
        if voxels.len() != expected {
            return Err(VolumeError::DataLength {
                dims: geometry.dims,
                expected,
                actual: voxels.len(),
            });
        }
        Ok(Self { geometry, voxels })
    }

    /// Builds a volume by evaluating `f(i, j, k)` at every voxel.
    pub fn from_fn(geometry: Geometry, mut f: impl FnMut(usize, usize, usize) -> T) -> Self {
        let [nx, ny, nz] = geometry.dims;
        let mut voxels = Vec::with_capacity(geometry.voxel_count());
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    voxels.push(f(i, j, k));
                }
            }
        }
        Self { geometry, voxels }
    }

    /// The grid and its placement in the patient.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Voxel values, i fastest, then j, then k.
    pub fn voxels(&self) -> &[T] {
        &self.voxels
    }

    /// Mutable voxel values (the grid cannot change).
    pub fn voxels_mut(&mut self) -> &mut [T] {
        &mut self.voxels
    }

    /// The value at voxel `(i, j, k)`, or `None` outside the grid.
    pub fn get(&self, i: usize, j: usize, k: usize) -> Option<&T> {
        let [nx, ny, nz] = self.geometry.dims;
        (i < nx && j < ny && k < nz).then(|| &self.voxels[self.geometry.linear_index(i, j, k)])
    }
}

impl<T: Copy> Volume<T> {
    /// The same voxels stored in the index order of `target`, when both grids hold the same
    /// points in the patient and differ only in axis order or direction (a label map saved LAS
    /// for a CT read LPS, say). `None` when the grids do not coincide within `tolerance_mm`:
    /// then the data would need interpolation, not reordering.
    pub fn reindexed_onto(&self, target: &Geometry, tolerance_mm: f64) -> Option<Self> {
        if self.geometry.voxel_count() != target.voxel_count() {
            return None;
        }
        let source_from_target = self.geometry.voxel_from_patient() * target.patient_from_voxel;
        // The map is affine: check that it sends the target's corners to integer source indices
        // inside the grid; then every voxel lands on one.
        let spacing = self.geometry.spacing_mm();
        let max_spacing = spacing.iter().copied().fold(0.0, f64::max);
        let tolerance_vox = tolerance_mm / max_spacing.max(1e-9);
        let inside = |p: DVec3| {
            (0..3).all(|a| {
                let v = p[a];
                (v - v.round()).abs() <= tolerance_vox
                    && v.round() >= 0.0
                    && v.round() < self.geometry.dims[a] as f64
            })
        };
        let hi = target.dims.map(|n| n as f64 - 1.0);
        let corners_ok = (0..8).all(|c| {
            let pick = |bit: usize, axis: usize| if c & bit != 0 { hi[axis] } else { 0.0 };
            inside(source_from_target.transform_point3(DVec3::new(
                pick(1, 0),
                pick(2, 1),
                pick(4, 2),
            )))
        });
        // Each target axis must step exactly one source voxel along one source axis.
        let axes_ok = [
            source_from_target.x_axis,
            source_from_target.y_axis,
            source_from_target.z_axis,
        ]
        .iter()
        .all(|axis| {
            let a = axis.truncate().abs();
            let big = a.max_element();
            (big - 1.0).abs() <= tolerance_vox && a.element_sum() - big <= tolerance_vox
        });
        if !corners_ok || !axes_ok {
            return None;
        }
        let step = |axis: glam::DVec4| axis.truncate().round().as_ivec3();
        let (di, dj, dk) = (
            step(source_from_target.x_axis),
            step(source_from_target.y_axis),
            step(source_from_target.z_axis),
        );
        let origin = source_from_target.w_axis.truncate().round().as_ivec3();
        let [nx, ny, _] = self.geometry.dims;
        let voxels = Volume::from_fn(*target, |i, j, k| {
            let s = origin + di * i as i32 + dj * j as i32 + dk * k as i32;
            self.voxels[s.x as usize + nx * (s.y as usize + ny * s.z as usize)]
        })
        .voxels;
        Some(Self {
            geometry: *target,
            voxels,
        })
    }
}

/// A scalar image's voxels, as [`f32`]: Hounsfield units for a CT, the scanner's own units
/// for an MR (see [`Modality`]). The name is historical: MR images travel in the same type,
/// and what their numbers mean travels beside them as an [`Intensity`].
pub type CtVolume = Volume<f32>;

/// What an image's intensities measure. CT numbers are physical (Hounsfield units, air −1000,
/// water 0), so CT presets sit at fixed values; MR intensities are in arbitrary scanner units
/// that differ per scanner, sequence and patient, so anything placed on them (display window,
/// transfer function) must follow the image's own range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Computed tomography: values in Hounsfield units.
    Ct,
    /// Magnetic resonance: values in scanner units, no physical scale.
    Mr,
}

impl Modality {
    /// The modality a DICOM `Modality` (0008,0060) value names: `CT` (and X-ray angiography
    /// volumes, which are CT numbers too) is [`Modality::Ct`], `MR` is [`Modality::Mr`];
    /// anything else is `None` (the caller decides).
    #[must_use]
    pub fn from_dicom(value: &str) -> Option<Self> {
        match value.trim() {
            "CT" => Some(Self::Ct),
            "MR" => Some(Self::Mr),
            _ => None,
        }
    }

    /// 3D Slicer's rule for an image of unknown modality (its volume-rendering default,
    /// `SetRecommendedVolumeRenderingProperties`): a dynamic range under 1500 is MR-like, a
    /// wider one CT-like. A CT holds air (−1000) and bone, about 2000 apart or more.
    #[must_use]
    pub fn guess_from_range(min: f32, max: f32) -> Self {
        if max - min < 1500.0 {
            Self::Mr
        } else {
            Self::Ct
        }
    }

    /// The short name a scanner writes (`CT`, `MR`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ct => "CT",
            Self::Mr => "MR",
        }
    }

    /// The unit of the values, for messages: `HU` or `scanner units`.
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Self::Ct => "HU",
            Self::Mr => "scanner units",
        }
    }

    /// The value that stands for "no signal" where an image has no data (padding, outside the
    /// field of view, outside a resampled stack): air for CT, zero signal for MR.
    #[must_use]
    pub fn background(self) -> f32 {
        match self {
            Self::Ct => -1024.0,
            Self::Mr => 0.0,
        }
    }
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an image's display window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSource {
    /// The DICOM header's first WindowCenter/WindowWidth.
    Dicom,
    /// 3D Slicer's automatic window: the 0.1th to 99.9th percentile of the voxels.
    Percentiles,
}

/// What an image's numbers mean and where they lie: its modality, the range its voxels span
/// and the display window (the values shown from black to white, and the span that presets
/// placed on the image stretch over).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intensity {
    /// What the values measure.
    pub modality: Modality,
    /// Smallest and largest voxel value (finite values only).
    pub range: [f32; 2],
    /// Lowest and highest displayed value, `window[0] < window[1]`.
    pub window: [f32; 2],
    /// Where [`Self::window`] came from.
    pub window_source: WindowSource,
}

/// Percentile rule of 3D Slicer's automatic window/level: the 0.1th and 99.9th percentiles.
pub const AUTO_WINDOW_PERCENTILES: [f64; 2] = [0.1, 99.9];

/// Most voxels [`percentile`] sorts exactly; larger images are sampled evenly down to this many
/// (a 16-million-voxel sample moves a 0.1 % percentile by far less than a grey level).
pub const PERCENTILE_SAMPLE: usize = 1 << 24;

impl Intensity {
    /// Measures an image: its range, and its window from `dicom_window` (centre, width) when
    /// the file has a usable one, else from the voxels' 0.1–99.9th percentiles
    /// ([`AUTO_WINDOW_PERCENTILES`]). Non-finite voxels are ignored; an image without any
    /// finite voxel gets the range and window 0…1.
    #[must_use]
    pub fn measure(modality: Modality, voxels: &[f32], dicom_window: Option<[f64; 2]>) -> Self {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in voxels.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = (0.0, 1.0);
        }
        let from_dicom = dicom_window
            .filter(|[c, w]| c.is_finite() && w.is_finite() && *w >= 1.0)
            .map(|[c, w]| {
                // PS3.3 C.11.2.1.2.1 (LINEAR): the ramp runs from c − 0.5 − (w − 1)/2 to
                // c − 0.5 + (w − 1)/2.
                let half = (w - 1.0) / 2.0;
                [(c - 0.5 - half) as f32, (c - 0.5 + half) as f32]
            })
            .filter(|[a, b]| b > a);
        let (window, window_source) = match from_dicom {
            Some(w) => (w, WindowSource::Dicom),
            None => {
                let [p_lo, p_hi] = percentiles(voxels, AUTO_WINDOW_PERCENTILES);
                let (a, b) = (p_lo as f32, p_hi as f32);
                let w = if b > a {
                    [a, b]
                } else {
                    [lo, hi.max(lo + 1.0)]
                };
                (w, WindowSource::Percentiles)
            }
        };
        Self {
            modality,
            range: [lo, hi],
            window,
            window_source,
        }
    }
}

/// Percentiles (0–100) of the finite values, as `numpy.percentile`'s default ("linear")
/// method computes them: the value at fractional rank `p / 100 · (n − 1)` of the sorted
/// values, interpolated between its neighbours. Exact up to [`PERCENTILE_SAMPLE`] values;
/// beyond, computed on an even sample (a copy of at most that many values is the memory
/// bound). `NaN` for an empty input.
#[must_use]
pub fn percentiles<const N: usize>(values: &[f32], p: [f64; N]) -> [f64; N] {
    let stride = values.len().div_ceil(PERCENTILE_SAMPLE).max(1);
    let mut sample: Vec<f32> = values
        .iter()
        .step_by(stride)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if sample.is_empty() {
        return [f64::NAN; N];
    }
    let n = sample.len();
    p.map(|p| {
        let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
        let below = rank.floor() as usize;
        let frac = rank - below as f64;
        let (_, &mut a, rest) = sample.select_nth_unstable_by(below, f32::total_cmp);
        let a = f64::from(a);
        if frac == 0.0 || rest.is_empty() {
            return a;
        }
        // The next value up is the smallest of the part above `below`.
        let b = f64::from(rest.iter().copied().fold(f32::INFINITY, f32::min));
        a + (b - a) * frac
    })
}

/// Label ids per voxel; 0 is "no label".
pub type LabelVolume = Volume<u16>;

impl Volume<u16> {
    /// The label at a patient point (LPS mm), or the nearest labelled voxel within
    /// `radius_voxels` voxels of it: a point picked or drawn on a surface lies at the
    /// structure's edge, often in the voxel just outside it. `None` when nothing labelled is
    /// that near (or the point is outside the volume by more than the radius).
    #[must_use]
    pub fn label_near(&self, point_mm: DVec3, radius_voxels: i32) -> Option<u16> {
        let g = self.geometry();
        let v = g.voxel_from_patient().transform_point3(point_mm);
        if !v.is_finite() {
            return None;
        }
        let centre = [v.x.round(), v.y.round(), v.z.round()];
        let mut best: Option<(f64, u16)> = None;
        for dk in -radius_voxels..=radius_voxels {
            for dj in -radius_voxels..=radius_voxels {
                for di in -radius_voxels..=radius_voxels {
                    let ijk = [
                        centre[0] + f64::from(di),
                        centre[1] + f64::from(dj),
                        centre[2] + f64::from(dk),
                    ];
                    if ijk
                        .iter()
                        .zip(g.dims)
                        .any(|(&c, n)| c < 0.0 || c >= n as f64)
                    {
                        continue;
                    }
                    let Some(&id) = self.get(ijk[0] as usize, ijk[1] as usize, ijk[2] as usize)
                    else {
                        continue;
                    };
                    if id == 0 {
                        continue;
                    }
                    let d = (DVec3::from(ijk) - v).length_squared();
                    if best.is_none_or(|(bd, _)| d < bd) {
                        best = Some((d, id));
                    }
                }
            }
        }
        best.map(|(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_and_centre_follow_the_affine() {
        let g = Geometry::axis_aligned([10, 20, 30], [0.5, 1.0, 3.0], [-10.0, 0.0, 100.0])
            .expect("valid grid");
        assert_eq!(g.spacing_mm(), [0.5, 1.0, 3.0]);
        let c = g.centre_mm();
        assert!((c - DVec3::new(-10.0 + 4.5 * 0.5, 9.5, 100.0 + 14.5 * 3.0)).length() < 1e-9);
        let back = g.voxel_from_patient().transform_point3(c);
        assert!((back - DVec3::new(4.5, 9.5, 14.5)).length() < 1e-9);
    }

    #[test]
    fn rejects_inconsistent_volumes() {
        assert_eq!(
            Geometry::axis_aligned([0, 1, 1], [1.0; 3], [0.0; 3]),
            Err(VolumeError::EmptyDimension { dims: [0, 1, 1] })
        );
        assert_eq!(
            Geometry::axis_aligned([1, 1, 1], [1.0, 0.0, 1.0], [0.0; 3]),
            Err(VolumeError::SingularTransform)
        );
        let g = Geometry::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]).expect("valid grid");
        assert!(matches!(
            Volume::new(g, vec![0u16; 7]),
            Err(VolumeError::DataLength {
                expected: 8,
                actual: 7,
                ..
            })
        ));
    }

    #[test]
    fn reindexing_follows_flipped_axes_and_refuses_other_grids() {
        // 4 x 3 x 2 grid, and the same points stored with j reversed (as LAS vs LPS files do).
        let g = Geometry::axis_aligned([4, 3, 2], [1.0, 2.0, 3.0], [0.0; 3]).expect("grid");
        let v = Volume::from_fn(g, |i, j, k| (i + 10 * j + 100 * k) as u16);
        let flipped = Geometry::new(
            [4, 3, 2],
            DMat4::from_cols(
                DVec4::new(1.0, 0.0, 0.0, 0.0),
                DVec4::new(0.0, -2.0, 0.0, 0.0),
                DVec4::new(0.0, 0.0, 3.0, 0.0),
                DVec4::new(0.0, 4.0, 0.0, 1.0),
            ),
        )
        .expect("grid");
        let r = v.reindexed_onto(&flipped, 0.01).expect("same points");
        assert_eq!(r.get(1, 0, 1), Some(&121), "target j = 0 is source j = 2");
        assert_eq!(r.get(3, 2, 0), Some(&3));
        let shifted =
            Geometry::axis_aligned([4, 3, 2], [1.0, 2.0, 3.0], [0.5, 0.0, 0.0]).expect("grid");
        assert!(
            v.reindexed_onto(&shifted, 0.01).is_none(),
            "half-voxel shift"
        );
        let finer = Geometry::axis_aligned([4, 3, 2], [1.0, 1.0, 3.0], [0.0; 3]).expect("grid");
        assert!(v.reindexed_onto(&finer, 0.01).is_none(), "other spacing");
    }

    #[test]
    fn percentiles_interpolate_as_numpy_does() {
        // numpy.percentile([4, 1, 3, 2, 10], [0, 10, 50, 99.9, 100]) = 1, 1.4, 3, 9.976, 10.
        let p = percentiles(&[4.0, 1.0, 3.0, 2.0, 10.0], [0.0, 10.0, 50.0, 99.9, 100.0]);
        for (got, want) in p.iter().zip([1.0, 1.4, 3.0, 9.976, 10.0]) {
            assert!((got - want).abs() < 1e-9, "{p:?}");
        }
        assert!(percentiles(&[f32::NAN], [50.0])[0].is_nan());
    }

    #[test]
    fn window_comes_from_dicom_else_percentiles() {
        let voxels: Vec<f32> = (0..=1000).map(|v| v as f32).collect();
        let auto = Intensity::measure(Modality::Mr, &voxels, None);
        assert_eq!(auto.range, [0.0, 1000.0]);
        assert_eq!(auto.window_source, WindowSource::Percentiles);
        assert!((auto.window[0] - 1.0).abs() < 1e-4 && (auto.window[1] - 999.0).abs() < 1e-4);
        let dicom = Intensity::measure(Modality::Ct, &voxels, Some([40.0, 401.0]));
        assert_eq!(dicom.window, [-160.5, 239.5]);
        assert_eq!(dicom.window_source, WindowSource::Dicom);
        let zero_width = Intensity::measure(Modality::Ct, &voxels, Some([40.0, 0.0]));
        assert_eq!(zero_width.window_source, WindowSource::Percentiles);
        assert_eq!(Modality::guess_from_range(-47.0, 833.0), Modality::Mr);
        assert_eq!(Modality::guess_from_range(-1024.0, 1839.0), Modality::Ct);
    }

    #[test]
    fn from_fn_orders_i_fastest() {
        let g = Geometry::axis_aligned([3, 2, 2], [1.0; 3], [0.0; 3]).expect("valid grid");
        let v = Volume::from_fn(g, |i, j, k| (i + 10 * j + 100 * k) as u16);
        assert_eq!(&v.voxels()[..4], &[0, 1, 2, 10]);
        assert_eq!(v.get(2, 1, 1), Some(&112));
        assert_eq!(v.get(3, 0, 0), None);
    }
}
