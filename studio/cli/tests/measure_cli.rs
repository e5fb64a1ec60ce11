//! `twinray measure stats|trajectory|markups` as a user runs them: the TotalSegmentator DICOM series
//! with its reference labels (tab-separated and JSON), the demo case's needle paths, and bad
//! input (an unknown label name lists the ones present; a point outside the volume says so).

mod common;

use common::{repo, stderr, twinray};
use std::path::PathBuf;

fn totalseg(name: &str) -> String {
    repo()
        .join("data/ct/totalsegmentator")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

fn demo(name: &str) -> PathBuf {
    repo().join("data/demo").join(name)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn stats_prints_a_table_and_json_for_the_asked_labels() {
    let (ct, labels) = (
        totalseg("example_ct_dicom"),
        totalseg("example_seg_dicom.nii.gz"),
    );
    let out = twinray(&[
        "measure", "stats", "--ct", &ct, "--labels", &labels, "--label", "liver", "--label",
        "aorta",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Values as in segmentation/measure/tests/reference_stats.rs (SimpleITK and NumPy).
    assert_eq!(
        stdout(&out),
        "label\tid\tvoxels\tvolume_ml\thu_mean\thu_sd\thu_median\thu_min\thu_max\n\
         liver\t5\t366708\t699.440\t89.30\t21.66\t93\t-532\t181\n\
         aorta\t52\t11723\t22.360\t177.31\t143.41\t151\t-89\t1277\n"
    );

    let out = twinray(&[
        "measure",
        "stats",
        "--ct",
        &ct,
        "--labels",
        &labels,
        "--label",
        "vertebrae_T12",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for field in [
        "\"name\": \"vertebrae_T12\"",
        "\"voxels\": 23576",
        "\"hu_median\": 206.0",
        "\"hu_min\": -101.0",
        "\"hu_max\": 1132.0",
        "\"voxel_volume_ml\": 0.0019073486328125",
    ] {
        assert!(text.contains(field), "{field} missing in {text}");
    }

    // Without --label: every label in the map, one line each under the header.
    let out = twinray(&["measure", "stats", "--ct", &ct, "--labels", &labels]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1 + 31);
}

#[test]
fn trajectory_reports_depth_angles_and_the_structures_in_order() {
    let ct = demo("example_ct.nii.gz");
    let labels = demo("spine_report_totalseg_vertebrae.nii.gz");
    let out = twinray(&[
        "measure",
        "trajectory",
        "--ct",
        ct.to_str().expect("utf-8"),
        "--labels",
        labels.to_str().expect("utf-8"),
        "--entry",
        "-16,-44,295",
        "--target",
        "-11,-113,308",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}\t")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert_eq!(value("depth_mm"), "70.39");
    assert_eq!(value("cephalad_deg"), "10.7");
    assert_eq!(value("medial_deg"), "4.1");
    assert!(
        value("first_bone_contact").ends_with("mm (vertebrae_L3)"),
        "{text}"
    );
    let table: Vec<&str> = text
        .split("\n\n")
        .nth(1)
        .expect("the structures table")
        .lines()
        .collect();
    assert_eq!(
        table[0],
        "structure\tid\tentry_depth_mm\texit_depth_mm\tbone"
    );
    assert!(table[1].starts_with("vertebrae_L3\t29\t"), "{text}");
    assert!(table[1].ends_with("\tyes"), "{text}");

    let out = twinray(&[
        "measure",
        "trajectory",
        "--ct",
        ct.to_str().expect("utf-8"),
        "--labels",
        labels.to_str().expect("utf-8"),
        "--entry",
        "5.5,-44,295",
        "--target",
        "5.5,-119,293.5",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\"structures\": []"), "{text}");
    assert!(text.contains("\"first_bone_contact\": null"), "{text}");
}

#[test]
fn bad_labels_and_points_exit_2_and_say_what_is_wrong() {
    let (ct, labels) = (
        totalseg("example_ct_dicom"),
        totalseg("example_seg_dicom.nii.gz"),
    );
    let out = twinray(&[
        "measure", "stats", "--ct", &ct, "--labels", &labels, "--label", "livr",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--label 'livr'")
            && err.contains("example_seg_dicom.nii.gz")
            && err.contains("labels in this map: spleen, liver, stomach")
            && err.contains("costal_cartilages"),
        "{err}"
    );

    let demo_ct = demo("example_ct.nii.gz");
    let demo_labels = demo("spine_report_totalseg_vertebrae.nii.gz");
    let out = twinray(&[
        "measure",
        "trajectory",
        "--ct",
        demo_ct.to_str().expect("utf-8"),
        "--labels",
        demo_labels.to_str().expect("utf-8"),
        "--entry",
        "5.5,-44,295",
        "--target",
        "5.5,-119,900",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("example_ct.nii.gz")
            && err.contains("the target point (5.5, -119.0, 900.0) mm (LPS) is outside the volume"),
        "{err}"
    );

    let out = twinray(&[
        "measure",
        "trajectory",
        "--ct",
        demo_ct.to_str().expect("utf-8"),
        "--labels",
        demo_labels.to_str().expect("utf-8"),
        "--entry",
        "5.5,-44",
        "--target",
        "5.5,-119,290",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs exactly 3"), "{}", stderr(&out));

    let missing = repo().join("data/demo/no-such-labels.nii.gz");
    let out = twinray(&[
        "measure",
        "stats",
        "--ct",
        demo_ct.to_str().expect("utf-8"),
        "--labels",
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no-such-labels.nii.gz"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn markups_from_slicer_print_in_lps_and_a_trajectory_exports_as_a_slicer_line() {
    let fixture = repo().join("segmentation/measure/tests/fixtures/slicer-written.mrk.json");
    let out = twinray(&["measure", "markups", fixture.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Line\tL3-L4 midline\tlength_mm\t75.01"),
        "{text}"
    );
    assert!(
        text.contains("\tL3-L4 midline-1\t5.50,-44.00,295.00"),
        "{text}"
    );
    assert!(text.contains("Angle\tA\tangle_deg\t90.00"), "{text}");

    let ct = demo("example_ct.nii.gz");
    let labels = demo("spine_report_totalseg_vertebrae.nii.gz");
    let written = common::scratch("path.mrk.json");
    let _ = std::fs::remove_file(&written);
    let args = |file: &PathBuf| {
        twinray(&[
            "measure",
            "trajectory",
            "--ct",
            ct.to_str().expect("utf-8"),
            "--labels",
            labels.to_str().expect("utf-8"),
            "--entry",
            "-16,-44,295",
            "--target",
            "-11,-113,308",
            "--markups-out",
            file.to_str().expect("utf-8"),
        ])
    };
    let out = args(&written);
    assert!(out.status.success(), "{}", stderr(&out));
    let back = twinray(&["measure", "markups", written.to_str().expect("utf-8")]);
    let text = stdout(&back);
    assert!(text.contains("\tentry\t-16.00,-44.00,295.00"), "{text}");
    assert!(text.contains("\ttarget\t-11.00,-113.00,308.00"), "{text}");
    let again = args(&written);
    assert!(
        !again.status.success(),
        "a second export does not overwrite"
    );
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}
