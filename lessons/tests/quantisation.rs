//! Property tests: the precision FORMAT.md promises holds for any input in range.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use glam::{Quat, Vec3};
use proptest::prelude::*;
use twinray_lessons::chunk::{decode_payload, ChunkBuilder, DecodeParts};
use twinray_lessons::event::*;
use twinray_lessons::quant::*;

/// Rotation angle between two unit quaternions, in f64 (acos is too coarse near 0 in f32).
fn angle(a: Quat, b: Quat) -> f64 {
    let d = (a.conjugate() * b).normalize();
    let v = glam::DVec3::new(f64::from(d.x), f64::from(d.y), f64::from(d.z)).length();
    2.0 * v.atan2(f64::from(d.w).abs())
}

fn any_quat() -> impl Strategy<Value = Quat> {
    (-1.0f32..1.0, -1.0f32..1.0, -1.0f32..1.0, -1.0f32..1.0)
        .prop_filter("non-degenerate", |(x, y, z, w)| {
            x * x + y * y + z * z + w * w > 0.01
        })
        .prop_map(|(x, y, z, w)| Quat::from_xyzw(x, y, z, w).normalize())
}

fn any_position() -> impl Strategy<Value = Vec3> {
    (-5000.0f32..5000.0, -5000.0f32..5000.0, -5000.0f32..5000.0)
        .prop_map(|(x, y, z)| Vec3::new(x, y, z))
}

/// f32 rounding of values up to 5 m in mm, on top of the quantisation step.
const POSITION_SLACK_MM: f32 = 1e-3;
/// f32 arithmetic on top of the analytic quaternion bound.
const ANGLE_SLACK_RAD: f64 = 2e-4;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn positions_are_within_half_a_step(p in any_position(), step in prop::sample::select(vec![
        HAND_POSITION_STEP_MM, POSE_POSITION_STEP_MM, STROKE_POSITION_STEP_MM,
    ])) {
        let q = quantise_position(p, step);
        let back = dequantise_position(q.map(i64::from), step);
        prop_assert!((back - p).abs().max_element() <= step / 2.0 + POSITION_SLACK_MM, "{p} -> {back}");
    }

    #[test]
    fn four_component_quaternions_are_within_the_bound(q in any_quat(), flip in any::<bool>()) {
        let previous = flip.then_some([0, 0, 0, -32767]);
        let c = quantise_quat(q, POSE_QUAT_SCALE, previous);
        let back = dequantise_quat(c.map(i64::from));
        prop_assert!(angle(q, back) <= f64::from(quat_error_bound_rad(POSE_QUAT_SCALE)) + ANGLE_SLACK_RAD);
        prop_assert!((back.length() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn smallest_three_quaternions_are_within_the_bound(q in any_quat(), prev in prop::option::of(0u8..4)) {
        let (index, c) = quantise_quat_smallest3(q, HAND_QUAT_SCALE, prev);
        let back = dequantise_quat_smallest3(index, c.map(i64::from), HAND_QUAT_SCALE);
        let err = angle(q, back);
        prop_assert!(err <= f64::from(quat_error_bound_rad(HAND_QUAT_SCALE)) + ANGLE_SLACK_RAD, "{q} -> {back}: {err}");
    }

    #[test]
    fn unit_values_are_within_half_a_step(v in -2.0f32..2.0) {
        let q = quantise_unit(v, PRESSURE_SCALE, 0.0, 1.0);
        let back = dequantise_unit(i64::from(q), PRESSURE_SCALE, 0.0, 1.0);
        prop_assert!((back - v.clamp(0.0, 1.0)).abs() <= 0.5 / PRESSURE_SCALE + 1e-6);
    }

    /// The whole hand codec (parent prediction, deltas, smallest three) keeps every joint of
    /// every sample within the bounds, for arbitrary (not smooth) motion.
    #[test]
    fn hand_blocks_keep_every_joint_within_the_bounds(
        samples in prop::collection::vec(
            (prop::collection::vec((any_position(), any_quat(), 0.0f32..30.0), 26), any::<bool>()),
            1..6,
        )
    ) {
        let mut builder = ChunkBuilder::new(None);
        let mut expected = Vec::new();
        for (i, (joints, tracked)) in samples.iter().enumerate() {
            let mut hj = HandJoints::default();
            for (j, (p, q, r)) in joints.iter().enumerate() {
                hj.joints[j] = HandJoint { pose: Pose { position_mm: *p, orientation: *q }, radius_mm: *r };
            }
            let sample = HandSample { hand: Handedness::Left, joints: tracked.then_some(hj) };
            expected.push(sample.clone());
            builder.push(Event::new(i as i64 * 11_000_000, Payload::Hand(Box::new(sample))));
        }
        let payload = builder.encode().unwrap();
        let chunk = decode_payload(&payload.bytes, payload.t_start_ns, DecodeParts::ALL).unwrap();
        prop_assert_eq!(chunk.hands[0].len(), expected.len());
        for ((_, got), want) in chunk.hands[0].iter().zip(&expected) {
            prop_assert_eq!(got.is_some(), want.joints.is_some());
            if let (Some(g), Some(w)) = (got, &want.joints) {
                for (gj, wj) in g.joints.iter().zip(&w.joints) {
                    prop_assert!((gj.pose.position_mm - wj.pose.position_mm).abs().max_element()
                        <= HAND_POSITION_STEP_MM / 2.0 + POSITION_SLACK_MM);
                    prop_assert!(angle(gj.pose.orientation, wj.pose.orientation)
                        <= f64::from(quat_error_bound_rad(HAND_QUAT_SCALE)) + ANGLE_SLACK_RAD);
                    prop_assert!((gj.radius_mm - wj.radius_mm).abs() <= RADIUS_STEP_MM / 2.0 + 1e-4);
                }
            }
        }
    }

    #[test]
    fn stroke_points_and_times_round_trip(
        points in prop::collection::vec((any_position(), 0.0f32..1.0, 0i64..50_000_000), 1..40)
    ) {
        let mut builder = ChunkBuilder::new(None);
        let mut t = 1_000_000_000i64;
        let mut expected = Vec::new();
        for (p, pressure, dt) in &points {
            t += dt;
            let e = Event::new(t, Payload::StrokePoint(StrokePoint { stroke_id: 9, position_mm: *p, pressure: *pressure }));
            expected.push(e.clone());
            builder.push(e);
        }
        let payload = builder.encode().unwrap();
        let chunk = decode_payload(&payload.bytes, payload.t_start_ns, DecodeParts::ALL).unwrap();
        prop_assert_eq!(chunk.events.len(), expected.len());
        for (want, got) in expected.iter().zip(&chunk.events) {
            common::assert_event_close(want, got);
        }
    }
}

#[test]
fn non_finite_inputs_quantise_to_safe_values() {
    assert_eq!(quantise_scalar(f32::NAN, 1.0), 0);
    assert_eq!(quantise_scalar(f32::INFINITY, 1.0), i32::MAX);
    assert_eq!(
        dequantise_quat(
            quantise_quat(Quat::from_xyzw(f32::NAN, 0.0, 0.0, 1.0), 511.0, None).map(i64::from)
        ),
        Quat::IDENTITY
    );
    let (i, c) = quantise_quat_smallest3(Quat::from_xyzw(0.0, 0.0, 0.0, 0.0), 511.0, None);
    assert_eq!(
        dequantise_quat_smallest3(i, c.map(i64::from), 511.0),
        Quat::IDENTITY
    );
}

#[test]
fn the_stated_bounds_are_what_format_md_says() {
    // FORMAT.md states these figures; if a constant changes, the document must change too.
    assert!((quat_error_bound_rad(HAND_QUAT_SCALE).to_degrees() - 0.448).abs() < 0.001);
    assert!((quat_error_bound_rad(POSE_QUAT_SCALE).to_degrees() - 0.007).abs() < 0.001);
    let format_md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md")).unwrap();
    assert!(format_md.contains("0.45°") && format_md.contains("0.007°"));
}
