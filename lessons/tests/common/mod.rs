//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

use glam::{Quat, Vec2, Vec3};
use twinray_lessons::encoder::{EncoderOptions, LessonEncoder};
use twinray_lessons::event::*;
use twinray_lessons::format::LessonHeader;

/// A fresh, empty directory under the system temp dir, unique per test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "twinray-lessons-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn header() -> LessonHeader {
    let mut h = LessonHeader::new("sha256:0123456789abcdef", 1_700_000_000_000_000_000);
    h.title = Some("Test lesson".to_owned());
    h.metadata
        .insert("course".to_owned(), "anatomy 101".to_owned());
    h
}

/// Encodes events into a complete lesson file in memory.
pub fn encode(events: &[Event], options: EncoderOptions) -> Vec<u8> {
    let (mut enc, mut bytes) = LessonEncoder::new(&header(), options).unwrap();
    for e in events {
        if let Some(f) = enc.push(e.clone()).unwrap() {
            bytes.extend(f);
        }
    }
    bytes.extend(enc.finish().unwrap());
    bytes
}

pub fn pose(seed: f32) -> Pose {
    Pose {
        position_mm: Vec3::new(100.0 + seed, 1500.0 - seed * 0.5, -300.0 + seed * 2.0),
        orientation: Quat::from_euler(glam::EulerRot::YXZ, seed * 0.01, 0.2, -0.1),
    }
}

pub fn hand_joints(seed: f32) -> HandJoints {
    let mut hj = HandJoints::default();
    for (j, joint) in hj.joints.iter_mut().enumerate() {
        let f = j as f32;
        joint.pose = Pose {
            position_mm: Vec3::new(
                200.0 + f * 7.0 + seed,
                1100.0 - f * 3.0,
                -400.0 + seed * 0.3,
            ),
            orientation: Quat::from_euler(
                glam::EulerRot::XYZ,
                f * 0.1 + seed * 0.01,
                0.3,
                f * -0.05,
            ),
        };
        joint.radius_mm = 5.0 + f * 0.2;
    }
    hj.tracked_mask = (1 << 26) - 1 - (seed as u32 % 3);
    hj
}

pub fn controller(seed: f32) -> ControllerState {
    ControllerState {
        grip: pose(seed),
        aim: pose(seed + 1.0),
        buttons: 0b1010 + seed as u32 % 2,
        trigger: (seed * 0.01).fract(),
        squeeze: 0.25,
        thumbstick: Vec2::new(-0.5, 0.75),
    }
}

/// One event of every type (and every scene change), at distinct increasing times.
pub fn one_of_everything() -> Vec<Event> {
    let ms = 1_000_000i64;
    let mut t = 0i64;
    let mut next = |payload: Payload| {
        t += 7 * ms;
        Event::new(t, payload)
    };
    let style = StrokeStyle {
        colour_rgba: [255, 0, 128, 200],
        width_mm: 2.5,
        brush: Brush::Marker,
    };
    vec![
        next(Payload::Head(pose(1.0))),
        next(Payload::Hand(Box::new(HandSample {
            hand: Handedness::Left,
            joints: Some(hand_joints(1.0)),
        }))),
        next(Payload::Hand(Box::new(HandSample {
            hand: Handedness::Right,
            joints: None,
        }))),
        next(Payload::Controller(ControllerSample {
            hand: Handedness::Right,
            state: Some(controller(3.0)),
        })),
        next(Payload::Controller(ControllerSample {
            hand: Handedness::Left,
            state: None,
        })),
        next(Payload::Gesture(Gesture {
            hand: Handedness::Right,
            kind: GestureKind::Pinch,
            pose: pose(2.0),
        })),
        next(Payload::Gesture(Gesture {
            hand: Handedness::Left,
            kind: GestureKind::Other(42),
            pose: pose(3.0),
        })),
        next(Payload::StrokeBegin(StrokeBegin {
            stroke_id: 7,
            space: Space::Patient,
            style,
        })),
        next(Payload::StrokePoint(StrokePoint {
            stroke_id: 7,
            position_mm: Vec3::new(10.0, 20.0, 30.0),
            pressure: 0.5,
        })),
        next(Payload::StrokePoint(StrokePoint {
            stroke_id: 7,
            position_mm: Vec3::new(10.5, 20.25, 30.0),
            pressure: 0.75,
        })),
        next(Payload::StrokeEnd { stroke_id: 7 }),
        next(Payload::StrokeUndo { stroke_id: 7 }),
        next(Payload::StrokeErase {
            stroke_ids: vec![1, 2, 300_000],
        }),
        next(Payload::Scene(SceneChange::Preset {
            name: "CT bone".to_owned(),
        })),
        next(Payload::Scene(SceneChange::TransferCurve {
            points: vec![
                TransferPoint {
                    density_hu: -1000.0,
                    rgba: [0.0, 0.0, 0.0, 0.0],
                },
                TransferPoint {
                    density_hu: 300.0,
                    rgba: [1.0, 0.9, 0.8, 0.7],
                },
            ],
        })),
        next(Payload::Scene(SceneChange::WindowLevel {
            centre_hu: 40.0,
            width_hu: 400.0,
        })),
        next(Payload::Scene(SceneChange::LabelVisibility {
            label: 3,
            visible: false,
        })),
        next(Payload::Scene(SceneChange::LabelColour {
            label: 3,
            colour_rgb: [1, 2, 3],
        })),
        next(Payload::Scene(SceneChange::LabelOpacity {
            label: 4,
            opacity: 0.3,
        })),
        next(Payload::Scene(SceneChange::ClipPlane {
            plane: Some(ClipPlane {
                normal: Vec3::Z,
                distance_mm: -12.5,
            }),
        })),
        next(Payload::Scene(SceneChange::ClipPlane { plane: None })),
        next(Payload::Scene(SceneChange::CropBox {
            crop: Some(CropBox {
                min_mm: Vec3::splat(-50.0),
                max_mm: Vec3::splat(60.0),
            }),
        })),
        next(Payload::Scene(SceneChange::TwinPose {
            stage_from_patient: pose(9.0),
        })),
        next(Payload::Scene(SceneChange::MprSlices {
            slices_mm: Vec3::new(1.0, 2.0, 3.0),
        })),
        next(Payload::Chapter(Chapter {
            title: "Introduction — Übersicht".to_owned(),
        })),
        next(Payload::Viewpoint(Viewpoint {
            name: "anterior".to_owned(),
            space: Space::Patient,
            pose: pose(4.0),
        })),
        next(Payload::Note(Note {
            text: "note the aneurysm".to_owned(),
        })),
        next(Payload::Audio(AudioPacket {
            codec: 1,
            sample_rate_hz: 48_000,
            channel_count: 1,
            data: vec![1, 2, 3, 4, 5],
        })),
        next(Payload::VoiceSync(VoiceSync {
            sample_index: 0,
            starts_segment: true,
        })),
        next(Payload::Voice(VoicePacket {
            format: VoiceFormat::opus_mono(312),
            sample_index: 0,
            sample_count: 960,
            valid_samples: 960,
            data: vec![0x08, 7, 7, 7],
        })),
        next(Payload::Voice(VoicePacket {
            format: VoiceFormat::opus_mono(312),
            sample_index: 960,
            sample_count: 960,
            valid_samples: 500,
            data: vec![0x08],
        })),
        next(Payload::VoiceSync(VoiceSync {
            sample_index: 1_000_000,
            starts_segment: false,
        })),
    ]
}

/// Checks that a decoded event matches the original within the format's stated precision.
pub fn assert_event_close(expected: &Event, actual: &Event) {
    use twinray_lessons::quant::*;
    assert_eq!(expected.time_ns, actual.time_ns, "time of {expected:?}");
    let pose_close = |a: &Pose, b: &Pose, step: f32, scale: f32| {
        assert!(
            (a.position_mm - b.position_mm).abs().max_element() <= step / 2.0 + 1e-3,
            "{a:?} vs {b:?}"
        );
        assert!(
            a.orientation.angle_between(b.orientation) <= quat_error_bound_rad(scale) + 2e-3,
            "{a:?} vs {b:?}"
        );
    };
    match (&expected.payload, &actual.payload) {
        (Payload::Head(a), Payload::Head(b)) => {
            pose_close(a, b, POSE_POSITION_STEP_MM, POSE_QUAT_SCALE);
        }
        (Payload::Hand(a), Payload::Hand(b)) => {
            assert_eq!(a.hand, b.hand);
            assert_eq!(a.joints.is_some(), b.joints.is_some());
            if let (Some(a), Some(b)) = (&a.joints, &b.joints) {
                assert_eq!(a.tracked_mask, b.tracked_mask);
                for (ja, jb) in a.joints.iter().zip(&b.joints) {
                    pose_close(&ja.pose, &jb.pose, HAND_POSITION_STEP_MM, HAND_QUAT_SCALE);
                    assert!((ja.radius_mm - jb.radius_mm).abs() <= RADIUS_STEP_MM / 2.0 + 1e-4);
                }
            }
        }
        (Payload::Controller(a), Payload::Controller(b)) => {
            assert_eq!(a.hand, b.hand);
            assert_eq!(a.state.is_some(), b.state.is_some());
            if let (Some(a), Some(b)) = (&a.state, &b.state) {
                pose_close(&a.grip, &b.grip, POSE_POSITION_STEP_MM, POSE_QUAT_SCALE);
                pose_close(&a.aim, &b.aim, POSE_POSITION_STEP_MM, POSE_QUAT_SCALE);
                assert_eq!(a.buttons, b.buttons);
                assert!((a.trigger - b.trigger).abs() <= 0.5 / ANALOG_SCALE + 1e-6);
                assert!((a.squeeze - b.squeeze).abs() <= 0.5 / ANALOG_SCALE + 1e-6);
                assert!(
                    (a.thumbstick - b.thumbstick).abs().max_element() <= 0.5 / ANALOG_SCALE + 1e-6
                );
            }
        }
        (Payload::StrokePoint(a), Payload::StrokePoint(b)) => {
            assert_eq!(a.stroke_id, b.stroke_id);
            assert!(
                (a.position_mm - b.position_mm).abs().max_element()
                    <= STROKE_POSITION_STEP_MM / 2.0 + 1e-3
            );
            assert!((a.pressure - b.pressure).abs() <= 0.5 / PRESSURE_SCALE + 1e-6);
        }
        // Everything else is stored exactly.
        (a, b) => assert_eq!(a, b),
    }
}

/// A small grey "radiograph" (a gradient with a bright band) with known spacing.
pub fn board_image(width: u32, height: u32, seed: u8) -> ImageBlob {
    let pixels: Vec<u8> = (0..width * height)
        .map(|i| {
            let (x, y) = (i % width, i / width);
            (x * 3 + y * 5) as u8 ^ seed | if y % 16 < 3 { 0xf0 } else { 0 }
        })
        .collect();
    ImageBlob::encode(
        width,
        height,
        PixelFormat::Grey8,
        PixelSpacing::Known {
            row_mm: 0.2,
            col_mm: 0.15,
            at_detector: true,
        },
        &pixels,
    )
    .unwrap()
}

/// A board pose beside the twin: to the patient's left, facing +y.
pub fn board_pose(seed: f32) -> Pose {
    Pose {
        position_mm: Vec3::new(-400.0 + seed, 50.0, 120.0),
        orientation: Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2 + seed * 0.01),
    }
}

/// One of every 1.3 event (image, board show / pose / hide, a stroke and a viewpoint on the
/// board, every kind of measurement and its hiding), from `t0_ns` at distinct times.
pub fn boards_and_measurements(t0_ns: i64) -> Vec<Event> {
    let ms = 1_000_000i64;
    let image = board_image(40, 30, 7);
    let mut t = t0_ns;
    let mut next = |payload: Payload| {
        t += 7 * ms;
        Event::new(t, payload)
    };
    let on_board = Space::Board(3);
    let measurements = [
        Measurement::Distance {
            space: Space::Patient,
            a_mm: Vec3::new(1.0, 2.0, 3.0),
            b_mm: Vec3::new(-4.5, 6.25, 7.0),
        },
        Measurement::Angle {
            space: Space::Patient,
            a_mm: Vec3::X,
            vertex_mm: Vec3::ZERO,
            b_mm: Vec3::Y,
        },
        Measurement::Cobb {
            space: on_board,
            line1_mm: [Vec3::new(-20.0, 40.0, 0.0), Vec3::new(20.0, 44.0, 0.0)],
            line2_mm: [Vec3::new(-22.0, -30.0, 0.0), Vec3::new(18.0, -38.0, 0.0)],
        },
        Measurement::Trajectory {
            space: Space::Patient,
            entry_mm: Vec3::new(10.0, -120.0, 40.0),
            target_mm: Vec3::new(15.0, -60.0, 35.0),
        },
        Measurement::LabelStats { label_id: 65_535 },
        Measurement::Other(200),
    ];
    let mut events = vec![];
    let [img, show] = image.into_events(0, 3, "Pelvis AP".to_owned(), board_pose(0.0), 300.0);
    events.push(next(img.payload));
    events.push(next(show.payload));
    events.push(next(Payload::Scene(SceneChange::BoardPose {
        board_id: 3,
        pose: board_pose(5.0),
        width_mm: 450.0,
    })));
    events.push(next(Payload::StrokeBegin(StrokeBegin {
        stroke_id: 40,
        space: on_board,
        style: StrokeStyle {
            colour_rgba: [0, 255, 0, 255],
            width_mm: 1.5,
            brush: Brush::Pen,
        },
    })));
    for i in 0..3 {
        events.push(next(Payload::StrokePoint(StrokePoint {
            stroke_id: 40,
            position_mm: Vec3::new(-10.0 + i as f32 * 4.5, 20.0 - i as f32, 0.0),
            pressure: 0.5,
        })));
    }
    events.push(next(Payload::StrokeEnd { stroke_id: 40 }));
    events.push(next(Payload::Viewpoint(Viewpoint {
        name: "the X-ray".to_owned(),
        space: on_board,
        pose: pose(1.0),
    })));
    for (id, m) in (1..).zip(measurements) {
        events.push(next(Payload::Scene(SceneChange::MeasurementShow {
            id,
            measurement: m,
        })));
    }
    events.push(next(Payload::Scene(SceneChange::MeasurementHide { id: 2 })));
    events.push(next(Payload::Scene(SceneChange::BoardHide { board_id: 3 })));
    events
}
