//! MR images: DICOM MR series (classic, several per study, Enhanced MR multi-frame) made by
//! `scripts/make_mr_dicom_fixtures.py` from the real abdominal MR in `data/mr/`, and the
//! display window by 3D Slicer's percentile rule checked against numpy's.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::open_file;
use glam::DVec3;
use twinray_io::dicom::{
    self, GeometryPolicy, LoadOptions, PhilipsScale, PHILIPS_SCALE_INTERCEPT, PHILIPS_SCALE_SLOPE,
};
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
    assert_values_as_nifti(dicom, nifti, |v| v);
}

/// Every voxel of `dicom` equals `expected` of the NIfTI's voxel at the same patient position.
fn assert_values_as_nifti(dicom: &CtVolume, nifti: &CtVolume, expected: impl Fn(f32) -> f32) {
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
                assert_eq!(
                    dicom.get(i, j, k).copied(),
                    Some(expected(*at)),
                    "voxel ({i}, {j}, {k}) at {p}"
                );
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

/// The scale `make_mr_dicom_fixtures.py philips` writes: RS 1.5, SS 0.25, SI 0.
const FIXTURE_PHILIPS_SCALE: PhilipsScale = PhilipsScale {
    scale_slope: 0.25,
    scale_intercept: 0.0,
    rescale_slope: 1.5,
};

#[test]
fn a_philips_series_keeps_its_displayed_values_and_exposes_its_scale_slope() {
    // Implicit VR: the private scale slope arrives as 4 untyped bytes.
    let folder = fixtures().join("dicom/mr/philips_mr");
    let scan = dicom::scan(&folder).expect("scan");
    assert_eq!(
        scan.series[0].slices[0].transfer_syntax_uid,
        "1.2.840.10008.1.2"
    );
    let case = load_case(&folder, None, None).expect("the Philips series");
    assert_eq!(case.intensity.modality, Modality::Mr);
    assert_eq!(case.philips_scale, Some(FIXTURE_PHILIPS_SCALE));
    // The voxels are the displayed values DV = PV x RS + RI, as before.
    let nifti = read_ct(&mr_nifti()).expect("the MR NIfTI");
    assert_values_as_nifti(&case.ct, &nifti, |v| 1.5 * v - 10.0);
    // Philips' floating-point value: FP = DV / (RS x SS); PV 100 -> DV 140 -> FP 373.33.
    let scale = case.philips_scale.expect("scale");
    assert!((scale.floating_point(140.0) - 140.0 / 0.375).abs() < 1e-9);
    assert!((scale.factor() - 1.0 / 0.375).abs() < 1e-12);
}

/// Copies the Philips fixture to a scratch folder, `edit` changing every file, and scans it.
fn edited_philips(
    name: &str,
    edit: impl Fn(usize, &mut dicom_object::DefaultDicomObject),
) -> dicom::DicomSeries {
    let src = fixtures().join("dicom/mr/philips_mr");
    let dir = std::env::temp_dir().join(format!("twinray-mr-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    for (n, file) in ["IM_0000", "IM_0001"].iter().enumerate() {
        let mut obj = open_file(src.join(file)).expect("fixture opens");
        edit(n, &mut obj);
        obj.write_to_file(dir.join(file))
            .expect("write edited copy");
    }
    let mut scan = dicom::scan(&dir).expect("scan");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(scan.series.len(), 1);
    scan.series.remove(0)
}

#[test]
fn the_scale_slope_is_read_typed_only_from_philips_and_per_slice() {
    let typed = |slope: f32| {
        move |obj: &mut dicom_object::DefaultDicomObject| {
            // Written as Explicit VR, so that the value comes back typed.
            obj.meta_mut().set_transfer_syntax(
                &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN,
            );
            obj.put(DataElement::new(
                PHILIPS_SCALE_SLOPE,
                VR::FL,
                PrimitiveValue::from(slope),
            ));
            obj.put(DataElement::new(
                PHILIPS_SCALE_INTERCEPT,
                VR::FL,
                PrimitiveValue::from(2.0f32),
            ));
        }
    };
    // A typed FL value (explicit VR files); the scale intercept is kept as read.
    let series = edited_philips("typed", |_, obj| typed(0.5)(obj));
    assert_eq!(series.slices[0].transfer_syntax_uid, "1.2.840.10008.1.2.1");
    assert_eq!(
        series.philips_scale(),
        Ok(Some(PhilipsScale {
            scale_slope: 0.5,
            scale_intercept: 2.0,
            rescale_slope: 1.5,
        }))
    );
    // Another manufacturer's (2005,100E) means something else: not read.
    let series = edited_philips("siemens", |_, obj| {
        obj.put(DataElement::new(
            tags::MANUFACTURER,
            VR::LO,
            PrimitiveValue::from("SIEMENS"),
        ));
    });
    assert_eq!(series.philips_scale(), Ok(None));
    assert!(series.slices.iter().all(|s| s.philips_scale.is_none()));
    // Slices with different scales: no single factor for the volume, each slice has its own.
    let series = edited_philips("varies", |n, obj| {
        typed(if n == 0 { 0.5 } else { 0.75 })(obj);
    });
    let distinct = series.philips_scale().expect_err("two scales");
    assert_eq!(distinct.len(), 2);
    // A zero slope is no scale (the image still loads as displayed values).
    let series = edited_philips("zero", |_, obj| typed(0.0)(obj));
    assert_eq!(series.philips_scale(), Ok(None));
}

/// The Enhanced MR fixture made a Philips file whose frames carry their scale slope in
/// Philips' per-frame private sequence (2005,140F), written to scratch and scanned.
fn enhanced_philips(name: &str, slope_of_frame: impl Fn(usize) -> f32) -> dicom::DicomSeries {
    use dicom_core::value::DataSetSequence;
    use dicom_core::Tag;
    use dicom_object::InMemDicomObject;
    const PHILIPS_PIXEL_VALUE_SEQUENCE: Tag = Tag(0x2005, 0x140F);
    let mut obj = open_file(fixtures().join("dicom/mr/enhanced_mr.dcm")).expect("fixture opens");
    obj.put(DataElement::new(
        tags::MANUFACTURER,
        VR::LO,
        PrimitiveValue::from("Philips Medical Systems"),
    ));
    let frames: Vec<InMemDicomObject> = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .expect("per-frame functional groups")
        .to_vec();
    let frames: Vec<InMemDicomObject> = frames
        .into_iter()
        .enumerate()
        .map(|(f, mut item)| {
            let mut value = InMemDicomObject::new_empty();
            value.put(DataElement::new(
                PHILIPS_SCALE_SLOPE,
                VR::FL,
                PrimitiveValue::from(slope_of_frame(f)),
            ));
            item.put(DataElement::new(
                PHILIPS_PIXEL_VALUE_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![value]),
            ));
            item
        })
        .collect();
    obj.put(DataElement::new(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(frames),
    ));
    let dir = std::env::temp_dir().join(format!(
        "twinray-mr-{}-enhanced-philips-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    obj.write_to_file(dir.join("enhanced.dcm"))
        .expect("write the Philips copy");
    let mut scan = dicom::scan(&dir).expect("scan");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(scan.series.len(), 1);
    scan.series.remove(0)
}

#[test]
fn an_enhanced_philips_file_gives_each_frame_the_scale_slope_of_its_own_group() {
    let series = enhanced_philips("same", |_| 0.5);
    assert!(series.slices.len() > 1, "a multi-frame file");
    let scale = series
        .philips_scale()
        .expect("one scale")
        .expect("read from the per-frame groups");
    assert_eq!(scale.scale_slope, 0.5);
    assert_eq!(scale.rescale_slope, series.slices[0].rescale_slope);
    // Frames with their own slopes: each frame keeps the one of its group, and the series
    // has no single factor.
    let series = enhanced_philips("varies", |f| if f == 0 { 0.5 } else { 0.25 });
    for slice in &series.slices {
        let expected = if slice.frame == 0 { 0.5 } else { 0.25 };
        assert_eq!(
            slice.philips_scale.map(|s| s.scale_slope),
            Some(expected),
            "frame {}",
            slice.frame
        );
    }
    assert_eq!(series.philips_scale().expect_err("two scales").len(), 2);
}
