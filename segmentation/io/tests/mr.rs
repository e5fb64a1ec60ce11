//! MR images: DICOM MR series (classic, several per study, Enhanced MR multi-frame) made by
//! `scripts/make_mr_dicom_fixtures.py` from the real abdominal MR in `data/mr/`, and the
//! display window by 3D Slicer's percentile rule checked against numpy's.

use std::path::{Path, PathBuf};

use glam::DVec3;
use twinray_io::dicom::{self, GeometryPolicy, LoadOptions};
use twinray_io::{
    load_case, load_case_with, read_ct, CaseOptions, CtVolume, Intensity, Modality, WindowSource,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn mr_nifti() -> PathBuf {
    repo().join("data/mr/totalsegmentator/example_mr_sm.nii.gz")
}

/// The reference row `name`: (p0.1, p99.9, min, max) as numpy computed them.
fn reference(name: &str) -> [f64; 4] {
    let text = std::fs::read_to_string(fixtures().join("mr_window_reference.txt"))
        .expect("reference file");
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no reference row '{name}'"));
    let values: Vec<f64> = line
        .split('\t')
        .skip(1)
        .map(|v| v.trim().parse().expect("number"))
        .collect();
    values.try_into().expect("four numbers")
}

/// Every voxel of `dicom` equals the NIfTI's voxel at the same patient position.
fn assert_same_values_as_nifti(dicom: &CtVolume, nifti: &CtVolume) {
    let from_patient = nifti.geometry().voxel_from_patient();
    let [nx, ny, nz] = dicom.geometry().dims;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let p = dicom
                    .geometry()
                    .patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
                let v = from_patient.transform_point3(p).round();
                let at = nifti
                    .get(v.x as usize, v.y as usize, v.z as usize)
                    .expect("inside the NIfTI");
                assert_eq!(dicom.get(i, j, k), Some(at), "voxel ({i}, {j}, {k}) at {p}");
            }
        }
    }
}

#[test]
fn a_study_with_two_mr_series_lists_both_and_loads_the_one_asked_for() {
    let study = fixtures().join("dicom/mr/mr_study");
    let scan = dicom::scan(&study).expect("scan");
    let found: Vec<(Option<i64>, &str, &str, usize)> = scan
        .series
        .iter()
        .map(|s| {
            (
                s.series_number,
                s.description.as_str(),
                s.modality.as_str(),
                s.slices.len(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (Some(5), "t1_vibe_abdomen", "MR", 4),
            (Some(6), "t2_haste_abdomen", "MR", 2)
        ]
    );
    let nifti = read_ct(&mr_nifti()).expect("the MR NIfTI");
    let t1 = dicom::load_series(
        &study,
        &LoadOptions {
            series_number: Some(5),
            policy: GeometryPolicy::Refuse,
            progress: None,
        },
    )
    .expect("series 5");
    assert_eq!(t1.ct.geometry().dims, [117, 91, 4]);
    assert_same_values_as_nifti(&t1.ct, &nifti);

    // The case loader takes the modality and the window from the DICOM header.
    let case = load_case_with(
        &study,
        None,
        &CaseOptions {
            series_number: Some(6),
            ..CaseOptions::default()
        },
    )
    .expect("series 6");
    assert_eq!(case.ct.geometry().dims, [117, 91, 2]);
    assert_eq!(case.intensity.modality, Modality::Mr);
    assert_eq!(case.intensity.window_source, WindowSource::Dicom);
    // WindowCenter 400, WidthWidth 800: PS3.3's linear ramp runs from 0 to 799.
    assert_eq!(case.intensity.window, [0.0, 799.0]);
    // Without --series, the series with the most slices, and a warning naming the other.
    let default = load_case(&study, None, None).expect("default series");
    assert_eq!(default.ct.geometry().dims[2], 4);
    assert!(
        default.warnings.iter().any(|w| w.contains("2 series")),
        "{:?}",
        default.warnings
    );
}

#[test]
fn an_enhanced_mr_file_is_the_same_volume_as_its_classic_series() {
    let enhanced =
        load_case(&fixtures().join("dicom/mr/enhanced_mr.dcm"), None, None).expect("enhanced MR");
    assert_eq!(enhanced.intensity.modality, Modality::Mr);
    assert_eq!(enhanced.intensity.window, [0.0, 799.0], "Frame VOI LUT");
    let classic = load_case_with(
        &fixtures().join("dicom/mr/mr_study"),
        None,
        &CaseOptions {
            series_number: Some(5),
            ..CaseOptions::default()
        },
    )
    .expect("classic");
    assert!(enhanced
        .ct
        .geometry()
        .same_grid(classic.ct.geometry(), 1e-3));
    assert_eq!(enhanced.ct.voxels(), classic.ct.voxels());
}

#[test]
fn the_percentile_window_matches_numpy() {
    // The NIfTI does not say MR: 3D Slicer's range rule does (−47…833 is under 1500 wide).
    let case = load_case(&mr_nifti(), None, None).expect("the MR");
    let i = case.intensity;
    assert_eq!(i.modality, Modality::Mr);
    assert_eq!(i.window_source, WindowSource::Percentiles);
    let [p_lo, p_hi, min, max] = reference("example_mr_sm.nii.gz");
    assert_eq!(i.range, [min as f32, max as f32]);
    // numpy and twinray interpolate the same sorted values in f64; f32 storage rounds.
    assert!(
        (f64::from(i.window[0]) - p_lo).abs() < 1e-3,
        "{:?} vs {p_lo}",
        i.window
    );
    assert!(
        (f64::from(i.window[1]) - p_hi).abs() < 1e-3,
        "{:?} vs {p_hi}",
        i.window
    );
    // The same rule on series 5's four slices (without its DICOM window).
    let series = read_ct(&mr_nifti()).expect("nifti");
    let plane = 117 * 91;
    let part = &series.voxels()[8 * plane..12 * plane];
    let [p_lo, p_hi, ..] = reference("mr_study series 5");
    let w = Intensity::measure(Modality::Mr, part, None).window;
    assert!((f64::from(w[0]) - p_lo).abs() < 1e-3 && (f64::from(w[1]) - p_hi).abs() < 1e-3);
    // A user may say what the image is.
    let as_ct = load_case_with(
        &mr_nifti(),
        None,
        &CaseOptions {
            modality: Some(Modality::Ct),
            ..CaseOptions::default()
        },
    )
    .expect("as CT");
    assert_eq!(as_ct.intensity.modality, Modality::Ct);
}

#[test]
fn the_demo_ct_is_still_taken_for_a_ct() {
    let case = load_case(&repo().join("data/demo/example_ct.nii.gz"), None, None).expect("demo");
    assert_eq!(case.intensity.modality, Modality::Ct);
}
