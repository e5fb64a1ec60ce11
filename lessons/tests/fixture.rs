//! Backwards compatibility: `fixtures/v1.lesson` was written by format version 1 and must be
//! read, with these exact contents, by every later version. Never regenerate it to make this
//! test pass; add a new fixture for a new version instead.
//!
//! It was written by `write_v1_fixture` (ignored; run with `TWINRAY_WRITE_FIXTURE=1` only when
//! creating it). `fixtures/v1-unfinished.lesson` is the same recording cut mid-chunk without
//! a footer, as a crash leaves it.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use glam::{Quat, Vec3};
use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::event::*;
use twinray_lessons::player::Player;
use twinray_lessons::reader::{IndexOrigin, LessonReader};
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_lessons::tools;

const MS: i64 = 1_000_000;
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.lesson");
const UNFINISHED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v1-unfinished.lesson"
);

/// Self-contained (no shared helpers that may change): 3 s of head and right hand at 30 Hz,
/// plus one event of every other type.
fn fixture_events() -> Vec<Event> {
    let mut events = one_of_everything_fixed();
    for i in 0..90i64 {
        let t = i * 33 * MS;
        let s = i as f32;
        events.push(Event::new(
            t,
            Payload::Head(Pose {
                position_mm: Vec3::new(s, 1600.0, -s * 2.0),
                orientation: Quat::from_rotation_y(s * 0.01),
            }),
        ));
        let mut hj = HandJoints::default();
        for (j, joint) in hj.joints.iter_mut().enumerate() {
            joint.pose.position_mm = Vec3::new(200.0 + j as f32 * 10.0 + s, 1100.0, -400.0);
            joint.pose.orientation = Quat::from_rotation_x(j as f32 * 0.05);
            joint.radius_mm = 8.0;
        }
        events.push(Event::new(
            t + 1,
            Payload::Hand(Box::new(HandSample {
                hand: Handedness::Right,
                joints: Some(hj),
            })),
        ));
    }
    events.sort_by_key(|e| e.time_ns);
    events
}

fn one_of_everything_fixed() -> Vec<Event> {
    let style = StrokeStyle {
        colour_rgba: [10, 20, 30, 255],
        width_mm: 3.0,
        brush: Brush::Highlighter,
    };
    let p = Pose {
        position_mm: Vec3::new(1.0, 2.0, 3.0),
        orientation: Quat::IDENTITY,
    };
    let mut events = vec![
        Event::new(
            100 * MS,
            Payload::Chapter(Chapter {
                title: "Anatomy".into(),
            }),
        ),
        Event::new(
            110 * MS,
            Payload::Scene(SceneChange::Preset {
                name: "CT bone".into(),
            }),
        ),
        Event::new(
            120 * MS,
            Payload::Scene(SceneChange::WindowLevel {
                centre_hu: 40.0,
                width_hu: 400.0,
            }),
        ),
        Event::new(
            130 * MS,
            Payload::Scene(SceneChange::LabelVisibility {
                label: 2,
                visible: false,
            }),
        ),
        Event::new(
            140 * MS,
            Payload::Scene(SceneChange::ClipPlane {
                plane: Some(ClipPlane {
                    normal: Vec3::Z,
                    distance_mm: 5.0,
                }),
            }),
        ),
        Event::new(
            150 * MS,
            Payload::Gesture(Gesture {
                hand: Handedness::Right,
                kind: GestureKind::Point,
                pose: p,
            }),
        ),
        Event::new(
            160 * MS,
            Payload::Controller(ControllerSample {
                hand: Handedness::Left,
                state: None,
            }),
        ),
        Event::new(
            170 * MS,
            Payload::Viewpoint(Viewpoint {
                name: "front".into(),
                space: Space::Patient,
                pose: p,
            }),
        ),
        Event::new(
            180 * MS,
            Payload::Note(Note {
                text: "fixture note".into(),
            }),
        ),
        Event::new(
            190 * MS,
            Payload::Audio(AudioPacket {
                codec: 0,
                sample_rate_hz: 16_000,
                channel_count: 1,
                data: vec![9; 4],
            }),
        ),
        Event::new(
            1000 * MS,
            Payload::StrokeBegin(StrokeBegin {
                stroke_id: 5,
                space: Space::Patient,
                style,
            }),
        ),
        Event::new(2500 * MS, Payload::StrokeEnd { stroke_id: 5 }),
        Event::new(
            2600 * MS,
            Payload::Scene(SceneChange::TwinPose {
                stage_from_patient: p,
            }),
        ),
    ];
    for i in 0..=30i64 {
        events.push(Event::new(
            1000 * MS + i * 50 * MS + 2,
            Payload::StrokePoint(StrokePoint {
                stroke_id: 5,
                position_mm: Vec3::new(i as f32 * 0.5, 10.0, 20.0),
                pressure: 0.5,
            }),
        ));
    }
    events
}

#[test]
#[ignore = "writes the committed fixture; run only when creating a new version's fixture"]
fn write_v1_fixture() {
    if std::env::var("TWINRAY_WRITE_FIXTURE").as_deref() != Ok("1") {
        return;
    }
    let mut header = twinray_lessons::format::LessonHeader::new(
        "sha256:fixture-case-v1",
        1_750_000_000_000_000_000,
    );
    header.recorder = "twinray-lessons 0.1.0".into();
    header.title = Some("v1 fixture".into());
    let options = RecorderOptions {
        sync_each_chunk: false,
        ..RecorderOptions::default()
    };
    // Recordings never replace a file: regenerating the fixture removes the old one first.
    for old in [FIXTURE, UNFINISHED] {
        match std::fs::remove_file(old) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{old}: {e}"),
            _ => {}
        }
    }
    let recorder = Recorder::create(FIXTURE, &header, options).unwrap();
    for e in fixture_events() {
        recorder.record_blocking(e).unwrap();
    }
    recorder.finish().unwrap();
    let bytes = std::fs::read(FIXTURE).unwrap();
    let reader = LessonReader::open(FIXTURE).unwrap();
    let last = reader.index().last().unwrap();
    std::fs::write(
        UNFINISHED,
        &bytes[..(last.offset + last.frame_len / 2) as usize],
    )
    .unwrap();
}

#[test]
fn v1_fixture_reads_with_its_recorded_contents() {
    let mut reader =
        LessonReader::open(FIXTURE).expect("tests/fixtures/v1.lesson must exist and open");
    assert_eq!(*reader.index_origin(), IndexOrigin::Footer);
    let h = reader.header();
    assert_eq!(h.format_version, 1);
    assert_eq!(h.lesson.case_ref, "sha256:fixture-case-v1");
    assert_eq!(
        h.lesson.wall_clock_anchor_unix_ns,
        1_750_000_000_000_000_000
    );
    assert_eq!(h.lesson.title.as_deref(), Some("v1 fixture"));
    assert_eq!(reader.index().len(), 3);
    assert_eq!(reader.time_range_ns(), Some((0, 89 * 33 * MS + 1)));

    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        let chunk = reader.read_chunk(i, DecodeParts::ALL).unwrap();
        assert_eq!(chunk.unknown_records, 0);
        events.extend(chunk.into_events());
    }
    let expected = fixture_events();
    assert_eq!(events.len(), expected.len());
    for (want, got) in expected.iter().zip(&events) {
        common::assert_event_close(want, got);
    }
    assert!(tools::verify(FIXTURE).unwrap().is_clean());
}

#[test]
fn v1_fixture_replays_known_state() {
    let mut p = Player::open(FIXTURE).unwrap();
    let s = p.state_at(2000 * MS);
    assert_eq!(s.chapter.as_deref(), Some("Anatomy"));
    assert_eq!(s.scene.preset.as_deref(), Some("CT bone"));
    assert!(!s.scene.labels[&2].visible);
    assert_eq!(s.scene.clip_plane.unwrap().distance_mm, 5.0);
    assert_eq!(s.strokes.len(), 1);
    assert_eq!(
        s.strokes[0].points.len(),
        20,
        "points at 1.0 s + 2 ns, ..., 1.95 s + 2 ns"
    );
    // Head halfway between samples 60 (x = 60) and 61: 1980 ms + 16.5 ms.
    let head = p.state_at(1980 * MS + 16_500_000).head.unwrap();
    assert!((head.position_mm.x - 60.5).abs() < 0.06, "{head:?}");
    assert!((head.position_mm.z + 121.0).abs() < 0.11, "{head:?}");
    let right = p.state_at(1000 * MS).hands[1].unwrap();
    assert!((right.joints[0].pose.position_mm.x - (200.0 + 1000.0 / 33.0)).abs() < 1.0);
    assert_eq!(
        p.state_at(2700 * MS).scene.stage_from_patient.position_mm,
        Vec3::new(1.0, 2.0, 3.0)
    );
}

#[test]
fn v1_unfinished_fixture_recovers_all_closed_chunks() {
    let reader = LessonReader::open(UNFINISHED).unwrap();
    assert!(matches!(reader.index_origin(), IndexOrigin::Scan { .. }));
    assert_eq!(reader.index().len(), 2);
    assert!(!tools::verify(UNFINISHED).unwrap().is_clean());
    let dir = common::temp_dir("fixture-recover");
    let out = dir.join("fixed.lesson");
    let report = tools::recover(UNFINISHED, &out).unwrap();
    assert_eq!(report.chunks_kept, 2);
    assert_eq!(report.lost.len(), 1);
    assert!(report.lost[0].message.contains("truncated"), "{report}");
    assert!(tools::verify(&out).unwrap().is_clean());
}

// ---- format 1.1: narration ----------------------------------------------------------------

const FIXTURE_1_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v1.1-voice.lesson"
);

/// The 1.0 fixture's events plus three seconds of narration: 150 packets of 960 samples (the
/// last 500 recorded, then two padding packets) and a sync point a second, the second second's
/// 100 ppm fast. The packet bytes are not Opus (this crate has no codec); their layout is.
fn fixture_1_1_events() -> Vec<Event> {
    let mut events = fixture_events();
    let format = VoiceFormat::opus_mono(312);
    for k in 0..152u64 {
        let valid = match k {
            0..=148 => 960,
            149 => 500,
            _ => 0,
        };
        events.push(Event::new(
            (k as i64) * 20 * MS,
            Payload::Voice(VoicePacket {
                format,
                sample_index: k * 960,
                sample_count: 960,
                valid_samples: valid,
                data: vec![0xF8, (k % 251) as u8, 7],
            }),
        ));
    }
    for s in 0..3u64 {
        events.push(Event::new(
            (s as i64) * 1000 * MS,
            Payload::VoiceSync(VoiceSync {
                sample_index: s * 48_000 + if s == 2 { 5 } else { 0 },
                starts_segment: s == 0,
            }),
        ));
    }
    events.sort_by_key(|e| e.time_ns);
    events
}

#[test]
#[ignore = "writes the committed 1.1 fixture; run only when creating a new version's fixture"]
fn write_v1_1_fixture() {
    if std::env::var("TWINRAY_WRITE_FIXTURE").as_deref() != Ok("1") {
        return;
    }
    let mut header = twinray_lessons::format::LessonHeader::new(
        "sha256:fixture-case-v1.1",
        1_780_000_000_000_000_000,
    );
    header.recorder = "twinray-lessons 0.1.0 (format 1.1)".into();
    header.title = Some("v1.1 fixture".into());
    match std::fs::remove_file(FIXTURE_1_1) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{FIXTURE_1_1}: {e}"),
        _ => {}
    }
    let options = RecorderOptions {
        sync_each_chunk: false,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::create(FIXTURE_1_1, &header, options).unwrap();
    for e in fixture_1_1_events() {
        recorder.record_blocking(e).unwrap();
    }
    recorder.finish().unwrap();
}

#[test]
fn v1_1_fixture_reads_with_its_recorded_contents_and_voice() {
    let mut reader =
        LessonReader::open(FIXTURE_1_1).expect("tests/fixtures/v1.1-voice.lesson must exist");
    let h = reader.header();
    assert_eq!((h.format_version, h.format_minor_version), (1, 1));
    assert_eq!(h.lesson.title.as_deref(), Some("v1.1 fixture"));
    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        let chunk = reader.read_chunk(i, DecodeParts::ALL).unwrap();
        assert_eq!(chunk.unknown_records, 0);
        events.extend(chunk.into_events());
    }
    let expected = fixture_1_1_events();
    assert_eq!(events.len(), expected.len());
    // Same-time events in a stable order: by time, then by kind (the variant's name).
    let key = |e: &Event| {
        let kind = format!("{:?}", e.payload);
        (
            e.time_ns,
            kind.split('(').next().unwrap_or_default().to_owned(),
        )
    };
    let mut got = events.clone();
    got.sort_by_key(key);
    let mut want = expected.clone();
    want.sort_by_key(key);
    for (w, g) in want.iter().zip(&got) {
        match (&w.payload, &g.payload) {
            (Payload::Voice(_) | Payload::VoiceSync(_), _) => assert_eq!(w, g),
            _ => common::assert_event_close(w, g),
        }
    }
    let index = twinray_lessons::voice::VoiceIndex::build(&mut reader).unwrap();
    assert_eq!(index.packet_count, 152);
    assert_eq!(index.end_sample, 149 * 960 + 500);
    assert_eq!(index.syncs.len(), 3);
    assert!(index.lost.is_empty());
    // Between the second and third sync points the map follows their 100 ppm fast pace.
    let x = index.map.sample_at(1500 * MS).unwrap();
    assert!((x - 72_002.5).abs() < 1e-6, "{x}");
    assert!(tools::verify(FIXTURE_1_1).unwrap().is_clean());
}

// ---- format 1.2: the twin's scale and label maps -------------------------------------------

const FIXTURE_1_2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v1.2-scale-labels.lesson"
);

/// A 4×3×2 label map: the ids a segmentation run during the 1.2 fixture's lesson produced.
fn fixture_1_2_label_map() -> LabelMapBlob {
    let voxels: Vec<u16> = (0..24u16)
        .map(|i| (i * 7) % 5 + u16::from(i > 20) * 300)
        .collect();
    LabelMapBlob::encode([4, 3, 2], &voxels).unwrap()
}

/// The 1.1 fixture's events plus: the twin scaled to 1.5 at 0.5 s, the segmentation's map
/// shown at 1.2 s, the case's own labels again at 2.2 s and the map once more at 2.8 s (stored
/// once), and the scale back to 1 at 2.9 s.
fn fixture_1_2_events() -> Vec<Event> {
    let mut events = fixture_1_1_events();
    let map = fixture_1_2_label_map();
    let hash = map.hash;
    events.push(Event::new(
        500 * MS,
        Payload::Scene(SceneChange::TwinScale { scale: 1.5 }),
    ));
    events.extend(map.clone().into_events(1200 * MS));
    events.push(Event::new(
        2200 * MS,
        Payload::Scene(SceneChange::LabelMap { hash: None }),
    ));
    events.extend(map.into_events(2800 * MS));
    events.push(Event::new(
        2900 * MS,
        Payload::Scene(SceneChange::TwinScale { scale: 1.0 }),
    ));
    assert!(hash != [0; 32]);
    events.sort_by_key(|e| e.time_ns);
    events
}

#[test]
#[ignore = "writes the committed 1.2 fixture; run only when creating a new version's fixture"]
fn write_v1_2_fixture() {
    if std::env::var("TWINRAY_WRITE_FIXTURE").as_deref() != Ok("1") {
        return;
    }
    let mut header = twinray_lessons::format::LessonHeader::new(
        "sha256:fixture-case-v1.2",
        1_790_000_000_000_000_000,
    );
    header.recorder = "twinray-lessons 0.1.0 (format 1.2)".into();
    header.title = Some("v1.2 fixture".into());
    match std::fs::remove_file(FIXTURE_1_2) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{FIXTURE_1_2}: {e}"),
        _ => {}
    }
    let options = RecorderOptions {
        sync_each_chunk: false,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::create(FIXTURE_1_2, &header, options).unwrap();
    for e in fixture_1_2_events() {
        recorder.record_blocking(e).unwrap();
    }
    recorder.finish().unwrap();
}

#[test]
fn v1_2_fixture_reads_with_its_scale_and_label_maps() {
    let mut reader = LessonReader::open(FIXTURE_1_2)
        .expect("tests/fixtures/v1.2-scale-labels.lesson must exist");
    let h = reader.header();
    assert_eq!((h.format_version, h.format_minor_version), (1, 2));
    assert_eq!(h.lesson.title.as_deref(), Some("v1.2 fixture"));
    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        let chunk = reader.read_chunk(i, DecodeParts::ALL).unwrap();
        assert_eq!(chunk.unknown_records, 0);
        events.extend(chunk.into_events());
    }
    // The map shown twice is stored once.
    let stored = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e.payload, Payload::LabelMap(_)))
            .count()
    };
    let mut expected = fixture_1_2_events();
    assert_eq!(stored(&expected), 2);
    assert_eq!(stored(&events), 1);
    let second = expected
        .iter()
        .rposition(|e| matches!(e.payload, Payload::LabelMap(_)))
        .unwrap();
    expected.remove(second);
    assert_eq!(events.len(), expected.len());
    let key = |e: &Event| {
        let kind = format!("{:?}", e.payload);
        (
            e.time_ns,
            kind.split('(').next().unwrap_or_default().to_owned(),
            kind.split('{').next().unwrap_or_default().to_owned(),
        )
    };
    let (mut got, mut want) = (events, expected);
    got.sort_by_key(key);
    want.sort_by_key(key);
    for (w, g) in want.iter().zip(&got) {
        match (&w.payload, &g.payload) {
            (Payload::Voice(_) | Payload::VoiceSync(_) | Payload::LabelMap(_), _) => {
                assert_eq!(w, g);
            }
            _ => common::assert_event_close(w, g),
        }
    }
    assert!(tools::verify(FIXTURE_1_2).unwrap().is_clean());
}

#[test]
fn v1_2_fixture_replays_scale_and_labels_at_their_times_and_back() {
    let mut p = Player::open(FIXTURE_1_2).unwrap();
    let map = fixture_1_2_label_map();
    let at = |p: &mut Player, ms: i64| {
        let s = p.state_at(ms * MS).scene;
        (s.twin_scale, s.label_map)
    };
    assert_eq!(at(&mut p, 400), (1.0, None));
    assert_eq!(at(&mut p, 1100), (1.5, None));
    assert_eq!(at(&mut p, 1300), (1.5, Some(map.hash)));
    assert_eq!(at(&mut p, 2300), (1.5, None));
    assert_eq!(at(&mut p, 2850), (1.5, Some(map.hash)));
    assert_eq!(at(&mut p, 2950), (1.0, Some(map.hash)));
    // Scrubbing back un-does both.
    assert_eq!(at(&mut p, 1300), (1.5, Some(map.hash)));
    assert_eq!(at(&mut p, 100), (1.0, None));
    // The stored map is found by its hash and decodes to the voxels recorded.
    let stored = p.label_map(&map.hash).expect("the map is in the lesson");
    assert_eq!(stored.dims, [4, 3, 2]);
    let voxels = stored.voxels().unwrap();
    assert_eq!(voxels[21], (21 * 7) % 5 + 300);
    assert_eq!(
        LabelMapBlob::encode([4, 3, 2], &voxels).unwrap().hash,
        map.hash
    );
    assert!(p.label_map(&[7; 32]).is_none());
    // What 1.1 readers keep: everything but the scale and the map replays as in 1.1.
    let s = p.state_at(2000 * MS);
    assert_eq!(s.scene.preset.as_deref(), Some("CT bone"));
    assert_eq!(s.strokes.len(), 1);
}

// ---- format 1.3: image boards, strokes on boards, measurements -----------------------------

const FIXTURE_1_3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v1.3-boards.lesson"
);

/// The 1.3 fixture's two images: a 24×16 grey radiograph with spacing at the detector, and
/// an 8×6 colour photograph of unknown spacing.
fn fixture_1_3_images() -> [ImageBlob; 2] {
    let grey: Vec<u8> = (0..24u32 * 16)
        .map(|i| ((i % 24) * 9 + (i / 24) * 4) as u8)
        .collect();
    let rgba: Vec<u8> = (0..8u32 * 6 * 4).map(|i| (i * 37 % 251) as u8).collect();
    [
        ImageBlob::encode(
            24,
            16,
            PixelFormat::Grey8,
            PixelSpacing::Known {
                row_mm: 0.3,
                col_mm: 0.25,
                at_detector: true,
            },
            &grey,
        )
        .unwrap(),
        ImageBlob::encode(8, 6, PixelFormat::Rgba8, PixelSpacing::Unknown, &rgba).unwrap(),
    ]
}

fn fixture_1_3_board_pose(x_mm: f32) -> Pose {
    Pose {
        position_mm: Vec3::new(x_mm, 80.0, 150.0),
        orientation: Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2),
    }
}

/// The 1.2 fixture's events plus: at 0.6 s the radiograph shown as board 1 (200 mm wide), a
/// stroke drawn on it from 0.7 s, at 1.0 s a Cobb angle on it and four measurements on the
/// anatomy; the board moved and enlarged at 1.4 s; the photograph as board 2 at 1.6 s with a
/// viewpoint on it; at 2.3 s the distance and board 2 hidden; at 2.6 s a measurement kind
/// from a newer writer (kept as a note).
fn fixture_1_3_events() -> Vec<Event> {
    let mut events = fixture_1_2_events();
    let [xray, photo] = fixture_1_3_images();
    let mut scene =
        |t_ms: i64, c: SceneChange| events.push(Event::new(t_ms * MS, Payload::Scene(c)));
    let board = Space::Board(1);
    let p = Space::Patient;
    let measurements = [
        Measurement::Cobb {
            space: board,
            line1_mm: [Vec3::new(-2.0, 1.5, 0.0), Vec3::new(2.0, 1.9, 0.0)],
            line2_mm: [Vec3::new(-2.0, -1.0, 0.0), Vec3::new(2.0, -1.8, 0.0)],
        },
        Measurement::Distance {
            space: p,
            a_mm: Vec3::new(10.0, 20.0, 30.0),
            b_mm: Vec3::new(40.0, 60.0, 30.0),
        },
        Measurement::Angle {
            space: p,
            a_mm: Vec3::new(10.0, 0.0, 0.0),
            vertex_mm: Vec3::ZERO,
            b_mm: Vec3::new(0.0, 10.0, 0.0),
        },
        Measurement::Trajectory {
            space: p,
            entry_mm: Vec3::new(0.0, -110.0, 20.0),
            target_mm: Vec3::new(5.0, -40.0, 25.0),
        },
        Measurement::LabelStats { label_id: 2 },
    ];
    for (id, measurement) in (1..).zip(measurements) {
        scene(1000, SceneChange::MeasurementShow { id, measurement });
    }
    scene(
        1400,
        SceneChange::BoardPose {
            board_id: 1,
            pose: fixture_1_3_board_pose(-420.0),
            width_mm: 260.0,
        },
    );
    scene(2300, SceneChange::MeasurementHide { id: 2 });
    scene(2300, SceneChange::BoardHide { board_id: 2 });
    scene(
        2600,
        SceneChange::MeasurementShow {
            id: 6,
            measurement: Measurement::Other(200),
        },
    );
    events.extend(xray.into_events(
        600 * MS,
        1,
        "Pelvis AP".to_owned(),
        fixture_1_3_board_pose(-380.0),
        200.0,
    ));
    events.extend(photo.into_events(
        1600 * MS,
        2,
        "Wound".to_owned(),
        fixture_1_3_board_pose(380.0),
        100.0,
    ));
    events.push(Event::new(
        700 * MS,
        Payload::StrokeBegin(StrokeBegin {
            stroke_id: 50,
            space: board,
            style: StrokeStyle {
                colour_rgba: [255, 220, 0, 255],
                width_mm: 1.0,
                brush: Brush::Pen,
            },
        }),
    ));
    for i in 0..5i64 {
        events.push(Event::new(
            (710 + i * 20) * MS,
            Payload::StrokePoint(StrokePoint {
                stroke_id: 50,
                position_mm: Vec3::new(-2.0 + i as f32, 0.5 * i as f32, 0.0),
                pressure: 0.8,
            }),
        ));
    }
    events.push(Event::new(800 * MS, Payload::StrokeEnd { stroke_id: 50 }));
    events.push(Event::new(
        1700 * MS,
        Payload::Viewpoint(Viewpoint {
            name: "the photograph".to_owned(),
            space: Space::Board(2),
            pose: Pose {
                position_mm: Vec3::new(0.0, 0.0, 300.0),
                orientation: Quat::IDENTITY,
            },
        }),
    ));
    events.sort_by_key(|e| e.time_ns);
    events
}

#[test]
#[ignore = "writes the committed 1.3 fixture; run only when creating a new version's fixture"]
fn write_v1_3_fixture() {
    if std::env::var("TWINRAY_WRITE_FIXTURE").as_deref() != Ok("1") {
        return;
    }
    let mut header = twinray_lessons::format::LessonHeader::new(
        "sha256:fixture-case-v1.3",
        1_795_000_000_000_000_000,
    );
    header.recorder = "twinray-lessons 0.1.0 (format 1.3)".into();
    header.title = Some("v1.3 fixture".into());
    match std::fs::remove_file(FIXTURE_1_3) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{FIXTURE_1_3}: {e}"),
        _ => {}
    }
    let options = RecorderOptions {
        sync_each_chunk: false,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::create(FIXTURE_1_3, &header, options).unwrap();
    for e in fixture_1_3_events() {
        recorder.record_blocking(e).unwrap();
    }
    recorder.finish().unwrap();
}

#[test]
fn v1_3_fixture_reads_with_its_boards_and_measurements() {
    let mut reader =
        LessonReader::open(FIXTURE_1_3).expect("tests/fixtures/v1.3-boards.lesson must exist");
    let h = reader.header();
    assert_eq!((h.format_version, h.format_minor_version), (1, 3));
    assert_eq!(h.lesson.title.as_deref(), Some("v1.3 fixture"));
    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        let chunk = reader.read_chunk(i, DecodeParts::ALL).unwrap();
        assert_eq!(chunk.unknown_records, 0);
        events.extend(chunk.into_events());
    }
    // As for 1.2: the label map shown twice is stored once.
    let mut expected = fixture_1_3_events();
    let second = expected
        .iter()
        .rposition(|e| matches!(e.payload, Payload::LabelMap(_)))
        .unwrap();
    expected.remove(second);
    assert_eq!(events.len(), expected.len());
    let key = |e: &Event| (e.time_ns, format!("{:?}", e.payload));
    let (mut got, mut want) = (events, expected);
    got.sort_by_key(key);
    want.sort_by_key(key);
    for (w, g) in want.iter().zip(&got) {
        match &w.payload {
            Payload::StrokePoint(_) | Payload::Head(_) | Payload::Hand(_) => {
                common::assert_event_close(w, g);
            }
            _ => assert_eq!(w, g),
        }
    }
    let report = tools::verify(FIXTURE_1_3).unwrap();
    assert!(report.is_clean(), "{report}");
    let info = tools::info(FIXTURE_1_3).unwrap();
    assert_eq!((info.boards_shown, info.measurements_shown), (2, 6));
}

#[test]
fn v1_3_fixture_replays_boards_and_measurements_at_their_times_and_back() {
    let mut p = Player::open(FIXTURE_1_3).unwrap();
    let [xray, photo] = fixture_1_3_images();
    let at = |p: &mut Player, ms: i64| {
        let s = p.state_at(ms * MS);
        (
            s.scene
                .boards
                .iter()
                .map(|(id, b)| (*id, b.width_mm))
                .collect::<Vec<_>>(),
            s.board_strokes(1).map(|v| v.points.len()).sum::<usize>(),
            s.scene.measurements.keys().copied().collect::<Vec<_>>(),
        )
    };
    let timeline = [
        (500, (vec![], 0, vec![])),
        (650, (vec![(1, 200.0)], 0, vec![])),
        (760, (vec![(1, 200.0)], 3, vec![])),
        (1100, (vec![(1, 200.0)], 5, vec![1, 2, 3, 4, 5])),
        (1500, (vec![(1, 260.0)], 5, vec![1, 2, 3, 4, 5])),
        (2000, (vec![(1, 260.0), (2, 100.0)], 5, vec![1, 2, 3, 4, 5])),
        (2400, (vec![(1, 260.0)], 5, vec![1, 3, 4, 5])),
        (2950, (vec![(1, 260.0)], 5, vec![1, 3, 4, 5, 6])),
    ];
    for (ms, want) in timeline.iter().chain(timeline.iter().rev()) {
        assert_eq!(&at(&mut p, *ms), want, "at {ms} ms");
    }
    let s = p.state_at(2000 * MS);
    assert_eq!(s.scene.boards[&1].image, xray.hash);
    assert_eq!(s.scene.boards[&1].title, "Pelvis AP");
    assert_eq!(s.scene.boards[&2].image, photo.hash);
    assert_eq!(
        s.scene.measurements[&5],
        Measurement::LabelStats { label_id: 2 }
    );
    assert_eq!(
        p.state_at(2950 * MS).scene.measurements[&6],
        Measurement::Other(200)
    );
    // The images are stored once each and decode to the pixels shown.
    for image in [&xray, &photo] {
        let stored = p.image(&image.hash).unwrap();
        assert_eq!(stored.pixels().unwrap(), image.pixels().unwrap());
    }
    assert_eq!(
        p.image(&xray.hash).unwrap().natural_size_mm(),
        glam::Vec2::new(24.0 * 0.25, 16.0 * 0.3)
    );
    assert_eq!(
        p.image(&photo.hash).unwrap().natural_size_mm(),
        glam::Vec2::new(8.0, 6.0)
    );
    // What 1.2 recorded replays as in 1.2.
    let s = p.state_at(1300 * MS);
    assert_eq!(s.scene.twin_scale, 1.5);
    assert_eq!(s.scene.label_map, Some(fixture_1_2_label_map().hash));
    assert_eq!(s.scene.preset.as_deref(), Some("CT bone"));
    assert_eq!(
        s.strokes.len(),
        2,
        "the 1.0 stroke and the one on the board"
    );
}
