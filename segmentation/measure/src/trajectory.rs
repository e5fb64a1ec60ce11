//! Needle trajectories: from an entry point on the skin to a target, what the needle passes.
//!
//! [`analyse_trajectory`] walks the straight path in patient space, sampling the volumes
//! through `patient_from_voxel` every `step` millimetres (a quarter of the smallest voxel
//! spacing by default). Labels are read nearest-neighbour (the label of the voxel a point lies
//! in); HU trilinearly between voxel centres. Where the label changes between two samples, the
//! boundary is found by bisection to 10⁻⁶ mm, so entry and exit depths do not depend on the
//! step. A structure the path clips for less than one step (a voxel corner) can be missed.
//!
//! # Definitions
//! - **depth**: distance along the path from the entry point, mm.
//! - **skin**: where the path first passes from air into the body (trilinear HU rising through
//!   [`TrajectoryOptions::body_hu`], −500 HU by default), searched from 20 mm before the entry
//!   (so an entry clicked slightly inside or outside the skin is found) to the target. Its
//!   depth is negative when the skin lies before the entry point.
//! - **skin normal**: the outward normal of the body/air boundary at the skin point: the
//!   direction from the centroid of the body voxels (HU ≥ `body_hu`) within
//!   [`TrajectoryOptions::normal_radius_mm`] (10 mm) of the skin point to the skin point. This
//!   is the gradient of the body mask averaged over the ball (by the divergence theorem), which
//!   points straight out of a locally flat skin and ignores single noisy voxels. The angle to
//!   the skin normal is the angle between the needle and the inward normal: 0° is a needle
//!   perpendicular to the skin.
//! - **cephalad angle**: the needle's direction projected onto the sagittal plane (patient
//!   y–z), measured from the anteroposterior axis; positive towards the head (cephalad),
//!   negative towards the feet (caudal) — as on a lateral fluoroscopy view.
//! - **medial angle**: the direction projected onto the axial plane (patient x–y), measured
//!   from the anteroposterior axis; positive towards the patient's midline (medial), negative
//!   away from it (lateral) — as on an axial CT slice. The midline is the mean patient x of the
//!   body voxels (HU ≥ `body_hu`) in the entry's axial slice. From an entry within 2 mm of the
//!   midline, any sideways tilt counts as lateral. [`Trajectory::leftward_deg`] gives the same
//!   angle signed by patient side (positive towards the patient's left).
//!   Both angles suit posterior and anterior approaches (spine, abdomen); for a path running
//!   mostly left–right or head–feet they approach ±90°.
//! - **bone**: a voxel whose label name is a bone's ([`is_bone_label`]: any `vertebrae…`,
//!   `sacrum`, `rib_…`, `sternum`, `skull`, `hip_…`, `femur_…`, `humerus_…`, `scapula_…`,
//!   `clavicula_…`), or a voxel carrying no label whose CT value is at or above
//!   [`TrajectoryOptions::bone_hu`] (400 HU by default, above contrast-filled vessels), for
//!   bone the label map leaves out. Both are decided per voxel, like the labels (a trilinear
//!   HU would leak a labelled structure's values into the unlabelled voxels around it), so
//!   labelled soft tissue never counts by HU: a calcified aorta is not bone. The first bone
//!   contact is the earliest of the two, and says which it was.

use glam::DVec3;
use twinray_io::LabelNames;
use twinray_volume::{CtVolume, Geometry, LabelVolume};

use crate::stats::label_name;
use crate::{check_same_grid, index_inside, MeasureError};

/// How far before the entry point the skin is searched for, mm.
const SKIN_SEARCH_BEFORE_MM: f64 = 20.0;
/// An entry this close to the midline (mm) is on it: any sideways tilt is lateral.
const MIDLINE_TOLERANCE_MM: f64 = 2.0;
/// Bisection stops when the bracket is this short, mm.
const BOUNDARY_TOLERANCE_MM: f64 = 1e-6;
/// At most this many samples along a path (a smaller step is widened to it).
const MAX_SAMPLES: f64 = 1e6;

/// Settings of [`analyse_trajectory`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrajectoryOptions {
    /// Sample step along the path in mm; `None` (or a step that is not positive): a quarter
    /// of the smallest voxel spacing. At most 10⁶ samples are taken along a path.
    pub step_mm: Option<f64>,
    /// CT value (HU) at or above which an unlabelled voxel counts as bone.
    pub bone_hu: f64,
    /// HU at or above which a point belongs to the body (the body/air boundary is the skin).
    pub body_hu: f64,
    /// Radius of the ball the skin normal is estimated over, mm.
    pub normal_radius_mm: f64,
}

impl Default for TrajectoryOptions {
    fn default() -> Self {
        Self {
            step_mm: None,
            bone_hu: 400.0,
            body_hu: -500.0,
            normal_radius_mm: 10.0,
        }
    }
}

/// A labelled structure the path passes through.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// Label id.
    pub id: u16,
    /// Its name (`label N` when the names have none).
    pub name: String,
    /// Whether the label is a bone ([`is_bone_label`]).
    pub bone: bool,
    /// Depth where the path enters it, mm (0 when the entry point lies inside).
    pub entry_depth_mm: f64,
    /// Depth where it leaves it, mm (the path's depth when the target lies inside).
    pub exit_depth_mm: f64,
}

/// What made the first bone contact.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactBy {
    /// Entering a bone label.
    Label {
        /// Label id.
        id: u16,
        /// Its name.
        name: String,
    },
    /// An unlabelled voxel at or above the bone threshold.
    Hu {
        /// The threshold, HU.
        threshold_hu: f64,
    },
}

/// The first point where the needle meets bone.
#[derive(Debug, Clone, PartialEq)]
pub struct BoneContact {
    /// Depth, mm.
    pub depth_mm: f64,
    /// The point, patient mm.
    pub point_mm: DVec3,
    /// Why it counts as bone.
    pub by: ContactBy,
}

/// Where the path passes the skin, and the skin's orientation there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkinEstimate {
    /// Depth of the skin along the path (negative: before the entry point), mm.
    pub depth_mm: f64,
    /// The skin point, patient mm.
    pub point_mm: DVec3,
    /// Outward unit normal of the body/air boundary there (`None` when it cannot be estimated:
    /// no body voxel, or a symmetric neighbourhood).
    pub outward_normal: Option<DVec3>,
}

/// A needle path and what it meets.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// Entry point, patient mm.
    pub entry_mm: DVec3,
    /// Target point, patient mm.
    pub target_mm: DVec3,
    /// Distance from entry to target, mm.
    pub depth_mm: f64,
    /// Unit direction from entry to target (patient axes).
    pub direction: DVec3,
    /// The sample step used, mm.
    pub step_mm: f64,
    /// The skin along the path, if the path passes from air into the body.
    pub skin: Option<SkinEstimate>,
    /// Angle between the needle and the inward skin normal, degrees (0 = perpendicular).
    pub angle_to_skin_normal_deg: Option<f64>,
    /// Cephalad (+) / caudal (−) angle, degrees (see the module documentation).
    pub cephalad_deg: f64,
    /// Sideways angle signed by patient side: towards the patient's left (+) or right (−).
    pub leftward_deg: f64,
    /// Medial (+) / lateral (−) angle, degrees; `None` when no midline was found.
    pub medial_deg: Option<f64>,
    /// Patient x of the midline used for the medial angle, mm.
    pub midline_x_mm: Option<f64>,
    /// The labelled structures crossed, in order along the path.
    pub crossings: Vec<Crossing>,
    /// The first bone contact, if any.
    pub first_bone_contact: Option<BoneContact>,
}

/// Whether a label name is a bone's (TotalSegmentator's bone classes, and the single
/// `vertebrae` class of its MR task).
#[must_use]
pub fn is_bone_label(name: &str) -> bool {
    name.starts_with("vertebrae")
        || name.starts_with("rib_")
        || name.starts_with("hip_")
        || name.starts_with("femur_")
        || name.starts_with("humerus_")
        || name.starts_with("scapula_")
        || name.starts_with("clavicula_")
        || matches!(name, "sacrum" | "sternum" | "skull")
}

/// The volumes read along a straight path in voxel space.
struct Path<'a> {
    ct: &'a CtVolume,
    labels: &'a LabelVolume,
    /// Voxel index of the entry point.
    entry_ijk: DVec3,
    /// Voxel-index change per mm of depth.
    ijk_per_mm: DVec3,
}

impl Path<'_> {
    fn ijk(&self, depth_mm: f64) -> DVec3 {
        self.entry_ijk + self.ijk_per_mm * depth_mm
    }

    fn label(&self, depth_mm: f64) -> u16 {
        label_at(self.labels, self.ijk(depth_mm))
    }

    fn hu(&self, depth_mm: f64) -> f64 {
        hu_at(self.ct, self.ijk(depth_mm))
    }

    /// The CT value of the voxel the point lies in (no interpolation).
    fn voxel_hu(&self, depth_mm: f64) -> f64 {
        let g = self.ct.geometry();
        f64::from(self.ct.voxels()[voxel_of(g, self.ijk(depth_mm))])
    }

    fn inside(&self, depth_mm: f64) -> bool {
        let p = self.ijk(depth_mm);
        let dims = self.ct.geometry().dims;
        (0..3).all(|a| p[a] >= -0.5 && p[a] <= dims[a] as f64 - 0.5)
    }
}

/// The linear index of the voxel holding continuous index `ijk` (clamped onto the grid).
fn voxel_of(geometry: &Geometry, ijk: DVec3) -> usize {
    let dims = geometry.dims;
    let [i, j, k] = [0, 1, 2].map(|a| ijk[a].round().clamp(0.0, dims[a] as f64 - 1.0) as usize);
    geometry.linear_index(i, j, k)
}

/// The label of the voxel holding continuous index `ijk` (clamped onto the grid).
fn label_at(labels: &LabelVolume, ijk: DVec3) -> u16 {
    labels.voxels()[voxel_of(labels.geometry(), ijk)]
}

/// Trilinear HU at continuous index `ijk` (clamped onto the voxel centres).
fn hu_at(ct: &CtVolume, ijk: DVec3) -> f64 {
    let g = ct.geometry();
    let v = ct.voxels();
    let mut base = [0usize; 3];
    let mut frac = [0.0f64; 3];
    for a in 0..3 {
        let hi = g.dims[a] as f64 - 1.0;
        let x = ijk[a].clamp(0.0, hi);
        let f = x.floor().min((hi - 1.0).max(0.0));
        base[a] = f as usize;
        frac[a] = x - f;
    }
    let at = |di: usize, dj: usize, dk: usize| {
        let i = (base[0] + di).min(g.dims[0] - 1);
        let j = (base[1] + dj).min(g.dims[1] - 1);
        let k = (base[2] + dk).min(g.dims[2] - 1);
        f64::from(v[g.linear_index(i, j, k)])
    };
    let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
    let [fx, fy, fz] = frac;
    let c00 = lerp(at(0, 0, 0), at(1, 0, 0), fx);
    let c10 = lerp(at(0, 1, 0), at(1, 1, 0), fx);
    let c01 = lerp(at(0, 0, 1), at(1, 0, 1), fx);
    let c11 = lerp(at(0, 1, 1), at(1, 1, 1), fx);
    lerp(lerp(c00, c10, fy), lerp(c01, c11, fy), fz)
}

/// The first depth in `(lo, hi]` where `holds` becomes true, given that it is false at `lo`
/// and true at `hi` (bisection to [`BOUNDARY_TOLERANCE_MM`]).
fn bisect(mut lo: f64, mut hi: f64, holds: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..64 {
        if hi - lo <= BOUNDARY_TOLERANCE_MM {
            break;
        }
        let mid = 0.5 * (lo + hi);
        if holds(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Analyses the straight path from `entry_mm` to `target_mm` (patient LPS mm): see the module
/// documentation for every definition.
///
/// # Errors
/// When the label map is not on the CT's grid, a point lies outside the volume, or the two
/// points coincide.
pub fn analyse_trajectory(
    ct: &CtVolume,
    labels: &LabelVolume,
    names: &LabelNames,
    entry_mm: DVec3,
    target_mm: DVec3,
    options: &TrajectoryOptions,
) -> Result<Trajectory, MeasureError> {
    let g = ct.geometry();
    check_same_grid(g, labels.geometry())?;
    let entry_ijk = index_inside(g, entry_mm, "entry")?;
    let target_ijk = index_inside(g, target_mm, "target")?;
    let depth_mm = entry_mm.distance(target_mm);
    if depth_mm < 1e-6 {
        return Err(MeasureError::Degenerate(
            "trajectory: the entry and target points coincide".into(),
        ));
    }
    let direction = (target_mm - entry_mm) / depth_mm;
    let smallest_spacing = g.spacing_mm().into_iter().fold(f64::INFINITY, f64::min);
    let step_mm = options
        .step_mm
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(smallest_spacing / 4.0)
        .clamp(depth_mm / MAX_SAMPLES, depth_mm);
    let path = Path {
        ct,
        labels,
        entry_ijk,
        ijk_per_mm: (target_ijk - entry_ijk) / depth_mm,
    };

    let crossings = crossings(&path, names, depth_mm, step_mm);
    let hu_contact = unlabelled_bone(&path, depth_mm, step_mm, options.bone_hu);
    let label_contact = crossings.iter().find(|c| c.bone).map(|c| BoneContact {
        depth_mm: c.entry_depth_mm,
        point_mm: entry_mm + direction * c.entry_depth_mm,
        by: ContactBy::Label {
            id: c.id,
            name: c.name.clone(),
        },
    });
    let first_bone_contact = match (label_contact, hu_contact) {
        (Some(l), Some(h)) => Some(if h < l.depth_mm {
            hu_bone_contact(h, entry_mm, direction, options.bone_hu)
        } else {
            l
        }),
        (Some(l), None) => Some(l),
        (None, Some(h)) => Some(hu_bone_contact(h, entry_mm, direction, options.bone_hu)),
        (None, None) => None,
    };

    let skin = skin_crossing(&path, depth_mm, step_mm, options.body_hu).map(|depth| {
        let point_mm = entry_mm + direction * depth;
        SkinEstimate {
            depth_mm: depth,
            point_mm,
            outward_normal: outward_normal(ct, point_mm, options),
        }
    });
    let angle_to_skin_normal_deg = skin
        .and_then(|s| s.outward_normal)
        .map(|n| (-n).dot(direction).clamp(-1.0, 1.0).acos().to_degrees());

    let ap = direction.y.abs();
    let cephalad_deg = direction.z.atan2(ap).to_degrees();
    let leftward_deg = direction.x.atan2(ap).to_degrees();
    let midline_x_mm = midline_x(ct, entry_mm, options.body_hu);
    let medial_deg = midline_x_mm.map(|mid| {
        let side = entry_mm.x - mid;
        if side.abs() <= MIDLINE_TOLERANCE_MM {
            // `0.0 - x` rather than `-x`: a straight path is 0°, not −0°.
            0.0 - leftward_deg.abs()
        } else if side > 0.0 {
            // Entry on the patient's left: the midline lies towards −x.
            0.0 - leftward_deg
        } else {
            leftward_deg
        }
    });

    Ok(Trajectory {
        entry_mm,
        target_mm,
        depth_mm,
        direction,
        step_mm,
        skin,
        angle_to_skin_normal_deg,
        cephalad_deg,
        leftward_deg,
        medial_deg,
        midline_x_mm,
        crossings,
        first_bone_contact,
    })
}

fn hu_bone_contact(
    depth_mm: f64,
    entry: DVec3,
    direction: DVec3,
    threshold_hu: f64,
) -> BoneContact {
    BoneContact {
        depth_mm,
        point_mm: entry + direction * depth_mm,
        by: ContactBy::Hu { threshold_hu },
    }
}

/// Depths of the samples of `[0, depth]`: evenly spaced, at most `step` apart, both ends
/// included.
fn sample_depths(depth_mm: f64, step_mm: f64) -> impl Iterator<Item = f64> {
    let n = (depth_mm / step_mm).ceil().max(1.0) as usize;
    (0..=n).map(move |i| depth_mm * i as f64 / n as f64)
}

/// The runs of constant label along the path, as crossings of the non-zero ones.
fn crossings(path: &Path<'_>, names: &LabelNames, depth_mm: f64, step_mm: f64) -> Vec<Crossing> {
    let mut out = Vec::new();
    let mut current = path.label(0.0);
    let mut run_start = 0.0;
    let mut previous = 0.0;
    let mut close = |id: u16, from: f64, to: f64| {
        if id != 0 {
            let name = label_name(names, id);
            out.push(Crossing {
                id,
                bone: is_bone_label(&name),
                name,
                entry_depth_mm: from,
                exit_depth_mm: to,
            });
        }
    };
    for s in sample_depths(depth_mm, step_mm).skip(1) {
        let next = path.label(s);
        // Between two samples the path may pass more than one boundary: follow them in turn.
        let mut lo = previous;
        let mut guard = 0;
        while next != current && guard < 16 {
            guard += 1;
            let label_now = current;
            let boundary = bisect(lo, s, |d| path.label(d) != label_now);
            close(current, run_start, boundary);
            current = path.label(boundary);
            run_start = boundary;
            lo = boundary;
        }
        previous = s;
    }
    close(current, run_start, depth_mm);
    out
}

/// The first depth in an unlabelled voxel whose CT value reaches `bone_hu`.
fn unlabelled_bone(path: &Path<'_>, depth_mm: f64, step_mm: f64, bone_hu: f64) -> Option<f64> {
    let is_bone = |d: f64| path.label(d) == 0 && path.voxel_hu(d) >= bone_hu;
    if is_bone(0.0) {
        return Some(0.0);
    }
    let mut previous = 0.0;
    for s in sample_depths(depth_mm, step_mm).skip(1) {
        if is_bone(s) {
            return Some(bisect(previous, s, is_bone));
        }
        previous = s;
    }
    None
}

/// The depth where the path first passes from air into the body, searched from up to
/// [`SKIN_SEARCH_BEFORE_MM`] before the entry; `None` when the search starts inside the body
/// or never reaches it.
fn skin_crossing(path: &Path<'_>, depth_mm: f64, step_mm: f64, body_hu: f64) -> Option<f64> {
    let mut start = 0.0;
    while start - step_mm >= -SKIN_SEARCH_BEFORE_MM && path.inside(start - step_mm) {
        start -= step_mm;
    }
    let in_body = |d: f64| path.hu(d) >= body_hu;
    if in_body(start) {
        return None;
    }
    let n = ((depth_mm - start) / step_mm).ceil().max(1.0) as usize;
    let mut previous = start;
    for i in 1..=n {
        let s = start + (depth_mm - start) * i as f64 / n as f64;
        if in_body(s) {
            return Some(bisect(previous, s, in_body));
        }
        previous = s;
    }
    None
}

/// The ball of voxels within `radius_mm` of `centre_mm`: calls `visit(i, j, k, patient mm)`.
fn for_voxels_near(
    geometry: &Geometry,
    centre_mm: DVec3,
    radius_mm: f64,
    mut visit: impl FnMut(usize, usize, usize, DVec3),
) {
    let to_ijk = geometry.voxel_from_patient();
    let centre = to_ijk.transform_point3(centre_mm);
    // Half-extent of the ball along each index axis: radius × the norm of that row of the
    // (linear part of the) inverse transform.
    let reach = [0, 1, 2].map(|a| {
        let row = DVec3::new(to_ijk.x_axis[a], to_ijk.y_axis[a], to_ijk.z_axis[a]);
        radius_mm * row.length()
    });
    let range = |a: usize| {
        let hi = geometry.dims[a] as f64 - 1.0;
        let lo = (centre[a] - reach[a]).ceil().clamp(0.0, hi) as usize;
        let up = (centre[a] + reach[a]).floor().clamp(0.0, hi) as usize;
        lo..=up
    };
    for k in range(2) {
        for j in range(1) {
            for i in range(0) {
                let p = geometry.patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
                if p.distance_squared(centre_mm) <= radius_mm * radius_mm {
                    visit(i, j, k, p);
                }
            }
        }
    }
}

/// The outward normal of the body/air boundary at `point_mm` (see the module documentation).
fn outward_normal(ct: &CtVolume, point_mm: DVec3, options: &TrajectoryOptions) -> Option<DVec3> {
    let g = ct.geometry();
    let mut sum = DVec3::ZERO;
    let mut count = 0u64;
    for_voxels_near(g, point_mm, options.normal_radius_mm, |i, j, k, p| {
        if f64::from(ct.voxels()[g.linear_index(i, j, k)]) >= options.body_hu {
            sum += p;
            count += 1;
        }
    });
    if count == 0 {
        return None;
    }
    let outward = point_mm - sum / count as f64;
    (outward.length() > 1e-6 * options.normal_radius_mm).then(|| outward.normalize())
}

/// Mean patient x of the body voxels in the axial slab (half a voxel of the largest spacing
/// either side) through `entry_mm`.
fn midline_x(ct: &CtVolume, entry_mm: DVec3, body_hu: f64) -> Option<f64> {
    let g = ct.geometry();
    let half = 0.5 * g.spacing_mm().into_iter().fold(0.0, f64::max) + 1e-6;
    let m = g.patient_from_voxel;
    let [nx, ny, nz] = g.dims;
    let (mut sum, mut count) = (0.0, 0u64);
    for k in 0..nz {
        for j in 0..ny {
            // z and x are affine in (i, j, k): step along i, skipping rows that miss the slab.
            let row = m.transform_point3(DVec3::new(0.0, j as f64, k as f64));
            let row_end_z = row.z + m.x_axis.z * (nx - 1) as f64;
            if (row.z - entry_mm.z).min(row_end_z - entry_mm.z) > half
                || (row.z - entry_mm.z).max(row_end_z - entry_mm.z) < -half
            {
                continue;
            }
            for i in 0..nx {
                let z = row.z + m.x_axis.z * i as f64;
                if (z - entry_mm.z).abs() > half {
                    continue;
                }
                if f64::from(ct.voxels()[g.linear_index(i, j, k)]) >= body_hu {
                    sum += row.x + m.x_axis.x * i as f64;
                    count += 1;
                }
            }
        }
    }
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinray_volume::{Geometry, Volume};

    #[test]
    fn bone_names() {
        for bone in [
            "vertebrae_L3",
            "vertebrae",
            "sacrum",
            "rib_left_5",
            "hip_right",
        ] {
            assert!(is_bone_label(bone), "{bone}");
        }
        for soft in [
            "intervertebral_discs",
            "aorta",
            "costal_cartilages",
            "spinal_cord",
        ] {
            assert!(!is_bone_label(soft), "{soft}");
        }
    }

    #[test]
    fn trilinear_hu_is_exact_on_linear_fields() {
        let g = Geometry::axis_aligned([4, 3, 5], [1.0; 3], [0.0; 3]).expect("grid");
        let ct = Volume::from_fn(g, |i, j, k| (2 * i + 3 * j + 5 * k) as f32);
        let p = DVec3::new(1.25, 0.5, 3.75);
        assert!((hu_at(&ct, p) - (2.5 + 1.5 + 18.75)).abs() < 1e-9);
        // Beyond the last centre the value is clamped, not extrapolated.
        assert!((hu_at(&ct, DVec3::new(3.4, 2.0, 4.0)) - (6.0 + 6.0 + 20.0)).abs() < 1e-9);
    }
}
