//! Textured quads (X-ray boards, text labels) composited by depth with the volume, on a phantom
//! sphere rendered on lavapipe: image orientation at the projected corners, occlusion by bone,
//! transparent texels, no bleeding between images packed in one atlas layer, MIP, and frames
//! left byte-identical when there are none; culling and stacked translucent boards.

use glam::{DVec3, Vec3};
use twinray_renderer::{
    Camera, Capsule, Frustum, Quad, QuadImage, QuadImageKey, RenderOptions, RgbaImage,
    VolumeRenderer,
};
use twinray_tests::{gpu, gpu_lock, phantom, solid_preset};
use twinray_transfer_functions::{DensityRange, Preset, TransferFunction};
use twinray_volume::CtVolume;

const RADIUS_MM: f64 = 20.0;
const SIZE: [u32; 2] = [128, 128];
const RED: [u8; 4] = [255, 0, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const YELLOW: [u8; 4] = [255, 255, 0, 255];

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

fn renderer(preset: Preset) -> VolumeRenderer {
    let mut r = VolumeRenderer::new(gpu(), &TransferFunction::new(preset)).expect("renderer");
    r.set_volume(&sphere(), None, DensityRange::CT)
        .expect("upload");
    r
}

/// The anterior view from 200 mm (eye at y = -200, patient left on the viewer's right).
fn camera() -> Camera {
    Camera::orbit(DVec3::ZERO, 200.0, 0.0, 0.0, Frustum::symmetric(30.0, 1.0))
}

fn render(r: &mut VolumeRenderer, cam: &Camera) -> RgbaImage {
    r.render(cam, &RenderOptions::default(), SIZE)
        .expect("render")
        .0
}

/// An image of `width × height` whose pixel (x, y) is `colour(x, y)`.
fn image(width: u32, height: u32, colour: impl Fn(u32, u32) -> [u8; 4]) -> RgbaImage {
    let pixels = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .flat_map(|(x, y)| colour(x, y))
        .collect();
    RgbaImage {
        width,
        height,
        pixels,
    }
}

/// Quadrants: red top-left, blue top-right, green bottom-left, yellow bottom-right.
fn quadrants() -> RgbaImage {
    image(20, 10, |x, y| match (x < 10, y < 5) {
        (true, true) => RED,
        (false, true) => BLUE,
        (true, false) => GREEN,
        (false, false) => YELLOW,
    })
}

/// A 30 × 20 mm board at `centre`, upright for the anterior camera: `u` along patient left
/// (the viewer's right), `v` superior (up), so `u × v` points at the camera.
fn board(centre: [f32; 3], image: usize) -> Quad {
    Quad {
        centre_mm: Vec3::from(centre),
        u_half_mm: Vec3::new(15.0, 0.0, 0.0),
        v_half_mm: Vec3::new(0.0, 0.0, 10.0),
        image,
        tint: [1.0; 4],
        two_sided: false,
    }
}

/// The solid sphere's colour (opacity stops at the early-termination level, 0.99).
fn is_white(p: [u8; 4]) -> bool {
    p.iter().all(|&c| c > 240)
}

fn at(image: &RgbaImage, pixel: [f64; 2]) -> [u8; 4] {
    image.pixel(pixel[0] as u32, pixel[1] as u32)
}

fn project(cam: &Camera, point: DVec3) -> [f64; 2] {
    cam.project(point, SIZE).expect("in front of the camera")
}

#[test]
fn a_quad_in_front_shows_its_image_upright_between_its_projected_corners() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    let cam = camera();
    r.set_quad_images(&[quadrants()]).expect("images");
    let quad = board([0.0, -40.0, 0.0], 0);
    r.set_quads(&[quad]).expect("quads");
    let frame = render(&mut r, &cam);
    let c = quad.centre_mm.as_dvec3();
    let (u, v) = (quad.u_half_mm.as_dvec3(), quad.v_half_mm.as_dvec3());
    // The documented convention: the image's top-left is at centre − u + v, columns grow
    // along +u and rows along −v.
    let centre_px = project(&cam, c);
    for (corner, colour, name) in [
        (c - u + v, RED, "top-left"),
        (c + u + v, BLUE, "top-right"),
        (c - u - v, GREEN, "bottom-left"),
        (c + u - v, YELLOW, "bottom-right"),
    ] {
        let p = project(&cam, corner);
        // Two pixels inside the corner, towards the centre, and two outside it.
        let toward = [
            (centre_px[0] - p[0]).signum(),
            (centre_px[1] - p[1]).signum(),
        ];
        let inside = [p[0] + 2.0 * toward[0], p[1] + 2.0 * toward[1]];
        let outside = [p[0] - 2.0 * toward[0], p[1] - 2.0 * toward[1]];
        assert_eq!(at(&frame, inside), colour, "{name} corner at {p:?}");
        assert_ne!(
            at(&frame, outside),
            colour,
            "{name}: outside the corner at {p:?}"
        );
    }
    // The middle of each half of the top: red on the viewer's left, blue on the right.
    assert_eq!(at(&frame, project(&cam, c - 0.5 * u + 0.5 * v)), RED);
    assert_eq!(at(&frame, project(&cam, c + 0.5 * u + 0.5 * v)), BLUE);
}

#[test]
fn a_quad_behind_bone_is_hidden_there_and_shows_beside_it() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    let cam = camera();
    let plain = render(&mut r, &cam);
    r.set_quad_images(&[image(4, 4, |_, _| RED)])
        .expect("images");
    // 80 × 80 mm behind the sphere: wider than it.
    let mut quad = board([0.0, 30.0, 0.0], 0);
    quad.u_half_mm *= 40.0 / 15.0;
    quad.v_half_mm *= 4.0;
    r.set_quads(&[quad]).expect("quads");
    let frame = render(&mut r, &cam);
    for hidden in [[0.0, 0.0, 0.0], [10.0, 0.0, 10.0], [-12.0, 0.0, -8.0]] {
        let p = project(&cam, DVec3::from(hidden));
        assert_eq!(
            at(&frame, p),
            at(&plain, p),
            "bone hides the quad at {hidden:?}"
        );
        assert!(is_white(at(&frame, p)), "{:?}", at(&frame, p));
    }
    for beside in [[32.0, 30.0, 0.0], [-32.0, 30.0, 20.0], [0.0, 30.0, -30.0]] {
        assert_eq!(at(&frame, project(&cam, DVec3::from(beside))), RED);
    }
}

#[test]
fn transparent_texels_let_the_volume_through() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    let cam = camera();
    let plain = render(&mut r, &cam);
    // Left half: red but fully transparent (its colour must not show), right half opaque blue.
    let half = image(20, 10, |x, _| if x < 10 { [255, 0, 0, 0] } else { BLUE });
    r.set_quad_images(&[half]).expect("images");
    r.set_quads(&[board([0.0, -40.0, 0.0], 0)]).expect("quads");
    let frame = render(&mut r, &cam);
    let left = project(&cam, DVec3::new(-8.0, -40.0, 0.0));
    let right = project(&cam, DVec3::new(8.0, -40.0, 0.0));
    assert_eq!(at(&frame, left), at(&plain, left));
    assert!(is_white(at(&frame, left)), "the white sphere shows through");
    assert_eq!(at(&frame, right), BLUE);
    // No red anywhere: the transparent texels' colour is not filtered into their neighbours.
    assert!(frame.pixels.chunks_exact(4).all(|p| p[0] <= p[1]));
}

#[test]
fn two_images_packed_in_one_layer_do_not_bleed_into_each_other() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    let cam = camera();
    // Two tiny images side by side in the atlas, each magnified ~6× on screen, so bilinear
    // filtering reads at their very edges.
    r.set_quad_images(&[image(8, 8, |_, _| RED), image(8, 8, |_, _| BLUE)])
        .expect("images");
    let small = |x: f32, image| Quad {
        u_half_mm: Vec3::new(10.0, 0.0, 0.0),
        ..board([x, 0.0, 0.0], image)
    };
    let (a, b) = (small(-38.0, 0), small(38.0, 1));
    r.set_quads(&[a, b]).expect("quads");
    let frame = render(&mut r, &cam);
    for (quad, colour) in [(a, RED), (b, BLUE)] {
        let c = quad.centre_mm.as_dvec3();
        let (u, v) = (quad.u_half_mm.as_dvec3(), quad.v_half_mm.as_dvec3());
        let lo = project(&cam, c - u + v);
        let hi = project(&cam, c + u - v);
        let mut checked = 0;
        // Every pixel whose centre lies at least half a pixel inside the projected rectangle.
        for y in (lo[1] + 0.5).ceil() as u32..(hi[1] - 1.0).floor() as u32 {
            for x in (lo[0] + 0.5).ceil() as u32..(hi[0] - 1.0).floor() as u32 {
                assert_eq!(frame.pixel(x, y), colour, "pixel ({x}, {y})");
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked}");
    }
}

#[test]
fn under_mip_quads_are_drawn_in_front_of_the_projection_as_capsules_are() {
    let _guard = gpu_lock();
    let mut r = renderer(Preset::load("mip").expect("mip"));
    let cam = camera();
    r.set_quad_images(&[image(4, 4, |_, _| RED)])
        .expect("images");
    // Behind the sphere: a projection has no depth, so the quad covers it, like a capsule.
    r.set_quads(&[board([0.0, 30.0, 0.0], 0)]).expect("quads");
    let quad_frame = render(&mut r, &cam);
    r.set_quads(&[]).expect("quads");
    r.set_overlays(&[Capsule {
        a_mm: Vec3::new(-5.0, 30.0, 0.0),
        b_mm: Vec3::new(5.0, 30.0, 0.0),
        radius_mm: 3.0,
        rgba: [1.0, 0.0, 0.0, 1.0],
    }])
    .expect("overlays");
    let capsule_frame = render(&mut r, &cam);
    let centre = project(&cam, DVec3::new(0.0, 30.0, 0.0));
    assert_eq!(at(&quad_frame, centre), RED);
    assert!(at(&capsule_frame, centre)[0] > 100 && at(&capsule_frame, centre)[2] == 0);
}

#[test]
fn only_two_sided_quads_show_from_behind_and_then_mirrored() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    r.set_quad_images(&[quadrants()]).expect("images");
    // Beside the sphere, so that both cameras see it.
    let front = camera();
    let back = Camera::orbit(
        DVec3::ZERO,
        200.0,
        180.0,
        0.0,
        Frustum::symmetric(30.0, 1.0),
    );
    let mut quad = board([45.0, 0.0, 0.0], 0);
    let c = quad.centre_mm.as_dvec3();
    let (u, v) = (quad.u_half_mm.as_dvec3(), quad.v_half_mm.as_dvec3());
    let top_left = c - 0.5 * u + 0.5 * v;
    r.set_quads(&[quad]).expect("quads");
    assert_eq!(at(&render(&mut r, &front), project(&front, top_left)), RED);
    assert_eq!(at(&render(&mut r, &back), project(&back, top_left)), [0; 4]);
    quad.two_sided = true;
    r.set_quads(&[quad]).expect("quads");
    let seen_from_back = render(&mut r, &back);
    // The same texel at the same point, which the viewer behind sees on the right.
    let p = project(&back, top_left);
    assert_eq!(at(&seen_from_back, p), RED);
    assert!(p[0] > project(&back, c)[0]);
}

#[test]
fn no_quads_leave_the_frame_byte_identical() {
    let _guard = gpu_lock();
    let mut r = renderer(Preset::load("ct-bone").expect("bone"));
    let cam = camera();
    let capsule = Capsule {
        a_mm: Vec3::new(-10.0, -30.0, 0.0),
        b_mm: Vec3::new(10.0, -30.0, 0.0),
        radius_mm: 3.0,
        rgba: [1.0, 0.0, 1.0, 0.6],
    };
    let before = render(&mut r, &cam);
    r.set_overlays(&[capsule]).expect("overlays");
    let with_capsule = render(&mut r, &cam);
    r.set_overlays(&[]).expect("overlays");
    r.set_quad_images(&[quadrants()]).expect("images");
    assert_eq!(render(&mut r, &cam), before, "images alone draw nothing");
    r.set_quads(&[board([0.0, -40.0, 0.0], 0)]).expect("quads");
    assert_ne!(render(&mut r, &cam), before);
    r.set_quads(&[]).expect("quads");
    assert_eq!(
        render(&mut r, &cam),
        before,
        "clearing the quads restores it"
    );
    r.set_overlays(&[capsule]).expect("overlays");
    assert_eq!(
        render(&mut r, &cam),
        with_capsule,
        "capsules draw as before"
    );
    // A fully transparent quad is dropped.
    let mut clear = board([0.0, -40.0, 0.0], 0);
    clear.tint[3] = 0.0;
    r.set_quads(&[clear]).expect("quads");
    assert_eq!(render(&mut r, &cam), with_capsule);
}

#[test]
fn bad_quads_are_refused_naming_their_index() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    r.set_quad_images(&[quadrants()]).expect("images");
    let mut nan = board([0.0, -40.0, 0.0], 0);
    nan.u_half_mm.x = f32::NAN;
    let err = r
        .set_quads(&[board([0.0, -40.0, 0.0], 0), nan])
        .expect_err("NaN");
    assert!(
        matches!(err, twinray_renderer::RenderError::BadQuad { index: 1, .. }),
        "{err}"
    );
    let err = r
        .set_quads(&[board([0.0, -40.0, 0.0], 1)])
        .expect_err("no image 1");
    assert!(matches!(
        err,
        twinray_renderer::RenderError::BadQuad { index: 0, .. }
    ));
}

/// Regression for the quad-image upload bug: a measurement's text changing re-uploaded every
/// quad image, a 1760×2140 radiograph included (about 350 ms per change on lavapipe). Now the
/// text alone is uploaded, the board stays where it is in the atlas and still shows, and the
/// new text shows where its quad is. Prints the time of a text change with such a board.
#[test]
fn a_text_change_beside_a_large_board_uploads_the_text_only() {
    let _guard = gpu_lock();
    let mut r = renderer(solid_preset());
    let cam = camera();
    let board_image = image(1760, 2140, |_, _| RED);
    let board_key = QuadImageKey::of_pixels(1760, 2140, &board_image.pixels);
    let board_in = QuadImage {
        key: board_key,
        width: 1760,
        height: 2140,
        pixels: &board_image.pixels,
    };
    let text = |colour: [u8; 4]| image(120, 40, move |_, _| colour);
    // The board left of the sphere, the text right of it, both in front.
    let quads = [board([-30.0, -40.0, 0.0], 0), board([30.0, -40.0, 0.0], 1)];
    assert_eq!(
        r.set_quad_images_keyed(&[board_in]).expect("images").images,
        1
    );
    // The first text needs a layer of its own: the atlas is allocated again and the board
    // copied over on the GPU, not uploaded.
    let first = text(BLUE);
    let upload = r
        .set_quad_images_keyed(&[board_in, QuadImage::hashed(&first)])
        .expect("images");
    assert_eq!((upload.images, upload.reallocated), (1, true), "{upload:?}");
    let mut times_ms = Vec::new();
    for (n, colour) in [GREEN, YELLOW, BLUE, GREEN].into_iter().enumerate() {
        // Longer each time, as a value growing a digit.
        let changed = image(120 + 10 * n as u32, 40, move |_, _| colour);
        let t = std::time::Instant::now();
        let upload = r
            .set_quad_images_keyed(&[board_in, QuadImage::hashed(&changed)])
            .expect("images");
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(upload.images, 1, "{upload:?}");
        assert_eq!(
            upload.bytes,
            u64::from(changed.width * 40 * 4),
            "{upload:?}"
        );
        assert!(!upload.reallocated, "{upload:?}");
        r.set_quads(&quads).expect("quads");
        let frame = render(&mut r, &cam);
        let board_px = at(&frame, project(&cam, DVec3::new(-30.0, -40.0, 0.0)));
        let text_px = at(&frame, project(&cam, DVec3::new(30.0, -40.0, 0.0)));
        assert_eq!(board_px, RED, "the board after text change {n}");
        assert_eq!(text_px, colour, "the text after change {n}");
    }
    // The same through the hashing API (every image hashed each call, the board included).
    let mut hashed_ms = Vec::new();
    for colour in [RED, BLUE, GREEN] {
        let changed = text(colour);
        let t = std::time::Instant::now();
        r.set_quad_images(&[board_image.clone(), changed])
            .expect("images");
        hashed_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "text change beside a 1760×2140 board on {}: keyed {times_ms:.1?} ms, hashed {hashed_ms:.1?} ms",
        gpu().device_name()
    );
}

/// Culling overlays per screen tile must change no pixel: quads partly off-screen, tilted
/// across tile edges, a thin label along a tile row's edge, a floor board reaching behind the
/// eye (whose projection is unbounded), one wholly behind the eye and a label seen from behind,
/// with a capsule among them, render byte-identical with culling off (every pixel then tests
/// every overlay).
#[test]
fn culling_overlays_per_tile_changes_no_pixel() {
    let _guard = gpu_lock();
    let mut r = renderer(Preset::load("ct-bone").expect("bone"));
    let cam = camera();
    // Every other column and row transparent, as between a label's glyphs.
    let sparse = image(16, 8, |x, y| {
        if (x / 2 + y / 2) % 2 == 0 {
            BLUE
        } else {
            [0; 4]
        }
    });
    r.set_quad_images(&[quadrants(), sparse]).expect("images");
    // The image's left and top edges seen from 160 mm (the boards' distance).
    let f = cam.frustum;
    let left_mm = (160.0 * f.tan_left) as f32;
    let top_mm = (160.0 * f.tan_up) as f32;
    let quads = [
        // Mostly beyond the left edge, then across the top-right corner.
        board([left_mm + 3.0, -40.0, 0.0], 0),
        board([-left_mm - 8.0, -40.0, top_mm - 4.0], 1),
        // Tilted by 30° in its plane, in front of the sphere, with transparent texels.
        Quad {
            centre_mm: Vec3::new(10.0, -60.0, 7.0),
            u_half_mm: Vec3::new(13.0, 0.0, 7.5),
            v_half_mm: Vec3::new(-5.0, 0.0, 8.66),
            ..board([0.0; 3], 1)
        },
        // A 1.5 mm label along the middle row of pixels (the edge between two tile rows).
        Quad {
            centre_mm: Vec3::new(-5.0, -100.0, 0.0),
            u_half_mm: Vec3::new(20.0, 0.0, 0.0),
            v_half_mm: Vec3::new(0.0, 0.0, 0.75),
            ..board([0.0; 3], 1)
        },
        // A floor below the eye from 100 mm behind it to 100 mm in front.
        Quad {
            centre_mm: Vec3::new(0.0, -200.0, -15.0),
            u_half_mm: Vec3::new(15.0, 0.0, 0.0),
            v_half_mm: Vec3::new(0.0, 100.0, 0.0),
            two_sided: true,
            ..board([0.0; 3], 0)
        },
        // Wholly behind the eye, facing it.
        board([0.0, -230.0, 0.0], 0),
        // Facing away from the camera (one-sided).
        Quad {
            u_half_mm: Vec3::new(-15.0, 0.0, 0.0),
            ..board([-20.0, -50.0, -20.0], 1)
        },
    ];
    r.set_overlays(&[Capsule {
        a_mm: Vec3::new(-30.0, -70.0, -20.0),
        b_mm: Vec3::new(25.0, -30.0, 25.0),
        radius_mm: 1.5,
        rgba: [1.0, 0.0, 1.0, 0.8],
    }])
    .expect("overlays");
    let capsule_only = render(&mut r, &cam);
    r.set_quads(&quads).expect("quads");
    let culled = render(&mut r, &cam);
    r.set_overlay_culling(false);
    let unculled = render(&mut r, &cam);
    r.set_overlay_culling(true);
    let differing = culled
        .pixels
        .chunks_exact(4)
        .zip(unculled.pixels.chunks_exact(4))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "pixels that culling changed");
    // The quads do draw: the floor at the bottom of the image, the others where they stand.
    assert_ne!(culled, capsule_only);
    let floor = culled.pixel(SIZE[0] * 3 / 4, SIZE[1] - 4);
    assert!(
        [RED, BLUE, GREEN, YELLOW].contains(&floor),
        "the floor board shows at the bottom: {floor:?}"
    );
    let edge = at(
        &culled,
        project(&cam, DVec3::new(f64::from(left_mm) + 10.0, -40.0, 5.0)),
    );
    assert_eq!(
        edge, BLUE,
        "the board beyond the left edge shows its top right"
    );
}

/// `count` half-transparent boards stacked in front of the sphere, each smaller than the one
/// behind it, so that the centre pixels meet all of them.
fn stacked_boards(count: usize) -> Vec<Quad> {
    (0..count)
        .map(|i| {
            let k = i as f32;
            Quad {
                centre_mm: Vec3::new(0.0, -60.0 + 5.0 * k, 0.0),
                u_half_mm: Vec3::new(30.0 - 3.0 * k, 0.0, 0.0),
                v_half_mm: Vec3::new(0.0, 0.0, 20.0 - 2.0 * k),
                tint: [1.0, 1.0, 1.0, 0.4],
                ..board([0.0; 3], i % 2)
            }
        })
        .collect()
}

/// Six half-transparent boards and a stroke stacked on the same pixels: every layer is
/// searched, marched up to and blended by the one overlay loop, the sixth board still shows
/// through the five in front, and culling changes no pixel of it.
#[test]
fn six_stacked_translucent_boards_all_blend_and_culling_changes_no_pixel() {
    let _guard = gpu_lock();
    let mut r = renderer(Preset::load("ct-bone").expect("bone"));
    let cam = camera();
    r.set_quad_images(&[quadrants(), image(8, 8, |_, _| BLUE)])
        .expect("images");
    r.set_overlays(&[Capsule {
        a_mm: Vec3::new(-30.0, -70.0, -20.0),
        b_mm: Vec3::new(25.0, -30.0, 25.0),
        radius_mm: 1.5,
        rgba: [1.0, 0.0, 1.0, 0.8],
    }])
    .expect("overlays");
    r.set_quads(&stacked_boards(6)).expect("quads");
    let culled = render(&mut r, &cam);
    r.set_overlay_culling(false);
    let unculled = render(&mut r, &cam);
    r.set_overlay_culling(true);
    let differing = culled
        .pixels
        .chunks_exact(4)
        .zip(unculled.pixels.chunks_exact(4))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "pixels that culling changed");
    // Beside the stroke, at the centre of the smallest board: the sixth board shows through.
    let centre = project(&cam, DVec3::new(5.0, -60.0, -5.0));
    r.set_quads(&stacked_boards(5)).expect("quads");
    let five = at(&render(&mut r, &cam), centre);
    assert_ne!(
        at(&culled, centre),
        five,
        "the sixth board shows through the five"
    );
}
