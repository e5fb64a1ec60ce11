//! Measurements between points: distance, angle, the Cobb angle of two endplate lines, and the
//! centroid of a label (a landmark to measure from).
//!
//! Points are patient millimetres (LPS). On an X-ray board the same functions take board
//! points, with the board's own axes as the [`CobbReference`].

use glam::DVec3;
use twinray_volume::LabelVolume;

use crate::MeasureError;

/// Distance between two points in millimetres.
#[must_use]
pub fn distance_mm(a: DVec3, b: DVec3) -> f64 {
    a.distance(b)
}

/// The angle at `vertex` between the rays to `a` and to `b`, in degrees (0…180).
///
/// # Errors
/// When `a` or `b` coincides with the vertex (the angle is undefined).
pub fn angle_deg(a: DVec3, vertex: DVec3, b: DVec3) -> Result<f64, MeasureError> {
    let (u, v) = (a - vertex, b - vertex);
    if u.length() < 1e-9 || v.length() < 1e-9 {
        return Err(MeasureError::Degenerate(
            "angle: an arm's point coincides with the vertex".into(),
        ));
    }
    Ok(angle_between_deg(u, v))
}

/// The angle between two non-zero vectors in degrees, accurate near 0° and 180° (atan2 of the
/// cross and dot products rather than acos).
fn angle_between_deg(u: DVec3, v: DVec3) -> f64 {
    u.cross(v).length().atan2(u.dot(v)).to_degrees()
}

/// A line through two points (an endplate as clicked: either end first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// One end.
    pub start: DVec3,
    /// The other end.
    pub end: DVec3,
}

impl Line {
    /// The line from `start` to `end`.
    #[must_use]
    pub fn new(start: DVec3, end: DVec3) -> Self {
        Self { start, end }
    }
}

/// The directions a Cobb angle is measured against.
///
/// Each endplate line is turned to point along `lateral` (its side-to-side direction; patient
/// left, `+x`, on the twin), so its tilt lies within ±90° of the lateral axis, as when a Cobb
/// angle is measured on a radiograph; the Cobb angle is then the angle between the two oriented
/// lines, 0…180°. That is what makes it independent of click order (either end of a line first,
/// either line first) and correct above 90°: an upper end vertebra tilted +55° and a lower one
/// tilted −55° give 110°, where the angle between unoriented lines would say 70°.
/// With `view_normal`, both lines are first projected onto the plane it is normal to (the
/// coronal plane for the usual Cobb angle, as an AP radiograph shows it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CobbReference {
    /// The side-to-side direction endplates are oriented along.
    pub lateral: DVec3,
    /// Normal of the plane to measure in (`None`: the angle between the lines in space).
    pub view_normal: Option<DVec3>,
}

impl CobbReference {
    /// On the twin as on an AP radiograph: lateral = patient left (+x), measured in the coronal
    /// plane (normal +y, posterior).
    pub const CORONAL: Self = Self {
        lateral: DVec3::X,
        view_normal: Some(DVec3::Y),
    };

    /// On the twin, in space: lateral = patient left (+x), no projection.
    pub const SPATIAL: Self = Self {
        lateral: DVec3::X,
        view_normal: None,
    };
}

/// The Cobb angle between two endplate lines in degrees (0…180); see [`CobbReference`].
///
/// # Errors
/// When a line has (after projection) no length, or is perpendicular to the lateral direction
/// (a vertical endplate: its side-to-side orientation, and so the angle, is ambiguous).
pub fn cobb_angle_deg(a: Line, b: Line, reference: &CobbReference) -> Result<f64, MeasureError> {
    let lateral = reference.lateral.normalize_or_zero();
    if lateral == DVec3::ZERO {
        return Err(MeasureError::Degenerate(
            "Cobb angle: the lateral direction is zero".into(),
        ));
    }
    let normal = reference.view_normal.map(DVec3::normalize_or_zero);
    let oriented = |line: Line, which: &str| -> Result<DVec3, MeasureError> {
        let mut d = line.end - line.start;
        let length = d.length();
        if let Some(n) = normal {
            d -= n * d.dot(n);
        }
        if length < 1e-9 || d.length() < 1e-9 * length.max(1.0) {
            return Err(MeasureError::Degenerate(format!(
                "Cobb angle: the {which} line has no length in the measuring plane"
            )));
        }
        let side = d.dot(lateral);
        if side.abs() < 1e-9 * d.length() {
            return Err(MeasureError::Degenerate(format!(
                "Cobb angle: the {which} line is perpendicular to the lateral direction"
            )));
        }
        Ok(if side < 0.0 { -d } else { d })
    };
    let (u, v) = (oriented(a, "first")?, oriented(b, "second")?);
    Ok(angle_between_deg(u, v))
}

/// The centroid of a label's voxel centres in patient mm, or `None` when it has no voxel.
#[must_use]
pub fn label_centroid_mm(labels: &LabelVolume, id: u16) -> Option<DVec3> {
    let [nx, ny, _] = labels.geometry().dims;
    let mut sum = DVec3::ZERO;
    let mut count = 0u64;
    for (n, &v) in labels.voxels().iter().enumerate() {
        if v == id {
            sum += DVec3::new(
                (n % nx) as f64,
                ((n / nx) % ny) as f64,
                (n / (nx * ny)) as f64,
            );
            count += 1;
        }
    }
    (count > 0).then(|| labels.geometry().patient_from_index(sum / count as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_of_known_triangles() {
        let o = DVec3::ZERO;
        assert!((angle_deg(DVec3::X, o, DVec3::Y).expect("angle") - 90.0).abs() < 1e-12);
        let a = angle_deg(DVec3::new(1.0, 1e-9, 0.0), o, DVec3::X).expect("angle");
        assert!(a > 0.0 && a < 1e-6, "tiny angles stay accurate: {a}");
        let s = angle_deg(DVec3::X, o, -DVec3::X).expect("straight");
        assert!((s - 180.0).abs() < 1e-12);
        assert!(angle_deg(o, o, DVec3::X).is_err());
    }

    #[test]
    fn cobb_refuses_degenerate_lines() {
        let r = CobbReference::CORONAL;
        let flat = Line::new(DVec3::ZERO, DVec3::X);
        let vertical = Line::new(DVec3::ZERO, DVec3::Z);
        let along_view = Line::new(DVec3::ZERO, DVec3::Y);
        assert!(cobb_angle_deg(flat, vertical, &r).is_err());
        assert!(cobb_angle_deg(along_view, flat, &r).is_err());
        assert!((cobb_angle_deg(flat, flat, &r).expect("zero")).abs() < 1e-12);
    }
}
