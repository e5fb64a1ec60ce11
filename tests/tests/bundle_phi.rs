//! De-identified by construction: a synthetic DICOM series whose headers carry 30+ identifying
//! values (top level, inside a sequence, in a private tag, UIDs with embedded dates) is bundled
//! with a lesson on it, and every byte of every member (gzip members decompressed) is searched
//! for each value: none is found. A series marked BurnedInAnnotation=YES is refused unless
//! allowed.

use std::io::Read;
use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use twinray_bundle::Bundle;
use twinray_lessons::event::{Chapter, Event, Note, Payload};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_scene::bundle::{burned_in_status, make_bundle, BundleRequest};
use twinray_scene::Case;

/// (tag, VR, value): each value is unique text a leak would carry verbatim.
const IDENTIFYING: [(dicom_core::Tag, VR, &str); 30] = [
    (
        tags::PATIENT_NAME,
        VR::PN,
        "Zyxwortle^Quintabelle^Marguerite",
    ),
    (tags::PATIENT_ID, VR::LO, "PID-7734-0191-QX"),
    (tags::PATIENT_BIRTH_DATE, VR::DA, "19371104"),
    (tags::PATIENT_SEX, VR::CS, "O"),
    (tags::PATIENT_AGE, VR::AS, "087Y"),
    (
        tags::PATIENT_ADDRESS,
        VR::LO,
        "42 Glimmerbrook Lane Wexholt",
    ),
    (tags::PATIENT_TELEPHONE_NUMBERS, VR::SH, "555-0142-998"),
    (tags::PATIENT_COMMENTS, VR::LT, "ALTID-55321-ZZ"),
    (
        tags::PATIENT_MOTHER_BIRTH_NAME,
        VR::PN,
        "Brightwater^Odalys",
    ),
    (tags::STUDY_DATE, VR::DA, "20190317"),
    (tags::SERIES_DATE, VR::DA, "20190318"),
    (tags::ACQUISITION_DATE, VR::DA, "20190319"),
    (tags::CONTENT_DATE, VR::DA, "20190320"),
    (tags::STUDY_TIME, VR::TM, "134512.123456"),
    (tags::SERIES_TIME, VR::TM, "134613.654321"),
    (tags::ACQUISITION_TIME, VR::TM, "134714.111222"),
    (tags::INSTITUTION_NAME, VR::LO, "Saint Ottoline Infirmary"),
    (
        tags::INSTITUTION_ADDRESS,
        VR::ST,
        "9 Harrowgate Plaza Lindqvist",
    ),
    (
        tags::INSTITUTIONAL_DEPARTMENT_NAME,
        VR::LO,
        "Dept of Quizzical Radiology",
    ),
    (
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        "Fenwhistle^Augustin",
    ),
    (
        tags::PERFORMING_PHYSICIAN_NAME,
        VR::PN,
        "Oakenshaw^Theodora",
    ),
    (tags::OPERATORS_NAME, VR::PN, "Pembercroft^Lysander"),
    (
        tags::NAME_OF_PHYSICIANS_READING_STUDY,
        VR::PN,
        "Vantongeren^Isolde",
    ),
    (tags::STATION_NAME, VR::SH, "CTSTATION-QQ7"),
    (tags::DEVICE_SERIAL_NUMBER, VR::LO, "SN-88231-XKCD"),
    (tags::ACCESSION_NUMBER, VR::SH, "ACC20190317X9"),
    (tags::STUDY_ID, VR::SH, "STUDY-ZETA-88"),
    (
        tags::STUDY_DESCRIPTION,
        VR::LO,
        "Lumbar spine for Zyxwortle",
    ),
    (
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "Axial 3mm Wexholt protocol",
    ),
    (
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.20190317134512.7",
    ),
];
const SERIES_UID: &str = "1.2.826.0.1.3680043.20190318134613.8";
const SOP_UID_PREFIX: &str = "1.2.826.0.1.3680043.20190320134714.";
const PRIVATE_VALUE: &str = "PRIVATE-TAG-SECRET-4471";
const SEQUENCE_VALUE: &str = "Requestingdoctor^Inside^Sequence";
const SEQUENCE_ID: &str = "REQ-SEQ-ID-99812";

fn scratch() -> PathBuf {
    twinray_tests::scratch_dir("bundle-phi")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ct/misc/CT_small.dcm")
}

/// Writes a 4-slice series from the fixture slice with every identifying value set.
fn write_series(dir: &Path, burned_in: &str) {
    std::fs::create_dir_all(dir).expect("series folder");
    let base = dicom_object::open_file(fixture()).expect("fixture slice");
    let z0 = base
        .element(tags::IMAGE_POSITION_PATIENT)
        .expect("position")
        .to_multi_float64()
        .expect("numbers");
    let spacing = 5.0;
    for i in 0..4u32 {
        let mut obj = base.clone();
        for (tag, vr, value) in IDENTIFYING {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
        obj.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(SERIES_UID),
        ));
        let sop = format!("{SOP_UID_PREFIX}{}", i + 1);
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(sop.as_str()),
        ));
        obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.clone());
        obj.put(DataElement::new(
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from(format!("{}", i + 1)),
        ));
        let pos = format!("{}\\{}\\{}", z0[0], z0[1], z0[2] + f64::from(i) * spacing);
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::from(pos),
        ));
        obj.put(DataElement::new(
            tags::BURNED_IN_ANNOTATION,
            VR::CS,
            PrimitiveValue::from(burned_in),
        ));
        let item = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::REQUESTING_PHYSICIAN,
                VR::PN,
                PrimitiveValue::from(SEQUENCE_VALUE),
            ),
            DataElement::new(
                tags::REQUESTED_PROCEDURE_ID,
                VR::SH,
                PrimitiveValue::from(SEQUENCE_ID),
            ),
        ]);
        obj.put(DataElement::new(
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![item]),
        ));
        obj.put_private_element(
            0x0011,
            "TWINRAYTEST",
            0x10,
            VR::LO,
            PrimitiveValue::from(PRIVATE_VALUE),
        )
        .expect("private tag");
        obj.write_to_file(dir.join(format!("slice{i:02}.dcm")))
            .expect("write slice");
    }
}

fn needles() -> Vec<String> {
    let mut out: Vec<String> = IDENTIFYING
        .iter()
        .filter(|(_, _, v)| v.len() >= 4)
        .map(|(_, _, v)| (*v).to_owned())
        .collect();
    out.extend(
        [
            SERIES_UID,
            SOP_UID_PREFIX,
            PRIVATE_VALUE,
            SEQUENCE_VALUE,
            SEQUENCE_ID,
            "TWINRAYTEST",
        ]
        .map(str::to_owned),
    );
    // Parts a reformatting would keep: surnames, the embedded dates.
    out.extend(
        [
            "Zyxwortle",
            "Quintabelle",
            "Glimmerbrook",
            "Ottoline",
            "Fenwhistle",
            "Oakenshaw",
            "Pembercroft",
            "Vantongeren",
            "Brightwater",
            "20190317",
            "20190318",
            "20190320",
            "19371104",
        ]
        .map(str::to_owned),
    );
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip member");
    out
}

#[test]
fn a_bundled_dicom_case_carries_none_of_its_identifying_values() {
    let dir = scratch();
    let series = dir.join("series");
    write_series(&series, "NO");
    // The values really are in the source files (so the search below can find them).
    let raw = std::fs::read(series.join("slice00.dcm")).expect("slice");
    let n = needles();
    assert!(n.len() >= 30, "{}", n.len());
    for needle in &n {
        assert!(
            raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} not in the source"
        );
    }

    let (case, _) = Case::load(&series, None, None).expect("the series loads");
    let lesson = dir.join("phi.lesson");
    let recorder = Recorder::create(
        &lesson,
        &LessonHeader::new(case.case_ref.clone(), 1_700_000_000_000_000_000),
        RecorderOptions::default(),
    )
    .expect("recorder");
    for (t, payload) in [
        (
            0,
            Payload::Chapter(Chapter {
                title: "Anatomy".to_owned(),
            }),
        ),
        (
            1_000_000_000,
            Payload::Note(Note {
                text: "look here".to_owned(),
            }),
        ),
    ] {
        recorder
            .record_blocking(Event::new(t, payload))
            .expect("event");
    }
    recorder.finish().expect("finish");

    let burned_in = burned_in_status(&series, false).expect("not burned in");
    assert_eq!(burned_in, "NO");
    let out = dir.join("phi.twlesson");
    let request = BundleRequest {
        title: Some("PHI check".to_owned()),
        deidentification: twinray_bundle::Deidentification {
            source: "dicom".to_owned(),
            burned_in_annotation: burned_in,
            ..Default::default()
        },
        ..BundleRequest::default()
    };
    let manifest = make_bundle(&lesson, &case, &request, &out).expect("bundle");
    assert!(manifest
        .deidentification
        .steps
        .iter()
        .any(|s| s.contains("every header attribute")));

    let mut bundle = Bundle::open(&out).expect("open");
    let mut blobs = vec![("whole file".to_owned(), std::fs::read(&out).expect("file"))];
    for m in manifest.members.clone() {
        let bytes = bundle.read(&m.name).expect("member");
        if m.name.ends_with(".gz") {
            blobs.push((format!("{} (decompressed)", m.name), gunzip(&bytes)));
        }
        blobs.push((m.name.clone(), bytes));
    }
    for (name, bytes) in &blobs {
        for needle in &n {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found in {name}"
            );
        }
    }
    // And the case inside is the very case the lesson names.
    let opened = twinray_scene::bundle::open_bundle(&out).expect("open as a lesson");
    assert_eq!(opened.case.case_ref, case.case_ref);
}

#[test]
fn a_series_with_burned_in_annotation_is_refused_unless_allowed() {
    let series = scratch().join("burned");
    write_series(&series, "YES");
    let e = burned_in_status(&series, false).expect_err("refused");
    assert!(e.to_string().contains("BurnedInAnnotation=YES"), "{e}");
    assert!(e.to_string().contains("--allow-burned-in"), "{e}");
    let allowed = burned_in_status(&series, true).expect("allowed");
    assert!(allowed.starts_with("YES"), "{allowed}");
}

#[test]
fn an_image_with_burned_in_annotation_is_refused_as_a_board() {
    // A board's pixels go into lessons and bundles as they are.
    let dir = scratch().join("board-burned-in");
    std::fs::create_dir_all(&dir).expect("folder");
    for (value, allowed) in [("YES", false), ("NO", true)] {
        let mut obj = dicom_object::open_file(fixture()).expect("fixture slice");
        obj.put(DataElement::new(
            tags::BURNED_IN_ANNOTATION,
            VR::CS,
            PrimitiveValue::from(value),
        ));
        let path = dir.join(format!("slice-{value}.dcm"));
        obj.write_to_file(&path).expect("write");
        let loaded = twinray_scene::boards::load_board_image(&path);
        match (loaded, allowed) {
            (Ok(image), true) => assert!(image.blob.width > 0),
            (Err(e), false) => {
                let text = e.to_string();
                assert!(
                    text.contains("burned-in annotation") && text.contains("slice-YES.dcm"),
                    "{text}"
                );
            }
            (other, _) => panic!("{value}: {other:?}"),
        }
    }
}
