//! The golden-image comparison itself: it must pass what nobody could tell apart and fail the
//! regressions a viewer would notice (a 3 % brightness change, the volume shifted by one
//! voxel, one label's colour changed). Also a measuring tool: with `TWINRAY_COMPARE_DIRS=A:B`
//! the ignored test prints the difference of every same-named PNG in two folders.

use twinray_renderer::{Camera, Frustum, RenderOptions, RgbaImage, VolumeRenderer};
use twinray_tests::{compare_with_golden, demo_file, gpu, gpu_lock, read_png_rgb, ImageDifference};
use twinray_transfer_functions::{Preset, TransferFunction};
use twinray_volume::{Geometry, Volume};

/// The golden `demo-ct-bone-anterior` (see render_orientation_and_goldens.rs) rendered from
/// `ct` and `labels` with `tf`.
fn render_demo(
    ct: &twinray_volume::CtVolume,
    labels: &twinray_volume::LabelVolume,
    tf: &TransferFunction,
) -> RgbaImage {
    // Framed on the original demo case, so a moved volume shows as moved.
    let original = twinray_io::read_ct(&demo_file("example_ct.nii.gz")).expect("demo CT");
    let g = *original.geometry();
    let camera = Camera::orbit(
        g.centre_mm(),
        g.bounding_radius_mm() / 15f64.to_radians().sin(),
        0.0,
        0.0,
        Frustum::symmetric(25.0, 1.0),
    );
    let _guard = gpu_lock();
    let mut r = VolumeRenderer::new(gpu(), tf).expect("renderer");
    r.set_volume(
        ct,
        Some(labels),
        twinray_transfer_functions::DensityRange::CT,
    )
    .expect("upload");
    r.render(&camera, &RenderOptions::default(), [256, 256])
        .expect("render")
        .0
}

#[test]
fn the_comparison_passes_the_same_frame_and_fails_visible_regressions() {
    let ct = twinray_io::read_ct(&demo_file("example_ct.nii.gz")).expect("demo CT");
    let labels = twinray_io::read_labels(&demo_file("spine_report_totalseg_vertebrae.nii.gz"))
        .expect("labels");
    let bone = TransferFunction::new(Preset::load("ct-bone").expect("bone"));
    let same = render_demo(&ct, &labels, &bone);
    let d = compare_with_golden("demo-ct-bone-anterior", &same);
    println!("the same frame: {d}");
    assert!(d.is_within_tolerance(), "the same frame: {d}");

    // 3 % brighter.
    let mut brighter = same.clone();
    for p in brighter.pixels.chunks_exact_mut(4) {
        for c in &mut p[..3] {
            *c = (f32::from(*c) * 1.03).round().min(255.0) as u8;
        }
    }
    let d = compare_with_golden("demo-ct-bone-anterior", &brighter);
    println!("3 % brighter: {d}");
    assert!(!d.is_within_tolerance(), "3 % brighter must fail: {d}");

    // The volume one voxel to the patient's left.
    let g = *ct.geometry();
    let mut moved = g.patient_from_voxel;
    moved.w_axis += moved.x_axis;
    let shift = |v: &Geometry| Geometry::new(v.dims, moved).expect("grid");
    let ct_moved = Volume::new(shift(&g), ct.voxels().to_vec()).expect("ct");
    let labels_moved =
        Volume::new(shift(labels.geometry()), labels.voxels().to_vec()).expect("labels");
    let d = compare_with_golden(
        "demo-ct-bone-anterior",
        &render_demo(&ct_moved, &labels_moved, &bone),
    );
    println!("a one-voxel shift: {d}");
    assert!(!d.is_within_tolerance(), "a one-voxel shift must fail: {d}");

    // L3 (id 29) in another colour.
    let mut recoloured = bone.clone();
    recoloured.labels.set_colour(29, [0.2, 0.9, 0.2]);
    let d = compare_with_golden(
        "demo-ct-bone-anterior",
        &render_demo(&ct, &labels, &recoloured),
    );
    println!("a changed label colour: {d}");
    assert!(
        !d.is_within_tolerance(),
        "a changed label colour must fail: {d}"
    );
}

#[test]
#[ignore = "a measuring tool: TWINRAY_COMPARE_DIRS=A:B prints the differences"]
fn print_differences_between_two_folders() {
    let Ok(dirs) = std::env::var("TWINRAY_COMPARE_DIRS") else {
        println!("set TWINRAY_COMPARE_DIRS=A:B");
        return;
    };
    let (a, b) = dirs.split_once(':').expect("A:B");
    let mut names: Vec<_> = std::fs::read_dir(a)
        .expect("folder A")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".png"))
        .collect();
    names.sort();
    for name in names {
        let (w, h, x) = read_png_rgb(&std::path::Path::new(a).join(&name)).expect("png A");
        let Ok((w2, h2, y)) = read_png_rgb(&std::path::Path::new(b).join(&name)) else {
            continue;
        };
        assert_eq!((w, h), (w2, h2), "{name:?}");
        println!(
            "{}: {}",
            name.to_string_lossy(),
            ImageDifference::between(&x, &y, w, h)
        );
    }
}
