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

/// CT densities in Hounsfield units.
pub type CtVolume = Volume<f32>;

/// Label ids per voxel; 0 is "no label".
pub type LabelVolume = Volume<u16>;

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
    fn from_fn_orders_i_fastest() {
        let g = Geometry::axis_aligned([3, 2, 2], [1.0; 3], [0.0; 3]).expect("valid grid");
        let v = Volume::from_fn(g, |i, j, k| (i + 10 * j + 100 * k) as u16);
        assert_eq!(&v.voxels()[..4], &[0, 1, 2, 10]);
        assert_eq!(v.get(2, 1, 1), Some(&112));
        assert_eq!(v.get(3, 0, 0), None);
    }
}
