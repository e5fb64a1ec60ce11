//! Needle trajectories on the embedded demo case (TotalSegmentator's example CT, 3 mm, with
//! its vertebra labels): the midline path through the L3–L4 interlaminar window meets no
//! vertebra, and a paramedian path aimed at the L3 lamina meets bone at the depth where the
//! label map says it enters L3.
//!
//! The expected depths do not come from `twinray_measure`'s sampling: the test intersects the
//! path with the box of every vertebra voxel (slab method, in voxel space) and takes the
//! nearest entry.

use std::sync::OnceLock;

use glam::DVec3;
use twinray_io::LabelNames;
use twinray_measure::{analyse_trajectory, is_bone_label, ContactBy, TrajectoryOptions};
use twinray_scene::Case;

/// TotalSegmentator's L3.
const L3: u16 = 29;

fn demo_case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| Case::demo().expect("embedded demo case"))
}

/// Where the segment `entry → target` (patient mm) first enters a voxel of a vertebra label
/// grown by `margin` voxels on every side: (depth in mm, that voxel's label), or `None`.
fn first_vertebra_voxel(
    case: &Case,
    entry: DVec3,
    target: DVec3,
    margin: f64,
) -> Option<(f64, u16)> {
    let labels = case.labels.as_ref().expect("labels");
    let g = labels.geometry();
    let names = LabelNames::totalsegmentator();
    let to_ijk = g.voxel_from_patient();
    let (p0, p1) = (
        to_ijk.transform_point3(entry),
        to_ijk.transform_point3(target),
    );
    let d = p1 - p0;
    let [nx, ny, _] = g.dims;
    let mut best: Option<(f64, u16)> = None;
    for (n, &id) in labels.voxels().iter().enumerate() {
        if id == 0
            || !names
                .get(id)
                .is_some_and(|name| name.starts_with("vertebrae"))
        {
            continue;
        }
        let c = DVec3::new(
            (n % nx) as f64,
            ((n / nx) % ny) as f64,
            (n / (nx * ny)) as f64,
        );
        let (mut t_in, mut t_out) = (0.0f64, 1.0f64);
        for a in 0..3 {
            let (lo, hi) = (c[a] - 0.5 - margin, c[a] + 0.5 + margin);
            if d[a].abs() < 1e-12 {
                if p0[a] < lo || p0[a] > hi {
                    t_in = f64::INFINITY;
                }
                continue;
            }
            let (t1, t2) = ((lo - p0[a]) / d[a], (hi - p0[a]) / d[a]);
            t_in = t_in.max(t1.min(t2));
            t_out = t_out.min(t1.max(t2));
        }
        if t_in <= t_out && best.is_none_or(|(t, _)| t_in < t) {
            best = Some((t_in, id));
        }
    }
    best.map(|(t, id)| (t * entry.distance(target), id))
}

#[test]
fn the_midline_path_through_the_l3_l4_interlaminar_window_meets_no_vertebra() {
    let case = demo_case();
    let labels = case.labels.as_ref().expect("labels");
    let names = LabelNames::totalsegmentator();
    // Patient LPS mm: on the skin of the back in the midline between the L3 and L4 spinous
    // processes, to the spinal canal, slightly caudal (the window's axis in this patient).
    let entry = DVec3::new(5.5, -44.0, 295.0);
    let target = DVec3::new(5.5, -119.0, 293.5);
    // The label map itself: no vertebra voxel on the path, nor within a voxel and a half of it
    // (each box grown by 0.75 voxel, 2.25 mm, on every side), so the window is real, not a
    // grazing miss.
    assert_eq!(first_vertebra_voxel(case, entry, target, 0.0), None);
    assert_eq!(first_vertebra_voxel(case, entry, target, 0.75), None);

    let t = analyse_trajectory(
        &case.ct,
        labels,
        &names,
        entry,
        target,
        &TrajectoryOptions::default(),
    )
    .expect("trajectory");
    let vertebrae: Vec<&str> = t
        .crossings
        .iter()
        .filter(|c| is_bone_label(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    assert!(vertebrae.is_empty(), "crossed {vertebrae:?}");
    assert_eq!(t.first_bone_contact, None);
    assert!((t.depth_mm - 75.015).abs() < 0.001, "depth {}", t.depth_mm);
    // Midline: no sideways tilt; 1.5 mm lower over 75 mm: 1.1° caudal.
    assert!(t.leftward_deg.abs() < 1e-9);
    assert!((t.cephalad_deg + (1.5f64 / 75.0).atan().to_degrees()).abs() < 1e-9);
    // The entry lies on the skin of the back, whose normal points posterior (+y).
    let skin = t.skin.expect("the path passes the skin");
    assert!(
        skin.depth_mm.abs() < 4.0,
        "skin {} mm from the entry",
        skin.depth_mm
    );
    let normal = skin.outward_normal.expect("a skin normal");
    assert!(normal.y > 0.9, "normal {normal}");
    assert!(t.angle_to_skin_normal_deg.expect("angle") < 25.0);
}

#[test]
fn a_paramedian_path_aimed_at_the_l3_lamina_meets_bone_where_the_labels_say() {
    let case = demo_case();
    let labels = case.labels.as_ref().expect("labels");
    let names = LabelNames::totalsegmentator();
    // Entry 1.5 cm to the right of the midline at the L3–L4 level; target on the right L3
    // lamina, about 13 mm higher and 5 mm nearer the midline.
    let entry = DVec3::new(-16.0, -44.0, 295.0);
    let target = DVec3::new(-11.0, -113.0, 308.0);
    let (expected_depth, first_label) =
        first_vertebra_voxel(case, entry, target, 0.0).expect("the path meets a vertebra");
    assert_eq!(first_label, L3, "the first vertebra on the path");

    let t = analyse_trajectory(
        &case.ct,
        labels,
        &names,
        entry,
        target,
        &TrajectoryOptions::default(),
    )
    .expect("trajectory");
    let contact = t.first_bone_contact.as_ref().expect("bone contact");
    assert_eq!(
        contact.by,
        ContactBy::Label {
            id: L3,
            name: "vertebrae_L3".into()
        }
    );
    // Bisection locates the voxel face to 1e-6 mm; the slab method is exact.
    assert!(
        (contact.depth_mm - expected_depth).abs() < 1e-3,
        "contact at {} mm, the label map says {expected_depth} mm",
        contact.depth_mm
    );
    let first = &t
        .crossings
        .iter()
        .find(|c| c.bone)
        .expect("a bone crossing");
    assert_eq!(first.name, "vertebrae_L3");
    assert!((first.entry_depth_mm - expected_depth).abs() < 1e-3);
    // Angles in patient axes: 13 mm up and 5 mm towards the midline (+x, the entry being on
    // the patient's right) over 69 mm of anteroposterior travel.
    assert!((t.cephalad_deg - (13.0f64 / 69.0).atan().to_degrees()).abs() < 1e-9);
    let medial = t.medial_deg.expect("a midline");
    assert!(
        (medial - (5.0f64 / 69.0).atan().to_degrees()).abs() < 1e-9,
        "medial {medial}"
    );
}
