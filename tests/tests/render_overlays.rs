//! Overlay capsules composited by depth with the volume, and picking the first opaque sample,
//! on phantoms made in code, rendered on lavapipe.

use glam::{DVec3, Vec3};
use twinray_renderer::{
    Camera, Capsule, ClipPlane, Frustum, RenderOptions, RgbaImage, VolumeRenderer,
};
use twinray_tests::{gpu, gpu_lock, phantom, solid_preset};
use twinray_transfer_functions::{Preset, TransferFunction};
use twinray_volume::CtVolume;

const RADIUS_MM: f64 = 20.0;
const SIZE: [u32; 2] = [128, 128];
const MAGENTA: [f32; 4] = [1.0, 0.0, 1.0, 1.0];

/// A solid sphere of `RADIUS_MM` in a 48 mm cube of 1 mm voxels, centred on the origin.
fn sphere() -> CtVolume {
    phantom([48; 3], [1.0; 3], |p| {
        if p.length() <= RADIUS_MM {
            1000.0
        } else {
            -1000.0
        }
    })
}

fn renderer(ct: &CtVolume, preset: Preset) -> VolumeRenderer {
    let mut r = VolumeRenderer::new(gpu(), &TransferFunction::new(preset)).expect("renderer");
    r.set_volume(ct, None, twinray_transfer_functions::DensityRange::CT)
        .expect("upload");
    r
}

/// The anterior view from 200 mm (eye at y = -200, patient left on the viewer's right).
fn camera() -> Camera {
    Camera::orbit(DVec3::ZERO, 200.0, 0.0, 0.0, Frustum::symmetric(30.0, 1.0))
}

fn capsule(a: [f32; 3], b: [f32; 3], radius_mm: f32) -> Capsule {
    Capsule {
        a_mm: Vec3::from(a),
        b_mm: Vec3::from(b),
        radius_mm,
        rgba: MAGENTA,
    }
}

fn render(r: &mut VolumeRenderer) -> RgbaImage {
    r.render(&camera(), &RenderOptions::default(), SIZE)
        .expect("render")
        .0
}

fn is_magenta(p: [u8; 4]) -> bool {
    p[0] > 60 && p[2] > 60 && p[1] < 20 && p[3] > 250
}

fn is_white(p: [u8; 4]) -> bool {
    p[0] > 200 && p[1] > 200 && p[2] > 200
}

fn magenta_pixels(image: &RgbaImage) -> usize {
    image
        .pixels
        .chunks_exact(4)
        .filter(|p| is_magenta([p[0], p[1], p[2], p[3]]))
        .count()
}

fn at(image: &RgbaImage, point: [f64; 3]) -> [u8; 4] {
    let p = camera()
        .project(DVec3::from(point), SIZE)
        .expect("in front of the camera");
    image.pixel(p[0] as u32, p[1] as u32)
}

#[test]
fn a_capsule_in_front_of_the_sphere_shows_and_behind_it_is_hidden() {
    let _guard = gpu_lock();
    let mut r = renderer(&sphere(), solid_preset());
    let plain = render(&mut r);
    assert!(is_white(at(&plain, [0.0; 3])), "the sphere is white");

    // Between the eye and the sphere, across its middle.
    r.set_overlays(&[capsule([-10.0, -30.0, 0.0], [10.0, -30.0, 0.0], 3.0)])
        .expect("overlays");
    let front = render(&mut r);
    assert!(
        is_magenta(at(&front, [0.0, -30.0, 0.0])),
        "capsule in front: {:?}",
        at(&front, [0.0, -30.0, 0.0])
    );
    assert!(magenta_pixels(&front) > 150, "{}", magenta_pixels(&front));
    // Away from the capsule the sphere is untouched.
    assert_eq!(at(&front, [0.0, 0.0, 12.0]), at(&plain, [0.0, 0.0, 12.0]));

    // The same capsule behind the sphere, at the same place on screen: hidden by it.
    r.set_overlays(&[capsule([-10.0, 30.0, 0.0], [10.0, 30.0, 0.0], 3.0)])
        .expect("overlays");
    let behind = render(&mut r);
    assert_eq!(magenta_pixels(&behind), 0);
    assert_eq!(behind, plain, "an occluded capsule leaves no trace");
}

#[test]
fn a_capsule_half_inside_the_sphere_is_cut_where_the_surface_is() {
    let _guard = gpu_lock();
    let mut r = renderer(&sphere(), solid_preset());
    // Along x through the centre plane, from inside the sphere (x = 8) out to x = 40.
    r.set_overlays(&[capsule([8.0, 0.0, 0.0], [40.0, 0.0, 0.0], 3.0)])
        .expect("overlays");
    let image = render(&mut r);
    let cam = camera();
    let row = cam.project(DVec3::ZERO, SIZE).expect("centre")[1] as u32;
    // Inside the sphere the capsule is hidden by its front surface; outside it shows.
    assert!(is_white(at(&image, [12.0, 0.0, 0.0])));
    assert!(is_magenta(at(&image, [30.0, 0.0, 0.0])));
    // The first magenta pixel along the row is where the capsule's front (y = -3) leaves the
    // sphere: x = √(R² − 3²).
    let first = (0..SIZE[0])
        .find(|&x| is_magenta(image.pixel(x, row)))
        .expect("magenta on the centre row");
    let edge_mm = (RADIUS_MM * RADIUS_MM - 9.0).sqrt();
    let expected = cam
        .project(DVec3::new(edge_mm, -3.0, 0.0), SIZE)
        .expect("in front")[0];
    assert!(
        (f64::from(first) + 0.5 - expected).abs() < 2.0,
        "cut edge at column {first}, expected {expected:.1}"
    );
}

#[test]
fn translucent_tissue_in_front_tints_a_capsule() {
    let _guard = gpu_lock();
    // Soft tissue (40 HU) in a ball, under a preset that makes it a faint green veil.
    let preset = Preset::parse(
        r#"
name = "veil"
description = "test: translucent green above 0 HU"
blend = "composite"
[shading]
enabled = false
[[colour]]
hu = 0
rgb = [0.0, 1.0, 0.0]
[[opacity]]
hu = -1
alpha = 0.0
[[opacity]]
hu = 1
alpha = 0.03
"#,
        "veil (test)",
    )
    .expect("test preset parses");
    let ct = phantom([48; 3], [1.0; 3], |p| {
        if p.length() <= RADIUS_MM {
            40.0
        } else {
            -1000.0
        }
    });
    let mut r = renderer(&ct, preset);
    // Behind the ball's centre, still inside it, and outside the ball to the right.
    r.set_overlays(&[
        capsule([-6.0, 5.0, 0.0], [6.0, 5.0, 0.0], 3.0),
        capsule([30.0, 0.0, -5.0], [30.0, 0.0, 5.0], 3.0),
    ])
    .expect("overlays");
    let image = render(&mut r);
    let seen_through = at(&image, [0.0, 5.0, 0.0]);
    let bare = at(&image, [30.0, 0.0, 0.0]);
    assert!(is_magenta(bare), "{bare:?}");
    assert!(
        seen_through[1] > 40 && seen_through[0] > 40 && seen_through[0] < bare[0],
        "the capsule behind tissue is tinted green and dimmed: {seen_through:?} vs {bare:?}"
    );
}

#[test]
fn a_capsule_outside_the_volume_box_renders() {
    let _guard = gpu_lock();
    let mut r = renderer(&sphere(), solid_preset());
    // The box ends at ±24 mm; this capsule floats above it and to the side, rays through it
    // never meet the box.
    r.set_overlays(&[capsule([-20.0, -10.0, 40.0], [20.0, -10.0, 40.0], 3.0)])
        .expect("overlays");
    let image = render(&mut r);
    assert!(is_magenta(at(&image, [0.0, -10.0, 40.0])));
    assert!(magenta_pixels(&image) > 150);
    // And one beside the box, seen past it.
    r.set_overlays(&[capsule([45.0, 0.0, -10.0], [45.0, 0.0, 10.0], 2.0)])
        .expect("overlays");
    let image = render(&mut r);
    assert!(is_magenta(at(&image, [45.0, 0.0, 0.0])));
}

#[test]
fn an_empty_overlay_set_leaves_the_frame_byte_identical() {
    let _guard = gpu_lock();
    let mut r = renderer(&sphere(), Preset::load("ct-bone").expect("bone"));
    let before = render(&mut r);
    r.set_overlays(&[]).expect("no overlays");
    assert_eq!(render(&mut r), before);
    r.set_overlays(&[capsule([-10.0, -30.0, 0.0], [10.0, -30.0, 0.0], 3.0)])
        .expect("overlays");
    assert_ne!(render(&mut r), before);
    r.set_overlays(&[]).expect("no overlays");
    assert_eq!(
        render(&mut r),
        before,
        "clearing the overlays restores the frame"
    );
}

#[test]
fn pick_returns_the_sphere_surface_under_the_pixel() {
    let _guard = gpu_lock();
    let mut r = renderer(&sphere(), solid_preset());
    // Overlays must not be picked.
    r.set_overlays(&[capsule([-30.0, -40.0, 0.0], [30.0, -40.0, 0.0], 5.0)])
        .expect("overlays");
    let cam = camera();
    let options = RenderOptions::default();
    let step_mm = f64::from(options.step_voxels);
    for surface in [
        [0.0, -RADIUS_MM, 0.0],
        [10.0, -17.3, 0.0],
        [-8.0, -15.0, 9.0],
        [0.0, -12.0, -16.0],
    ] {
        let point = DVec3::from(surface);
        let pixel = cam.project(point, SIZE).expect("in view");
        let hit = r
            .pick(&cam, &options, SIZE, pixel)
            .expect("pick")
            .expect("the ray meets the sphere");
        // The pick is the first sample at or behind the surface (on the step grid from where
        // the ray enters the box), so it lies within a step and a voxel's blur of the sphere.
        let off = hit.length() - RADIUS_MM;
        assert!(
            (-0.6..=step_mm + 0.6).contains(&off),
            "picked {hit:?}, {off:.2} mm from the surface"
        );
        // And it is on the ray through that pixel, in front of the sphere's centre.
        assert!(
            (cam.project(hit, SIZE).expect("in view")[0] - pixel[0]).abs() < 0.05 && hit.y < 0.0
        );
    }
    // A pixel beside the sphere (the overlay's pixels included): nothing.
    let beside = cam
        .project(DVec3::new(23.0, -40.0, 0.0), SIZE)
        .expect("in view");
    assert_eq!(r.pick(&cam, &options, SIZE, beside).expect("pick"), None);
    assert_eq!(
        r.pick(&cam, &options, SIZE, [0.5, 0.5]).expect("pick"),
        None
    );
}

#[test]
fn pick_respects_the_clip_plane() {
    let _guard = gpu_lock();
    let mut r = renderer(&sphere(), solid_preset());
    let cam = camera();
    // Keep y ≥ 5: the front of the sphere is cut away; rays meet the cut face at y = 5.
    let options = RenderOptions {
        clip_plane: Some(ClipPlane::through(DVec3::new(0.0, 5.0, 0.0), DVec3::Y)),
        ..RenderOptions::default()
    };
    let step_mm = f64::from(options.step_voxels);
    for point in [[0.0, 5.0, 0.0], [8.0, 5.0, -6.0]] {
        let pixel = cam.project(DVec3::from(point), SIZE).expect("in view");
        let hit = r
            .pick(&cam, &options, SIZE, pixel)
            .expect("pick")
            .expect("the ray meets the cut face");
        assert!(
            (hit.y - 5.0).abs() <= step_mm + 0.1,
            "picked {hit:?}, expected the cut face at y = 5"
        );
    }
    // At x = 19.5 the sphere only spans |y| < 4.4, all of it clipped: nothing to pick there,
    // though without the plane there is.
    let pixel = cam
        .project(DVec3::new(19.5, 0.0, 0.0), SIZE)
        .expect("in view");
    assert_eq!(r.pick(&cam, &options, SIZE, pixel).expect("pick"), None);
    assert!(r
        .pick(&cam, &RenderOptions::default(), SIZE, pixel)
        .expect("pick")
        .is_some());
}
