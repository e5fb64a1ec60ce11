//! Measurements on a case (a CT and its label map), for the studio's on-model measurements and
//! for `twinray measure` on the command line.
//!
//! - [`stats`]: per-label voxel count, volume (ml) and HU mean, sample SD, median, min and max,
//!   with 3D Slicer's Segment Statistics definitions.
//! - [`points`]: distance and angle of points, the Cobb angle of two endplate lines, and label
//!   centroids.
//! - [`markups`]: 3D Slicer markups files (`.mrk.json`): points, lines, angles and curves
//!   read (LPS or RAS) and written, with their lengths and angles.
//! - [`trajectory`]: a needle path from an entry to a target point: depth, angle to the skin
//!   normal, cephalad/caudal and medial/lateral angles, the labelled structures crossed in order
//!   with their entry and exit depths, and the first bone contact.
//!
//! Points are in patient LPS millimetres (`+x` left, `+y` posterior, `+z` head), as
//! `twinray_volume::Geometry::patient_from_voxel` places voxels. Nothing here needs a GPU or
//! prints: results and typed errors go back to the caller.

pub mod markups;
pub mod points;
pub mod stats;
pub mod trajectory;

use glam::DVec3;
use twinray_volume::Geometry;

pub use markups::{
    read_markups, write_markups, ControlPoint, Markup, MarkupKind, MarkupValue, MarkupsError,
};
pub use points::{angle_deg, cobb_angle_deg, distance_mm, label_centroid_mm, CobbReference, Line};
pub use stats::{label_stats, present_labels, resolve_label, voxel_volume_ml, HuStats, LabelStats};
pub use trajectory::{
    analyse_trajectory, is_bone_label, BoneContact, ContactBy, Crossing, SkinEstimate, Trajectory,
    TrajectoryOptions,
};

/// Why a measurement cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeasureError {
    /// The label map is not on the CT's grid.
    #[error(
        "the label map's grid ({label_dims:?} voxels) is not the CT's ({ct_dims:?} voxels), \
         or is placed differently in the patient"
    )]
    OtherGrid {
        /// The CT's dimensions.
        ct_dims: [usize; 3],
        /// The label map's dimensions.
        label_dims: [usize; 3],
    },
    /// A label name (or id) that the map's names do not hold.
    #[error("no label '{name}'; labels in this map: {}", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    UnknownLabel {
        /// What was asked for.
        name: String,
        /// The names (or `label N`) of the labels present in the map.
        available: Vec<String>,
    },
    /// A point lies outside the volume.
    #[error(
        "the {what} point ({:.1}, {:.1}, {:.1}) mm (LPS) is outside the volume, which spans \
         x {:.1}…{:.1}, y {:.1}…{:.1}, z {:.1}…{:.1} mm",
        point_mm[0], point_mm[1], point_mm[2],
        min_mm[0], max_mm[0], min_mm[1], max_mm[1], min_mm[2], max_mm[2]
    )]
    OutsideVolume {
        /// Which point ("entry", "target").
        what: &'static str,
        /// The point.
        point_mm: [f64; 3],
        /// Lower corner of the volume's bounding box (voxel edges), patient mm.
        min_mm: [f64; 3],
        /// Upper corner.
        max_mm: [f64; 3],
    },
    /// Points that do not define the measurement (coincident points, a zero-length line).
    #[error("{0}")]
    Degenerate(String),
}

/// Whether `ct` and `labels` share a grid (within 0.01 mm at the corners).
pub(crate) fn check_same_grid(ct: &Geometry, labels: &Geometry) -> Result<(), MeasureError> {
    if ct.same_grid(labels, 0.01) {
        Ok(())
    } else {
        Err(MeasureError::OtherGrid {
            ct_dims: ct.dims,
            label_dims: labels.dims,
        })
    }
}

/// The continuous voxel index of a patient point, or an [`MeasureError::OutsideVolume`] when it
/// lies outside the voxels' extent (centres ± half a voxel).
pub(crate) fn index_inside(
    geometry: &Geometry,
    point_mm: DVec3,
    what: &'static str,
) -> Result<DVec3, MeasureError> {
    let ijk = geometry.voxel_from_patient().transform_point3(point_mm);
    let inside = (0..3).all(|a| ijk[a] >= -0.5 && ijk[a] <= geometry.dims[a] as f64 - 0.5);
    if inside && point_mm.is_finite() {
        return Ok(ijk);
    }
    let mut min_mm = DVec3::splat(f64::INFINITY);
    let mut max_mm = DVec3::splat(f64::NEG_INFINITY);
    for c in 0..8 {
        let pick = |bit: usize, axis: usize| {
            if c & bit != 0 {
                geometry.dims[axis] as f64 - 0.5
            } else {
                -0.5
            }
        };
        let p = geometry.patient_from_index(DVec3::new(pick(1, 0), pick(2, 1), pick(4, 2)));
        min_mm = min_mm.min(p);
        max_mm = max_mm.max(p);
    }
    Err(MeasureError::OutsideVolume {
        what,
        point_mm: point_mm.to_array(),
        min_mm: min_mm.to_array(),
        max_mm: max_mm.to_array(),
    })
}
