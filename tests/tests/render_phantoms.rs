//! Analytic checks of the ray-marcher on phantoms made in code, rendered on lavapipe.

use glam::DVec3;
use twinray_renderer::{Camera, ClipPlane, Frustum, RenderOptions, RgbaImage, VolumeRenderer};
use twinray_tests::{covered_centroid, covered_pixels, gpu, gpu_lock, phantom, solid_preset};
use twinray_transfer_functions::{Blend, Preset, TransferFunction};
use twinray_volume::{CtVolume, LabelVolume, Volume};

fn render(
    ct: &CtVolume,
    labels: Option<&LabelVolume>,
    tf: &TransferFunction,
    camera: &Camera,
    options: &RenderOptions,
    size: [u32; 2],
) -> RgbaImage {
    let _guard = gpu_lock();
    let mut r = VolumeRenderer::new(gpu(), tf).expect("renderer");
    r.set_volume(ct, labels, twinray_transfer_functions::DensityRange::CT)
        .expect("upload");
    r.render(camera, options, size).expect("render").0
}

fn sphere(radius_mm: f64, dims: usize, spacing: [f64; 3]) -> CtVolume {
    phantom([dims; 3], spacing, |p| {
        if p.length() <= radius_mm {
            1000.0
        } else {
            -1000.0
        }
    })
}

fn anterior(distance_mm: f64, fov_deg: f64) -> Camera {
    Camera::orbit(
        DVec3::ZERO,
        distance_mm,
        0.0,
        0.0,
        Frustum::symmetric(fov_deg, 1.0),
    )
}

#[test]
fn a_sphere_renders_as_a_disc_of_the_expected_radius() {
    let radius_mm = 20.0;
    let ct = sphere(radius_mm, 64, [1.0; 3]);
    let tf = TransferFunction::new(solid_preset());
    let (distance, fov, size) = (200.0, 30.0, [256, 256]);
    let image = render(
        &ct,
        None,
        &tf,
        &anterior(distance, fov),
        &RenderOptions::default(),
        size,
    );
    // The silhouette of a sphere seen from distance D has angular radius asin(R / D).
    let tan_half = (fov.to_radians() * 0.5).tan();
    let expected_px = (radius_mm / distance).asin().tan() / tan_half * f64::from(size[1]) * 0.5;
    let measured_px = (covered_pixels(&image, 127) as f64 / std::f64::consts::PI).sqrt();
    assert!(
        (measured_px - expected_px).abs() < 1.5,
        "disc radius {measured_px:.2} px, expected {expected_px:.2} px"
    );
    let centre = covered_centroid(&image, 127).expect("disc is visible");
    assert!((centre[0] - 128.0).abs() < 1.0 && (centre[1] - 128.0).abs() < 1.0);
}

#[test]
fn zero_opacity_renders_pure_background() {
    let ct = sphere(20.0, 48, [1.0; 3]);
    let mut preset = solid_preset();
    for p in &mut preset.opacity {
        p.alpha = 0.0;
    }
    let image = render(
        &ct,
        None,
        &TransferFunction::new(preset),
        &anterior(200.0, 30.0),
        &RenderOptions::default(),
        [64, 64],
    );
    assert!(image.pixels.iter().all(|&b| b == 0), "every byte must be 0");
}

#[test]
fn hiding_a_label_removes_exactly_its_colour() {
    // Two dense cubes side by side along x: label 1 on the patient's right, label 2 on the left.
    let dims = [48, 24, 24];
    let ct = phantom(dims, [1.0; 3], |p| {
        if p.x.abs() > 4.0 && p.x.abs() < 18.0 && p.y.abs() < 8.0 && p.z.abs() < 8.0 {
            800.0
        } else {
            -1000.0
        }
    });
    let labels: LabelVolume = Volume::from_fn(*ct.geometry(), |i, j, k| {
        let p = ct
            .geometry()
            .patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
        if ct.get(i, j, k).is_some_and(|&hu| hu > 0.0) {
            if p.x < 0.0 {
                1
            } else {
                2
            }
        } else {
            0
        }
    });
    let mut tf = TransferFunction::new(solid_preset());
    tf.labels.set_colour(1, [1.0, 0.0, 0.0]);
    tf.labels.set_colour(2, [0.0, 1.0, 0.0]);
    let camera = anterior(160.0, 30.0);
    let options = RenderOptions::default();
    let both = render(&ct, Some(&labels), &tf, &camera, &options, [128, 64]);
    tf.labels.set_visible(1, false);
    let one = render(&ct, Some(&labels), &tf, &camera, &options, [128, 64]);

    let reddish = |img: &RgbaImage| {
        img.pixels
            .chunks_exact(4)
            .filter(|p| p[0] > 64 && p[0] > p[1].saturating_add(32))
            .count()
    };
    assert!(reddish(&both) > 60, "label 1 is visible before hiding");
    assert_eq!(reddish(&one), 0, "no trace of label 1 after hiding it");
    // Label 2's pixels (right half of the image: the patient's left) are untouched.
    for y in 0..64 {
        for x in 64..128 {
            assert_eq!(
                both.pixel(x, y),
                one.pixel(x, y),
                "pixel ({x}, {y}) changed"
            );
        }
    }
}

#[test]
fn mip_shows_a_small_bright_cluster_where_it_projects() {
    let cluster = DVec3::new(10.0, 0.0, -8.0);
    let ct = phantom([48; 3], [1.0; 3], |p| {
        if (p - cluster).abs().max_element() <= 1.5 {
            2000.0
        } else if p.length() < 22.0 {
            40.0
        } else {
            -1000.0
        }
    });
    let tf = TransferFunction::new(Preset::load("mip").expect("mip preset"));
    let camera = anterior(200.0, 30.0);
    let size = [128, 128];
    let image = render(&ct, None, &tf, &camera, &RenderOptions::default(), size);
    let (mut best, mut at) = (0u8, [0u32; 2]);
    for y in 0..size[1] {
        for x in 0..size[0] {
            let v = image.pixel(x, y)[0];
            if v > best {
                best = v;
                at = [x, y];
            }
        }
    }
    let expected = camera.project(cluster, size).expect("cluster in view");
    assert!(best > 200, "the cluster is the brightest thing ({best})");
    assert!(
        (f64::from(at[0]) + 0.5 - expected[0]).abs() < 3.0
            && (f64::from(at[1]) + 0.5 - expected[1]).abs() < 3.0,
        "brightest pixel {at:?}, cluster projects to {expected:?}"
    );
    // Soft tissue around it is far dimmer than the cluster but not black.
    let centre = image.pixel(64, 64)[0];
    assert!(centre > 20 && centre < 150, "soft tissue level {centre}");
}

#[test]
fn the_clip_plane_removes_the_half_it_should() {
    let ct = sphere(20.0, 48, [1.0; 3]);
    let tf = TransferFunction::new(solid_preset());
    // Keep the patient's left half (x >= 0): in the anterior view, the viewer's right.
    let options = RenderOptions {
        clip_plane: Some(ClipPlane::through(DVec3::ZERO, DVec3::X)),
        ..RenderOptions::default()
    };
    let image = render(&ct, None, &tf, &anterior(200.0, 30.0), &options, [128, 128]);
    let (mut left, mut right) = (0, 0);
    for y in 0..128 {
        for x in 0..128 {
            if image.pixel(x, y)[3] > 127 {
                if x < 63 {
                    left += 1;
                } else if x > 64 {
                    right += 1;
                }
            }
        }
    }
    assert_eq!(left, 0, "the clipped half is gone");
    assert!(right > 600, "the kept half is still there ({right} px)");

    // Clipping from the other side keeps the other half.
    let flipped = RenderOptions {
        clip_plane: Some(ClipPlane::through(DVec3::ZERO, -DVec3::X)),
        ..options
    };
    let image = render(&ct, None, &tf, &anterior(200.0, 30.0), &flipped, [128, 128]);
    let centre = covered_centroid(&image, 127).expect("half disc");
    assert!(
        centre[0] < 60.0,
        "centroid {centre:?} must be on the viewer's left"
    );
}

#[test]
fn physical_aspect_ratio_survives_anisotropic_spacing() {
    // A 40 × 20 × 32 mm box (x, y, z) sampled at 1 × 1 × 4 mm: the image must show it 5:4
    // (width x : height z), not stretched by the voxel counts (56 × 8 voxels would be 7:1).
    // Its faces sit half-way between voxel centres, where the interpolated density crosses 0 HU.
    let in_box = |p: DVec3| p.x.abs() < 20.0 && p.y.abs() < 10.0 && p.z.abs() < 16.0;
    let ct = phantom([56, 32, 14], [1.0, 1.0, 4.0], |p| {
        if in_box(p) {
            1000.0
        } else {
            -1000.0
        }
    });
    let tf = TransferFunction::new(solid_preset());
    let image = render(
        &ct,
        None,
        &tf,
        &anterior(400.0, 20.0),
        &RenderOptions::default(),
        [256, 256],
    );
    let (mut x0, mut x1, mut y0, mut y1) = (u32::MAX, 0, u32::MAX, 0);
    for y in 0..256 {
        for x in 0..256 {
            if image.pixel(x, y)[3] > 127 {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    let (w, h) = (f64::from(x1 - x0 + 1), f64::from(y1 - y0 + 1));
    let ratio = w / h;
    // One pixel of rounding on each side allowed: 5:4 within 3 %.
    assert!(
        (ratio - 1.25).abs() < 0.04,
        "silhouette {w} × {h} px, ratio {ratio:.3}, expected 1.25"
    );
}

#[test]
fn composite_and_mip_differ_and_mip_override_works() {
    let ct = sphere(15.0, 40, [1.0; 3]);
    let tf = TransferFunction::new(Preset::load("ct-bone").expect("bone"));
    let camera = anterior(150.0, 30.0);
    let composite = render(&ct, None, &tf, &camera, &RenderOptions::default(), [64, 64]);
    let mip = render(
        &ct,
        None,
        &tf,
        &camera,
        &RenderOptions {
            blend: Some(Blend::Mip),
            ..RenderOptions::default()
        },
        [64, 64],
    );
    assert!(covered_pixels(&composite, 127) > 100);
    assert_ne!(composite, mip);
    // A solid sphere under MIP is flat: the centre and a pixel near the edge look alike.
    let (c, e) = (mip.pixel(32, 32), mip.pixel(32, 24));
    assert!(
        c[0].abs_diff(e[0]) < 8,
        "MIP of a uniform sphere is flat: {c:?} vs {e:?}"
    );
}

#[test]
fn opacity_accumulates_per_the_presets_unit_distance() {
    // A uniform block of 2 mm voxels, 32 mm deep along the view, with opacity 0.05 per unit
    // distance and nothing else: the centre pixel's alpha is 1 − 0.95^(32 mm / unit).
    let ct = phantom([16; 3], [2.0; 3], |_| 400.0);
    let centre_alpha = |opacity_unit_mm: Option<f32>| {
        let mut preset = solid_preset();
        preset.opacity = vec![twinray_transfer_functions::OpacityPoint {
            hu: 0.0,
            alpha: 0.05,
        }];
        preset.opacity_unit_mm = opacity_unit_mm;
        let options = RenderOptions {
            jitter_seed: None,
            ..RenderOptions::default()
        };
        let image = render(
            &ct,
            None,
            &TransferFunction::new(preset),
            &anterior(200.0, 5.0),
            &options,
            [33, 33],
        );
        f64::from(image.pixel(16, 16)[3]) / 255.0
    };
    // Per 1 mm (3D Slicer's presets): 32 samples 1 mm apart, each letting 0.95 through (one
    // sample more or less at the faces, and 8-bit alpha, within the tolerance).
    let per_mm = centre_alpha(Some(1.0));
    assert!(
        (per_mm - (1.0 - 0.95f64.powi(32))).abs() < 0.015,
        "alpha {per_mm:.3} per 1 mm"
    );
    // Per voxel (twinray's presets): the same 32 mm is 16 units.
    let per_voxel = centre_alpha(None);
    assert!(
        (per_voxel - (1.0 - 0.95f64.powi(16))).abs() < 0.015,
        "alpha {per_voxel:.3} per voxel"
    );
}
