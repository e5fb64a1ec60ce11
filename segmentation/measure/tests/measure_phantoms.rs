//! Phantoms with known answers: distances and angles between landmarks on an oblique,
//! anisotropic grid; Cobb angles of two tilted cuboid vertebrae (above 90° too, in any click
//! order); needle paths through a tilted skin, a labelled bone, unlabelled bone and a
//! calcified (labelled, soft-tissue) vessel.

use glam::{DMat3, DMat4, DVec3};
use twinray_io::LabelNames;
use twinray_measure::{
    analyse_trajectory, angle_deg, cobb_angle_deg, distance_mm, label_centroid_mm, CobbReference,
    ContactBy, Line, MeasureError, TrajectoryOptions,
};
use twinray_volume::{CtVolume, Geometry, LabelVolume, Volume};

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

// ---------------------------------------------------------------------------------------------
// Distance and angle

#[test]
fn distance_and_angle_of_exact_points() {
    let a = DVec3::new(3.0, 0.0, 0.0);
    let b = DVec3::new(0.0, 4.0, 0.0);
    close(distance_mm(a, b), 5.0, 1e-12, "3-4-5");
    // The triangle's angles: atan(4/3) at a, atan(3/4) at b, 90° at the origin.
    close(
        angle_deg(b, a, DVec3::ZERO).expect("angle"),
        (4.0f64 / 3.0).atan().to_degrees(),
        1e-9,
        "angle at a",
    );
    close(
        angle_deg(a, DVec3::ZERO, b).expect("angle"),
        90.0,
        1e-12,
        "right angle",
    );
    close(
        angle_deg(
            DVec3::new(1.0, 1.0, 0.0),
            DVec3::ZERO,
            DVec3::new(-1.0, 0.0, 0.0),
        )
        .expect("obtuse"),
        135.0,
        1e-9,
        "obtuse",
    );
}

/// A grid rotated 30° about z and 20° about x, 0.7 × 1.1 × 1.6 mm, whose voxel axes are
/// nowhere near the patient's, centred on `centre_mm`.
fn oblique_geometry(dims: [usize; 3], centre_mm: DVec3) -> Geometry {
    let rotation =
        DMat3::from_rotation_x(20f64.to_radians()) * DMat3::from_rotation_z(30f64.to_radians());
    let axes = rotation * DMat3::from_diagonal(DVec3::new(0.7, 1.1, 1.6));
    let half = DVec3::from_array(dims.map(|n| (n as f64 - 1.0) / 2.0));
    Geometry::new(
        dims,
        DMat4::from_cols(
            axes.x_axis.extend(0.0),
            axes.y_axis.extend(0.0),
            axes.z_axis.extend(0.0),
            (centre_mm - axes * half).extend(1.0),
        ),
    )
    .expect("grid")
}

#[test]
fn landmark_distances_and_angles_on_an_oblique_anisotropic_grid() {
    // Three balls (radius 6 mm) at known patient positions; their label centroids are the
    // landmarks.
    let centres = [
        DVec3::new(12.0, -30.0, 40.0),
        DVec3::new(-25.0, 10.0, 55.0),
        DVec3::new(20.0, 25.0, 20.0),
    ];
    let g = oblique_geometry([140, 100, 70], DVec3::new(0.0, 0.0, 40.0));
    let labels: LabelVolume = Volume::from_fn(g, |i, j, k| {
        let p = g.patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
        centres
            .iter()
            .position(|c| p.distance(*c) <= 6.0)
            .map_or(0, |n| n as u16 + 1)
    });
    let found: Vec<DVec3> = (1..=3)
        .map(|id| label_centroid_mm(&labels, id).expect("each ball has voxels"))
        .collect();
    // Observed: centroids within 0.03 mm, the distance within 0.02 mm and the angle within
    // 0.02° of the true values.
    for (f, c) in found.iter().zip(&centres) {
        // A ball of ~600 voxels: its voxelised centroid is within a few tenths of a mm.
        assert!(f.distance(*c) < 0.3, "centroid {f} vs {c}");
    }
    close(
        distance_mm(found[0], found[1]),
        centres[0].distance(centres[1]),
        0.1,
        "distance",
    );
    let expected = (centres[0] - centres[1])
        .angle_between(centres[2] - centres[1])
        .to_degrees();
    close(
        angle_deg(found[0], found[1], found[2]).expect("angle"),
        expected,
        0.1,
        "angle",
    );
    assert_eq!(label_centroid_mm(&labels, 9), None);
}

// ---------------------------------------------------------------------------------------------
// Cobb angle

/// Two cuboid "vertebrae" (50 mm wide, 24 mm tall, 4 mm deep) tilted in the coronal plane by
/// `upper_deg` and `lower_deg` (positive: the patient's left side up), centred 45 mm above and
/// below the origin, on a 0.25 mm grid. Labels 1 (upper) and 2 (lower).
fn tilted_vertebrae(upper_deg: f64, lower_deg: f64) -> LabelVolume {
    let g = Geometry::axis_aligned([320, 16, 640], [0.25; 3], [-40.0, -2.0, -80.0]).expect("grid");
    let centres = [
        (DVec3::new(0.0, 0.0, 45.0), upper_deg),
        (DVec3::new(0.0, 0.0, -45.0), lower_deg),
    ];
    Volume::from_fn(g, |i, j, k| {
        let p = g.patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
        for (n, (c, tilt)) in centres.iter().enumerate() {
            // Into the vertebra's own frame: rotate back by its tilt about the AP axis.
            let (s, co) = (-tilt.to_radians()).sin_cos();
            let d = p - *c;
            let (x, z) = (co * d.x - s * d.z, s * d.x + co * d.z);
            if x.abs() <= 25.0 && z.abs() <= 12.0 && d.y.abs() <= 2.0 {
                return n as u16 + 1;
            }
        }
        0
    })
}

/// An endplate as a user picks it on a coronal view: at 12 mm either side of the vertebra's
/// centre along the endplate, the first labelled voxel met coming from outside along the
/// endplate's normal (from above for the superior endplate, from below for the inferior one).
fn endplate(labels: &LabelVolume, id: u16, centre_z: f64, tilt_deg: f64, superior: bool) -> Line {
    let g = labels.geometry();
    let (s, c) = tilt_deg.to_radians().sin_cos();
    let along = DVec3::new(c, 0.0, s);
    let normal = DVec3::new(-s, 0.0, c) * if superior { 1.0 } else { -1.0 };
    let centre = DVec3::new(0.0, 0.0, centre_z);
    let to_ijk = g.voxel_from_patient();
    let pick = |u: f64| {
        let start = centre + along * u + normal * 20.0;
        (0..800)
            .map(|n| start - normal * (f64::from(n) * 0.02))
            .find(|p| {
                let v = to_ijk.transform_point3(*p).round();
                labels.get(v.x as usize, v.y as usize, v.z as usize) == Some(&id)
            })
            .expect("the endplate is met")
    };
    Line::new(pick(-12.0), pick(12.0))
}

#[test]
fn cobb_on_tilted_cuboids_below_and_above_90_degrees_in_any_click_order() {
    // (upper tilt, lower tilt): Cobb = their difference.
    for (upper, lower) in [(10.0, -15.0), (50.0, -55.0), (-35.0, 60.0), (8.0, 3.0)] {
        let labels = tilted_vertebrae(upper, lower);
        let a = endplate(&labels, 1, 45.0, upper, true);
        let b = endplate(&labels, 2, -45.0, lower, false);
        let expected: f64 = (upper - lower).abs();
        let cobb = cobb_angle_deg(a, b, &CobbReference::CORONAL).expect("cobb");
        // Each picked point lies on the voxelised surface, within a voxel's half-diagonal
        // (0.18 mm across the endplate) of the true one; over the 24 mm baseline each line is
        // within 0.85° of its endplate.
        close(cobb, expected, 1.7, &format!("tilts {upper}° and {lower}°"));
        // Click order: either end of either line first, either line first.
        let flip = |l: Line| Line::new(l.end, l.start);
        for (x, y) in [
            (flip(a), b),
            (a, flip(b)),
            (flip(a), flip(b)),
            (b, a),
            (flip(b), a),
            (b, flip(a)),
            (flip(b), flip(a)),
        ] {
            let again = cobb_angle_deg(x, y, &CobbReference::CORONAL).expect("cobb");
            close(again, cobb, 1e-9, "click order");
        }
    }
}

#[test]
fn cobb_of_exact_lines_projects_onto_the_coronal_plane() {
    // Endplates tilted +60° and −62° in the coronal plane, each given an anteroposterior
    // component (the pen lands at different depths) that the coronal projection drops.
    let line = |tilt_deg: f64, ap_mm: f64| {
        let (s, c) = tilt_deg.to_radians().sin_cos();
        Line::new(
            DVec3::new(-20.0 * c, -ap_mm, -20.0 * s),
            DVec3::new(20.0 * c, ap_mm, 20.0 * s),
        )
    };
    let (a, b) = (line(60.0, 7.0), line(-62.0, -3.0));
    close(
        cobb_angle_deg(a, b, &CobbReference::CORONAL).expect("cobb"),
        122.0,
        1e-9,
        "coronal",
    );
    // Without projection the AP components count (122.9° here).
    let spatial = cobb_angle_deg(a, b, &CobbReference::SPATIAL).expect("cobb");
    assert!((spatial - 122.0).abs() > 0.5, "{spatial}");
    // Unoriented lines would give 180° − 122° = 58°: the orientation is what makes > 90° work.
    let flipped = Line::new(b.end, b.start);
    close(
        cobb_angle_deg(a, flipped, &CobbReference::CORONAL).expect("cobb"),
        122.0,
        1e-9,
        "flipped",
    );
}

// ---------------------------------------------------------------------------------------------
// Needle trajectories

/// A 100 mm cube, 1 mm voxels, centred on the origin (voxel centres at −50 … 49 mm, LPS):
/// - body (40 HU) below a skin plane through (0, 20, 0) with outward normal (0, 1, 0.3)
///   (posterior and tilted towards the head), air (−1000 HU) beyond it;
/// - `vertebrae_L3` (29) on x −10…10, y −20…0, z −10…10 mm (voxel centres), 300 HU;
/// - unlabelled bone (1000 HU) on x 20…30, y −20…0, z −10…10;
/// - a calcified `aorta` (52, 1000 HU) on x −30…−20, y −30…−20, z −10…10.
fn phantom() -> (CtVolume, LabelVolume) {
    let g = Geometry::axis_aligned([100; 3], [1.0; 3], [-50.0; 3]).expect("grid");
    let normal = DVec3::new(0.0, 1.0, 0.3).normalize();
    let within =
        |p: DVec3, lo: [f64; 3], hi: [f64; 3]| (0..3).all(|a| p[a] >= lo[a] && p[a] <= hi[a]);
    let at = |i: usize, j: usize, k: usize| {
        g.patient_from_index(DVec3::new(i as f64, j as f64, k as f64))
    };
    let ct = Volume::from_fn(g, |i, j, k| {
        let p = at(i, j, k);
        if within(p, [20.0, -20.0, -10.0], [30.0, 0.0, 10.0])
            || within(p, [-30.0, -30.0, -10.0], [-20.0, -20.0, 10.0])
        {
            1000.0
        } else if within(p, [-10.0, -20.0, -10.0], [10.0, 0.0, 10.0]) {
            300.0
        } else if normal.dot(p - DVec3::new(0.0, 20.0, 0.0)) <= 0.0 {
            40.0
        } else {
            -1000.0
        }
    });
    let labels = Volume::from_fn(g, |i, j, k| {
        let p = at(i, j, k);
        if within(p, [-10.0, -20.0, -10.0], [10.0, 0.0, 10.0]) {
            29
        } else if within(p, [-30.0, -30.0, -10.0], [-20.0, -20.0, 10.0]) {
            52
        } else {
            0
        }
    });
    (ct, labels)
}

#[test]
fn a_path_into_a_labelled_vertebra_through_a_tilted_skin() {
    let (ct, labels) = phantom();
    let names = LabelNames::totalsegmentator();
    let entry = DVec3::new(0.0, 30.0, 0.0);
    let target = DVec3::new(0.0, -10.0, 0.0);
    let t = analyse_trajectory(
        &ct,
        &labels,
        &names,
        entry,
        target,
        &TrajectoryOptions::default(),
    )
    .expect("trajectory");
    close(t.depth_mm, 40.0, 1e-12, "depth");
    // The skin plane meets the path at y = 20 (10 mm deep), voxelised to within a voxel.
    let skin = t.skin.expect("skin");
    close(skin.depth_mm, 10.0, 1.0, "skin depth");
    let n = skin.outward_normal.expect("normal");
    let true_normal = DVec3::new(0.0, 1.0, 0.3).normalize();
    assert!(
        n.angle_between(true_normal).to_degrees() < 3.0,
        "normal {n} vs {true_normal}"
    );
    // The needle runs straight anterior; the skin is tilted atan(0.3) = 16.7° from the AP axis.
    close(
        t.angle_to_skin_normal_deg.expect("angle"),
        0.3f64.atan().to_degrees(),
        3.0,
        "angle to the skin normal",
    );
    close(t.cephalad_deg, 0.0, 1e-9, "cephalad");
    // The vertebra's voxel centres end at y = 0: its voxels' faces at y = 0.5, 29.5 mm deep;
    // the target (y = −10) lies inside it.
    assert_eq!(t.crossings.len(), 1, "{:?}", t.crossings);
    let c = &t.crossings[0];
    assert_eq!((c.id, c.name.as_str(), c.bone), (29, "vertebrae_L3", true));
    close(c.entry_depth_mm, 29.5, 1e-5, "vertebra entry");
    close(c.exit_depth_mm, 40.0, 1e-9, "vertebra exit (the target)");
    let contact = t.first_bone_contact.expect("bone contact");
    close(contact.depth_mm, 29.5, 1e-5, "bone contact");
    assert!(matches!(contact.by, ContactBy::Label { id: 29, .. }));
}

#[test]
fn unlabelled_bone_counts_by_hu_and_a_labelled_calcified_vessel_does_not() {
    let (ct, labels) = phantom();
    let names = LabelNames::totalsegmentator();
    let options = TrajectoryOptions::default();
    // Through the unlabelled block: its voxels (centres y = 0 … −20) start at y = 0.5,
    // 29.5 mm deep.
    let t = analyse_trajectory(
        &ct,
        &labels,
        &names,
        DVec3::new(25.0, 30.0, 0.0),
        DVec3::new(25.0, -30.0, 0.0),
        &options,
    )
    .expect("trajectory");
    assert!(t.crossings.is_empty());
    let contact = t.first_bone_contact.expect("HU contact");
    close(contact.depth_mm, 29.5, 1e-5, "HU contact");
    assert_eq!(
        contact.by,
        ContactBy::Hu {
            threshold_hu: 400.0
        }
    );
    // Through the aorta: crossed, at 1000 HU, yet no bone.
    let t = analyse_trajectory(
        &ct,
        &labels,
        &names,
        DVec3::new(-25.0, 30.0, 0.0),
        DVec3::new(-25.0, -40.0, 0.0),
        &options,
    )
    .expect("trajectory");
    assert_eq!(t.crossings.len(), 1);
    let aorta = &t.crossings[0];
    assert_eq!((aorta.name.as_str(), aorta.bone), ("aorta", false));
    // Voxel centres y −20 … −30: faces at −19.5 and −30.5.
    close(aorta.entry_depth_mm, 49.5, 1e-5, "aorta entry");
    close(aorta.exit_depth_mm, 60.5, 1e-5, "aorta exit");
    assert_eq!(t.first_bone_contact, None);
}

#[test]
fn angles_follow_patient_axes_and_the_midline() {
    let (ct, labels) = phantom();
    let names = LabelNames::totalsegmentator();
    // From the patient's left of the midline (x = 10; the body's mean x is −0.5) towards the
    // midline, the head, and anterior: direction (−10, −40, 20).
    let t = analyse_trajectory(
        &ct,
        &labels,
        &names,
        DVec3::new(10.0, 30.0, -10.0),
        DVec3::new(0.0, -10.0, 10.0),
        &TrajectoryOptions::default(),
    )
    .expect("trajectory");
    close(t.midline_x_mm.expect("midline"), -0.5, 1e-9, "midline");
    close(t.cephalad_deg, 0.5f64.atan().to_degrees(), 1e-9, "cephalad");
    close(
        t.leftward_deg,
        -(0.25f64.atan().to_degrees()),
        1e-9,
        "leftward",
    );
    close(
        t.medial_deg.expect("medial"),
        0.25f64.atan().to_degrees(),
        1e-9,
        "medial",
    );
    // The mirror path, from the patient's right going further right: lateral, and caudal.
    let t = analyse_trajectory(
        &ct,
        &labels,
        &names,
        DVec3::new(-10.0, 30.0, 10.0),
        DVec3::new(-20.0, -10.0, -10.0),
        &TrajectoryOptions::default(),
    )
    .expect("trajectory");
    close(
        t.cephalad_deg,
        -(0.5f64.atan().to_degrees()),
        1e-9,
        "caudal",
    );
    close(
        t.medial_deg.expect("medial"),
        -(0.25f64.atan().to_degrees()),
        1e-9,
        "lateral",
    );
}

#[test]
fn points_outside_the_volume_and_coincident_points_are_refused() {
    let (ct, labels) = phantom();
    let names = LabelNames::totalsegmentator();
    let options = TrajectoryOptions::default();
    let inside = DVec3::new(0.0, 0.0, 0.0);
    // Voxel centres reach 49 mm, voxels 49.5 mm.
    let e = analyse_trajectory(
        &ct,
        &labels,
        &names,
        inside,
        DVec3::new(0.0, 0.0, 49.6),
        &options,
    )
    .expect_err("outside");
    assert!(matches!(
        e,
        MeasureError::OutsideVolume { what: "target", .. }
    ));
    let text = e.to_string();
    assert!(
        text.contains("target point (0.0, 0.0, 49.6)") && text.contains("z -50.5…49.5"),
        "{text}"
    );
    analyse_trajectory(
        &ct,
        &labels,
        &names,
        inside,
        DVec3::new(0.0, 0.0, 49.4),
        &options,
    )
    .expect("just inside");
    let e = analyse_trajectory(
        &ct,
        &labels,
        &names,
        DVec3::new(-51.0, 0.0, 0.0),
        inside,
        &options,
    )
    .expect_err("outside");
    assert!(matches!(
        e,
        MeasureError::OutsideVolume { what: "entry", .. }
    ));
    assert!(matches!(
        analyse_trajectory(&ct, &labels, &names, inside, inside, &options),
        Err(MeasureError::Degenerate(_))
    ));
}

#[test]
fn crossing_depths_do_not_depend_on_the_step() {
    let (ct, labels) = phantom();
    let names = LabelNames::totalsegmentator();
    // An oblique path into the vertebra: its expected entry depth from a slab intersection
    // with the label's voxel box (x −10.5…10.5, y −20.5…0.5, z −10.5…10.5 mm).
    let entry = DVec3::new(8.0, 30.0, -14.0);
    let target = DVec3::new(-3.0, -12.0, 6.0);
    let d = target - entry;
    let (lo, hi) = (DVec3::new(-10.5, -20.5, -10.5), DVec3::new(10.5, 0.5, 10.5));
    let t_enter = (0..3)
        .map(|a| {
            let (t1, t2) = ((lo[a] - entry[a]) / d[a], (hi[a] - entry[a]) / d[a]);
            t1.min(t2)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    let expected = t_enter * d.length();
    for step in [None, Some(0.1), Some(0.9)] {
        let t = analyse_trajectory(
            &ct,
            &labels,
            &names,
            entry,
            target,
            &TrajectoryOptions {
                step_mm: step,
                ..TrajectoryOptions::default()
            },
        )
        .expect("trajectory");
        let c = &t.crossings[0];
        close(c.entry_depth_mm, expected, 1e-5, &format!("step {step:?}"));
    }
}
