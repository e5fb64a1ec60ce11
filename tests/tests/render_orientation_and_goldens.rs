//! Patient orientation through a real NIfTI round trip, and image regression on the demo CT.

use glam::{DMat4, DVec3, DVec4};
use twinray_io::{read_ct, read_labels, write_ct};
use twinray_renderer::{Camera, Frustum, RenderOptions, VolumeRenderer};
use twinray_tests::{assert_matches_golden, covered_centroid, demo_file, gpu, gpu_lock};
use twinray_transfer_functions::{Preset, TransferFunction};
use twinray_volume::{Geometry, Volume};

#[test]
fn a_marker_on_the_patients_left_renders_on_the_viewers_right() {
    // Stored the way scanners often export NIfTI: i runs towards the patient's right (RAS x
    // decreasing with i), so the marker at high i is on the patient's LEFT.
    let dims = [40, 40, 40];
    let ras_from_voxel = DMat4::from_cols(
        DVec4::new(-1.0, 0.0, 0.0, 0.0),
        DVec4::new(0.0, 1.0, 0.0, 0.0),
        DVec4::new(0.0, 0.0, 1.0, 0.0),
        DVec4::new(19.5, -19.5, -19.5, 1.0),
    );
    let lps_from_ras = DMat4::from_diagonal(DVec4::new(-1.0, -1.0, 1.0, 1.0));
    let g = Geometry::new(dims, lps_from_ras * ras_from_voxel).expect("grid");
    let ct = Volume::from_fn(g, |i, j, k| {
        let marker = (32..36).contains(&i) && (18..22).contains(&j) && (18..22).contains(&k);
        if marker {
            1500.0
        } else {
            -1000.0
        }
    });
    let path = std::env::temp_dir().join(format!("twinray-orient-{}.nii", std::process::id()));
    write_ct(&path, &ct).expect("write NIfTI");
    let loaded = read_ct(&path).expect("read NIfTI");
    let marker_lps = loaded
        .geometry()
        .patient_from_index(DVec3::new(33.5, 19.5, 19.5));
    assert!(
        marker_lps.x > 10.0,
        "LPS +x is the patient's left: {marker_lps}"
    );

    let tf = TransferFunction::new(Preset::load("ct-bone").expect("bone"));
    let camera = Camera::orbit(
        loaded.geometry().centre_mm(),
        200.0,
        0.0,
        0.0,
        Frustum::symmetric(30.0, 1.0),
    );
    let _guard = gpu_lock();
    let mut r = VolumeRenderer::new(gpu(), &tf).expect("renderer");
    r.set_volume(&loaded, None, twinray_transfer_functions::DensityRange::CT)
        .expect("upload");
    let (image, _) = r
        .render(&camera, &RenderOptions::default(), [128, 128])
        .expect("render");
    let at = covered_centroid(&image, 30).expect("marker visible");
    assert!(at[0] > 74.0, "marker must be right of centre, at {at:?}");
    assert!(
        (at[1] - 64.0).abs() < 6.0,
        "marker at mid height, at {at:?}"
    );
}

/// The demo CT with vertebra labels, three presets from two viewpoints, against goldens.
#[test]
fn demo_ct_matches_goldens() {
    let ct = read_ct(&demo_file("example_ct.nii.gz")).expect("demo CT");
    let labels = read_labels(&demo_file("spine_report_totalseg_vertebrae.nii.gz")).expect("labels");
    let size = [256, 256];
    let _guard = gpu_lock();
    let tf = TransferFunction::new(Preset::load("ct-bone").expect("bone"));
    let mut r = VolumeRenderer::new(gpu(), &tf).expect("renderer");
    r.set_volume(
        &ct,
        Some(&labels),
        twinray_transfer_functions::DensityRange::CT,
    )
    .expect("upload");
    let g = *ct.geometry();
    let distance = g.bounding_radius_mm() / 15f64.to_radians().sin();
    let mut failures = Vec::new();
    for preset in ["ct-bone", "ct-soft-tissue", "mip"] {
        r.set_transfer_function(&TransferFunction::new(
            Preset::load(preset).expect("preset"),
        ))
        .expect("set transfer function");
        for (view, azimuth, elevation) in [("anterior", 0.0, 0.0), ("left-oblique", 30.0, 15.0)] {
            let camera = Camera::orbit(
                g.centre_mm(),
                distance,
                azimuth,
                elevation,
                Frustum::symmetric(25.0, 1.0),
            );
            let (image, _) = r
                .render(&camera, &RenderOptions::default(), size)
                .expect("render");
            let name = format!("demo-{preset}-{view}");
            // Collect every mismatch so one run reports (and writes diffs for) all of them.
            if let Err(e) = std::panic::catch_unwind(|| assert_matches_golden(&name, &image)) {
                failures.push(
                    e.downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| name.clone()),
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
