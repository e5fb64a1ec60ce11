//! End to end: the scripted demo lesson recorded through the real recorder, replayed through
//! the player and the scene module on lavapipe, at several instants and viewpoints.

use std::path::PathBuf;
use std::sync::OnceLock;

use glam::DVec3;
use twinray_lessons::player::Player;
use twinray_lessons::state::LessonState;
use twinray_renderer::RgbaImage;
use twinray_scene::annotations::TeachingTools;
use twinray_scene::builder::{
    glasses, patient_from_stage, pose_matrix, FrameInputs, FrameRenderer, LearnerView, OrbitView,
    SceneBuilder,
};
use twinray_scene::demo::{record_demo, script, spine_landmarks};
use twinray_scene::Case;
use twinray_tests::{assert_matches_golden, gpu, gpu_lock};

const SIZE: [u32; 2] = [192, 192];

fn demo_case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| Case::demo().expect("embedded demo case"))
}

/// The demo lesson, recorded once per test binary.
fn demo_lesson() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = twinray_tests::scratch_dir("demo-lesson").join("demo.lesson");
        let report = record_demo(demo_case(), &path).expect("record the demo lesson");
        assert_eq!(report.dropped_event_count, 0);
        assert!(report.event_count > 9000, "{report:?}");
        path
    })
}

fn ns(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

fn orbit(azimuth_deg: f64, elevation_deg: f64) -> LearnerView {
    LearnerView::Orbit(OrbitView {
        azimuth_deg,
        elevation_deg,
        zoom: 1.0,
        ..OrbitView::default()
    })
}

struct Replay {
    player: Player,
    builder: SceneBuilder,
    renderer: FrameRenderer,
    tools: TeachingTools,
}

impl Replay {
    fn new() -> Self {
        let case = demo_case();
        Self {
            player: Player::open(demo_lesson()).expect("open the demo lesson"),
            builder: SceneBuilder::for_case(case),
            renderer: FrameRenderer::new(gpu(), &case.ct, case.labels.as_ref(), &case.intensity)
                .expect("renderer"),
            tools: TeachingTools::for_case(case),
        }
    }

    fn frame(&mut self, seconds: f64, view: &LearnerView) -> (LessonState, FrameInputs) {
        let state = self.player.state_at(ns(seconds));
        let mut frame = self.builder.frame(&state, view, SIZE);
        let case = demo_case();
        let warnings = self.tools.annotate(
            &mut frame,
            &state,
            Some(&mut self.player),
            Some(&case.ct),
            case.labels.as_ref(),
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        (state, frame)
    }

    fn render(&mut self, frame: &FrameInputs) -> RgbaImage {
        self.renderer.render(frame, SIZE).expect("render").0
    }
}

#[test]
fn the_demo_lesson_replays_like_the_goldens() {
    let _guard = gpu_lock();
    let mut replay = Replay::new();
    let mut failures = Vec::new();
    // Overview (bone, all labels), mid-stroke behind the patient with L3 ... (labels back),
    // and the sagittal cut with the pen.
    for (seconds, what) in [(5.0, "overview"), (22.0, "stroke"), (41.0, "cut")] {
        for (az, el) in [(40.0, 10.0), (180.0, 20.0)] {
            let (_, frame) = replay.frame(seconds, &orbit(az, el));
            let image = replay.render(&frame);
            let name = format!("lesson-{what}-t{seconds:02.0}-az{az:03.0}-el{el:02.0}");
            if let Err(e) = std::panic::catch_unwind(|| assert_matches_golden(&name, &image)) {
                failures.push(format!("{name}: {e:?}"));
            }
        }
    }
    // The last chapter: the pelvis radiograph on its board with a ring drawn around the
    // femoral head, the Cobb angle and the needle path with their values, zoomed out to show
    // the board beside the twin (on the patient's right).
    let tools_view = LearnerView::Orbit(OrbitView {
        azimuth_deg: 20.0,
        elevation_deg: 10.0,
        zoom: 0.55,
        ..OrbitView::default()
    });
    let (_, frame) = replay.frame(49.0, &tools_view);
    assert_eq!(frame.boards.boards.len(), 1);
    assert_eq!(frame.annotations.texts.len(), 2);
    let image = replay.render(&frame);
    if let Err(e) =
        std::panic::catch_unwind(|| assert_matches_golden("lesson-tools-t49-az020-el10", &image))
    {
        failures.push(format!("teaching tools: {e:?}"));
    }
    let (_, frame) = replay.frame(22.0, &LearnerView::FollowInstructor(OrbitView::default()));
    assert!(frame.follows_instructor);
    let image = replay.render(&frame);
    if let Err(e) =
        std::panic::catch_unwind(|| assert_matches_golden("lesson-stroke-t22-instructor", &image))
    {
        failures.push(format!("instructor view: {e:?}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_script_shows_up_in_the_replayed_state() {
    let mut player = Player::open(demo_lesson()).expect("open");
    let mut builder = SceneBuilder::new(*demo_case().ct.geometry());
    let view = orbit(0.0, 0.0);
    let at = |player: &mut Player, s: f64| player.state_at(ns(s));

    let overview = at(&mut player, 5.0);
    assert_eq!(overview.chapter.as_deref(), Some(script::CHAPTERS[0].1));
    assert_eq!(overview.scene.preset.as_deref(), Some("ct-bone"));
    let tf = builder.frame(&overview, &view, SIZE).transfer_function;
    assert!((26..=33).all(|id| tf.labels.get(id).visible));

    // T11, T12, S1 hidden; then L3 isolated; then the lumbar spine back.
    let hidden = builder
        .frame(&at(&mut player, 10.0), &view, SIZE)
        .transfer_function;
    assert!([26, 32, 33]
        .iter()
        .all(|&id| !hidden.labels.get(id).visible));
    assert!((27..=31).all(|id| hidden.labels.get(id).visible));
    let isolated = builder
        .frame(&at(&mut player, 12.5), &view, SIZE)
        .transfer_function;
    let shown: Vec<u8> = (26..=33)
        .filter(|&id| isolated.labels.get(id).visible)
        .collect();
    assert_eq!(shown, [29], "only L3 at 12.5 s");
    let back = builder
        .frame(&at(&mut player, 15.5), &view, SIZE)
        .transfer_function;
    assert!((27..=31).all(|id| back.labels.get(id).visible));

    let soft = at(&mut player, 33.0);
    assert_eq!(soft.scene.preset.as_deref(), Some("ct-soft-tissue"));
    let cut = at(&mut player, 41.0);
    assert!(cut.scene.clip_plane.is_some());
    assert_eq!(cut.scene.preset.as_deref(), Some("ct-bone"));
    // The pen: no tracked right hand, a controller instead.
    assert!(cut.hands[1].is_none() && cut.controllers[1].is_some());
    let frame = builder.frame(&cut, &view, SIZE);
    assert!(frame.options.clip_plane.is_some());
    let end = at(&mut player, 49.0);
    assert!(end.scene.clip_plane.is_none());
    assert!((26..=33).all(|id| builder
        .frame(&end, &view, SIZE)
        .transfer_function
        .labels
        .get(id)
        .visible));
    assert!(builder.take_warnings().is_empty());
}

#[test]
fn strokes_land_on_the_spinous_processes() {
    let mut player = Player::open(demo_lesson()).expect("open");
    let state = player.state_at(ns(29.5));
    assert_eq!(state.strokes.len(), 2);
    let lm = spine_landmarks(demo_case()).expect("landmarks");
    let g = demo_case().ct.geometry();
    let voxel_from_patient = g.voxel_from_patient();
    let hu = |p: DVec3| {
        let ijk = voxel_from_patient.transform_point3(p).round();
        demo_case()
            .ct
            .get(ijk.x as usize, ijk.y as usize, ijk.z as usize)
            .copied()
            .unwrap_or(-1024.0)
    };
    let spine = &state.strokes[0];
    assert!(spine.points.len() > 400, "{} points", spine.points.len());
    // Points are near bone (within a voxel of a dense sample), the stroke as a whole lies
    // behind the vertebrae's centroids, and it runs from L1 down to L5.
    let mut on_bone = 0;
    for p in &spine.points {
        let p = p.position_mm.as_dvec3();
        let near_bone =
            (-1..=1).any(|dy| hu(p + DVec3::new(0.0, f64::from(dy) * 3.0, 0.0)) > 150.0);
        on_bone += usize::from(near_bone);
    }
    assert!(
        // Between the processes the pen skims over the gaps (ligament, no bone).
        on_bone * 10 >= spine.points.len() * 7,
        "{on_bone} of {} stroke points at bone",
        spine.points.len()
    );
    let mean_y = spine
        .points
        .iter()
        .map(|p| f64::from(p.position_mm.y))
        .sum::<f64>()
        / spine.points.len() as f64;
    assert!(
        mean_y > lm.centre_mm.y + 10.0,
        "{mean_y} vs {}",
        lm.centre_mm.y
    );
    let first = spine.points[0].position_mm.as_dvec3();
    let last = spine.points[spine.points.len() - 1].position_mm.as_dvec3();
    assert!(first.distance(lm.spinous_tips_mm[0]) < 2.0);
    assert!(last.distance(lm.spinous_tips_mm[4]) < 2.0);
    assert!(first.z > last.z + 100.0, "L1 is above L5");
}

#[test]
fn scrubbing_back_removes_strokes_drawn_later() {
    let _guard = gpu_lock();
    let mut replay = Replay::new();
    let view = orbit(180.0, 20.0);
    let (_, early_fresh) = replay.frame(20.0, &view);
    let early_image = replay.render(&early_fresh);
    let (late_state, late) = replay.frame(28.0, &view);
    let _ = replay.render(&late);
    // Back to 20 s on the same player (warm caches) and renderer (overlays of 28 s loaded).
    let (early_state, early) = replay.frame(20.0, &view);
    assert_eq!(early, early_fresh);
    assert_eq!(replay.render(&early).pixels, early_image.pixels);

    // At 20 s: 3 s into the 8 s spine stroke, no ring yet; at 28 s both, the spine finished.
    assert_eq!(early_state.strokes.len(), 1);
    assert_eq!(late_state.strokes.len(), 2);
    let (s0, s1) = script::STROKE_SPINE_S;
    let spine_done = late_state.strokes[0].points.len();
    let spine_early = early_state.strokes[0].points.len();
    let expected = ((20.0 - s0) / (s1 - s0) * spine_done as f64).round() as usize;
    assert!(
        spine_early.abs_diff(expected) <= 2,
        "{spine_early} vs {expected}"
    );
    assert!(early.overlays.strokes.len() < late.overlays.strokes.len());
    assert!(!early.overlays.strokes.is_empty());
    // The stroke capsules of 20 s are those of 28 s up to where the pen was (the last one
    // ends at the pen).
    let n = early.overlays.strokes.len();
    assert_eq!(
        early.overlays.strokes[..n - 1],
        late.overlays.strokes[..n - 1]
    );
    // Before the first stroke there is none.
    let (_, before) = replay.frame(16.5, &view);
    assert!(before.overlays.strokes.is_empty());
}

#[test]
fn following_the_instructor_puts_the_camera_at_the_recorded_head() {
    let mut player = Player::open(demo_lesson()).expect("open");
    let mut builder = SceneBuilder::new(*demo_case().ct.geometry());
    let lm = spine_landmarks(demo_case()).expect("landmarks");
    for seconds in [3.0, 22.0, 41.5] {
        let state = player.state_at(ns(seconds));
        let head = state.head.expect("head tracked");
        let frame = builder.frame(
            &state,
            &LearnerView::FollowInstructor(OrbitView::default()),
            SIZE,
        );
        assert!(frame.follows_instructor);
        let expected = patient_from_stage(&state.scene) * pose_matrix(&head);
        assert!(
            frame.camera.world_from_view.abs_diff_eq(expected, 1e-6),
            "{seconds} s"
        );
        // The script's head stands about 550 mm from the lumbar spine and looks at it.
        let eye = frame.camera.eye();
        let d = eye.distance(lm.centre_mm);
        assert!((400.0..700.0).contains(&d), "{seconds} s: {d} mm");
        let seen = frame.camera.project(lm.centre_mm, SIZE).expect("in front");
        assert!(
            (seen[0] - 96.0).abs() < 40.0 && (seen[1] - 96.0).abs() < 40.0,
            "{seconds} s: spine at {seen:?}"
        );
        // Through the instructor's eyes the glasses are not drawn; from outside they sit at
        // the head, each lens centre 32 mm beside the eye and 14 mm in front.
        assert!(frame.overlays.glasses.is_empty());
        let outside = builder.frame(&state, &orbit(0.0, 0.0), SIZE);
        let lens = &outside.overlays.glasses[..glasses::RING_SEGMENTS];
        let centre = lens.iter().map(|c| c.a_mm.as_dvec3()).sum::<DVec3>() / lens.len() as f64;
        assert!((centre.distance(eye) - 35.0).abs() < 1.0);
    }
}
