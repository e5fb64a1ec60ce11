//! DICOM cases the shared data lacks, on small synthetic files written by
//! `segmentation/io/scripts/make_dicom_fixtures.py` (see its docstring for the voxel formulas).

use std::path::{Path, PathBuf};

use glam::DVec3;
use twinray_io::dicom::{load_series, read_frames_hu, read_seg, DicomError, LoadOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dicom")
        .join(name)
}

fn tiny_ct() -> twinray_io::CtVolume {
    load_series(&fixture("tiny_ct"), &LoadOptions::default())
        .expect("tiny_ct loads")
        .ct
}

#[test]
fn tiny_series_mixing_implicit_explicit_and_big_endian_has_exact_voxels_and_geometry() {
    let ct = tiny_ct();
    let g = ct.geometry();
    assert_eq!(g.dims, [15, 11, 5]);
    for k in 0..5 {
        for j in 0..11 {
            for i in 0..15 {
                let expected = 2.0 * (i + 20 * j + 300 * k) as f32 - 1000.0;
                assert_eq!(*ct.get(i, j, k).expect("voxel"), expected, "({i},{j},{k})");
            }
        }
    }
    // i = column (0.5 mm along +x), j = row (0.8 mm along +y), k = +z by 2.5 mm.
    let p = g.patient_from_index(DVec3::new(2.0, 3.0, 4.0));
    assert!(
        p.distance(DVec3::new(-10.0 + 1.0, -20.0 + 2.4, 30.0 + 10.0)) < 1e-9,
        "{p}"
    );
}

#[test]
fn enhanced_ct_uses_per_frame_positions_and_rescale() {
    let loaded = load_series(&fixture("enhanced_ct.dcm"), &LoadOptions::default())
        .expect("enhanced CT loads");
    let ct = loaded.ct;
    assert_eq!(ct.geometry().dims, [15, 11, 4]);
    let origin = ct.geometry().patient_from_index(DVec3::ZERO);
    assert!(
        origin.distance(DVec3::new(-10.0, -20.0, 30.0)) < 1e-9,
        "{origin}"
    );
    for k in 0..4 {
        for j in 0..11 {
            for i in 0..15 {
                let expected = (i + 16 * j + 200 * k) as f32;
                assert_eq!(*ct.get(i, j, k).expect("voxel"), expected, "({i},{j},{k})");
            }
        }
    }
    let z = ct
        .geometry()
        .patient_from_index(DVec3::new(0.0, 0.0, 3.0))
        .z;
    assert!((z - 37.5).abs() < 1e-9, "last slice at z {z}");
}

#[test]
fn jpeg2000_stream_signedness_yields_to_pixel_representation() {
    let (dims, hu) = read_frames_hu(&fixture("j2k_signed_mismatch.dcm")).expect("decodes");
    assert_eq!(dims, [64, 64, 1]);
    // pydicom gives -1000, -990, ... for this file.
    assert_eq!(&hu[..5], &[-1000.0, -990.0, -980.0, -970.0, -960.0]);
}

#[test]
fn unsupported_transfer_syntax_is_named() {
    let err = read_frames_hu(&fixture("unsupported_ts.dcm")).expect_err("MPEG2 is not decodable");
    assert!(
        matches!(&err, DicomError::UnsupportedTransferSyntax { uid, .. } if uid == "1.2.840.10008.1.2.4.100"),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("MPEG2") && message.contains("unsupported_ts.dcm"),
        "{message}"
    );
}

fn check_boxes(labels: &twinray_io::LabelVolume) {
    let boxes = [
        (1u16, (2, 6), (3, 7), (1, 3)),
        (2, (10, 13), (5, 9), (0, 4)),
    ];
    let mut counted = 0;
    for k in 0..5 {
        for j in 0..11 {
            for i in 0..15 {
                let inside = boxes.iter().find(|(_, (i0, i1), (j0, j1), (k0, k1))| {
                    (*i0..=*i1).contains(&i) && (*j0..=*j1).contains(&j) && (*k0..=*k1).contains(&k)
                });
                let got = *labels.get(i, j, k).expect("voxel");
                match inside {
                    Some((id, ..)) => {
                        assert_eq!(got, *id, "({i},{j},{k})");
                        counted += 1;
                    }
                    // Includes the fractional file's ring of value 100 (< 255 / 2).
                    None => assert_eq!(got, 0, "({i},{j},{k})"),
                }
            }
        }
    }
    assert_eq!(counted, 5 * 5 * 3 + 4 * 5 * 5);
}

#[test]
fn binary_seg_with_unaligned_1bit_frames_lands_on_the_ct_grid() {
    let ct = tiny_ct();
    let import = read_seg(&fixture("seg_binary.dcm"), ct.geometry()).expect("SEG imports");
    assert!(import.warnings.is_empty(), "{:?}", import.warnings);
    let names: Vec<(u16, &str)> = import
        .segments
        .iter()
        .map(|s| (s.number, s.label.as_str()))
        .collect();
    assert_eq!(names, [(1, "liver"), (2, "aorta")]);
    check_boxes(&import.labels);
}

#[test]
fn fractional_seg_is_thresholded_at_half() {
    let ct = tiny_ct();
    let import = read_seg(&fixture("seg_fractional.dcm"), ct.geometry()).expect("SEG imports");
    check_boxes(&import.labels);
}

#[test]
fn truncated_seg_is_an_error_not_a_panic() {
    let bytes = std::fs::read(fixture("seg_binary.dcm")).expect("read");
    let dir = std::env::temp_dir().join(format!("twinray-dicom-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ct = tiny_ct();
    for cut in [200, bytes.len() / 2, bytes.len() - 10] {
        let path = dir.join(format!("seg_cut{cut}.dcm"));
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let err = read_seg(&path, ct.geometry()).expect_err("truncated SEG must fail");
        assert!(err.to_string().contains(&format!("seg_cut{cut}")), "{err}");
    }
}
