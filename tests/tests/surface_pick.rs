//! The CPU surface pick (`twinray_renderer::surface`, used by the demo script and the window's
//! pen) agrees with the renderer's GPU pick on the demo case: several pixels, orbit and
//! look-at cameras, a hidden label and a clip plane.

use std::sync::OnceLock;

use glam::DVec3;
use twinray_renderer::surface;
use twinray_renderer::{Camera, ClipPlane, Frustum, RenderOptions, VolumeRenderer};
use twinray_scene::demo::spine_landmarks;
use twinray_scene::Case;
use twinray_tests::{gpu, gpu_lock};
use twinray_transfer_functions::{Preset, TransferFunction};

const SIZE: [u32; 2] = [192, 192];
/// TotalSegmentator's L3.
const L3: u8 = 29;

fn demo_case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| Case::demo().expect("embedded demo case"))
}

fn bone() -> TransferFunction {
    TransferFunction::new(Preset::load("ct-bone").expect("ct-bone"))
}

fn cameras(case: &Case) -> Vec<(&'static str, Camera)> {
    let lm = spine_landmarks(case).expect("landmarks");
    let tip = lm.spinous_tips_mm[2];
    let f = Frustum::symmetric(25.0, 1.0);
    vec![
        (
            "posterior orbit",
            Camera::orbit(lm.centre_mm, 600.0, 180.0, 0.0, f),
        ),
        (
            "oblique orbit",
            Camera::orbit(lm.centre_mm, 500.0, 140.0, 25.0, f),
        ),
        (
            "look_at behind L3",
            Camera::look_at(tip + DVec3::new(2.0, 400.0, 2.0), tip, DVec3::Z, f),
        ),
    ]
}

const PIXELS: [[f64; 2]; 5] = [
    [96.0, 96.0],
    [96.5, 96.5],
    [90.3, 120.7],
    [104.0, 70.0],
    [60.0, 96.0],
];

/// Compares CPU and GPU picks for every camera and pixel; returns the GPU's hits.
fn compare(tf: &TransferFunction, options: &RenderOptions) -> Vec<DVec3> {
    let case = demo_case();
    let _lock = gpu_lock();
    let mut r = VolumeRenderer::new(gpu(), tf).expect("renderer");
    r.set_volume(
        &case.ct,
        case.labels.as_ref(),
        twinray_transfer_functions::DensityRange::CT,
    )
    .expect("upload");
    let lut = tf.bake();
    let spacing = case.ct.geometry().spacing_mm();
    let unit_mm = spacing.iter().copied().fold(f64::INFINITY, f64::min);
    let step_mm = f64::from(options.step_voxels) * unit_mm;
    // Both take the same samples on the same step grid, so they agree to the sample unless the
    // crossing of one half is so close that lavapipe's filtering (8-bit weights) and
    // half-float table tip it one step either way: one step, plus float slack.
    let tolerance_mm = step_mm + 0.01;
    let mut hits = Vec::new();
    for (name, camera) in cameras(case) {
        for pixel in PIXELS {
            let gpu_hit = r.pick(&camera, options, SIZE, pixel).expect("gpu pick");
            let cpu_hit = surface::pick(
                &case.ct,
                case.labels.as_ref(),
                &lut,
                &camera,
                options,
                SIZE,
                pixel,
            );
            match (gpu_hit, cpu_hit) {
                (Some(g), Some(c)) => {
                    hits.push(g);
                    let d = g.distance(c);
                    assert!(
                        d <= tolerance_mm,
                        "{name} {pixel:?}: GPU {g} vs CPU {c}, {d:.3} mm apart (> {tolerance_mm:.3})"
                    );
                }
                (None, None) => {}
                (g, c) => panic!("{name} {pixel:?}: GPU {g:?} vs CPU {c:?}"),
            }
        }
    }
    hits
}

#[test]
fn cpu_pick_matches_gpu_pick_on_the_demo_case() {
    let hits = compare(&bone(), &RenderOptions::default()).len();
    assert!(
        hits >= 10,
        "only {hits} rays hit bone: the check would prove little"
    );
}

#[test]
fn cpu_pick_matches_gpu_pick_with_a_hidden_label() {
    let mut tf = bone();
    tf.labels.set_visible(L3, false);
    compare(&tf, &RenderOptions::default());
    // Hiding L3 moves the pick behind L3's spinous process.
    let case = demo_case();
    let lm = spine_landmarks(case).expect("landmarks");
    let tip = lm.spinous_tips_mm[2];
    let camera = Camera::look_at(
        tip + DVec3::new(2.0, 400.0, 2.0),
        tip,
        DVec3::Z,
        Frustum::symmetric(25.0, 1.0),
    );
    let options = RenderOptions::default();
    let shown = surface::pick(
        &case.ct,
        case.labels.as_ref(),
        &bone().bake(),
        &camera,
        &options,
        SIZE,
        [96.0, 96.0],
    )
    .expect("L3's tip is hit");
    let hidden = surface::pick(
        &case.ct,
        case.labels.as_ref(),
        &tf.bake(),
        &camera,
        &options,
        SIZE,
        [96.0, 96.0],
    );
    assert!(
        hidden.is_none_or(|h| h.y < shown.y - 5.0),
        "hidden L3 still picked at {hidden:?} (shown: {shown})"
    );
}

#[test]
fn cpu_pick_matches_gpu_pick_with_a_clip_plane() {
    let case = demo_case();
    let lm = spine_landmarks(case).expect("landmarks");
    // Keep what lies anterior of a coronal plane 8 mm in front of L3's spinous tip, so the
    // posterior views see the cut faces of the spinous processes.
    let plane = ClipPlane::through(
        lm.spinous_tips_mm[2] - DVec3::new(0.0, 8.0, 0.0),
        DVec3::new(0.0, -1.0, 0.0),
    );
    let options = RenderOptions {
        clip_plane: Some(plane),
        ..RenderOptions::default()
    };
    let hits = compare(&bone(), &options);
    assert!(hits.len() >= 3, "only {} rays hit the cut bone", hits.len());
    let side = |p: DVec3| plane.normal.dot(p) + plane.offset_mm;
    assert!(
        hits.iter().all(|&p| side(p) >= -0.01),
        "a hit in the clipped half"
    );
    assert!(
        hits.iter().any(|&p| side(p) <= 1.5),
        "no hit on the cut face: {hits:?}"
    );
}

/// The replay helper saw `VolumeRenderer::pick` return None for the centre pixel of a look-at
/// camera 400 mm behind a spinous tip that an orbit camera hit. Not a renderer bug: at the
/// demo case's 3 mm voxels the thin L1 and L2 spinous processes read as at most ~340 HU, and
/// the `ct-bone` opacity accumulated along that ray stays near 0.1, below the pick's 0.5
/// (the demo's own surface search from behind finds no surface there either and keeps the
/// label's tip). The independent CPU march agrees ray by ray; L3–L5 are hit at their tips.
#[test]
fn look_at_rays_through_the_spinous_tips_agree_with_the_cpu_march() {
    let case = demo_case();
    let tf = bone();
    let lut = tf.bake();
    let _lock = gpu_lock();
    let mut r = VolumeRenderer::new(gpu(), &tf).expect("renderer");
    r.set_volume(
        &case.ct,
        case.labels.as_ref(),
        twinray_transfer_functions::DensityRange::CT,
    )
    .expect("upload");
    let lm = spine_landmarks(case).expect("landmarks");
    let options = RenderOptions::default();
    let spacing = case.ct.geometry().spacing_mm();
    let step_mm =
        f64::from(options.step_voxels) * spacing.iter().copied().fold(f64::INFINITY, f64::min);
    for (i, &tip) in lm.spinous_tips_mm.iter().enumerate() {
        let camera = Camera::look_at(
            tip + DVec3::new(2.0, 400.0, 2.0),
            tip,
            DVec3::Z,
            Frustum::symmetric(25.0, 1.0),
        );
        let centre = [96.0, 96.0];
        let gpu_hit = r.pick(&camera, &options, SIZE, centre).expect("pick");
        let cpu_hit = surface::pick(
            &case.ct,
            case.labels.as_ref(),
            &lut,
            &camera,
            &options,
            SIZE,
            centre,
        );
        let name = ["L1", "L2", "L3", "L4", "L5"][i];
        if i < 2 {
            assert_eq!(
                (gpu_hit, cpu_hit),
                (None, None),
                "{name}: the ray through its translucent tip"
            );
        } else {
            let g = gpu_hit.unwrap_or_else(|| panic!("{name}: GPU pick missed its tip"));
            let c = cpu_hit.unwrap_or_else(|| panic!("{name}: CPU pick missed its tip"));
            assert!(g.distance(c) < 0.01 + step_mm, "{name}: GPU {g} vs CPU {c}");
            assert!(
                g.distance(tip) <= step_mm + 0.5,
                "{name}: hit {g}, {:.2} mm from the tip {tip}",
                g.distance(tip)
            );
        }
    }
}
