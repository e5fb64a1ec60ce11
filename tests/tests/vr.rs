//! VR from the simulated headset: stereo pairs of the demo lesson against goldens, disparity of
//! rendered features, and a VR recording replayed by the Player.

use std::path::PathBuf;
use std::sync::OnceLock;

use glam::{DVec3, Quat, Vec3};
use twinray_lessons::event::{ControllerState, Pose, WRIST_JOINT};
use twinray_lessons::player::Player;
use twinray_renderer::{RenderOptions, RgbaImage, VolumeRenderer};
use twinray_scene::builder::{overlays, HAND_CAPSULE_COUNT};
use twinray_scene::demo::{demo_twin_pose, record_demo};
use twinray_scene::Case;
use twinray_scene::FrameRenderer;
use twinray_tests::{assert_matches_golden, covered_centroid, gpu, gpu_lock, phantom};
use twinray_transfer_functions::{Preset, TransferFunction};
use twinray_xr::comfort::Quality;
use twinray_xr::input::TwinPlacement;
use twinray_xr::session::{Content, VrOptions, VrSession};
use twinray_xr::source::{SimulatedXr, PERIOD_90HZ_NS};
use twinray_xr::stereo::eye_cameras;

/// Eye images small enough for the suite (a real headset's are ~1832×1920).
const EYE: [u32; 2] = [160, 168];
/// Where the demo lesson stands the twin in the room.
const TWIN_CENTRE_MM: Vec3 = Vec3::new(0.0, 1200.0, -600.0);
const FULL: Quality = Quality {
    step_voxels: 0.5,
    resolution_scale: 1.0,
};

fn demo_case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| Case::demo().expect("the embedded demo case"))
}

fn scratch(name: &str) -> PathBuf {
    twinray_tests::scratch_dir("vr").join(name)
}

fn session(content: Content) -> VrSession {
    session_with(content, VrOptions::default())
}

/// A session on the demo case at full quality, with `options` otherwise.
fn session_with(content: Content, options: VrOptions) -> VrSession {
    let case = demo_case();
    let renderer = FrameRenderer::new(gpu(), &case.ct, case.labels.as_ref(), &case.intensity)
        .expect("renderer on the case");
    let twin = demo_twin_pose(case.ct.geometry().centre_mm());
    VrSession::new(
        case.clone(),
        renderer,
        twin,
        content,
        VrOptions {
            fixed_quality: Some(FULL),
            ..options
        },
    )
}

/// The left and right eye side by side, as one image (one golden per instant).
fn side_by_side(eyes: &[RgbaImage; 2]) -> RgbaImage {
    let [l, r] = eyes;
    let mut pixels = Vec::with_capacity(l.pixels.len() + r.pixels.len());
    for y in 0..l.height as usize {
        let row = |img: &RgbaImage| {
            let w = img.width as usize * 4;
            img.pixels[y * w..(y + 1) * w].to_vec()
        };
        pixels.extend(row(l));
        pixels.extend(row(r));
    }
    RgbaImage {
        width: l.width + r.width,
        height: l.height,
        pixels,
    }
}

fn demo_lesson() -> &'static PathBuf {
    static LESSON: OnceLock<PathBuf> = OnceLock::new();
    LESSON.get_or_init(|| {
        let lesson = scratch("demo.lesson");
        record_demo(demo_case(), &lesson).expect("record the demo lesson");
        lesson
    })
}

/// The stereo pair the simulated headset sees of the demo lesson at `seconds`.
fn demo_pair(seconds: f64) -> [RgbaImage; 2] {
    let player = Player::open(demo_lesson()).expect("open the demo lesson");
    let mut vr = session(Content::Replay(Box::new(player)));
    let frame = SimulatedXr::new(TWIN_CENTRE_MM, EYE, 1).frame_at(seconds);
    let (eyes, _) = vr
        .render_frame(&frame, (seconds * 1e9) as i64, EYE)
        .expect("stereo frame");
    assert_eq!([eyes[0].width, eyes[0].height], EYE);
    assert_ne!(
        eyes[0].pixels, eyes[1].pixels,
        "the eyes must see differently"
    );
    eyes
}

#[test]
fn stereo_pair_after_the_spine_strokes_matches_the_golden() {
    let _gpu = gpu_lock();
    assert_matches_golden("vr-demo-strokes-stereo", &side_by_side(&demo_pair(29.5)));
}

#[test]
fn stereo_pair_with_the_clip_plane_and_the_pen_matches_the_golden() {
    let _gpu = gpu_lock();
    assert_matches_golden("vr-demo-clip-pen-stereo", &side_by_side(&demo_pair(42.0)));
}

/// Renders a bright ball of `radius_mm` placed `distance_mm` in front of the simulated head,
/// and returns (left centroid x, right centroid x, predicted left x, predicted right x).
fn ball_in_both_eyes(distance_mm: f32, radius_mm: f64) -> [f64; 4] {
    let r = radius_mm;
    let ct = phantom([48, 48, 48], [r / 16.0; 3], |p| {
        if p.length() <= r {
            1500.0
        } else {
            -1000.0
        }
    });
    let xr = SimulatedXr::new(TWIN_CENTRE_MM, EYE, 1);
    let frame = xr.frame_at(0.0);
    let forward = frame.head.orientation * Vec3::NEG_Z;
    let twin = TwinPlacement::rigid(Pose {
        position_mm: frame.head.position_mm + forward * distance_mm,
        orientation: Quat::IDENTITY,
    });
    let cameras = eye_cameras(&frame.views, &twin);
    let tf = TransferFunction::new(Preset::load("ct-bone").expect("preset"));
    let mut renderer = VolumeRenderer::new(gpu(), &tf).expect("renderer");
    renderer
        .set_volume(&ct, None, twinray_transfer_functions::DensityRange::CT)
        .expect("volume");
    let mut out = [0.0; 4];
    for (i, camera) in cameras.iter().enumerate() {
        let (image, _): (RgbaImage, _) = renderer
            .render(camera, &RenderOptions::default(), EYE)
            .expect("render");
        out[i] = covered_centroid(&image, 128).expect("the ball is visible")[0];
        out[i + 2] = camera.project(DVec3::ZERO, EYE).expect("in front")[0];
    }
    out
}

#[test]
fn a_near_ball_sits_further_right_in_the_left_eye_and_far_ones_less() {
    let _gpu = gpu_lock();
    let [near_l, near_r, pred_l, pred_r] = ball_in_both_eyes(300.0, 20.0);
    // Rendered where the per-eye (asymmetric) projection says.
    assert!((near_l - pred_l).abs() < 1.5 && (near_r - pred_r).abs() < 1.5);
    let [far_l, far_r, ..] = ball_in_both_eyes(1500.0, 60.0);
    let (near, far) = (near_l - near_r, far_l - far_r);
    assert!(
        near > 0.0,
        "left-eye x minus right-eye x of the near ball: {near}"
    );
    // At infinity the two images differ only by the frusta's offsets; nearer means more.
    let xr = SimulatedXr::new(TWIN_CENTRE_MM, EYE, 1);
    let [l, r] = xr.frame_at(0.0).views.map(|v| v.fov);
    let axis_x = |f: twinray_xr::source::Fov| {
        f64::from(EYE[0]) * f64::from(-f.angle_left.tan())
            / f64::from(f.angle_right.tan() - f.angle_left.tan())
    };
    let infinity = axis_x(l) - axis_x(r);
    // 63 mm of baseline at 300 mm is 0.21 in tangent units, about 15 px at these eye sizes.
    assert!(near - infinity > 10.0, "near {near} infinity {infinity}");
    assert!(
        far > infinity && far - infinity < (near - infinity) / 3.0,
        "far {far}"
    );
}

#[test]
fn a_simulated_vr_recording_replays_with_head_samples_at_display_rate() {
    let _gpu = gpu_lock();
    let lesson = scratch("vr.lesson");
    let mut vr = session(Content::Live {
        record_to: Some(lesson.clone()),
    });
    // 1.7 s: menu starts recording, a chapter, a trigger stroke, the start of a grab.
    let mut xr = SimulatedXr::new(TWIN_CENTRE_MM, [24, 26], 150);
    let report = vr.run(&mut xr).expect("simulated VR run");
    assert_eq!(report.frames, 150);
    let recording = report
        .recording
        .expect("the menu button started a recording");
    assert_eq!(recording.dropped_event_count, 0);

    let info = twinray_lessons::tools::info(&lesson).expect("lesson info");
    let head = info
        .streams
        .iter()
        .find(|s| s.name == "head")
        .expect("a head stream");
    let spacing_ns = (head.t_max_ns - head.t_min_ns) / (head.event_count as i64 - 1);
    assert!(head.event_count >= 140, "{} head samples", head.event_count);
    assert!(
        (spacing_ns - PERIOD_90HZ_NS).abs() < 1000,
        "{spacing_ns} ns between head samples"
    );

    let mut player = Player::open(&lesson).expect("replay the VR lesson");
    let state = player.state_at(1_600_000_000);
    assert!(state.head.is_some() && state.hands.iter().all(Option::is_some));
    assert_eq!(state.chapter.as_deref(), Some("VR chapter 1"));
    assert_eq!(state.strokes.len(), 1);
    assert!(state.strokes[0].points.len() > 20);
    // The recording starts from the scene it was made on: the twin where the case stood.
    assert_eq!(
        state.scene.stage_from_patient,
        demo_twin_pose(demo_case().ct.geometry().centre_mm())
    );
}

#[test]
fn a_session_ends_at_its_frame_limit_or_when_stopped_and_finishes_its_recording() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use twinray_xr::session::SessionEnd;

    let _gpu = gpu_lock();
    let case = demo_case();
    let twin = demo_twin_pose(case.ct.geometry().centre_mm());
    let stop = Arc::new(AtomicBool::new(false));
    let run = |lesson: &PathBuf, max_frames: Option<u64>| {
        let renderer = FrameRenderer::new(gpu(), &case.ct, case.labels.as_ref(), &case.intensity)
            .expect("renderer on the case");
        let mut vr = VrSession::new(
            case.clone(),
            renderer,
            twin,
            Content::Live {
                record_to: Some(lesson.clone()),
            },
            VrOptions {
                fixed_quality: Some(FULL),
                max_frames,
                stop: Some(stop.clone()),
                record_at_start: true,
                ..VrOptions::default()
            },
        );
        // A script far longer than the runs: only the limit or the flag ends them. Recording
        // starts at the first frame (the script's own menu press at 0.05 s would stop it, so
        // the runs end before it).
        let mut xr = SimulatedXr::new(TWIN_CENTRE_MM, [16, 16], 10_000);
        vr.run(&mut xr).expect("simulated VR run")
    };

    let limited = scratch("limited.lesson");
    let report = run(&limited, Some(3));
    assert_eq!(report.frames, 3);
    assert_eq!(report.ended_by, Some(SessionEnd::FrameLimit));
    let recording = report.recording.expect("recording from the first frame");
    assert_eq!(recording.path, limited);
    let verified = twinray_lessons::tools::verify(&limited).expect("verify");
    assert!(verified.is_clean() && verified.footer_ok, "{verified}");
    assert!(verified.event_count > 0);

    // Set before the first frame (a signal during start-up): no frame, a clean end, and no
    // recording (there was no first frame to start it).
    stop.store(true, Ordering::SeqCst);
    let stopped = scratch("stopped.lesson");
    let report = run(&stopped, None);
    assert_eq!(report.frames, 0);
    assert_eq!(report.ended_by, Some(SessionEnd::Stopped));
    assert!(report.recording.is_none() && !stopped.exists());
}

/// Lesson time of a simulated frame, nanoseconds.
fn ns(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

#[test]
fn a_lesson_taught_on_a_scaled_twin_replays_with_the_hands_on_the_same_anatomy() {
    let _gpu = gpu_lock();
    let lesson = scratch("scaled.lesson");
    let mut vr = session(Content::Live {
        record_to: Some(lesson.clone()),
    });
    // 4.4 s: the menu starts recording, a stroke, a one-hand grab, then both grips scale the
    // twin to 1.5 times life size (3.0 to 4.0 s); the hands then rest.
    let mut xr = SimulatedXr::new(TWIN_CENTRE_MM, [16, 16], 400);
    let report = vr.run(&mut xr).expect("simulated VR run");
    assert_eq!(report.recording.expect("recorded").dropped_event_count, 0);
    let twin = vr.twin();
    assert!((twin.scale - 1.5).abs() < 0.02, "{}", twin.scale);

    // Where the instructor's right wrist was on the anatomy (patient mm), live.
    let t = 4.2;
    let frame = xr.frame_at(t);
    let wrist_stage = frame.hands[1].expect("tracked").joints[WRIST_JOINT]
        .pose
        .position_mm;
    let live_mm = twin.patient_from_stage(wrist_stage);
    // Replayed: the same place, within the hand stream's 0.5 mm quantisation (in the room,
    // so a third less on a 1.5× twin). Unscaled, it would be about 40 % off.
    let mut player = Player::open(&lesson).expect("replay");
    let state = player.state_at(ns(t));
    assert!((state.scene.twin_scale - twin.scale).abs() < 1e-6);
    let hands = overlays(&state).hands;
    assert_eq!(hands.len(), 2 * HAND_CAPSULE_COUNT);
    // The right hand's first capsule starts at its wrist.
    let replayed_mm = hands[HAND_CAPSULE_COUNT].a_mm;
    let error_mm = replayed_mm.distance(live_mm);
    assert!(error_mm < 0.6, "wrist {error_mm} mm off the anatomy");
}

/// Frames of a headset that stands still (the script's first instant at every time), so that
/// only the lesson changes what the eyes see.
fn still_frame(seconds: f64) -> twinray_xr::source::XrFrame {
    let mut frame = SimulatedXr::new(TWIN_CENTRE_MM, EYE, 1).frame_at(0.0);
    frame.predicted_display_time_ns = ns(seconds);
    frame
}

#[test]
fn a_label_change_replays_at_its_time_and_undoes_when_scrubbing_back() {
    let _gpu = gpu_lock();
    let case = demo_case();
    let lesson = scratch("labels.lesson");
    let renderer = FrameRenderer::new(gpu(), &case.ct, case.labels.as_ref(), &case.intensity)
        .expect("renderer on the case");
    let mut vr = VrSession::new(
        case.clone(),
        renderer,
        demo_twin_pose(case.ct.geometry().centre_mm()),
        Content::Live {
            record_to: Some(lesson.clone()),
        },
        VrOptions {
            fixed_quality: Some(FULL),
            record_at_start: true,
            ..VrOptions::default()
        },
    );
    // "Segmenting" at 0.4 s: a new map that labels no vertebra.
    let mut segmented = case.labels.clone().expect("the demo case has labels");
    let changed = segmented.voxels().iter().filter(|&&v| v != 0).count();
    assert!(changed > 1000, "{changed} labelled voxels");
    segmented.voxels_mut().fill(0);
    for k in 0..=8 {
        let t = f64::from(k) * 0.1;
        if k == 4 {
            vr.show_labels(segmented.clone(), ns(t))
                .expect("show the new labels");
        }
        vr.render_frame(&still_frame(t), ns(t), EYE)
            .expect("live frame");
        assert_eq!(vr.shown_label_map().is_some(), k >= 4, "live at {t} s");
    }
    vr.finish_recording().expect("finish").expect("recording");

    let player = Player::open(&lesson).expect("replay");
    let mut replay = session(Content::Replay(Box::new(player)));
    let mut at = |seconds: f64| {
        let (eyes, _) = replay
            .render_frame(&still_frame(seconds), ns(seconds), EYE)
            .expect("replayed frame");
        (replay.shown_label_map(), eyes)
    };
    let (before_map, before) = at(0.3);
    let (after_map, after) = at(0.5);
    assert!(before_map.is_none(), "the case's labels before 0.4 s");
    assert!(after_map.is_some(), "the segmentation's labels from 0.4 s");
    let differing = before[0]
        .pixels
        .chunks(4)
        .zip(after[0].pixels.chunks(4))
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differing > 200,
        "{differing} pixels changed with the labels"
    );
    // Scrubbing back shows the case's labels again, pixel for pixel; forward, the map.
    let (back_map, back) = at(0.3);
    assert_eq!(back_map, None);
    assert!(back == before, "scrubbing back restores the case's labels");
    let (again_map, again) = at(0.8);
    assert_eq!(again_map, after_map);
    assert!(again == after);
}

/// A right controller at `from` pointing at `to` (stage mm), its trigger and grip as given.
fn pointing(from: Vec3, to: Vec3, trigger: f32, squeeze: f32) -> ControllerState {
    let pose = Pose {
        position_mm: from,
        orientation: Quat::from_rotation_arc(Vec3::NEG_Z, (to - from).normalize()),
    };
    ControllerState {
        grip: pose,
        aim: pose,
        buttons: 0,
        trigger,
        squeeze,
        thumbstick: glam::Vec2::ZERO,
    }
}

#[test]
fn a_scripted_learner_pauses_scrubs_back_and_jumps_to_a_chapter_in_the_headset() {
    use twinray_scene::demo::script::{CHAPTERS, STROKE_SPINE_S};
    use twinray_xr::panel::Control;
    use twinray_xr::source::MENU_BUTTON;

    let _gpu = gpu_lock();
    const START_S: f64 = 29.5;
    let player = Player::open(demo_lesson()).expect("open the demo lesson");
    let mut reference = Player::open(demo_lesson()).expect("open it again");
    let mut vr = session(Content::Replay(Box::new(player)));
    let small = [48, 48];
    let hand = still_frame(0.0).head.position_mm + Vec3::new(150.0, -250.0, -100.0);
    // The learner's clock (seconds since the replay started at 29.5 s of the lesson), with
    // the left menu button and the right controller as given.
    let step = |vr: &mut VrSession, clock_s: f64, menu: bool, right: Option<ControllerState>| {
        let mut frame = still_frame(clock_s);
        frame.hands = [None, None];
        if menu {
            frame.controllers[0] = frame.controllers[0].map(|c| ControllerState {
                buttons: MENU_BUTTON,
                ..c
            });
        }
        if right.is_some() {
            frame.controllers[1] = right;
        }
        vr.render_frame(&frame, ns(START_S + clock_s), small)
            .expect("replayed frame");
        vr.last_state().expect("a state").clone()
    };
    let target = |vr: &VrSession, c: Control| {
        vr.learner_controls()
            .expect("controls")
            .panel
            .control_stage_mm(c)
            .expect("on the panel")
    };
    let state = step(&mut vr, 0.0, false, None);
    assert_eq!(state.time_ns, ns(START_S));
    let strokes_at_start: usize = state.strokes.iter().map(|s| s.points.len()).sum();
    assert_eq!(state.strokes.len(), 2);

    // The left menu button summons the panel.
    step(&mut vr, 0.1, true, None);
    step(&mut vr, 0.15, false, None);
    assert!(vr.learner_controls().expect("controls").panel.visible());

    // Pause: the lesson stops at 29.7 s while the learner's clock runs on.
    let play = target(&vr, Control::PlayPause);
    step(&mut vr, 0.2, false, Some(pointing(hand, play, 1.0, 0.0)));
    step(&mut vr, 0.25, false, Some(pointing(hand, play, 0.0, 0.0)));
    let paused = step(&mut vr, 1.0, false, None);
    assert_eq!(paused.time_ns, ns(START_S + 0.2));
    assert_eq!(paused, reference.state_at(ns(START_S + 0.2)));

    // Scrub back along the timeline to the middle of the first stroke: the ring un-draws and
    // the spine stroke is drawn only as far as it was then.
    let scrub = |vr: &VrSession, lesson_s: f64| {
        vr.learner_controls()
            .expect("controls")
            .panel
            .timeline_stage_mm(ns(lesson_s))
            .expect("timeline")
    };
    let mid = 0.5 * (STROKE_SPINE_S.0 + STROKE_SPINE_S.1);
    let to = scrub(&vr, mid - 1.0);
    step(&mut vr, 1.1, false, Some(pointing(hand, to, 1.0, 0.0)));
    let to = scrub(&vr, mid);
    let dragged = step(&mut vr, 1.2, false, Some(pointing(hand, to, 1.0, 0.0)));
    step(&mut vr, 1.3, false, Some(pointing(hand, to, 0.0, 0.0)));
    assert!(
        (dragged.time_ns - ns(mid)).abs() < ns(0.2),
        "scrubbed to {} s",
        dragged.time_ns as f64 * 1e-9
    );
    assert_eq!(dragged.strokes.len(), 1, "the ring is not drawn yet");
    let points: usize = dragged.strokes.iter().map(|s| s.points.len()).sum();
    assert!(points > 0 && points < strokes_at_start, "{points} points");
    assert_eq!(dragged, reference.state_at(dragged.time_ns));

    // Jump to the "Soft tissue" chapter.
    let (chapter_s, title) = CHAPTERS[3];
    let button = target(&vr, Control::Chapter(3));
    let jumped = step(&mut vr, 1.5, false, Some(pointing(hand, button, 1.0, 0.0)));
    step(&mut vr, 1.6, false, Some(pointing(hand, button, 0.0, 0.0)));
    assert_eq!(jumped.time_ns, ns(chapter_s));
    assert_eq!(jumped.chapter.as_deref(), Some(title));
    assert_eq!(jumped, reference.state_at(ns(chapter_s)));

    // Play again: a second of the learner's clock is a second of the lesson.
    step(&mut vr, 1.7, false, Some(pointing(hand, play, 1.0, 0.0)));
    step(&mut vr, 1.75, false, Some(pointing(hand, play, 0.0, 0.0)));
    let playing = step(&mut vr, 2.7, false, None);
    assert_eq!(playing.time_ns, ns(chapter_s + 1.0));
    assert_eq!(playing, reference.state_at(ns(chapter_s + 1.0)));

    // The learner grabs the world and carries it 100 mm to the right: the lesson (its twin
    // pose) is unchanged, only where the learner sees it from.
    let away = hand + Vec3::new(0.0, -400.0, 0.0);
    step(&mut vr, 2.8, false, Some(pointing(hand, away, 0.0, 1.0)));
    let carried = hand + Vec3::new(100.0, 0.0, 0.0);
    let moved = step(
        &mut vr,
        2.9,
        false,
        Some(pointing(carried, away + Vec3::X * 100.0, 0.0, 1.0)),
    );
    step(&mut vr, 3.0, false, Some(pointing(carried, away, 0.0, 0.0)));
    let offset = vr.learner_controls().expect("controls").view_from_lesson;
    assert!(
        offset.position_mm.distance(Vec3::new(100.0, 0.0, 0.0)) < 0.5,
        "{offset:?}"
    );
    assert_eq!(
        moved.scene.stage_from_patient,
        reference.state_at(moved.time_ns).scene.stage_from_patient
    );

    // The menu dismisses the panel.
    step(&mut vr, 3.1, true, None);
    step(&mut vr, 3.2, false, None);
    assert!(!vr.learner_controls().expect("controls").panel.visible());
}

/// The measure tool in the headset: two trigger presses with the controller's ray on the
/// anatomy place a distance where the rays meet the surface the eyes see (the pen's pick),
/// shown and recorded as the desktop records one; the trigger draws no stroke meanwhile.
#[test]
fn trigger_presses_of_the_measure_tool_place_a_distance_on_the_anatomy() {
    let _gpu = gpu_lock();
    let lesson = scratch("measure.lesson");
    let mut vr = session(Content::Live {
        record_to: Some(lesson.clone()),
    });
    vr.interaction_mut().measure_tool = Some(twinray_scene::annotations::MeasureTool::Distance);
    // From behind the patient at the centres of L5 and L4: the rays meet the back of those
    // vertebrae (the bone the demo's preset shows), in the room.
    let lm = twinray_scene::demo::spine_landmarks(demo_case()).expect("landmarks");
    let tips = [lm.centroids_mm[4], lm.centroids_mm[3]].map(|p| p.as_vec3());
    let twin0 = vr.twin();
    let rays = tips.map(|tip| {
        let behind = tip + Vec3::new(0.0, 300.0, 0.0);
        (
            twin0.stage_from_patient(behind),
            twin0.stage_from_patient(tip),
        )
    });
    let small = [32, 32];
    let mut t = 0.0;
    let mut step = |vr: &mut VrSession, ray: (Vec3, Vec3), trigger: f32| {
        let mut frame = still_frame(t);
        frame.controllers[1] = Some(pointing(ray.0, ray.1, trigger, 0.0));
        vr.render_frame(&frame, ns(t), small).expect("frame");
        t += 0.1;
    };
    // The first frame starts nothing (record_at_start is off): press, release, press, release.
    for (ray, trigger) in [
        (rays[0], 0.0),
        (rays[0], 1.0),
        (rays[0], 0.0),
        (rays[1], 1.0),
        (rays[1], 0.0),
        (rays[1], 0.0),
    ] {
        step(&mut vr, ray, trigger);
    }
    let state = vr.last_state().expect("a frame");
    assert!(
        state.strokes.is_empty(),
        "the trigger measured, it did not draw"
    );
    let measurements: Vec<_> = state.scene.measurements.values().collect();
    assert_eq!(measurements.len(), 1, "{measurements:?}");
    let twinray_lessons::event::Measurement::Distance { space, a_mm, b_mm } = *measurements[0]
    else {
        panic!("a distance: {measurements:?}");
    };
    assert_eq!(space, twinray_lessons::event::Space::Patient);
    // Each point lies on its ray, in the room.
    let twin = vr.twin();
    for (p, (from, to)) in [a_mm, b_mm].into_iter().zip(rays) {
        let stage = twin.stage_from_patient(p);
        let along = (to - from).normalize();
        let off = (stage - from) - along * (stage - from).dot(along);
        assert!(off.length() < 1.5, "{p} is {off} off its ray");
        assert!((stage - from).dot(along) > 0.0);
    }
    // Behind the centres, on the back of their vertebrae.
    for (p, centre) in [a_mm, b_mm].into_iter().zip(tips) {
        assert!(
            p.distance(centre) < 50.0 && p.y > centre.y,
            "{p} vs {centre}"
        );
    }
}

/// As the desktop names what is under the mouse, the headset names the labelled structure the
/// right controller's ray meets, as a text in the scene; nothing when it points at air.
#[test]
fn the_structure_under_the_controller_ray_is_named() {
    let _gpu = gpu_lock();
    let mut vr = session(Content::Live { record_to: None });
    let lm = twinray_scene::demo::spine_landmarks(demo_case()).expect("landmarks");
    let twin = vr.twin();
    let centre = lm.centroids_mm[3].as_vec3();
    let mut frame = still_frame(0.0);
    frame.controllers[1] = Some(pointing(
        twin.stage_from_patient(centre + Vec3::new(0.0, 300.0, 0.0)),
        twin.stage_from_patient(centre),
        0.0,
        0.0,
    ));
    vr.render_frame(&frame, 0, [32, 32]).expect("frame");
    assert_eq!(vr.pointed_structure(), Some("vertebrae_L4"));
    // Away from the twin: nothing named.
    let mut frame = still_frame(0.1);
    frame.controllers[1] = Some(pointing(
        TWIN_CENTRE_MM + Vec3::new(0.0, 0.0, 300.0),
        TWIN_CENTRE_MM + Vec3::new(0.0, 1000.0, 300.0),
        0.0,
        0.0,
    ));
    vr.render_frame(&frame, ns(0.1), [32, 32]).expect("frame");
    assert_eq!(vr.pointed_structure(), None);
}

/// Pixels that differ between two images of the same size, with their coordinates.
fn differing_pixels(a: &RgbaImage, b: &RgbaImage) -> Vec<[u32; 2]> {
    assert_eq!([a.width, a.height], [b.width, b.height]);
    let mut out = Vec::new();
    for y in 0..a.height {
        for x in 0..a.width {
            if a.pixel(x, y) != b.pixel(x, y) {
                out.push([x, y]);
            }
        }
    }
    out
}

/// TotalSegmentator's id of `vertebrae_L4`, the demo case's label the tests point at.
const VERTEBRA_L4: u16 = 28;

/// Label statistics in the headset: the tool button (B) steps to the label-statistics tool, a
/// trigger press with the ray on L4 records the measurement the desktop records (the label's
/// id), and its value — the volume and HU statistics the desktop and `twinray measure stats`
/// compute — shows as a text in the eye images beside the vertebra, live and in a replay.
#[test]
fn the_label_statistics_tool_records_a_vertebras_volume_and_shows_it_in_the_eyes() {
    use twinray_lessons::event::Measurement;
    use twinray_scene::annotations::MeasureTool;
    use twinray_xr::source::TOOL_BUTTON;

    let _gpu = gpu_lock();
    let case = demo_case();
    let lesson = scratch("label-stats.lesson");
    let mut vr = session_with(
        Content::Live {
            record_to: Some(lesson.clone()),
        },
        VrOptions {
            record_at_start: true,
            ..VrOptions::default()
        },
    );
    // The value, computed here from the arrays (3D Slicer's definitions: volume = voxel
    // count × voxel volume, sample SD, median the middle value or the mean of the two).
    let labels = case.labels.as_ref().expect("the demo case has labels");
    let mut hu: Vec<f64> = labels
        .voxels()
        .iter()
        .zip(case.ct.voxels())
        .filter(|(&l, _)| l == VERTEBRA_L4)
        .map(|(_, &v)| f64::from(v))
        .collect();
    let n = hu.len() as f64;
    assert!(n > 1000.0, "{n} voxels of L4");
    let voxel_ml = case.ct.geometry().spacing_mm().iter().product::<f64>() / 1000.0;
    let mean = hu.iter().sum::<f64>() / n;
    let sd = (hu.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    hu.sort_by(f64::total_cmp);
    let mid = hu.len() / 2;
    let median = if hu.len().is_multiple_of(2) {
        0.5 * (hu[mid - 1] + hu[mid])
    } else {
        hu[mid]
    };
    let expected = format!(
        "vertebrae_L4\n{:.1} ml\nHU {mean:.0} ± {sd:.0} (median {median:.0})",
        n * voxel_ml
    );

    // From behind the patient at L4's centre: the ray meets the back of the vertebra.
    let lm = twinray_scene::demo::spine_landmarks(case).expect("landmarks");
    let centre = lm.centroids_mm[3].as_vec3();
    let twin = vr.twin();
    let ray = (
        twin.stage_from_patient(centre + Vec3::new(0.0, 300.0, 0.0)),
        twin.stage_from_patient(centre),
    );
    let small = [32, 32];
    let mut t = 0.0;
    // One frame; `right` is the right controller (`None`: not tracked, so no ray, no name
    // and no tool hint in the image).
    let mut step = |vr: &mut VrSession, right: Option<ControllerState>, size: [u32; 2]| {
        let mut frame = still_frame(t);
        frame.controllers[1] = right;
        let (eyes, _) = vr.render_frame(&frame, ns(t), size).expect("frame");
        t += 0.1;
        eyes
    };
    let before = step(&mut vr, None, EYE);
    // B pressed five times: distance, angle, Cobb, needle path, label statistics.
    for _ in 0..5 {
        let mut pressed = pointing(ray.0, ray.1, 0.0, 0.0);
        pressed.buttons = TOOL_BUTTON;
        step(&mut vr, Some(pressed), small);
        step(&mut vr, Some(pointing(ray.0, ray.1, 0.0, 0.0)), small);
    }
    assert_eq!(
        vr.interaction_mut().measure_tool,
        Some(MeasureTool::LabelStats)
    );
    step(&mut vr, Some(pointing(ray.0, ray.1, 1.0, 0.0)), small);
    step(&mut vr, Some(pointing(ray.0, ray.1, 0.0, 0.0)), small);
    let after = step(&mut vr, None, EYE);

    let state = vr.last_state().expect("a frame").clone();
    assert!(
        state.strokes.is_empty(),
        "the trigger measured, it did not draw"
    );
    let measurements: Vec<(&u32, &Measurement)> = state.scene.measurements.iter().collect();
    assert_eq!(
        measurements,
        vec![(
            &1,
            &Measurement::LabelStats {
                label_id: VERTEBRA_L4
            }
        )]
    );
    let value = |vr: &VrSession| {
        vr.shown_texts()
            .iter()
            .find(|t| t.measurement_id == Some(1))
            .map(|t| (t.text.clone(), t.anchor_mm))
            .expect("the measurement's value is shown")
    };
    let (text, anchor_mm) = value(&vr);
    assert_eq!(text, expected);
    // A press with the ray pointing away from the patient places nothing, and the hint at the
    // controller says why instead of leaving the instructor with silence.
    let away = (ray.0, ray.0 + (ray.0 - ray.1));
    step(&mut vr, Some(pointing(away.0, away.1, 1.0, 0.0)), small);
    step(&mut vr, Some(pointing(away.0, away.1, 0.0, 0.0)), small);
    assert!(
        vr.shown_texts()
            .iter()
            .any(|t| t.measurement_id.is_none()
                && t.text.ends_with("the ray meets no anatomy there")),
        "{:?}",
        vr.shown_texts()
    );
    assert_eq!(
        vr.last_state().expect("a frame").scene.measurements.len(),
        1
    );

    // In the eye images: the text appears up and to the right of its anchor (L4's centroid),
    // and nothing else changed.
    let frame = still_frame(0.0);
    let camera = eye_cameras(&frame.views, &vr.twin())[0];
    let [ax, ay] = camera.project(anchor_mm, EYE).expect("in front of the eye");
    let changed = differing_pixels(&before[0], &after[0]);
    assert!(changed.len() > 100, "{} pixels changed", changed.len());
    let up_right = changed
        .iter()
        .filter(|[x, y]| f64::from(*x) + 0.5 > ax - 2.0 && f64::from(*y) + 0.5 < ay + 2.0)
        .count();
    assert!(
        up_right * 10 >= changed.len() * 9,
        "{up_right} of {} changed pixels up and right of the anchor ({ax:.0}, {ay:.0})",
        changed.len()
    );
    vr.finish_recording().expect("finish").expect("recorded");

    // Recorded: the lesson replays the measurement at its time with the same value.
    let mut player = Player::open(&lesson).expect("replay");
    let replayed = player.state_at(ns(t));
    assert_eq!(replayed.scene.measurements, state.scene.measurements);
    let mut replay = session(Content::Replay(Box::new(player)));
    replay
        .render_frame(&still_frame(t), ns(t), small)
        .expect("replayed frame");
    assert_eq!(value(&replay).0, expected);
}

/// Bringing an X-ray in: `--board` gives the session an image, the board button (Y) places it
/// half a metre in front of the head, facing it, at its real width, recorded as the desktop
/// records a board (the image once, by hash, then the board); a second press with no image
/// left places nothing. Replayed, the board shows in the eyes from its time on.
#[test]
fn the_board_button_places_a_brought_image_in_front_of_the_head_and_a_replay_shows_it() {
    use twinray_xr::input::BOARD_PLACE_DISTANCE_MM;
    use twinray_xr::source::BOARD_BUTTON;

    let _gpu = gpu_lock();
    let xray = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/xray/wg04/RG2_J2KI.dcm");
    let image = twinray_scene::boards::load_board_image(&xray).expect("the WG04 pelvis");
    let natural_mm = image.blob.natural_size_mm();
    let lesson = scratch("board.lesson");
    let mut vr = session_with(
        Content::Live {
            record_to: Some(lesson.clone()),
        },
        VrOptions {
            record_at_start: true,
            boards: vec![image.clone()],
            ..VrOptions::default()
        },
    );
    assert_eq!(vr.boards_to_place(), 1);
    let small = [32, 32];
    // Y pressed at 0.2 s and again at 0.4 s (nothing left then).
    for k in 0..6 {
        let t = f64::from(k) * 0.1;
        let mut frame = still_frame(t);
        if k == 2 || k == 4 {
            let left = frame.controllers[0].as_mut().expect("left controller");
            left.buttons = BOARD_BUTTON;
        }
        vr.render_frame(&frame, ns(t), small).expect("live frame");
    }
    assert_eq!(vr.boards_to_place(), 0);
    let live = vr.last_state().expect("a frame").scene.clone();
    assert_eq!(live.boards.len(), 1, "one board for one image");
    let board = &live.boards[&1];
    assert_eq!(board.image, image.blob.hash);
    assert!((board.width_mm - natural_mm.x).abs() < 1e-3, "real width");

    // In front of the head, facing it (in the room, through the twin's placement).
    let head = still_frame(0.2).head;
    let twin = vr.twin();
    let centre = twin.stage_from_patient(board.pose.position_mm);
    let gaze = head.orientation * Vec3::NEG_Z;
    let to_board = centre - head.position_mm;
    assert!((to_board.length() - BOARD_PLACE_DISTANCE_MM).abs() < 1.0);
    assert!(to_board.normalize().dot(gaze) > 0.999, "along the gaze");
    let normal = twin.stage_from_patient.orientation * board.pose.orientation * Vec3::Z;
    assert!(normal.dot(-to_board.normalize()) > 0.999, "facing the head");
    vr.finish_recording().expect("finish").expect("recorded");
    // A recording started later (the right menu button) starts with the board, its image
    // stored again in that lesson.
    let mut frame = still_frame(0.6);
    let right = frame.controllers[1].as_mut().expect("right controller");
    right.buttons = twinray_xr::source::MENU_BUTTON;
    vr.render_frame(&frame, ns(0.6), small).expect("live frame");
    let later = vr.finish_recording().expect("finish").expect("recorded");
    assert_ne!(later.path, lesson);
    let mut later = Player::open(&later.path).expect("the later lesson");
    assert_eq!(later.state_at(ns(0.6)).scene.boards, live.boards);
    assert!(
        later.image(&image.blob.hash).is_some(),
        "the image is stored"
    );

    // Recorded as the desktop records a board: the image stored once, then the board.
    let mut player = Player::open(&lesson).expect("replay");
    assert!(player.state_at(ns(0.1)).scene.boards.is_empty());
    assert_eq!(player.state_at(ns(0.5)).scene.boards, live.boards);
    let stored = player
        .image(&image.blob.hash)
        .expect("the image is in the lesson");
    assert_eq!(stored.hash, image.blob.hash);

    // Replayed in the headset: the board covers the view in front of the head from 0.2 s on.
    let mut replay = session(Content::Replay(Box::new(player)));
    let mut at = |seconds: f64| {
        let (eyes, _) = replay
            .render_frame(&still_frame(seconds), ns(seconds), EYE)
            .expect("replayed frame");
        eyes
    };
    let (before, after) = (at(0.1), at(0.5));
    let camera = eye_cameras(&still_frame(0.0).views, &twin)[0];
    let [cx, cy] = camera
        .project(board.pose.position_mm.as_dvec3(), EYE)
        .expect("in front of the eye");
    let changed = differing_pixels(&before[0], &after[0]);
    assert!(
        changed.len() > (EYE[0] * EYE[1] / 10) as usize,
        "{} pixels changed",
        changed.len()
    );
    // Centred where the board's centre projects (the twin's bone in front of parts of it
    // moves the centre of what changed a little).
    let n = changed.len() as f64;
    let mx = changed.iter().map(|p| f64::from(p[0]) + 0.5).sum::<f64>() / n;
    let my = changed.iter().map(|p| f64::from(p[1]) + 0.5).sum::<f64>() / n;
    assert!(
        (mx - cx).abs() < 15.0 && (my - cy).abs() < 15.0,
        "changed pixels centred at ({mx:.0}, {my:.0}), the board's centre at ({cx:.0}, {cy:.0})"
    );
}
