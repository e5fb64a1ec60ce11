//! Radiographs for X-ray boards: the NEMA WG04 CR images (JPEG 2000) shown as a viewer shows
//! them, against a reference computed outside the project (pydicom decode, DICOM LINEAR VOI,
//! MONOCHROME1 inverted, rounded: `data/xray/README.md`), with their spacing read or declared
//! unknown and their patient orientation.

use std::path::PathBuf;

use twinray_io::dicom::{load_radiograph, ImageSpacing};

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/xray/wg04")
        .join(name)
}

fn mean(v: &[u8]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
}

#[test]
fn wg04_radiographs_display_as_the_reference_with_their_spacing_and_orientation() {
    // The decoders differ only in JPEG 2000 rounding: the means agree to 0.01 of a grey level.
    for (name, reference_mean, size, spacing, orientation, inverted) in [
        (
            "RG1_J2KI.dcm",
            192.171,
            (1841, 1955),
            ImageSpacing::Unknown,
            Some(("L", "F")),
            true,
        ),
        (
            "RG2_J2KI.dcm",
            112.468,
            (1760, 2140),
            ImageSpacing::AtPatient {
                row_mm: 0.2,
                column_mm: 0.2,
            },
            None,
            false,
        ),
        (
            "RG3_J2KI.dcm",
            177.497,
            (1760, 1760),
            ImageSpacing::Unknown,
            Some(("R", "F")),
            true,
        ),
    ] {
        let r = load_radiograph(&file(name)).expect(name);
        assert_eq!((r.width, r.height), size, "{name}");
        assert_eq!(r.display.len(), (size.0 * size.1) as usize);
        let m = mean(&r.display);
        assert!(
            (m - reference_mean).abs() < 0.01,
            "{name}: mean {m} vs {reference_mean}"
        );
        assert_eq!(r.spacing, spacing, "{name}");
        assert_eq!(
            r.patient_orientation,
            orientation.map(|(a, b)| (a.to_owned(), b.to_owned())),
            "{name}"
        );
        assert_eq!(r.inverted, inverted, "{name}");
    }
    let rg2 = load_radiograph(&file("RG2_J2KI.dcm")).expect("RG2");
    assert_eq!(rg2.size_mm(), Some((352.0, 428.0)));
    assert_eq!(
        rg2.spacing.describe(),
        "0.200 × 0.200 mm per pixel at the patient"
    );
}

#[test]
fn a_file_that_is_not_a_radiograph_is_a_named_error() {
    let dir = std::env::temp_dir().join(format!("twinray-radiograph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let junk = dir.join("junk.dcm");
    std::fs::write(&junk, b"not dicom at all").expect("write");
    let e = load_radiograph(&junk).expect_err("junk");
    assert!(e.to_string().contains("junk.dcm"), "{e}");
    // Truncated: the header survives, the pixel data does not.
    let bytes = std::fs::read(file("RG3_J2KI.dcm")).expect("RG3");
    let cut = dir.join("cut.dcm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let e = load_radiograph(&cut).expect_err("truncated");
    assert!(e.to_string().contains("cut.dcm"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
