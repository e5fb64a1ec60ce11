//! The studio's state without a window: actions in, state and recorded lessons out.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use glam::{DVec3, Vec3};
use twinray_io::{CtVolume, LabelVolume};
use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::event::{Payload, SceneChange, Space};
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;

use super::case::OpenCase;
use super::*;

const MS: i64 = 1_000_000;

/// The demo volumes, read once for all tests.
fn demo_volumes() -> &'static (CtVolume, LabelVolume) {
    static DEMO: OnceLock<(CtVolume, LabelVolume)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let demo = twinray_scene::Case::demo().expect("the demo case loads");
        (demo.ct, demo.labels.expect("the demo case has labels"))
    })
}

fn demo_app() -> App {
    let (ct, labels) = demo_volumes();
    App::new(OpenCase::new("demo", ct.clone(), Some(labels.clone())))
}

/// A lesson taught on another case is refused by "Open lesson", naming both cases; a front end
/// that chose the case itself (`twinray studio LESSON`, --force-case) opens it on this one.
#[test]
fn a_lesson_of_another_case_is_refused_unless_the_front_end_chose_the_case() {
    let path = temp_lesson("other-case.lesson");
    let mut app = demo_app();
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    app.apply(Action::AddChapter("On the demo".into()))
        .expect("chapter");
    app.apply(Action::StopRecording).expect("stop");
    // The same CT without its labels is another case.
    let (ct, _) = demo_volumes();
    let mut other = App::new(OpenCase::new("unlabelled", ct.clone(), None));
    other.library_root.clone_from(&app.library_root);
    let e = other
        .apply(Action::OpenLesson(path.clone()))
        .expect_err("another case");
    let text = format!("{e:#}");
    assert!(
        text.contains(&app.case.case_ref) && text.contains(&other.case.case_ref),
        "{text}"
    );
    assert!(other.replay.is_none());
    other
        .apply(Action::OpenLessonOnThisCase(path))
        .expect("forced by the front end");
    assert!(other.replay.is_some());
}

/// Pressing Record twice with the default name never replaces the first lesson: the second goes
/// to `name-2.lesson` and the status bar says so.
#[test]
fn recording_again_under_the_same_name_keeps_the_first_lesson() {
    let path = temp_lesson("again.lesson");
    let mut app = demo_app();
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    app.apply(Action::AddChapter("First".into()))
        .expect("chapter");
    let first = app.stop_recording().expect("stop").expect("a report");
    assert_eq!(first.path, path);
    let bytes = std::fs::read(&path).expect("the first lesson");
    app.notice = None;
    app.apply(Action::StartRecording(path.clone()))
        .expect("record again");
    let second = app.stop_recording().expect("stop").expect("a report");
    assert_eq!(second.path, path.with_file_name("again-2.lesson"));
    assert_eq!(std::fs::read(&path).expect("still there"), bytes);
    let notice = app.notice.take().expect("the user is told");
    assert!(notice.contains("again-2.lesson"), "{notice}");
}

/// `name` in this process's scratch folder, emptied on first use: process ids repeat across
/// runs (a fresh container numbers its processes alike) and recordings never overwrite, so a
/// folder left by an earlier run would rename this run's lessons.
fn temp_lesson(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("twinray-studio-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    });
    dir.join(name)
}

/// Every event of a lesson file, in time order (head samples included).
fn read_events(path: &std::path::Path) -> Vec<Event> {
    let mut reader = LessonReader::open(path).expect("the lesson opens");
    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        let chunk = reader
            .read_chunk(i, DecodeParts::ALL)
            .expect("chunk decodes");
        events.extend(chunk.events);
        events.extend(
            chunk
                .head
                .into_iter()
                .map(|(t, pose)| Event::new(t, Payload::Head(pose))),
        );
    }
    events.sort_by_key(|e| e.time_ns);
    events
}

#[test]
fn the_demo_case_lists_its_vertebrae_by_name() {
    let app = demo_app();
    assert_eq!(app.case.present_labels, (26..=33).collect::<Vec<u16>>());
    assert_eq!(app.label_name(31), "vertebrae_L1");
    assert_eq!(app.label_name(0), "unlabelled tissue");
    assert!(app.case.histogram.iter().sum::<u64>() as usize == app.case.ct.voxels().len());
}

#[test]
fn search_filters_labels_by_name_ignoring_case() {
    let mut app = demo_app();
    app.apply(Action::SetLabelSearch("l1".into()))
        .expect("search");
    assert_eq!(app.listed_labels(), vec![31]);
    app.apply(Action::SetLabelSearch("VERTEBRAE_L".into()))
        .expect("search");
    assert_eq!(app.listed_labels(), vec![27, 28, 29, 30, 31]);
    app.apply(Action::SetLabelSearch("kidney".into()))
        .expect("search");
    assert!(
        app.listed_labels().is_empty(),
        "kidneys are not in this case"
    );
    app.apply(Action::SetLabelSearch(String::new()))
        .expect("search");
    assert_eq!(
        app.listed_labels().len(),
        9,
        "tissue and the eight vertebrae"
    );
}

#[test]
fn isolate_shows_only_one_label_and_show_all_undoes_it() {
    let mut app = demo_app();
    let before = app.view_revision;
    app.apply(Action::Isolate(29)).expect("isolate");
    assert!(app.view_revision > before, "isolating must re-render");
    for id in std::iter::once(0).chain(26..=33) {
        assert_eq!(app.label_state(id).visible, id == 29, "label {id}");
    }
    let tf = app.transfer_function();
    assert!(tf.labels.get(29).visible && !tf.labels.get(30).visible && !tf.labels.get(0).visible);
    app.apply(Action::ShowAllLabels).expect("show all");
    assert!((0..=33).all(|id| app.label_state(id).visible));
}

#[test]
fn label_colour_and_opacity_reach_the_transfer_function() {
    let mut app = demo_app();
    app.apply(Action::SetLabelColour {
        label: 31,
        colour_rgb: [255, 0, 0],
    })
    .expect("colour");
    app.apply(Action::SetLabelOpacity {
        label: 31,
        opacity: 1.7,
    })
    .expect("opacity");
    let tf = app.transfer_function();
    assert_eq!(tf.labels.get(31).rgb, [1.0, 0.0, 0.0]);
    assert_eq!(app.label_state(31).opacity, 1.0, "opacity is clamped to 1");
    assert_eq!(app.label_colour(31), [255, 0, 0]);
}

#[test]
fn curve_edits_change_the_transfer_function_and_stay_ordered() {
    let mut app = demo_app();
    let curve = app.curve();
    assert_eq!(
        curve.iter().map(|p| p.density_hu).collect::<Vec<_>>(),
        vec![150.0, 1200.0],
        "ct-bone's ramps"
    );
    app.apply(Action::AddCurvePoint { density_hu: 500.0 })
        .expect("add");
    let curve = app.curve();
    assert_eq!(curve.len(), 3);
    assert_eq!(curve[1].density_hu, 500.0);
    app.apply(Action::MoveCurvePoint {
        index: 1,
        density_hu: 5000.0,
        opacity: 0.1,
    })
    .expect("move");
    let curve = app.curve();
    assert_eq!(
        curve[1].density_hu, 1200.0,
        "a point cannot pass its neighbour"
    );
    app.apply(Action::MoveCurvePoint {
        index: 1,
        density_hu: 600.0,
        opacity: 0.8,
    })
    .expect("move");
    let tf = app.transfer_function();
    assert!((tf.preset.opacity_at(600.0) - 0.8).abs() < 1e-6);
    app.apply(Action::SetCurvePointColour {
        index: 1,
        rgb: [0.0, 1.0, 0.0],
    })
    .expect("colour");
    assert_eq!(
        app.transfer_function().preset.colour_at(600.0),
        [0.0, 1.0, 0.0]
    );
    app.apply(Action::RemoveCurvePoint(1)).expect("remove");
    assert_eq!(app.curve().len(), 2);
    assert!(
        app.apply(Action::RemoveCurvePoint(0)).is_err(),
        "two points stay"
    );
    // A preset replaces the edited curve with its own.
    app.apply(Action::SetPreset("ct-soft-tissue".into()))
        .expect("preset");
    assert!(app.scene.transfer_curve.is_empty());
    assert_eq!(app.transfer_function().preset.name, "ct-soft-tissue");
    assert!(app
        .apply(Action::SetPreset("no-such-preset".into()))
        .is_err());
}

#[test]
fn camera_orbits_zooms_pans_and_resets() {
    let mut app = demo_app();
    let home = app.view;
    app.apply(Action::Orbit {
        d_azimuth_deg: 90.0,
        d_elevation_deg: 200.0,
    })
    .expect("orbit");
    assert_eq!(app.view.azimuth_deg, 90.0);
    assert_eq!(
        app.view.elevation_deg, 89.0,
        "elevation stops short of the pole"
    );
    app.apply(Action::Zoom { factor: 2.0 }).expect("zoom");
    let geometry = *app.case.ct.geometry();
    assert!(
        (app.view.distance_mm(&geometry) - home.distance_mm(&geometry) / 2.0).abs() < 1e-9,
        "zooming by 2 halves the distance"
    );
    app.apply(Action::Pan {
        right: 0.1,
        up: 0.0,
    })
    .expect("pan");
    assert!(app.view.pan_mm.distance(home.pan_mm) > 1.0);
    assert!(app.apply(Action::Zoom { factor: 0.0 }).is_err());
    app.apply(Action::ResetView).expect("reset");
    assert_eq!(app.view, home);
}

#[test]
fn clip_plane_and_crop_box_become_render_options() {
    let mut app = demo_app();
    let centre = app.case.ct.geometry().centre_mm();
    app.apply(Action::SetClipPlane(Some(SceneClip {
        normal: Vec3::Y,
        distance_mm: centre.y as f32,
    })))
    .expect("clip");
    let clip = app.render_options().clip_plane.expect("a clip plane");
    // Anterior points (smaller y) are kept, posterior ones cut.
    let keeps = |p: DVec3| clip.normal.dot(p) + clip.offset_mm >= 0.0;
    assert!(keeps(centre - DVec3::Y * 10.0) && !keeps(centre + DVec3::Y * 10.0));
    let mut crop = scene_bridge::volume_box_mm(app.case.ct.geometry());
    crop.max_mm.z = centre.z as f32;
    app.apply(Action::SetCropBox(Some(crop))).expect("crop");
    let c = app.render_options().crop;
    let along_z: Vec<f32> = (0..3).map(|a| c.max[a] - c.min[a]).collect();
    assert!(
        along_z.iter().filter(|&&e| (e - 0.5).abs() < 0.05).count() == 1,
        "{c:?}"
    );
    app.apply(Action::SetCropBox(None)).expect("no crop");
    assert_eq!(
        app.render_options().crop,
        twinray_renderer::CropBox::default()
    );
}

#[test]
fn mpr_slices_show_the_ct_and_map_clicks_back_to_the_patient() {
    let mut app = demo_app();
    let centre = app.case.ct.geometry().centre_mm();
    for plane in mpr::MprPlane::ALL {
        let slice = mpr::slice(&app.case.ct, plane, centre, app.window_level());
        let lit = slice.grey.iter().filter(|&&g| g > 30).count();
        assert!(
            lit * 10 > slice.grey.len(),
            "{plane:?} slice is mostly black"
        );
        let [x, y] = slice.pixel_of(centre);
        let back = slice.patient_at(x, y);
        assert!(
            back.distance(centre) < 1e-6,
            "{plane:?}: {back} vs {centre}"
        );
    }
    let before = app.mpr_revision;
    app.apply(Action::SetCrosshair(centre + DVec3::Z * 20.0))
        .expect("crosshair");
    assert!(app.mpr_revision > before);
    assert!((app.crosshair_mm().z - (centre.z + 20.0)).abs() < 1e-3);
}

/// The surface point the pen finds at `pixel` of a 128² view of `app` (`None`: a miss).
fn pick_at(app: &App, pixel: [f64; 2]) -> Option<DVec3> {
    twinray_renderer::surface::pick(
        &app.case.ct,
        app.case.labels.as_deref(),
        &app.transfer_function().bake(),
        &app.camera([1, 1]),
        &app.render_options(),
        [128, 128],
        pixel,
    )
}

#[test]
fn pick_lands_on_bone_along_the_central_ray() {
    let app = demo_app();
    let hit = pick_at(&app, [64.0, 64.0]).expect("the central ray hits the spine");
    let ijk = app
        .case
        .ct
        .geometry()
        .voxel_from_patient()
        .transform_point3(hit)
        .round();
    let hu = *app
        .case
        .ct
        .get(ijk.x as usize, ijk.y as usize, ijk.z as usize)
        .expect("inside");
    assert!(hu > 150.0, "picked {hu} HU, not bone");
    let corner = pick_at(&app, [0.5, 0.5]);
    assert!(corner.is_none(), "the corner ray misses the volume");
}

/// Record → stop writes a lesson the real player reads back with every kind of change.
#[test]
fn a_recorded_session_is_read_back_by_the_player() {
    let path = temp_lesson("session.lesson");
    let mut app = demo_app();
    app.apply(Action::Tick { now_ns: 1000 * MS }).expect("tick");
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    app.apply(Action::AddChapter("Intro".into()))
        .expect("chapter");
    app.apply(Action::Tick { now_ns: 1100 * MS }).expect("tick");
    app.apply(Action::Orbit {
        d_azimuth_deg: 30.0,
        d_elevation_deg: 0.0,
    })
    .expect("orbit");
    app.apply(Action::Tick { now_ns: 1200 * MS }).expect("tick");
    app.apply(Action::SetLabelVisible {
        label: 31,
        visible: false,
    })
    .expect("hide L1");
    app.apply(Action::AddChapter("Drawing".into()))
        .expect("chapter");
    let centre = app.case.ct.geometry().centre_mm();
    app.apply(Action::PenDown(Some(centre))).expect("pen");
    app.apply(Action::Tick { now_ns: 1300 * MS }).expect("tick");
    app.apply(Action::PenMove(Some(centre + DVec3::Z * 10.0)))
        .expect("pen");
    app.apply(Action::PenMove(Some(centre + DVec3::Z * 10.1)))
        .expect("pen");
    app.apply(Action::PenMove(None))
        .expect("pen over empty space");
    app.apply(Action::PenUp).expect("pen");
    app.apply(Action::Tick { now_ns: 1500 * MS }).expect("tick");
    app.apply(Action::StopRecording).expect("stop");
    assert!(app.recording.is_none());
    let report = app.last_recording.clone().expect("a report");
    assert_eq!(report.dropped_event_count, 0);

    let events = read_events(&path);
    let scene: Vec<&SceneChange> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Scene(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(scene.contains(&&SceneChange::Preset {
        name: "ct-bone".into()
    }));
    let hide = events
        .iter()
        .find(|e| {
            e.payload
                == Payload::Scene(SceneChange::LabelVisibility {
                    label: 31,
                    visible: false,
                })
        })
        .expect("the label change is recorded");
    assert_eq!(hide.time_ns, 200 * MS, "lesson time starts at Record");
    let heads: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::Head(_)))
        .collect();
    assert!(
        heads.len() >= 3,
        "head at start, on the orbit, and while still"
    );
    let chapters: Vec<(i64, String)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Chapter(c) => Some((e.time_ns, c.title.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        chapters,
        vec![(0, "Intro".into()), (200 * MS, "Drawing".into())]
    );
    let points = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::StrokePoint(_)))
        .count();
    assert_eq!(points, 2, "the 0.1 mm step and the miss add no point");
    assert!(events
        .iter()
        .any(|e| matches!(e.payload, Payload::StrokeEnd { stroke_id: 1 })));

    let mut player = Player::open(&path).expect("player");
    let end = player.state_at(500 * MS);
    assert!(!end.scene.labels[&31].visible);
    assert_eq!(end.chapter.as_deref(), Some("Drawing"));
    assert_eq!(end.strokes.len(), 1);
    assert_eq!(end.strokes[0].begin.space, Space::Patient);
    assert_eq!(end.strokes[0].points.len(), 2);
    let head = end.head.expect("the head is tracked at the end");
    let expected =
        pose_of(&orbit_camera(app.case.ct.geometry(), &app.view, [1, 1]).world_from_view);
    assert!(head.position_mm.distance(expected.position_mm) < 2.0);
    let start = player.state_at(100 * MS);
    assert!(start.scene.labels.get(&31).is_none_or(|l| l.visible));
    assert!(start.strokes.is_empty(), "the stroke is drawn later");
}

#[test]
fn paused_time_is_cut_out_of_the_lesson() {
    let path = temp_lesson("paused.lesson");
    let mut app = demo_app();
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    app.apply(Action::Tick { now_ns: 1000 * MS }).expect("tick");
    app.apply(Action::PauseRecording).expect("pause");
    app.apply(Action::Tick { now_ns: 5000 * MS }).expect("tick");
    app.apply(Action::SetLabelVisible {
        label: 26,
        visible: false,
    })
    .expect("edit while paused");
    app.apply(Action::ResumeRecording).expect("resume");
    app.apply(Action::Tick { now_ns: 5500 * MS }).expect("tick");
    app.apply(Action::AddChapter("after the pause".into()))
        .expect("chapter");
    app.apply(Action::StopRecording).expect("stop");
    let events = read_events(&path);
    let chapter = events
        .iter()
        .find(|e| matches!(e.payload, Payload::Chapter(_)))
        .expect("chapter");
    assert_eq!(chapter.time_ns, 1500 * MS);
    assert!(
        !events.iter().any(|e| matches!(
            e.payload,
            Payload::Scene(SceneChange::LabelVisibility { label: 26, .. })
        )),
        "nothing is recorded while paused"
    );
}

#[test]
fn replay_plays_scrubs_jumps_and_follows_the_instructor() {
    let path = temp_lesson("replay.lesson");
    let mut app = demo_app();
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    app.apply(Action::AddChapter("one".into()))
        .expect("chapter");
    for step in 1..=20 {
        app.apply(Action::Tick {
            now_ns: step * 50 * MS,
        })
        .expect("tick");
        app.apply(Action::Orbit {
            d_azimuth_deg: 3.0,
            d_elevation_deg: 0.0,
        })
        .expect("orbit");
        if step == 10 {
            app.apply(Action::AddChapter("two".into()))
                .expect("chapter");
            app.apply(Action::SetPreset("ct-soft-tissue".into()))
                .expect("preset");
        }
    }
    app.apply(Action::StopRecording).expect("stop");
    let instructor_end = app.view;
    app.apply(Action::ResetView).expect("reset");

    app.apply(Action::OpenLesson(path.clone())).expect("open");
    let replay = app.replay.as_ref().expect("replaying");
    assert_eq!(replay.chapters.len(), 2);
    assert_eq!(replay.range_ns, (0, 1000 * MS));
    assert!(
        app.apply(Action::SetLabelVisible {
            label: 26,
            visible: false
        })
        .is_err(),
        "a replayed scene is not edited"
    );
    assert!(app
        .apply(Action::StartRecording(temp_lesson("no.lesson")))
        .is_err());
    assert_eq!(app.shown_scene().preset.as_deref(), Some("ct-bone"));
    app.apply(Action::JumpToChapter(1)).expect("jump");
    assert_eq!(app.replay.as_ref().expect("replay").time_ns, 500 * MS);
    assert_eq!(app.shown_scene().preset.as_deref(), Some("ct-soft-tissue"));
    assert_eq!(app.transfer_function().preset.name, "ct-soft-tissue");
    // Scrubbing back restores the earlier scene.
    app.apply(Action::Seek(100 * MS)).expect("seek");
    assert_eq!(app.shown_scene().preset.as_deref(), Some("ct-bone"));
    // Play at double speed: 100 ms of app time moves the playhead 200 ms.
    app.apply(Action::SetSpeed(2.0)).expect("speed");
    app.apply(Action::Play).expect("play");
    let now = app.now_ns;
    app.apply(Action::Tick {
        now_ns: now + 100 * MS,
    })
    .expect("tick");
    assert_eq!(app.replay.as_ref().expect("replay").time_ns, 300 * MS);
    app.apply(Action::Tick {
        now_ns: now + 2000 * MS,
    })
    .expect("tick");
    let replay = app.replay.as_ref().expect("replay");
    assert!(!replay.playing, "playback stops at the end");
    assert_eq!(replay.time_ns, 1000 * MS);
    // Free camera: the learner's own; following: the instructor's head.
    let free = app.camera([1, 1]);
    assert_eq!(
        free,
        orbit_camera(app.case.ct.geometry(), &app.view, [1, 1])
    );
    app.apply(Action::SetFollowInstructor(true))
        .expect("follow");
    let followed = app.camera([1, 1]);
    let instructor_eye = orbit_camera(app.case.ct.geometry(), &instructor_end, [1, 1]).eye();
    assert!(
        followed.eye().distance(instructor_eye) < 2.0,
        "{} vs {instructor_eye}",
        followed.eye()
    );
    app.apply(Action::CloseLesson).expect("close");
    assert!(app.replay.is_none());
    assert_eq!(
        app.camera([1, 1]),
        orbit_camera(app.case.ct.geometry(), &app.view, [1, 1])
    );
}

#[test]
fn a_lesson_that_is_not_one_gives_an_error_naming_it() {
    let path = temp_lesson("garbage.lesson");
    std::fs::write(&path, b"not a lesson at all").expect("write");
    let mut app = demo_app();
    let error = app
        .apply(Action::OpenLesson(path.clone()))
        .expect_err("refused");
    assert!(format!("{error:#}").contains("garbage.lesson"), "{error:#}");
    assert!(app.replay.is_none());
}

// ---- AI segmentation in the background --------------------------------------------------------

fn inference_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../segmentation/inference/tests/fixtures/inference")
        .join(name)
}

/// The small fixture CT with its reference labels (channel indices 1 and 2) as the case's.
fn small_ct_app() -> App {
    let (case, _) = OpenCase::load(
        &inference_fixture("case1_ct.nii.gz"),
        Some(&inference_fixture("case1_labels.nii.gz")),
    )
    .expect("the fixture case loads");
    App::new(case)
}

/// Ticks until the background segmentation has finished (at most 60 s); the last notice.
fn tick_until_segmented(app: &mut App) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while app.segmentation.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the segmentation did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
        let now_ns = app.now_ns + 10 * MS;
        app.apply(Action::Tick { now_ns }).expect("tick");
    }
    app.notice.take().expect("a finished job leaves a notice")
}

#[test]
fn segmentation_in_the_background_replaces_the_labels_with_the_models_classes() {
    let mut app = small_ct_app();
    assert_eq!(app.case.present_labels, vec![1, 2]);
    let path = temp_lesson("segmentation.lesson");
    app.apply(Action::StartRecording(path.clone()))
        .expect("recording starts");
    let (view, labels) = (app.view_revision, app.labels_revision);
    app.apply(Action::StartSegmentation {
        model: Some(inference_fixture("tiny_unet3d.json")),
    })
    .expect("segmentation starts");
    assert!(app.segmentation.is_some());
    assert!(
        app.apply(Action::StartSegmentation { model: None })
            .is_err(),
        "one job at a time"
    );
    let notice = tick_until_segmented(&mut app);
    assert!(notice.contains("tiny-unet3d-random"), "{notice}");
    assert!(
        !notice.contains("normalises"),
        "a CT model on a CT: {notice}"
    );

    // The model's ids (channels 0, 1, 2 -> 0, 5, 31) on the CT's grid, named by the model.
    let reference =
        twinray_io::read_labels(&inference_fixture("case1_labels.nii.gz")).expect("ref");
    let got = app.case.labels.as_ref().expect("labels");
    let ids = [0u16, 5, 31];
    assert!(got
        .voxels()
        .iter()
        .zip(reference.voxels())
        .all(|(&got, &channel)| got == ids[usize::from(channel)]));
    assert_eq!(app.case.present_labels, vec![5, 31]);
    assert_eq!(app.listed_labels(), vec![0, 5, 31]);
    assert_eq!(app.label_name(5), "liver");
    assert_eq!(app.label_name(31), "vertebrae_L1");
    assert!(app.labels_revision > labels && app.view_revision > view);

    app.apply(Action::StopRecording).expect("recording stops");
    let notes: Vec<String> = read_events(&path)
        .into_iter()
        .filter_map(|e| match e.payload {
            Payload::Note(n) => Some(n.text),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("tiny-unet3d-random") && notes[0].contains("liver"),
        "{notes:?}"
    );

    // The lesson stores the map once and shows it from the moment the segmentation ended:
    // a replay on the original case shows the case's labels before and the model's after.
    let events = read_events(&path);
    let stored: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::LabelMap(blob) => Some(blob.hash),
            _ => None,
        })
        .collect();
    let shown_at: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Scene(SceneChange::LabelMap { hash }) => Some((e.time_ns, *hash)),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1, "one stored map");
    assert_eq!(shown_at.len(), 1, "{shown_at:?}");
    assert_eq!(shown_at[0].1, Some(stored[0]));
    let mut learner = small_ct_app();
    let original = learner.case.labels.clone().expect("labels");
    learner
        .apply(Action::OpenLesson(path.clone()))
        .expect("the lesson opens on the original case");
    let (key, before) = learner.frame_labels();
    assert_eq!(key.1, None, "before the segmentation: the case's labels");
    assert_eq!(before.expect("labels").voxels(), original.voxels());
    learner
        .apply(Action::Seek(shown_at[0].0 + 1))
        .expect("seek");
    let (key, after) = learner.frame_labels();
    assert_eq!(key.1, Some(stored[0]));
    assert_eq!(
        after.expect("labels").voxels(),
        app.case.labels.as_ref().expect("labels").voxels()
    );
    learner.apply(Action::Seek(0)).expect("seek back");
    assert_eq!(
        learner.frame_labels().0 .1,
        None,
        "scrubbing back restores them"
    );
}

#[test]
fn a_zscore_model_on_a_ct_is_warned_as_likely_an_mr_model() {
    let mut app = small_ct_app();
    app.apply(Action::StartSegmentation {
        model: Some(inference_fixture("nnunet_tiny_mr.json")),
    })
    .expect("segmentation starts");
    let notice = tick_until_segmented(&mut app);
    assert!(
        notice.contains("warning: the model normalises each image") && notice.contains("MR model"),
        "{notice}"
    );
}

#[test]
fn a_cancelled_segmentation_ends_and_keeps_the_old_labels() {
    let mut app = small_ct_app();
    let before = app.case.labels.clone().expect("labels");
    app.apply(Action::StartSegmentation {
        model: Some(inference_fixture("tiny_unet3d.json")),
    })
    .expect("segmentation starts");
    app.apply(Action::CancelSegmentation).expect("cancel");
    let notice = tick_until_segmented(&mut app);
    assert!(notice.contains("cancelled"), "{notice}");
    let after = app.case.labels.as_ref().expect("labels");
    assert!(Arc::ptr_eq(&before, after), "the labels were replaced");
    assert_eq!(app.case.present_labels, vec![1, 2]);
    assert!(app.case.label_names.is_none());
    assert!(
        app.apply(Action::CancelSegmentation).is_err(),
        "nothing left to cancel"
    );
}

#[test]
fn a_bad_model_path_gives_an_error_naming_it_and_leaves_the_labels() {
    let mut app = small_ct_app();
    let missing = inference_fixture("no-such-model.json");
    let err = app
        .apply(Action::StartSegmentation {
            model: Some(missing.clone()),
        })
        .expect_err("a missing model is an error");
    let message = format!("{err:#}");
    assert!(message.contains("no-such-model.json"), "{message}");
    assert!(app.segmentation.is_none());
    assert_eq!(app.case.present_labels, vec![1, 2]);
    assert_eq!(app.labels_revision, 1);

    // A description whose ONNX file has the wrong number of classes fails on the thread: a
    // notice naming the model, no panic, labels kept.
    let text = std::fs::read_to_string(inference_fixture("tiny_unet3d.json")).expect("json");
    let bad_onnx = inference_fixture("bad_channels2.onnx");
    let text = text.replace(
        "\"tiny_unet3d.onnx\"",
        // A plain path: its Debug quoting is JSON.
        &format!("{:?}", bad_onnx.display().to_string()),
    );
    let bad_json = temp_lesson("bad-channels.json");
    std::fs::write(&bad_json, text).expect("write the description");
    app.apply(Action::StartSegmentation {
        model: Some(bad_json),
    })
    .expect("the description opens; the model fails on the thread");
    let notice = tick_until_segmented(&mut app);
    assert!(notice.contains("bad_channels2.onnx"), "{notice}");
    assert_eq!(app.case.present_labels, vec![1, 2]);
    assert_eq!(app.labels_revision, 1);
}

/// Three seconds of a 440 Hz tone, at 48 kHz.
fn tone() -> Vec<f32> {
    (0..144_000)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.3)
        .collect()
}

/// The studio records its voice source with the lesson, on the lesson's clock, and the
/// lesson says so; Stop flushes the voice before the footer.
#[test]
fn the_voice_is_recorded_with_the_lesson() {
    let path = temp_lesson("voice.lesson");
    let mut app = demo_app();
    let start = app.instant_of(app.now_ns);
    app.voice_source = Some(VoiceSourceFactory(Box::new(move || {
        Ok(Box::new(twinray_voice::source::SimulatedSource::new(
            tone(),
            48_000,
            start,
        )) as Box<dyn VoiceSource>)
    })));
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    let rec = app.recording.as_ref().expect("recording");
    assert!(rec.has_voice(), "{}", rec.voice_status);
    assert!(
        rec.voice_status.contains("simulated at 48000 Hz"),
        "{}",
        rec.voice_status
    );
    // The simulated source plays out at once; wait for the voice thread to say so.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .recording
        .as_ref()
        .and_then(Recording::voice_problem)
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the voice thread never finished the source"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    app.apply(Action::Tick { now_ns: 3_100 * MS })
        .expect("tick");
    app.apply(Action::StopRecording).expect("stop");
    let voice = app.last_voice.expect("voice stats");
    assert_eq!(voice.recorded_samples, 144_000);
    let info = twinray_lessons::tools::info(&path).expect("info");
    let v = info.voice.expect("the lesson has voice");
    assert!((v.duration_s - 3.0).abs() < 1e-6, "{v:?}");
    assert!(
        v.bit_rate_bps > 8_000.0 && v.bit_rate_bps < 40_000.0,
        "{v:?}"
    );
}

/// Without a microphone the recording goes on without voice and the studio says why.
#[test]
fn without_a_microphone_the_lesson_records_and_says_so() {
    let path = temp_lesson("no-voice.lesson");
    let mut app = demo_app();
    app.voice_source = Some(VoiceSourceFactory(Box::new(|| {
        Err(VoiceError::NoInput("the system has no input device".into()))
    })));
    app.apply(Action::StartRecording(path.clone()))
        .expect("record");
    let rec = app.recording.as_ref().expect("recording");
    assert!(!rec.has_voice());
    let notice = app.notice.clone().expect("a notice");
    assert!(
        notice.contains("recording without voice") && notice.contains("no input device"),
        "{notice}"
    );
    app.apply(Action::AddChapter("silent".into()))
        .expect("chapter");
    app.apply(Action::StopRecording).expect("stop");
    let info = twinray_lessons::tools::info(&path).expect("info");
    assert_eq!(info.chapters.len(), 1);
    assert!(info.voice.is_none());
    // "Off" is a choice, not a problem: no notice.
    let mut quiet = demo_app();
    quiet
        .apply(Action::SetVoiceInput(VoiceInput::Off))
        .expect("off");
    quiet
        .apply(Action::StartRecording(temp_lesson("off.lesson")))
        .expect("record");
    assert!(quiet.notice.is_none(), "{:?}", quiet.notice);
    assert_eq!(
        quiet.recording.as_ref().map(|r| r.voice_status.as_str()),
        Some("voice off")
    );
    quiet.apply(Action::StopRecording).expect("stop");
}

/// A narrated lesson replays with or without a sound output; the replay bar is told which.
#[test]
fn a_narrated_lesson_replays_and_its_narration_status_is_shown() {
    let silent = temp_lesson("to-narrate.lesson");
    let mut app = demo_app();
    app.apply(Action::SetVoiceInput(VoiceInput::Off))
        .expect("off");
    app.apply(Action::StartRecording(silent.clone()))
        .expect("record");
    app.apply(Action::Tick { now_ns: 2_000 * MS })
        .expect("tick");
    app.apply(Action::AddChapter("two seconds in".into()))
        .expect("chapter");
    app.apply(Action::StopRecording).expect("stop");
    let wav = temp_lesson("tone.wav");
    let _ = std::fs::remove_file(&wav);
    twinray_voice::wav::write_wav(&wav, 48_000, &tone()).expect("wav");
    let narrated = temp_lesson("narrated.lesson");
    let _ = std::fs::remove_file(&narrated);
    twinray_voice::import::import_voice_over(&silent, &wav, 0, &narrated).expect("import");

    let mut app = demo_app();
    app.apply(Action::OpenLesson(narrated)).expect("open");
    let status = app
        .replay
        .as_ref()
        .and_then(|r| r.narration_status.clone())
        .expect("a narration status");
    assert!(
        status.starts_with("narration on ")
            || status.starts_with("narration not played: no sound output"),
        "{status}"
    );
    app.apply(Action::SetNarrationVolume(0.5)).expect("volume");
    app.apply(Action::SetNarrationMuted(true)).expect("mute");
    app.apply(Action::Play).expect("play");
    app.apply(Action::Tick {
        now_ns: app.now_ns + 500 * MS,
    })
    .expect("tick");
    assert!(app.replay.as_ref().is_some_and(|r| r.time_ns > 0));
    // A lesson without narration shows no narration controls.
    let mut plain = demo_app();
    plain.apply(Action::OpenLesson(silent)).expect("open");
    assert!(plain
        .replay
        .as_ref()
        .is_some_and(|r| r.narration_status.is_none()));
}

/// "Save to library" stores the last recording as a bundle with the open case; a search finds
/// its chapter; opening the hit replays it at that time on the open case.
#[test]
fn a_recording_is_saved_to_the_library_found_and_opened_at_its_chapter() {
    let root = temp_lesson("library");
    let _ = std::fs::remove_dir_all(&root);
    let mut app = demo_app();
    app.library_root = Some(twinray_library::Location::Folder(root.clone()));
    let e = app
        .apply(Action::SaveToLibrary {
            title: "nothing yet".into(),
            thumbnail_png: None,
        })
        .expect_err("nothing recorded");
    assert!(format!("{e:#}").contains("record a lesson first"), "{e:#}");
    let path = temp_lesson("for-library.lesson");
    let _ = std::fs::remove_file(&path);
    app.apply(Action::SetVoiceInput(VoiceInput::Off))
        .expect("off");
    app.apply(Action::StartRecording(path)).expect("record");
    app.apply(Action::Tick { now_ns: 1_000 * MS })
        .expect("tick");
    app.apply(Action::AddChapter("Interlaminar window".into()))
        .expect("chapter");
    app.apply(Action::Tick { now_ns: 3_000 * MS })
        .expect("tick");
    app.apply(Action::StopRecording).expect("stop");
    app.apply(Action::SaveToLibrary {
        title: "Lumbar puncture".into(),
        thumbnail_png: None,
    })
    .expect("saved");
    let notice = app.notice.clone().unwrap_or_default();
    assert!(notice.contains("saved 'Lumbar puncture'"), "{notice}");

    app.apply(Action::SearchLibrary("interlaminar".into()))
        .expect("search");
    let hit = app.library_hits.first().expect("a hit").clone();
    assert_eq!(hit.lesson.title, "Lumbar puncture");
    assert!((hit.time_s - 1.0).abs() < 0.05, "{hit:?}");
    app.apply(Action::OpenFromLibrary {
        id: hit.lesson.id.clone(),
        at_s: hit.time_s,
    })
    .expect("open");
    let replay = app.replay.as_ref().expect("replaying");
    assert_eq!(replay.state.chapter.as_deref(), Some("Interlaminar window"));

    // A lesson of another case is not opened on this one; the message says how.
    let (ct, _) = demo_volumes();
    let mut other = App::new(OpenCase::new("unlabelled", ct.clone(), None));
    other.library_root.clone_from(&app.library_root);
    let e = other
        .apply(Action::OpenFromLibrary {
            id: hit.lesson.id,
            at_s: 1.0,
        })
        .expect_err("another case");
    assert!(format!("{e:#}").contains("twinray studio"), "{e:#}");
}

#[test]
fn the_structure_under_the_pointer_is_named() {
    let app = demo_app();
    let labels = app.case.labels.as_deref().expect("labels");
    let g = *labels.geometry();
    let l3 = 29u16; // TotalSegmentator's vertebrae_L3
                    // A voxel just outside L3's surface (the +x neighbour of an L3 voxel is unlabelled): the
                    // pen rests there when it touches L3's surface.
    let [nx, ny, nz] = g.dims;
    let outside = (0..nz)
        .flat_map(|k| (0..ny).flat_map(move |j| (0..nx - 1).map(move |i| (i, j, k))))
        .find(|&(i, j, k)| labels.get(i, j, k) == Some(&l3) && labels.get(i + 1, j, k) == Some(&0))
        .map(|(i, j, k)| {
            g.patient_from_voxel
                .transform_point3(DVec3::new((i + 1) as f64, j as f64, k as f64))
        })
        .expect("L3 has a surface");
    assert_eq!(app.structure_at(outside).as_deref(), Some("vertebrae_L3"));
    // Far outside the body: nothing.
    let air = g
        .patient_from_voxel
        .transform_point3(DVec3::new(0.0, 0.0, 0.0));
    assert_eq!(app.structure_at(air), None);
    // What the pointer picks at the view's centre (the spine) is named as a vertebra.
    let hit = pick_at(&app, [64.0, 64.0]).expect("the central ray hits the spine");
    let name = app.structure_at(hit).expect("a labelled structure");
    assert!(name.starts_with("vertebrae_"), "{name}");
}

#[test]
fn replaying_the_demo_lesson_shows_its_board_and_measurements_only_from_their_time() {
    let path = temp_lesson("teaching-tools.lesson");
    let case = twinray_scene::Case::demo().expect("demo case");
    twinray_scene::demo::record_demo(&case, &path).expect("demo lesson");
    let mut app = demo_app();
    app.apply(Action::OpenLesson(path))
        .expect("opens on the demo case");
    let size = [64, 48];
    app.apply(Action::Seek(44 * 1_000_000_000)).expect("seek");
    let before = app.frame(size);
    assert!(before.boards.boards.is_empty() && before.annotations.texts.is_empty());
    app.apply(Action::Seek(49 * 1_000_000_000)).expect("seek");
    let after = app.frame(size);
    assert_eq!(after.boards.boards.len(), 1);
    let texts: Vec<&str> = after
        .annotations
        .texts
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    assert!(texts.iter().any(|t| t.starts_with("Cobb ")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("needle ")), "{texts:?}");
    // The board's edges and the ring drawn on it are capsules of the frame.
    assert!(after.annotations.capsules.len() > 20);
    assert!(app.take_scene_warnings().is_empty());
    // Scrubbing back un-draws them.
    app.apply(Action::Seek(10 * 1_000_000_000))
        .expect("seek back");
    assert!(app.frame(size).annotations.capsules.is_empty());
}

#[test]
fn a_board_added_while_recording_is_stored_once_and_replays_beside_the_twin() {
    let xray =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xray/wg04/RG1_J2KI.dcm");
    let mut app = demo_app();
    let bad = std::env::temp_dir().join("twinray-not-an-image.txt");
    std::fs::write(&bad, "not an image").expect("write");
    let err = app
        .apply(Action::AddBoard(bad.clone()))
        .expect_err("refused");
    assert!(
        format!("{err:#}").contains("twinray-not-an-image.txt"),
        "{err:#}"
    );

    let path = temp_lesson("board.lesson");
    app.apply(Action::StartRecording(path.clone()))
        .expect("records");
    app.apply(Action::AddBoard(xray))
        .expect("the chest radiograph loads");
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("unknown spacing")),
        "{:?}",
        app.notice
    );
    let live = app.frame([64, 48]);
    assert_eq!(live.boards.boards.len(), 1);
    // L\F: the board stands on the patient's right of the volume (−x in LPS).
    let centre = live.boards.boards[&1].patient_from_board.w_axis;
    let corners = app.case.ct.geometry().corners_mm();
    let min_x = corners.iter().map(|c| c.x).fold(f64::INFINITY, f64::min);
    assert!(centre.x < min_x, "{centre:?} vs volume from x = {min_x}");
    app.apply(Action::StopRecording).expect("stops");

    let events = read_events(&path);
    let images = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::Image(_)))
        .count();
    assert_eq!(images, 1, "the image is stored once");
    let mut learner = demo_app();
    learner.apply(Action::OpenLesson(path)).expect("opens");
    let end = learner.replay.as_ref().expect("replay").range_ns.1;
    learner.apply(Action::Seek(end)).expect("seek");
    assert_eq!(learner.frame([64, 48]).boards.boards.len(), 1);
}

#[test]
fn clicks_with_a_measure_tool_place_recorded_measurements_with_their_values() {
    let mut app = demo_app();
    let path = temp_lesson("measure.lesson");
    app.apply(Action::StartRecording(path.clone()))
        .expect("records");
    assert!(
        app.apply(Action::MeasurePoint(Some(DVec3::ZERO))).is_err(),
        "no tool chosen"
    );
    app.apply(Action::SetMeasureTool(Some(MeasureTool::Distance)))
        .expect("tool");
    let c = app.case.ct.geometry().centre_mm();
    app.apply(Action::MeasurePoint(Some(c)))
        .expect("first point");
    assert!(
        app.apply(Action::MeasurePoint(None)).is_err(),
        "a miss is said"
    );
    app.apply(Action::MeasurePoint(Some(c + DVec3::new(30.0, 0.0, 40.0))))
        .expect("second point");
    assert_eq!(app.notice.as_deref(), Some("distance 1: 50.0 mm"));
    let texts = app.frame([32, 32]).annotations.texts;
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].measurement_id, Some(1));

    app.apply(Action::ClearMeasurements).expect("clear");
    assert!(app.frame([32, 32]).annotations.texts.is_empty());
    app.apply(Action::StopRecording).expect("stops");
    let shown = read_events(&path)
        .iter()
        .filter(|e| {
            matches!(
                e.payload,
                Payload::Scene(SceneChange::MeasurementShow { .. })
                    | Payload::Scene(SceneChange::MeasurementHide { .. })
            )
        })
        .count();
    assert_eq!(shown, 2, "shown, then hidden, in the lesson");
}

#[test]
fn the_pen_draws_on_a_board_in_the_boards_millimetres() {
    let xray =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xray/wg04/RG2_J2KI.dcm");
    let mut app = demo_app();
    let path = temp_lesson("board-stroke.lesson");
    app.apply(Action::StartRecording(path.clone()))
        .expect("records");
    app.apply(Action::AddBoard(xray)).expect("board");
    assert!(app
        .apply(Action::PenDownOnBoard {
            board_id: 9,
            point_mm: Vec3::ZERO
        })
        .is_err());
    let capsules_before = app.frame([32, 32]).annotations.capsules.len();
    for (k, x) in [0.0f32, 10.0, 20.0].into_iter().enumerate() {
        let point_mm = Vec3::new(x, 5.0, 0.0);
        app.apply(if k == 0 {
            Action::PenDownOnBoard {
                board_id: 1,
                point_mm,
            }
        } else {
            Action::PenMoveOnBoard {
                board_id: 1,
                point_mm,
            }
        })
        .expect("pen");
    }
    // Moving onto the anatomy does not continue a stroke begun on the board.
    app.apply(Action::PenMove(Some(DVec3::ZERO))).expect("pen");
    app.apply(Action::PenUp).expect("pen up");
    let frame = app.frame([32, 32]);
    assert_eq!(frame.annotations.capsules.len(), capsules_before + 2);
    // Its points go through the board's pose: they lie in the board's plane.
    let board = &frame.boards.boards[&1];
    let board_from_patient = board.patient_from_board.inverse();
    let last = frame.annotations.capsules.last().expect("capsule");
    let on_board = board_from_patient.transform_point3(last.b_mm.as_dvec3());
    assert!(
        (on_board - DVec3::new(20.0, 5.0, 0.8)).length() < 1e-3,
        "{on_board:?}"
    );
    app.apply(Action::StopRecording).expect("stops");
    let begins: Vec<Space> = read_events(&path)
        .into_iter()
        .filter_map(|e| match e.payload {
            Payload::StrokeBegin(b) => Some(b.space),
            _ => None,
        })
        .collect();
    assert_eq!(begins, vec![Space::Board(1)]);
}

#[test]
fn live_strokes_are_not_named_in_the_scene_the_pointer_names_what_it_is_over() {
    let mut app = demo_app();
    let lm = twinray_scene::demo::spine_landmarks(&twinray_scene::Case::demo().expect("demo"))
        .expect("landmarks");
    app.apply(Action::PenDown(Some(lm.spinous_tips_mm[2])))
        .expect("pen");
    app.apply(Action::PenUp).expect("pen up");
    assert!(app.frame([32, 32]).annotations.texts.is_empty());
}

#[test]
fn a_board_moves_and_resizes_with_its_strokes_and_can_be_hidden() {
    let xray =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xray/wg04/RG2_J2KI.dcm");
    let mut app = demo_app();
    app.apply(Action::AddBoard(xray)).expect("board");
    app.apply(Action::PenDownOnBoard {
        board_id: 1,
        point_mm: Vec3::new(10.0, 0.0, 0.0),
    })
    .expect("pen");
    app.apply(Action::PenUp).expect("pen up");
    let dot = |app: &App| {
        app.frame([32, 32])
            .annotations
            .capsules
            .last()
            .expect("dot")
            .a_mm
    };
    let before = dot(&app);
    let width = app.scene.boards[&1].width_mm;
    app.apply(Action::MoveBoard {
        board_id: 1,
        offset_mm: Vec3::new(0.0, 0.0, 50.0),
        scale: 2.0,
    })
    .expect("move");
    assert!((app.scene.boards[&1].width_mm - 2.0 * width).abs() < 1e-3);
    let after = dot(&app);
    // 50 mm up; the point 10 mm right of the centre is now 20 mm from it.
    let centre = app.scene.boards[&1].pose.position_mm;
    assert!(
        (after.z - before.z - 50.0).abs() < 0.1,
        "{before:?} -> {after:?}"
    );
    assert!(
        ((after - centre).length() - 20.0).abs() < 2.0,
        "{after:?} vs {centre:?}"
    );
    assert!(app
        .apply(Action::MoveBoard {
            board_id: 1,
            offset_mm: Vec3::ZERO,
            scale: 0.0
        })
        .is_err());
    app.apply(Action::HideBoard(1)).expect("hide");
    assert!(app.frame([32, 32]).boards.boards.is_empty());
}

#[test]
fn a_cobb_angle_is_measured_on_an_x_ray_board_in_its_own_millimetres() {
    let xray =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xray/wg04/RG2_J2KI.dcm");
    let mut app = demo_app();
    app.apply(Action::AddBoard(xray)).expect("board");
    app.apply(Action::SetMeasureTool(Some(MeasureTool::Cobb)))
        .expect("tool");
    let on_board = |point_mm: Vec3| Action::MeasurePointOnBoard {
        board_id: 1,
        point_mm,
    };
    // A click on the anatomy after one on the board starts the measurement again.
    app.apply(on_board(Vec3::ZERO)).expect("click");
    app.apply(Action::MeasurePoint(Some(
        app.case.ct.geometry().centre_mm(),
    )))
    .expect("click");
    assert_eq!(app.measure_points.len(), 1);
    assert!(matches!(app.measure_points[0].0, Space::Patient));
    // Endplates tilted +20° and −15° on the radiograph: 35°.
    let tilt = |deg: f32, y: f32| {
        let (s, c) = deg.to_radians().sin_cos();
        [
            Vec3::new(-20.0 * c, y - 20.0 * s, 0.0),
            Vec3::new(20.0 * c, y + 20.0 * s, 0.0),
        ]
    };
    for p in tilt(20.0, 60.0).into_iter().chain(tilt(-15.0, -60.0)) {
        app.apply(on_board(p)).expect("click");
    }
    assert_eq!(app.notice.as_deref(), Some("Cobb angle 1: Cobb 35.0°"));
    assert!(matches!(
        app.scene.measurements[&1].space(),
        Some(Space::Board(1))
    ));
}

#[test]
fn a_board_dragged_by_the_mouse_follows_the_pointer_and_records_a_few_poses() {
    let xray =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xray/wg04/RG2_J2KI.dcm");
    let mut app = demo_app();
    let path = temp_lesson("board-drag.lesson");
    app.apply(Action::Tick { now_ns: 1000 * MS }).expect("tick");
    app.apply(Action::StartRecording(path.clone()))
        .expect("records");
    app.apply(Action::AddBoard(xray)).expect("board");
    app.apply(Action::PenDownOnBoard {
        board_id: 1,
        point_mm: Vec3::new(10.0, 0.0, 0.0),
    })
    .expect("pen");
    app.apply(Action::PenUp).expect("pen up");
    let dot = |app: &App| {
        app.frame([32, 32])
            .annotations
            .capsules
            .last()
            .expect("dot")
            .a_mm
            .as_dvec3()
    };
    let dot_before = dot(&app);
    assert!(app
        .apply(Action::DragBoard {
            ray_origin_mm: DVec3::ZERO,
            ray_dir: DVec3::X,
            scale: 1.0,
        })
        .is_err());
    let start = app.scene.boards[&1].pose.position_mm.as_dvec3();
    let width = app.scene.boards[&1].width_mm;
    let camera = app.camera([64, 64]);
    let (eye, right, up) = (
        camera.eye(),
        camera.world_from_view.transform_vector3(DVec3::X),
        camera.world_from_view.transform_vector3(DVec3::Y),
    );
    app.apply(Action::GrabBoard {
        board_id: 1,
        grip_mm: start,
    })
    .expect("grab");
    // One second of dragging at 60 frames a second: 1 mm right and 0.5 mm up a frame, the
    // board growing to 1.5 times its width.
    let frames = 60;
    for k in 1..=frames {
        app.apply(Action::Tick {
            now_ns: 1000 * MS + k * 16 * MS,
        })
        .expect("tick");
        let to = start + right * k as f64 + up * (0.5 * k as f64);
        app.apply(Action::DragBoard {
            ray_origin_mm: eye,
            ray_dir: to - eye,
            scale: 1.0 + 0.5 * k as f32 / frames as f32,
        })
        .expect("drag");
    }
    app.apply(Action::ReleaseBoard).expect("release");
    let moved = right * frames as f64 + up * (0.5 * frames as f64);
    let end = app.scene.boards[&1].pose.position_mm.as_dvec3();
    assert!((end - start - moved).length() < 0.05, "{start} -> {end}");
    assert!((app.scene.boards[&1].width_mm - 1.5 * width).abs() < 1e-2);
    // The stroke on the board went with it: its dot moved as the board's centre did, plus
    // its 10 mm from the centre grown by half.
    let dot_after = dot(&app);
    let expected = dot_before + moved + (dot_before - start) * 0.5;
    assert!(
        (dot_after - expected).length() < 0.1,
        "{dot_before} -> {dot_after}, expected {expected}"
    );
    app.apply(Action::StopRecording).expect("stops");
    let poses: Vec<(i64, Vec3, f32)> = read_events(&path)
        .into_iter()
        .filter_map(|e| match e.payload {
            Payload::Scene(SceneChange::BoardPose { pose, width_mm, .. }) => {
                Some((e.time_ns, pose.position_mm, width_mm))
            }
            _ => None,
        })
        .collect();
    // About ten a second (not sixty), the last one the final pose.
    assert!((9..=12).contains(&poses.len()), "{} poses", poses.len());
    let (_, last, last_width) = *poses.last().expect("a pose");
    assert!((last.as_dvec3() - end).length() < 1e-3);
    assert!((last_width - app.scene.boards[&1].width_mm).abs() < 1e-3);
    for pair in poses.windows(2) {
        assert!(pair[1].0 > pair[0].0, "in time order");
    }
}
