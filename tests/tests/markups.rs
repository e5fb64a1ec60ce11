//! 3D Slicer markups: a file written in Slicer's form (RAS, with every display field Slicer
//! stores) imports with its points at the right place in the patient (the L3–L4 midline line
//! drawn in Slicer is, in twinray, the path through the interlaminar window that meets no
//! vertebra); lengths and angles are those of the points; a write and a read give back the
//! same markups.

use glam::DVec3;
use twinray_io::LabelNames;
use twinray_measure::{
    analyse_trajectory, is_bone_label, read_markups, write_markups, MarkupKind, MarkupValue,
    TrajectoryOptions,
};
use twinray_scene::Case;

fn fixture() -> std::path::PathBuf {
    twinray_tests::repo_root().join("segmentation/measure/tests/fixtures/slicer-written.mrk.json")
}

#[test]
fn a_file_written_by_slicer_imports_with_points_at_the_right_place() {
    let markups = read_markups(&fixture()).expect("read");
    let kinds: Vec<MarkupKind> = markups.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MarkupKind::Line,
            MarkupKind::Angle,
            MarkupKind::Curve,
            MarkupKind::Points
        ]
    );
    // RAS in the file: x and y change sign.
    let line = &markups[0];
    assert_eq!(line.name, "L3-L4 midline");
    assert_eq!(
        line.points[0].position_lps_mm,
        DVec3::new(5.5, -44.0, 295.0)
    );
    assert_eq!(
        line.points[1].position_lps_mm,
        DVec3::new(5.5, -119.0, 293.5)
    );
    let Some(MarkupValue::LengthMm(length)) = line.value() else {
        panic!("a line has a length")
    };
    assert!((length - 75.015).abs() < 0.001, "{length}");

    // On the demo case, that line is the midline path through the L3–L4 window.
    let case = Case::demo().expect("demo case");
    let t = analyse_trajectory(
        &case.ct,
        case.labels.as_ref().expect("labels"),
        &LabelNames::totalsegmentator(),
        line.points[0].position_lps_mm,
        line.points[1].position_lps_mm,
        &TrajectoryOptions::default(),
    )
    .expect("trajectory");
    assert!(!t.crossings.iter().any(|c| is_bone_label(&c.name)));
    assert_eq!(t.first_bone_contact, None);

    // The angle's arms (1,0,0) and (0,1,1) in RAS: 90°.
    let Some(MarkupValue::AngleDeg(angle)) = markups[1].value() else {
        panic!("an angle")
    };
    assert!((angle - 90.0).abs() < 1e-9, "{angle}");
    // The curve's undefined fourth point is not read: 5 + 6 mm.
    assert_eq!(markups[2].points.len(), 3);
    assert_eq!(markups[2].value(), Some(MarkupValue::LengthMm(11.0)));
    // No coordinate system named: LPS, as Slicer reads it.
    assert_eq!(
        markups[3].points[0].position_lps_mm,
        DVec3::new(1.5, -2.5, 3.5)
    );
}

#[test]
fn markups_written_by_twinray_read_back_the_same_and_never_overwrite() {
    let markups = read_markups(&fixture()).expect("read");
    let out = std::env::temp_dir().join(format!("twinray-markups-{}.mrk.json", std::process::id()));
    let _ = std::fs::remove_file(&out);
    write_markups(&out, &markups).expect("write");
    assert_eq!(read_markups(&out).expect("read back"), markups);
    let text = std::fs::read_to_string(&out).expect("text");
    assert!(text.contains("\"coordinateSystem\": \"LPS\""), "{text}");
    assert!(write_markups(&out, &markups).is_err(), "never over a file");
    std::fs::remove_file(&out).expect("clean");
}
