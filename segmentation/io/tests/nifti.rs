//! NIfTI reading on real files, round trips, and hostile input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use glam::DVec3;
use twinray_io::{read_ct, read_labels, write_ct, write_labels, NiftiError};

fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/demo")
        .join(name)
}

fn totalseg(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/ct/totalsegmentator")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twinray-seg-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

#[test]
fn example_ct_loads_with_its_geometry_and_hu_range() {
    let ct = read_ct(&demo("example_ct.nii.gz")).expect("example_ct loads");
    let g = ct.geometry();
    assert_eq!(g.dims, [122, 101, 112]);
    for s in g.spacing_mm() {
        assert!((s - 3.0).abs() < 1e-4, "3 mm voxels, got {s}");
    }
    let (lo, hi) = ct
        .voxels()
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (-1207.0, 3382.0), "HU range from the data README");
    // An axial volume: i runs along the patient's left-right axis.
    let i_axis = g.patient_from_voxel.x_axis;
    assert!(i_axis.x.abs() > 2.9, "i axis is along x: {i_axis:?}");
}

#[test]
fn vertebra_labels_share_the_ct_grid_and_hold_ids_26_to_33() {
    let ct = read_ct(&demo("example_ct.nii.gz")).expect("ct");
    let labels = read_labels(&demo("spine_report_totalseg_vertebrae.nii.gz")).expect("labels");
    assert!(labels.geometry().same_grid(ct.geometry(), 0.01));
    let mut present: Vec<u16> = labels.voxels().iter().copied().filter(|&v| v > 0).collect();
    present.sort_unstable();
    present.dedup();
    assert_eq!(present, (26..=33).collect::<Vec<_>>());
    // The spine is posterior: label voxels have a larger LPS y than the volume's centre.
    let g = labels.geometry();
    let (mut sum, mut n) = (0.0, 0.0);
    for k in 0..g.dims[2] {
        for j in 0..g.dims[1] {
            for i in 0..g.dims[0] {
                if labels.get(i, j, k).is_some_and(|&v| v > 0) {
                    sum += g
                        .patient_from_index(DVec3::new(i as f64, j as f64, k as f64))
                        .y;
                    n += 1.0;
                }
            }
        }
    }
    assert!(
        sum / n > g.centre_mm().y + 20.0,
        "vertebrae sit posterior (LPS +y)"
    );
    // L1 (31) is superior to L5 (27): larger LPS z.
    let mean_z = |id: u16| {
        let (mut s, mut c) = (0.0, 0.0);
        for k in 0..g.dims[2] {
            for j in 0..g.dims[1] {
                for i in 0..g.dims[0] {
                    if labels.get(i, j, k) == Some(&id) {
                        s += g
                            .patient_from_index(DVec3::new(i as f64, j as f64, k as f64))
                            .z;
                        c += 1.0;
                    }
                }
            }
        }
        s / c
    };
    assert!(mean_z(31) > mean_z(27) + 50.0, "L1 above L5");
}

#[test]
fn las_label_map_lines_up_with_its_dicom_orientation() {
    // example_seg_dicom has a LAS affine: voxel (i, j, k) is DICOM column i, row 511 - j.
    let path = totalseg("example_seg_dicom.nii.gz");
    let labels = read_labels(&path).expect("example_seg_dicom loads");
    let g = labels.geometry();
    assert_eq!(g.dims, [512, 512, 20]);
    let m = g.patient_from_voxel;
    // LAS -> LPS: i runs to the patient's left (+x), j runs anterior (-y), k superior (+z).
    assert!(m.x_axis.x > 0.9, "i towards left: {m:?}");
    assert!(m.y_axis.y < -0.9, "j towards anterior: {m:?}");
    assert!(m.z_axis.z > 1.9, "k towards head, 2 mm: {m:?}");
}

#[test]
fn write_then_read_preserves_voxels_and_affine() {
    let ct = read_ct(&demo("example_ct.nii.gz")).expect("ct");
    for name in ["roundtrip.nii", "roundtrip.nii.gz"] {
        let path = scratch(name);
        write_ct(&path, &ct).expect("write");
        let back = read_ct(&path).expect("read back");
        assert_eq!(back.voxels(), ct.voxels());
        let (a, b) = (
            back.geometry().patient_from_voxel,
            ct.geometry().patient_from_voxel,
        );
        assert!(a.abs_diff_eq(b, 1e-3), "{a:?} vs {b:?}");
    }
    let labels = read_labels(&demo("spine_report_totalseg_vertebrae.nii.gz")).expect("labels");
    let path = scratch("labels.nii.gz");
    write_labels(&path, &labels).expect("write labels");
    assert_eq!(read_labels(&path).expect("read").voxels(), labels.voxels());
}

#[test]
fn bad_files_give_errors_that_name_them() {
    let missing = scratch("does-not-exist.nii.gz");
    let err = read_ct(&missing).expect_err("missing");
    assert!(matches!(err, NiftiError::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.nii.gz"));

    let text = scratch("notes.nii");
    std::fs::write(&text, b"this is not a NIfTI file at all, just some text").expect("write");
    let err = read_ct(&text).expect_err("text file");
    assert!(err.to_string().contains("notes.nii"), "{err}");

    let empty = scratch("empty.nii");
    std::fs::write(&empty, b"").expect("write");
    assert!(read_ct(&empty).is_err());

    // Truncated copies, compressed and not: every cut gives an error, never a panic.
    let original = std::fs::read(demo("spine_report_totalseg_vertebrae.nii.gz")).expect("read");
    for cut in [10, 200, 1000, original.len() / 2, original.len() - 10] {
        let path = scratch(&format!("cut-{cut}.nii.gz"));
        std::fs::write(&path, &original[..cut]).expect("write");
        let err = read_labels(&path).expect_err("truncated gz");
        assert!(
            err.to_string().contains(&format!("cut-{cut}.nii.gz")),
            "{err}"
        );
    }
    let ct = read_ct(&demo("example_ct.nii.gz")).expect("ct");
    let raw = scratch("raw.nii");
    write_ct(&raw, &ct).expect("write");
    let bytes = std::fs::read(&raw).expect("read");
    let cut = scratch("raw-cut.nii");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).expect("write");
    assert!(matches!(read_ct(&cut), Err(NiftiError::Truncated { .. })));

    // A header that claims an absurd grid is refused before allocating.
    let mut huge = bytes[..352].to_vec();
    for (i, d) in [3i16, 32767, 32767, 32767].iter().enumerate() {
        huge[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    let path = scratch("huge.nii");
    std::fs::write(&path, &huge).expect("write");
    let err = read_ct(&path).expect_err("huge grid");
    assert!(err.to_string().contains("voxels"), "{err}");

    // A CT is not a label map.
    let err = read_labels(&demo("example_ct.nii.gz")).expect_err("CT as labels");
    assert!(matches!(err, NiftiError::NotLabels { .. }), "{err}");
}

#[test]
fn liver_is_on_the_patients_right_and_spleen_on_the_left() {
    // Real anatomy pins the left-right axis: LPS +x is the patient's left.
    let labels = read_labels(&totalseg("example_seg.nii.gz")).expect("example_seg loads");
    let g = labels.geometry();
    let centroid_x = |id: u16| {
        let (mut s, mut n) = (0.0, 0.0);
        for k in 0..g.dims[2] {
            for j in 0..g.dims[1] {
                for i in 0..g.dims[0] {
                    if labels.get(i, j, k) == Some(&id) {
                        s += g
                            .patient_from_index(DVec3::new(i as f64, j as f64, k as f64))
                            .x;
                        n += 1.0;
                    }
                }
            }
        }
        assert!(n > 0.0, "label {id} present");
        s / n
    };
    let (liver, spleen) = (centroid_x(5), centroid_x(1));
    assert!(
        liver + 50.0 < spleen,
        "liver x {liver:.0} mm must be right of spleen x {spleen:.0} mm"
    );
}

#[test]
fn enormous_float64_header_is_refused_before_inflating_naming_its_size() {
    // 2048x2048x1024 float64 is 32 GiB inflated and 16 GiB as a float32 CT; the file is a
    // 352-byte header, gzipped. Refusing it from the header (not as Truncated after trying to
    // allocate and inflate) is what keeps a small hostile gzip from taking the machine.
    let path = scratch("enormous_f64.nii.gz");
    let file = std::fs::File::create(&path).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(&common::float64_header([2048, 2048, 1024]))
        .expect("header");
    gz.finish().expect("finish");
    let err = read_ct(&path).expect_err("refused");
    assert!(matches!(err, NiftiError::Unsupported { .. }), "{err:?}");
    let message = err.to_string();
    for needle in [
        "enormous_f64.nii.gz",
        "2048x2048x1024",
        "32.0 GiB uncompressed",
        "16.0 GiB of memory",
        "8.0 GiB",
    ] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    let err = read_labels(&path).expect_err("refused as labels too");
    assert!(err.to_string().contains("8.0 GiB of memory"), "{err}");
}

#[test]
fn float64_gzip_is_decoded_exactly_and_truncation_is_reported() {
    let value = |i: usize, j: usize, k: usize| (i as f64 - 7.5) * 0.1 + (j * 40 + k * 900) as f64;
    let path = scratch("small_f64.nii.gz");
    // 90x70x40 float64 is 2 MB of voxels: several 1 MiB blocks.
    common::write_float64_gz(&path, [90, 70, 40], value);
    let ct = read_ct(&path).expect("loads");
    assert_eq!(ct.geometry().dims, [90, 70, 40]);
    for k in 0..40 {
        for j in 0..70 {
            for i in 0..90 {
                assert_eq!(*ct.get(i, j, k).expect("voxel"), value(i, j, k) as f32);
            }
        }
    }
    // Integral values make a label map; a stream cut inside a block is Truncated, with the
    // bytes it held.
    let labels_path = scratch("labels_f64.nii.gz");
    common::write_float64_gz(&labels_path, [90, 70, 40], |i, j, k| {
        ((i + j + k) % 9) as f64
    });
    let labels = read_labels(&labels_path).expect("labels");
    assert_eq!(*labels.get(5, 6, 7).expect("voxel"), 0);
    assert_eq!(*labels.get(5, 6, 8).expect("voxel"), 1);
    let raw = scratch("small_f64_cut.nii");
    let mut bytes = common::float64_header([90, 70, 40]);
    bytes.extend((0..1_500_000).map(|n| (n % 251) as u8));
    std::fs::write(&raw, &bytes).expect("write");
    match read_ct(&raw) {
        Err(NiftiError::Truncated {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (90 * 70 * 40 * 8, 1_500_000)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_in_memory_nifti_is_the_written_file() {
    let ct = read_ct(&demo("example_ct.nii.gz")).expect("CT");
    let labels = read_labels(&demo("spine_report_totalseg_vertebrae.nii.gz")).expect("labels");
    let dir = std::env::temp_dir().join(format!("twinray-nifti-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let (ct_path, labels_path) = (dir.join("ct.nii"), dir.join("labels.nii"));
    write_ct(&ct_path, &ct).expect("write CT");
    write_labels(&labels_path, &labels).expect("write labels");
    let ct_bytes = twinray_io::ct_nifti_bytes(&ct, &ct_path).expect("CT bytes");
    let label_bytes = twinray_io::labels_nifti_bytes(&labels, &labels_path).expect("label bytes");
    assert_eq!(ct_bytes, std::fs::read(&ct_path).expect("read"));
    assert_eq!(label_bytes, std::fs::read(&labels_path).expect("read"));
    let back = twinray_io::read_ct_bytes(&ct_bytes, &ct_path).expect("read back");
    assert_eq!(back.voxels(), ct.voxels());
    std::fs::remove_dir_all(&dir).ok();
}
