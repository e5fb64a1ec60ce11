//! `state_at`: interpolation, strokes up to t, scene state via keyframes, scrubbing.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use std::collections::BTreeMap;

use common::*;
use glam::{Quat, Vec3};
use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::encoder::EncoderOptions;
use twinray_lessons::event::*;
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::state::{LessonState, SceneState};
use twinray_lessons::synthetic::{Rng, SyntheticInstructor};

const MS: i64 = 1_000_000;

fn player(events: &[Event]) -> Player {
    Player::new(
        LessonReader::from_bytes("<memory>", encode(events, EncoderOptions::default())).unwrap(),
    )
}

#[test]
fn head_pose_is_lerped_and_slerped_between_samples() {
    let a = Pose {
        position_mm: Vec3::new(0.0, 1600.0, 0.0),
        orientation: Quat::IDENTITY,
    };
    let b = Pose {
        position_mm: Vec3::new(100.0, 1600.0, 0.0),
        orientation: Quat::from_rotation_y(0.5),
    };
    let mut p = player(&[
        Event::new(0, Payload::Head(a)),
        Event::new(10 * MS, Payload::Head(b)),
    ]);
    let mid = p.state_at(5 * MS).head.unwrap();
    assert!((mid.position_mm.x - 50.0).abs() < 0.1, "{mid:?}");
    assert!((mid.orientation.angle_between(Quat::from_rotation_y(0.25))) < 1e-3);
    let quarter = p.state_at(2_500_000).head.unwrap();
    assert!((quarter.position_mm.x - 25.0).abs() < 0.1);
    // Held briefly after the last sample, gone once tracking is clearly lost.
    assert!(p.state_at(100 * MS).head.is_some());
    assert!(p.state_at(400 * MS).head.is_none());
    // Nothing before the first sample.
    assert!(p.state_at(-MS).head.is_none());
}

#[test]
fn hands_interpolate_and_disappear_when_untracked() {
    let mut events = Vec::new();
    for i in 0..10 {
        events.push(Event::new(
            i * 10 * MS,
            Payload::Hand(Box::new(HandSample {
                hand: Handedness::Left,
                joints: (i < 6).then(|| hand_joints(i as f32 * 10.0)),
            })),
        ));
    }
    let mut p = player(&events);
    let s = p.state_at(15 * MS);
    let left = s.hands[0].unwrap();
    let want = (hand_joints(10.0).joints[3].pose.position_mm
        + hand_joints(20.0).joints[3].pose.position_mm)
        / 2.0;
    assert!(
        (left.joints[3].pose.position_mm - want).abs().max_element() <= 1.0,
        "{:?}",
        left.joints[3]
    );
    assert!(s.hands[1].is_none(), "right hand was never tracked");
    assert!(
        p.state_at(65 * MS).hands[0].is_none(),
        "left hand lost at 60 ms"
    );
}

fn stroke_events() -> Vec<Event> {
    let style = StrokeStyle {
        colour_rgba: [255, 0, 0, 255],
        width_mm: 2.0,
        brush: Brush::Pen,
    };
    let mut events = vec![Event::new(
        1000 * MS,
        Payload::StrokeBegin(StrokeBegin {
            stroke_id: 1,
            space: Space::Patient,
            style,
        }),
    )];
    // Points from 1.00 s to 2.50 s, across chunk boundaries.
    for i in 0..=150 {
        events.push(Event::new(
            1000 * MS + i * 10 * MS,
            Payload::StrokePoint(StrokePoint {
                stroke_id: 1,
                position_mm: Vec3::new(i as f32, 0.0, 0.0),
                pressure: 1.0,
            }),
        ));
    }
    events.push(Event::new(2600 * MS, Payload::StrokeEnd { stroke_id: 1 }));
    events.push(Event::new(
        3000 * MS,
        Payload::StrokeBegin(StrokeBegin {
            stroke_id: 2,
            space: Space::Stage,
            style,
        }),
    ));
    events.push(Event::new(3100 * MS, Payload::StrokeEnd { stroke_id: 2 }));
    events.push(Event::new(4000 * MS, Payload::StrokeUndo { stroke_id: 2 }));
    events.push(Event::new(
        9000 * MS,
        Payload::StrokeErase {
            stroke_ids: vec![1],
        },
    ));
    // Keep the lesson going so later chunks (and keyframes) exist.
    for i in 0..100 {
        events.push(Event::new(i * 100 * MS, Payload::Head(pose(i as f32))));
    }
    events.sort_by_key(|e| e.time_ns);
    events
}

#[test]
fn strokes_show_only_the_points_drawn_up_to_t() {
    let mut p = player(&stroke_events());
    assert!(p.state_at(999 * MS).strokes.is_empty());
    let s = p.state_at(1500 * MS);
    assert_eq!(s.strokes.len(), 1);
    assert_eq!(s.strokes[0].points.len(), 51, "points at 1.00..=1.50 s");
    assert!(s.strokes[0].points.iter().all(|q| q.time_ns <= 1500 * MS));
    assert_eq!(s.strokes[0].begin.space, Space::Patient);
    // After the end, from a keyframe that lists the stroke: all points.
    let s = p.state_at(3050 * MS);
    assert_eq!(
        s.strokes
            .iter()
            .map(|s| s.begin.stroke_id)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(s.strokes[0].points.len(), 151);
    // Undo removes stroke 2, erase removes stroke 1.
    let s = p.state_at(5000 * MS);
    assert_eq!(
        s.strokes
            .iter()
            .map(|s| s.begin.stroke_id)
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(s.strokes[0].points.len(), 151);
    assert!(p.state_at(9500 * MS).strokes.is_empty());
    // Scrubbing back shows the partial stroke again.
    assert_eq!(p.state_at(1200 * MS).strokes[0].points.len(), 21);
}

/// Reference: replay every event from the start (what keyframes must be equivalent to).
fn naive_state(events: &[Event], t: i64) -> (SceneState, Option<String>, BTreeMap<u32, usize>) {
    let mut scene = SceneState::default();
    let mut chapter = None;
    let mut strokes: BTreeMap<u32, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.time_ns <= t) {
        match &e.payload {
            Payload::Scene(c) => scene.apply(c),
            Payload::Chapter(c) => chapter = Some(c.title.clone()),
            Payload::StrokeBegin(b) => {
                strokes.insert(b.stroke_id, 0);
            }
            Payload::StrokePoint(p) => {
                if let Some(n) = strokes.get_mut(&p.stroke_id) {
                    *n += 1;
                }
            }
            Payload::StrokeErase { stroke_ids } => stroke_ids.iter().for_each(|id| {
                strokes.remove(id);
            }),
            Payload::StrokeUndo { stroke_id } => {
                strokes.remove(stroke_id);
            }
            _ => {}
        }
    }
    (scene, chapter, strokes)
}

#[test]
fn state_at_matches_a_full_replay_at_random_times_in_any_order() {
    let mut rng = Rng::new(3);
    let mut instructor = twinray_lessons::synthetic::SyntheticInstructor::new(1);
    let mut events = Vec::new();
    // 150 s: chapters, ~30 strokes, a clear at 60 s and 120 s, ~15 scene changes.
    while instructor.time_ns() < 150_000 * MS {
        instructor.next_frame(&mut events);
    }
    let extra_scene = (0..40).map(|i| {
        Event::new(
            i * 3700 * MS + 5,
            Payload::Scene(SceneChange::LabelVisibility {
                label: (i % 5) as u32,
                visible: i % 3 == 0,
            }),
        )
    });
    events.extend(extra_scene);
    events.sort_by_key(|e| e.time_ns);
    let bytes = encode(&events, EncoderOptions::default());
    let fresh = || Player::new(LessonReader::from_bytes("<memory>", bytes.clone()).unwrap());
    let mut scrubbing = fresh();
    for _ in 0..60 {
        let t = rng.below(160_000) as i64 * MS;
        let (scene, chapter, strokes) = naive_state(&events, t);
        let s = scrubbing.state_at(t);
        assert_eq!(s.scene, scene, "scene at {t}");
        assert_eq!(s.chapter, chapter, "chapter at {t}");
        let got: BTreeMap<u32, usize> = s
            .strokes
            .iter()
            .map(|s| (s.begin.stroke_id, s.points.len()))
            .collect();
        assert_eq!(got, strokes, "strokes at {t}");
        // A fresh player (no caches) agrees with the scrubbing one.
        assert_eq!(fresh().state_at(t), s, "cache changed the result at {t}");
    }
    assert!(scrubbing.problems().is_empty());
}

#[test]
fn a_damaged_chunk_is_skipped_and_reported() {
    let mut events = Vec::new();
    for i in 0..600 {
        events.push(Event::new(i * 10 * MS, Payload::Head(pose(i as f32))));
    }
    events.push(Event::new(
        4500 * MS,
        Payload::Scene(SceneChange::Preset {
            name: "late".into(),
        }),
    ));
    events.sort_by_key(|e| e.time_ns);
    let mut bytes = encode(&events, EncoderOptions::default());
    let reader = LessonReader::from_bytes("<memory>", bytes.clone()).unwrap();
    let victim = reader.index()[2].clone();
    let at = (victim.offset + victim.frame_len - 10) as usize;
    bytes[at] ^= 0x40;
    let mut p = Player::new(LessonReader::from_bytes("<memory>", bytes).unwrap());
    let s = p.state_at(victim.t_start_ns + 100 * MS);
    assert!(s.head.is_none(), "no samples from a damaged chunk");
    assert_eq!(p.problems().len(), 1);
    assert!(p.problems().values().next().unwrap().contains("checksum"));
    let s = p.state_at(5000 * MS);
    assert!(s.head.is_some());
    assert_eq!(s.scene.preset.as_deref(), Some("late"));
}

/// The live fold (`LessonState::apply`, what the studio shows while teaching) and the replay
/// (`state_at`, keyframes plus events) must show the same scene, chapter and strokes for the
/// same events. The lesson has erases, undos and scene changes; some undone strokes come after
/// the last erase, so a fold that ignored undo would keep them and differ.
#[test]
fn the_live_fold_shows_what_the_replay_shows() {
    let mut instructor = SyntheticInstructor::new(5);
    let mut events = Vec::new();
    // 100 s: a clear at 60 s, then more strokes.
    while instructor.time_ns() < 100_000 * MS {
        instructor.next_frame(&mut events);
    }
    // Undo every even stroke shortly after it ends.
    let undos: Vec<Event> = events
        .iter()
        .filter_map(|e| match e.payload {
            Payload::StrokeEnd { stroke_id } if stroke_id % 2 == 0 => Some(Event::new(
                e.time_ns + MS,
                Payload::StrokeUndo { stroke_id },
            )),
            _ => None,
        })
        .collect();
    events.extend(undos);
    events.sort_by_key(|e| e.time_ns);
    let last_erase_ns = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::StrokeErase { .. }))
        .map(|e| e.time_ns)
        .max()
        .unwrap();
    let undone_after_erase = events
        .iter()
        .filter(|e| e.time_ns > last_erase_ns)
        .filter(|e| matches!(e.payload, Payload::StrokeUndo { .. }))
        .count();
    assert!(
        undone_after_erase > 0,
        "the lesson must undo a stroke that stays undone"
    );

    // Fold the events as recorded (decoded from the file), so quantisation is the same on
    // both sides and the comparison can be exact.
    let bytes = encode(&events, EncoderOptions::default());
    let mut reader = LessonReader::from_bytes("<memory>", bytes.clone()).unwrap();
    let mut recorded = Vec::new();
    for i in 0..reader.index().len() {
        recorded.extend(
            reader
                .read_chunk(i, DecodeParts::ALL)
                .unwrap()
                .into_events(),
        );
    }
    let end = recorded.last().unwrap().time_ns;
    let mut player = Player::new(LessonReader::from_bytes("<memory>", bytes).unwrap());

    let mut live = LessonState::new(SceneState::default());
    let mut next = 0;
    let mut checked = 0;
    for t in (0..end).step_by(7_000 * MS as usize).chain([end]) {
        while next < recorded.len() && recorded[next].time_ns <= t {
            live.apply(&recorded[next]);
            next += 1;
        }
        let replay = player.state_at(t);
        assert_eq!(live.scene, replay.scene, "scene at {t}");
        assert_eq!(live.chapter, replay.chapter, "chapter at {t}");
        assert_eq!(live.strokes, replay.strokes, "strokes at {t}");
        checked += usize::from(!live.strokes.is_empty());
    }
    assert!(
        checked > 5,
        "strokes were visible at only {checked} instants"
    );
    // At the last sample both show that sample as is, so the poses agree too.
    assert_eq!(live, player.state_at(end));
    assert!(player.problems().is_empty());
}

// ---- 1.3: boards, strokes on boards and measurements at their times, and back --------------

/// 10 s of head at 90 Hz (ten chunks, a keyframe every 2 s) with, at 1.5 s, an X-ray board
/// shown, a stroke drawn on it and a Cobb angle placed on it plus a distance on the anatomy;
/// the board moved at 4.2 s; at 6.5 s the measurements and the board hidden.
fn board_lesson() -> (Vec<Event>, ImageBlob) {
    let image = board_image(64, 48, 3);
    let mut events = Vec::new();
    for i in 0..900i64 {
        events.push(Event::new(i * 11_111_111, Payload::Head(pose(i as f32))));
    }
    let t1 = 1500 * MS;
    events.extend(
        image
            .clone()
            .into_events(t1, 1, "Spine AP".to_owned(), board_pose(0.0), 240.0),
    );
    events.push(Event::new(
        t1 + MS,
        Payload::StrokeBegin(StrokeBegin {
            stroke_id: 10,
            space: Space::Board(1),
            style: StrokeStyle {
                colour_rgba: [255, 255, 0, 255],
                width_mm: 1.0,
                brush: Brush::Pen,
            },
        }),
    ));
    for i in 0..20 {
        events.push(Event::new(
            t1 + (2 + i) * 10 * MS,
            Payload::StrokePoint(StrokePoint {
                stroke_id: 10,
                position_mm: Vec3::new(i as f32, -2.0 * i as f32, 0.0),
                pressure: 1.0,
            }),
        ));
    }
    events.push(Event::new(
        t1 + 300 * MS,
        Payload::StrokeEnd { stroke_id: 10 },
    ));
    let cobb = Measurement::Cobb {
        space: Space::Board(1),
        line1_mm: [Vec3::new(-3.0, 2.0, 0.0), Vec3::new(3.0, 2.5, 0.0)],
        line2_mm: [Vec3::new(-3.0, -2.0, 0.0), Vec3::new(3.0, -3.0, 0.0)],
    };
    let distance = Measurement::Distance {
        space: Space::Patient,
        a_mm: Vec3::new(0.0, 0.0, 0.0),
        b_mm: Vec3::new(30.0, 40.0, 0.0),
    };
    for (id, measurement) in [(1, cobb), (2, distance)] {
        events.push(Event::new(
            t1 + 400 * MS,
            Payload::Scene(SceneChange::MeasurementShow { id, measurement }),
        ));
    }
    events.push(Event::new(
        4200 * MS,
        Payload::Scene(SceneChange::BoardPose {
            board_id: 1,
            pose: board_pose(50.0),
            width_mm: 480.0,
        }),
    ));
    let t2 = 6500 * MS;
    for id in [1, 2] {
        events.push(Event::new(
            t2,
            Payload::Scene(SceneChange::MeasurementHide { id }),
        ));
    }
    events.push(Event::new(
        t2,
        Payload::Scene(SceneChange::BoardHide { board_id: 1 }),
    ));
    events.sort_by_key(|e| e.time_ns);
    (events, image)
}

/// What a state shows of the 1.3 additions: board ids with their widths, the board's stroke
/// point counts, and measurement ids.
fn boards_shown(s: &LessonState) -> (Vec<(u32, f32)>, Vec<usize>, Vec<u32>) {
    (
        s.scene
            .boards
            .iter()
            .map(|(id, b)| (*id, b.width_mm))
            .collect(),
        s.board_strokes(1).map(|v| v.points.len()).collect(),
        s.scene.measurements.keys().copied().collect(),
    )
}

#[test]
fn boards_strokes_and_measurements_show_at_their_times_and_undraw_when_scrubbing_back() {
    let (events, image) = board_lesson();
    let mut p = player(&events);
    assert!(p.reader().index().iter().filter(|e| e.keyframe).count() >= 4);
    let nothing = (vec![], vec![], vec![]);
    let shown = |width, points| (vec![(1, width)], vec![points], vec![1, 2]);

    // Forward: before, while shown (moved at 4.2 s), after hiding.
    assert_eq!(boards_shown(&p.state_at(1000 * MS)), nothing);
    assert_eq!(
        boards_shown(&p.state_at(1600 * MS)),
        (vec![(1, 240.0)], vec![9], vec![])
    );
    assert_eq!(boards_shown(&p.state_at(3000 * MS)), shown(240.0, 20));
    assert_eq!(boards_shown(&p.state_at(5000 * MS)), shown(480.0, 20));
    assert_eq!(boards_shown(&p.state_at(7000 * MS)), nothing);
    assert_eq!(boards_shown(&p.state_at(9500 * MS)), nothing);
    // Scrubbing back from after the hiding restores them, as they were then.
    assert_eq!(boards_shown(&p.state_at(5000 * MS)), shown(480.0, 20));
    assert_eq!(boards_shown(&p.state_at(3000 * MS)), shown(240.0, 20));
    assert_eq!(
        boards_shown(&p.state_at(1600 * MS)),
        (vec![(1, 240.0)], vec![9], vec![])
    );
    // And back before they were shown, they are gone.
    assert_eq!(boards_shown(&p.state_at(1000 * MS)), nothing);

    // The state names the image by hash, where it is and what is on it.
    let s = p.state_at(3000 * MS);
    let board = &s.scene.boards[&1];
    assert_eq!(board.image, image.hash);
    assert_eq!(board.title, "Spine AP");
    assert_eq!(board.pose, board_pose(0.0));
    let stroke = s.board_strokes(1).next().unwrap();
    assert_eq!(stroke.begin.space, Space::Board(1));
    assert!(
        stroke.points[19]
            .position_mm
            .distance(Vec3::new(19.0, -38.0, 0.0))
            < 0.06
    );
    assert!(s.scene.is_space_shown(Space::Board(1)));
    assert!(!p.state_at(7000 * MS).scene.is_space_shown(Space::Board(1)));
    assert!(matches!(
        s.scene.measurements[&1],
        Measurement::Cobb {
            space: Space::Board(1),
            ..
        }
    ));
    // The image is found by its hash and decodes to what was shown.
    let stored = p.image(&board.image).expect("the image is in the lesson");
    assert_eq!(stored.pixels().unwrap(), image.pixels().unwrap());
    assert_eq!(
        stored.natural_size_mm(),
        glam::Vec2::new(64.0 * 0.15, 48.0 * 0.2)
    );
    assert!(p.image(&ImageHash([9; 32])).is_none());
    // Board millimetres map into patient space through the pose and the displayed width.
    let m = board.patient_from_board(stored.natural_size_mm());
    let corner = m.transform_point3(Vec3::new(4.8, 4.8, 0.0));
    let expected = board_pose(0.0).position_mm
        + board_pose(0.0).orientation * (Vec3::new(4.8, 4.8, 0.0) * (240.0 / 9.6));
    assert!(corner.distance(expected) < 1e-3, "{corner} vs {expected}");
}

#[test]
fn the_live_fold_shows_boards_as_the_replay_does() {
    let (events, _) = board_lesson();
    let mut p = player(&events);
    let mut live = LessonState::new(SceneState::default());
    let mut next = 0;
    for t_ms in [0, 1000, 1505, 1600, 3000, 4300, 6499, 6500, 8000] {
        let t = t_ms * MS;
        while next < events.len() && events[next].time_ns <= t {
            live.apply(&events[next]);
            next += 1;
        }
        let replayed = p.state_at(t);
        assert_eq!(live.scene, replayed.scene, "at {t_ms} ms");
        assert_eq!(boards_shown(&live), boards_shown(&replayed), "at {t_ms} ms");
    }
}
