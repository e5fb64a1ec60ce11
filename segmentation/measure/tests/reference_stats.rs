//! Label statistics on real data against numbers computed outside the project.
//!
//! The case: TotalSegmentator's example DICOM series (512×512×20, JPEG 2000 lossless, 0.977 ×
//! 0.977 × 2 mm) with its reference `total` labels, as copied into `data/ct/totalsegmentator/`
//! (provenance and licence in `data/ct/README.md`), loaded as every front end loads a case.
//!
//! The expected numbers were computed once with `scripts/reference_stats.py` (SimpleITK 2.5.7
//! and, as a cross-check that must agree exactly, pydicom 3.0.2 + nibabel, both with NumPy
//! 2.4: sample SD with `ddof=1`, `numpy.median`), run by hand from
//! `~/.cache/twinray-peers/venv`; they are pasted below unchanged. The data ships with the
//! repository, so this test runs everywhere and never skips.

use std::path::{Path, PathBuf};

use twinray_io::{load_case, LabelNames};
use twinray_measure::{label_stats, resolve_label, voxel_volume_ml};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ct/totalsegmentator")
}

/// One label's reference values: (name, voxels, volume ml, mean, SD, median, min, max).
type Reference = (&'static str, u64, f64, f64, f64, f64, f64, f64);

/// Output of `scripts/reference_stats.py` (voxel volume 0.0019073486328125 ml).
const REFERENCE: [Reference; 4] = [
    (
        "liver",
        366_708,
        699.440_002_441_406_2,
        89.304_593_845_784_65,
        21.656_822_967_871_804,
        93.0,
        -532.0,
        181.0,
    ),
    (
        "spleen",
        130_634,
        249.164_581_298_828_12,
        79.568_634_505_565_17,
        20.598_009_826_092_678,
        80.0,
        -119.0,
        235.0,
    ),
    (
        "aorta",
        11_723,
        22.359_848_022_460_938,
        177.307_600_443_572_45,
        143.412_585_442_372_18,
        151.0,
        -89.0,
        1277.0,
    ),
    (
        "vertebrae_T12",
        23_576,
        44.967_651_367_187_5,
        267.007_380_386_834_1,
        186.772_714_440_925_54,
        206.0,
        -101.0,
        1132.0,
    ),
];

#[test]
fn liver_spleen_aorta_and_t12_match_simpleitk_and_numpy() {
    let series = data().join("example_ct_dicom");
    let labels_path = data().join("example_seg_dicom.nii.gz");
    let case = load_case(&series, Some(&labels_path), None).expect("the case loads");
    let labels = case.labels.as_ref().expect("labels");
    let names = LabelNames::for_label_map(&labels_path).expect("names");
    assert!((voxel_volume_ml(case.ct.geometry()) - 0.001_907_348_632_812_5).abs() < 1e-12);

    let ids: Vec<u16> = REFERENCE
        .iter()
        .map(|r| resolve_label(r.0, &names, labels).expect("a TotalSegmentator name"))
        .collect();
    let stats = label_stats(&case.ct, labels, &names, Some(&ids)).expect("stats");
    for (s, &(name, voxels, volume_ml, mean, sd, median, min, max)) in
        stats.iter().zip(REFERENCE.iter())
    {
        assert_eq!(s.name, name);
        assert_eq!(s.voxel_count, voxels, "{name}: voxel count");
        // The volume is a count times the voxel volume, both exact here; HU are integers, so
        // sums in f64 are exact and only the last bits of the mean and SD may differ.
        assert!(
            (s.volume_ml - volume_ml).abs() < 1e-9,
            "{name}: volume {}",
            s.volume_ml
        );
        let hu = s.hu.as_ref().expect("HU statistics");
        assert!((hu.mean - mean).abs() < 1e-9, "{name}: mean {}", hu.mean);
        let got_sd = hu.sd.expect("an SD");
        // 1e-6 HU: the population SD (n instead of n − 1) is 0.006 HU off even for the aorta.
        assert!(
            (got_sd - sd).abs() < 1e-6,
            "{name}: SD {got_sd}, expected {sd}"
        );
        assert_eq!(
            (hu.median, hu.min, hu.max),
            (median, min, max),
            "{name}: median, min, max"
        );
    }
}

#[test]
fn every_label_present_is_reported_once_and_volumes_add_up() {
    let series = data().join("example_ct_dicom");
    let labels_path = data().join("example_seg_dicom.nii.gz");
    let case = load_case(&series, Some(&labels_path), None).expect("the case loads");
    let labels = case.labels.as_ref().expect("labels");
    let names = LabelNames::for_label_map(&labels_path).expect("names");
    let stats = label_stats(&case.ct, labels, &names, None).expect("stats");
    // data/ct/README.md: 31 labels present.
    assert_eq!(stats.len(), 31);
    let labelled = labels.voxels().iter().filter(|&&v| v != 0).count() as u64;
    assert_eq!(stats.iter().map(|s| s.voxel_count).sum::<u64>(), labelled);
    assert!(stats.windows(2).all(|w| w[0].id < w[1].id));
}
