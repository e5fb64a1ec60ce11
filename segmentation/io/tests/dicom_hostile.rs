//! Hostile DICOM input (issue 14): files edited in memory from the committed fixtures or the
//! shared WG04 data, written to a temporary folder, must give errors that name the file, never
//! a panic or an unbounded allocation.

mod common;

use common::{ct_data, scratch};

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{open_file, DefaultDicomObject};
use twinray_io::dicom::{
    load_series, read_frames_hu, read_seg, scan, DicomError, GeometryPolicy, LoadOptions,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dicom")
        .join(name)
}

/// Writes `src` to `dst` after `edit` changed it in memory.
fn edited(src: &Path, dst: &Path, edit: impl FnOnce(&mut DefaultDicomObject)) {
    let mut obj = open_file(src).expect("fixture opens");
    edit(&mut obj);
    obj.write_to_file(dst).expect("write edited copy");
}

fn tiny_ct() -> twinray_io::CtVolume {
    load_series(&fixture("tiny_ct"), &LoadOptions::default())
        .expect("tiny_ct loads")
        .ct
}

fn put_ul(obj: &mut DefaultDicomObject, tag: dicom_core::Tag, v: u32) {
    obj.put(DataElement::new(tag, VR::UL, PrimitiveValue::from(v)));
}

#[test]
fn seg_with_absurd_rows_and_columns_is_refused_before_any_arithmetic() {
    let ct = tiny_ct();
    let dir = scratch("seg_dims");
    // Rows/Columns are US in the standard; a UL (or IS) value of 2^32 - 1 made rows*cols*frames
    // overflow (a panic in debug, a wrap past the voxel cap and an out-of-bounds index in
    // release). 0 and 65535x65535 must be refused too; 4000x4000 fits the voxel cap but the
    // pixel data holds 18 frames of 15x11, so it is truncated.
    let cases: [(&str, u32, u32, &str); 4] = [
        ("u32max", u32::MAX, u32::MAX, "Rows (0028,0010)"),
        ("zero", 0, 15, "Rows (0028,0010)"),
        ("huge", 65_535, 65_535, "voxels"),
        ("truncated", 4_000, 4_000, "truncated"),
    ];
    for (name, rows, cols, needle) in cases {
        let path = dir.join(format!("seg_{name}.dcm"));
        edited(&fixture("seg_binary.dcm"), &path, |obj| {
            put_ul(obj, tags::ROWS, rows);
            put_ul(obj, tags::COLUMNS, cols);
        });
        let err = read_seg(&path, ct.geometry()).expect_err("absurd SEG must be refused");
        let message = err.to_string();
        assert!(
            message.contains(&format!("seg_{name}.dcm")) && message.contains(needle),
            "{name}: {message}"
        );
    }
}

#[test]
fn frames_with_zero_or_absurd_dimensions_are_refused() {
    let dir = scratch("frame_dims");
    let slice = std::fs::read_dir(fixture("tiny_ct"))
        .expect("tiny_ct")
        .map(|e| e.expect("entry").path())
        .min()
        .expect("a slice");
    for (name, rows, cols, needle) in [
        ("rows0", 0u16, 15u16, "Rows (0028,0010)"),
        ("cols0", 11, 0, "Columns (0028,0011)"),
        ("giant", 65_535, 65_535, "voxels"),
    ] {
        let path = dir.join(format!("{name}.dcm"));
        edited(&slice, &path, |obj| {
            obj.put(DataElement::new(
                tags::ROWS,
                VR::US,
                PrimitiveValue::from(rows),
            ));
            obj.put(DataElement::new(
                tags::COLUMNS,
                VR::US,
                PrimitiveValue::from(cols),
            ));
        });
        let err = read_frames_hu(&path).expect_err("must be refused");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{name}.dcm")) && message.contains(needle),
            "{name}: {message}"
        );
    }
}

/// Copies tiny_ct, moving the slice at z = 35 mm by `shift` (LPS mm).
fn tiny_ct_with_moved_slice(name: &str, shift: [f64; 3]) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let mut moved = None;
    for entry in std::fs::read_dir(fixture("tiny_ct")).expect("tiny_ct") {
        let src = entry.expect("entry").path();
        let dst = dir.join(src.file_name().expect("name"));
        edited(&src, &dst, |obj| {
            let ipp = obj
                .element(tags::IMAGE_POSITION_PATIENT)
                .expect("IPP")
                .to_multi_float64()
                .expect("floats");
            if ipp[2] == 35.0 {
                let v: Vec<String> = (0..3).map(|a| format!("{}", ipp[a] + shift[a])).collect();
                obj.put(DataElement::new(
                    tags::IMAGE_POSITION_PATIENT,
                    VR::DS,
                    PrimitiveValue::Strs(v.into_iter().collect()),
                ));
                moved = Some(dst.clone());
            }
        });
    }
    (dir, moved.expect("a slice at z = 35"))
}

#[test]
fn absurd_image_position_is_refused_naming_the_slice() {
    for (name, shift) in [
        ("in_plane", [1e300, 0.0, 0.0]),
        ("along_normal", [0.0, 0.0, 1e300]),
        ("in_plane_1e6", [0.0, 1e6, 0.0]),
    ] {
        let (dir, moved) = tiny_ct_with_moved_slice(name, shift);
        let err = load_series(&dir, &LoadOptions::default()).expect_err("must be refused");
        let message = err.to_string();
        let file = moved
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(
            message.contains(&file) && message.contains("ImagePositionPatient"),
            "{name}: {message}"
        );
        assert!(
            matches!(err, DicomError::BadValue { .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn tilted_stack_whose_regular_grid_would_exceed_the_voxel_cap_is_refused() {
    // Within the 10 m span, but 0.1 mm pixels shifted 9 m diagonally over 5 slices would need a
    // 90512x90512x5 grid: refused from the f64 sizes, before any usize arithmetic.
    let dir = scratch("series_headers");
    let first = &scan(&fixture("tiny_ct")).expect("scan").series[0];
    let mut series = first.clone();
    series.slices.sort_by(|a, b| {
        let z = |h: &twinray_io::dicom::SliceHeader| h.position_mm.expect("ipp").z;
        z(a).total_cmp(&z(b))
    });
    for (k, h) in series.slices.iter_mut().enumerate() {
        h.rows = 512;
        h.columns = 512;
        h.pixel_spacing_mm = Some([0.1, 0.1]);
        let shift = if k == 4 { 9000.0 } else { 0.0 };
        h.position_mm = Some(glam::DVec3::new(shift, shift, 2.5 * k as f64));
        h.path = dir.join(format!("slice{k}.dcm"));
    }
    let err = series
        .plan(GeometryPolicy::Resample)
        .expect_err("grid too large");
    let message = err.to_string();
    assert!(
        message.contains("slice4.dcm") && message.contains("voxels"),
        "{message}"
    );
}

/// Reads a little-endian u32 of the RLE header.
fn word(fragment: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(fragment[4 * i..4 * i + 4].try_into().expect("4 bytes"))
}

fn set_word(fragment: &mut [u8], i: usize, v: u32) {
    fragment[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

/// Damaged copies of a real RLE file (CT1_RLE: one 512x512 frame of 16-bit samples, so two
/// segments, high bytes then low bytes): each must be refused by the header and segment checks
/// as `CorruptRle` naming the file, before dicom-rs's decoder sees it. Some of these made that
/// decoder panic (index out of bounds on a short segment, slicing a fragment shorter than its
/// header); before the checks, `catch_unwind` turned those into a generic `Decode` error.
#[test]
fn damaged_rle_headers_and_segments_are_refused_before_decoding() {
    let source = ct_data("wg04_codecs/CT1_RLE.dcm");
    let dir = scratch("rle");
    type Damage = fn(&mut Vec<u8>);
    let cases: [(&str, Damage, &str); 10] = [
        ("count0", |f| set_word(f, 0, 0), "0 segments"),
        ("count16", |f| set_word(f, 0, 16), "16 segments"),
        (
            "count_huge",
            |f| set_word(f, 0, u32::MAX),
            "4294967295 segments",
        ),
        ("count_mismatch", |f| set_word(f, 0, 1), "need 2"),
        (
            "offset_in_header",
            |f| set_word(f, 1, 12),
            "inside the 64-byte header",
        ),
        (
            "offsets_decreasing",
            |f| {
                let first = word(f, 1);
                set_word(f, 2, first - 1);
            },
            "not increasing",
        ),
        (
            "offset_beyond",
            |f| {
                let len = u32::try_from(f.len()).expect("small");
                set_word(f, 2, len + 100);
            },
            "beyond",
        ),
        // The first segment cut to 2 bytes: it decodes to at most 128 of the 262144 bytes.
        (
            "short_segment",
            |f| {
                let first = word(f, 1);
                set_word(f, 2, first + 2);
            },
            "decodes to",
        ),
        // The fragment cut in the middle of its last segment.
        (
            "cut_fragment",
            |f| {
                let keep = (word(f, 2) as usize + f.len()) / 2;
                f.truncate(keep);
            },
            "decodes to",
        ),
        ("tiny_fragment", |f| f.truncate(2), "2 bytes"),
    ];
    for (name, damage, needle) in cases {
        let path = dir.join(format!("{name}.dcm"));
        edited(&source, &path, |obj| {
            let found = obj.update_value(tags::PIXEL_DATA, |value| {
                let fragments = value.fragments_mut().expect("encapsulated");
                damage(&mut fragments[0]);
            });
            assert!(found, "PixelData present");
        });
        let err = read_frames_hu(&path).expect_err("damaged RLE must be refused");
        let message = err.to_string();
        assert!(
            matches!(err, DicomError::CorruptRle { frame: 0, .. }),
            "{name}: not a CorruptRle: {message}"
        );
        assert!(
            message.contains(&format!("{name}.dcm")) && message.contains(needle),
            "{name}: {message}"
        );
    }
}
