//! DICOM cases the shared data lacks, on small synthetic files written by
//! `segmentation/io/scripts/make_dicom_fixtures.py` (see its docstring for the voxel formulas).

use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{open_file, InMemDicomObject};
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

/// One frame of a synthetic SEG: its segment, ImagePositionPatient and which pixels are set
/// (row-major, `rows * cols`).
struct SegFrame {
    segment: u16,
    position: [f64; 3],
    on: Vec<bool>,
}

fn ds(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|v| format!("{v}")).collect())
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// Writes a binary SEG of `cols` x `rows` axial frames with `spacing` (between rows, between
/// columns), keeping seg_binary.dcm's segments (1 liver, 2 aorta) and everything else.
fn write_seg(path: &Path, cols: u16, rows: u16, spacing: [f64; 2], frames: &[SegFrame]) {
    let mut obj = open_file(fixture("seg_binary.dcm")).expect("fixture");
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    obj.put(us(tags::ROWS, rows));
    obj.put(us(tags::COLUMNS, cols));
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from(frames.len().to_string()),
    ));
    let orientation = InMemDicomObject::from_element_iter([DataElement::new(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
    )]);
    let measures = InMemDicomObject::from_element_iter([DataElement::new(
        tags::PIXEL_SPACING,
        VR::DS,
        ds(&spacing),
    )]);
    obj.put(sequence(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            sequence(tags::PLANE_ORIENTATION_SEQUENCE, vec![orientation]),
            sequence(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]),
        ])],
    ));
    let per_frame = frames
        .iter()
        .map(|f| {
            let id = InMemDicomObject::from_element_iter([DataElement::new(
                tags::REFERENCED_SEGMENT_NUMBER,
                VR::US,
                PrimitiveValue::from(f.segment),
            )]);
            let position = InMemDicomObject::from_element_iter([DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds(&f.position),
            )]);
            InMemDicomObject::from_element_iter([
                sequence(tags::SEGMENT_IDENTIFICATION_SEQUENCE, vec![id]),
                sequence(tags::PLANE_POSITION_SEQUENCE, vec![position]),
            ])
        })
        .collect();
    obj.put(sequence(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        per_frame,
    ));
    let bits: Vec<bool> = frames.iter().flat_map(|f| f.on.iter().copied()).collect();
    let mut packed = vec![0u8; bits.len().div_ceil(8)];
    for (n, _) in bits.iter().enumerate().filter(|(_, on)| **on) {
        packed[n / 8] |= 1 << (n % 8);
    }
    if packed.len() % 2 == 1 {
        packed.push(0);
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(packed),
    ));
    obj.write_to_file(path).expect("write SEG");
}

/// SEG frames for a box of SEG pixels (columns c0..=c1, rows r0..=r1) on the planes `ks` of
/// tiny_ct (z = 30 + 2.5 k), with the first SEG pixel centred at `first` (x, y).
fn box_frames(
    segment: u16,
    [cols, rows]: [usize; 2],
    first: [f64; 2],
    (c0, c1): (usize, usize),
    (r0, r1): (usize, usize),
    ks: &[usize],
) -> Vec<SegFrame> {
    ks.iter()
        .map(|&k| SegFrame {
            segment,
            position: [first[0], first[1], 30.0 + 2.5 * k as f64],
            on: (0..rows * cols)
                .map(|n| (c0..=c1).contains(&(n % cols)) && (r0..=r1).contains(&(n / cols)))
                .collect(),
        })
        .collect()
}

/// A SEG at half the CT's in-plane resolution (then also with planes every other CT slice)
/// labels every CT voxel whose centre lies in a segment's box: each CT voxel takes the nearest
/// SEG pixel of the nearest SEG plane. Placing SEG pixels at their nearest CT voxel instead
/// labelled one CT column in two (and one slice in two), leaving holes, without a warning.
#[test]
fn seg_coarser_than_its_ct_labels_every_voxel_of_its_boxes() {
    let ct = tiny_ct();
    let g = ct.geometry();
    // SEG pixels are 1.0 mm (columns) x 1.6 mm (rows): two CT voxels each way. The first SEG
    // pixel is centred between CT voxels (0,0) and (1,1).
    let (cols, rows) = (8usize, 6usize);
    let first = [-9.75, -19.6];
    let (dc, dr) = (1.0, 1.6);
    let liver_box = ((1, 3), (2, 3));
    let aorta_box = ((5, 6), (2, 4));
    let dir = std::env::temp_dir().join(format!("twinray-dicom-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (name, planes) in [("in_plane", &[0, 1, 2, 3, 4][..]), ("and_z", &[0, 2, 4])] {
        let mut frames = box_frames(1, [cols, rows], first, liver_box.0, liver_box.1, planes);
        frames.extend(box_frames(
            2,
            [cols, rows],
            first,
            aorta_box.0,
            aorta_box.1,
            planes,
        ));
        let path = dir.join(format!("seg_half_resolution_{name}.dcm"));
        write_seg(&path, cols as u16, rows as u16, [dr, dc], &frames);
        let import = read_seg(&path, g).expect("SEG imports");
        assert!(
            import
                .warnings
                .iter()
                .any(|w| w.contains("nearest SEG pixel")),
            "{name}: {:?}",
            import.warnings
        );
        for (id, ((c0, c1), (r0, r1))) in [(1u16, liver_box), (2, aorta_box)] {
            // The box's edges in patient space: half a SEG pixel beyond its outer pixel centres.
            let x = (
                first[0] + (c0 as f64 - 0.5) * dc,
                first[0] + (c1 as f64 + 0.5) * dc,
            );
            let y = (
                first[1] + (r0 as f64 - 0.5) * dr,
                first[1] + (r1 as f64 + 0.5) * dr,
            );
            let mut labelled = 0;
            for k in 0..5 {
                for j in 0..11 {
                    for i in 0..15 {
                        let p = g.patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
                        let inside = (x.0..=x.1).contains(&p.x) && (y.0..=y.1).contains(&p.y);
                        let got = *ct_label(&import.labels, i, j, k) == id;
                        assert_eq!(got, inside, "{name}: label {id} at ({i},{j},{k}), {p}");
                        labelled += usize::from(got);
                    }
                }
            }
            // Liver: CT columns 2..=7, rows 4..=7 (6x4); aorta: 10..=13, 4..=9 (4x6); 5 slices.
            assert_eq!(labelled, 6 * 4 * 5, "{name}: label {id}");
        }
    }
}

fn ct_label(labels: &twinray_io::LabelVolume, i: usize, j: usize, k: usize) -> &u16 {
    labels.get(i, j, k).expect("voxel")
}
