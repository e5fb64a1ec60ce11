//! What an XR runtime gives the studio each frame, and a scripted runtime for headless runs.
//!
//! [`XrSource`] is the seam between the OpenXR glue and everything else: the VR loop, the
//! stereo cameras, input and recording only ever see [`XrFrame`]s, so the same code runs from a
//! headset ([`crate::openxr_glue::OpenXrSource`]) and from [`SimulatedXr`] in tests and CI.
//!
//! Conventions are OpenXR's, with positions in millimetres (the lessons crate's unit; the glue
//! multiplies by 1000): stage space has +y up and the floor at y = 0; a view looks down its −z
//! with +x right; field-of-view angles are radians with `angle_left < 0 < angle_right` and
//! `angle_down < 0 < angle_up` (`XrFovf`).

use glam::{DVec3, Quat, Vec3};
use twinray_lessons::event::{
    ControllerState, HandJoint, HandJoints, Handedness, Pose, HAND_JOINT_COUNT, WRIST_JOINT,
};
use twinray_renderer::{Frustum, RgbaImage};
use twinray_scene::builder::look_rotation;

use crate::XrError;

/// Bit of [`ControllerState::buttons`] set while the menu button is held.
pub const MENU_BUTTON: u32 = 1;
/// Bit of [`ControllerState::buttons`] set while the tool button is held (X on the left Touch
/// controller, B on the right): each press steps to the next measure tool.
pub const TOOL_BUTTON: u32 = 2;
/// Bit of [`ControllerState::buttons`] set while the board button is held (Y on the left Touch
/// controller, the one face button nothing else uses): each press places the next image
/// brought in with `twinray vr --board` as a board in front of the head.
pub const BOARD_BUTTON: u32 = 4;

/// Refresh period of a 90 Hz headset, the rate the comfort governor aims at by default.
pub const PERIOD_90HZ_NS: i64 = 11_111_111;

/// An eye's field of view, exactly as `XrFovf` (radians).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fov {
    /// Angle to the left edge (negative).
    pub angle_left: f32,
    /// Angle to the right edge (positive).
    pub angle_right: f32,
    /// Angle to the top edge (positive).
    pub angle_up: f32,
    /// Angle to the bottom edge (negative).
    pub angle_down: f32,
}

impl Fov {
    /// The renderer's frustum for these angles.
    #[must_use]
    pub fn frustum(&self) -> Frustum {
        Frustum::from_angles(
            f64::from(self.angle_left),
            f64::from(self.angle_right),
            f64::from(self.angle_up),
            f64::from(self.angle_down),
        )
    }

    /// The same field of view seen in a mirror (left and right swapped): the other eye's.
    #[must_use]
    pub fn mirrored(&self) -> Self {
        Self {
            angle_left: -self.angle_right,
            angle_right: -self.angle_left,
            ..*self
        }
    }
}

/// One eye's view as `xrLocateViews` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EyeView {
    /// Eye pose in stage space (millimetres).
    pub pose: Pose,
    /// Its field of view.
    pub fov: Fov,
}

/// Everything the runtime says about one frame, in stage space.
#[derive(Debug, Clone, PartialEq)]
pub struct XrFrame {
    /// When this frame will be shown (the runtime's clock, nanoseconds).
    pub predicted_display_time_ns: i64,
    /// The display's refresh period (nanoseconds).
    pub display_period_ns: i64,
    /// Left and right eye.
    pub views: [EyeView; 2],
    /// Head pose (between the eyes), the one recorded in the head stream.
    pub head: Pose,
    /// Tracked hands (left, right), `None` when not tracked or not supported.
    pub hands: [Option<HandJoints>; 2],
    /// Controllers (left, right), `None` when not tracked. The menu button is [`MENU_BUTTON`].
    pub controllers: [Option<ControllerState>; 2],
}

/// A source of XR frames: a runtime, or a script.
pub trait XrSource {
    /// Per-eye image size the runtime recommends (width, height).
    fn recommended_eye_size(&self) -> [u32; 2];

    /// Waits for the next frame and reports its views and input; `None` when the session ends.
    ///
    /// # Errors
    /// When the runtime fails.
    fn next_frame(&mut self) -> Result<Option<XrFrame>, XrError>;

    /// Shows the two eye images for `frame` (each any size: the source scales if it must).
    ///
    /// # Errors
    /// When the runtime fails.
    fn submit(&mut self, frame: &XrFrame, eyes: &[RgbaImage; 2]) -> Result<(), XrError>;

    /// Asks for the session to end cleanly: later [`Self::next_frame`] calls give no more
    /// frames to render; they take the session through the runtime's shutdown and then return
    /// `None`. Calling it again does nothing.
    ///
    /// # Errors
    /// When the runtime fails.
    fn request_exit(&mut self) -> Result<(), XrError>;
}

/// The left eye's field of view of a Quest-class headset (radians); the right eye's is its
/// mirror image. The asymmetry (more to the outside than to the nose) is what tests check.
pub const QUEST_LEFT_FOV: Fov = Fov {
    angle_left: -0.907,
    angle_right: 0.768,
    angle_up: 0.873,
    angle_down: -0.925,
};

/// A scripted headset: the learner stands in front of the twin and sways a little, the right
/// controller draws a stroke, then grabs and turns the twin, then both grips scale it, and the
/// menu buttons start recording and mark a chapter; after six seconds the thumbsticks turn,
/// slide and scale the twin ([`script`]). Deterministic: frame `n` is always the same.
#[derive(Debug, Clone)]
pub struct SimulatedXr {
    /// Where the head looks, in stage space (mm): the twin's centre.
    pub target_mm: Vec3,
    /// Distance from the head to the target (mm).
    pub distance_mm: f32,
    /// Interpupillary distance (mm).
    pub ipd_mm: f32,
    /// Per-eye image size reported as recommended.
    pub eye_size: [u32; 2],
    /// Refresh period.
    pub period_ns: i64,
    /// Whether tracked hands are reported (pinch draws) in addition to controllers.
    pub hand_tracking: bool,
    /// Frames to produce before the session ends.
    pub frame_count: u64,
    frame: u64,
    submitted: Vec<[RgbaImage; 2]>,
    keep_submitted: bool,
}

/// Script times (seconds) of [`SimulatedXr`].
pub mod script {
    /// Right menu press: toggles recording.
    pub const MENU_RIGHT_S: (f64, f64) = (0.05, 0.15);
    /// Left menu press: marks a chapter.
    pub const MENU_LEFT_S: (f64, f64) = (0.3, 0.4);
    /// Right trigger held: draws a stroke.
    pub const TRIGGER_S: (f64, f64) = (0.5, 1.5);
    /// Right grip held: moves the twin 100 mm to the right and turns it 20° about +y.
    pub const GRIP_S: (f64, f64) = (1.8, 2.8);
    /// Both grips held: hands move apart from 300 mm to 450 mm (scale ×1.5).
    pub const TWO_HAND_S: (f64, f64) = (3.0, 4.0);
    /// Right hand pinch (hand tracking only): draws a second stroke.
    pub const PINCH_S: (f64, f64) = (4.3, 5.0);
    /// How far the right grip moves the twin (mm, stage +x).
    pub const GRIP_MOVE_MM: f32 = 100.0;
    /// How far it turns the twin (degrees about stage +y).
    pub const GRIP_TURN_DEG: f32 = 20.0;
    /// Right thumbstick pushed fully right: turns the twin clockwise seen from above.
    pub const STICK_TURN_S: (f64, f64) = (6.0, 7.0);
    /// Left thumbstick pushed fully forward: slides the twin away along the gaze.
    pub const STICK_MOVE_S: (f64, f64) = (7.2, 8.2);
    /// Right thumbstick pushed fully up: makes the twin larger.
    pub const STICK_SCALE_S: (f64, f64) = (8.4, 9.4);
}

impl SimulatedXr {
    /// A 90 Hz headset looking at `target_mm` from 600 mm, with Quest-like views.
    #[must_use]
    pub fn new(target_mm: Vec3, eye_size: [u32; 2], frame_count: u64) -> Self {
        Self {
            target_mm,
            distance_mm: 400.0,
            ipd_mm: 63.0,
            eye_size,
            period_ns: PERIOD_90HZ_NS,
            hand_tracking: true,
            frame_count,
            frame: 0,
            submitted: Vec::new(),
            keep_submitted: false,
        }
    }

    /// Keeps every submitted eye pair (for tests).
    #[must_use]
    pub fn keeping_submitted(mut self) -> Self {
        self.keep_submitted = true;
        self
    }

    /// The eye pairs submitted so far (only with [`Self::keeping_submitted`]).
    #[must_use]
    pub fn submitted(&self) -> &[[RgbaImage; 2]] {
        &self.submitted
    }

    /// The frame shown at `time_s` seconds after the start.
    #[must_use]
    pub fn frame_at(&self, time_s: f64) -> XrFrame {
        let head = self.head_at(time_s);
        let eye = |sign: f32, fov: Fov| EyeView {
            pose: Pose {
                position_mm: head.position_mm
                    + head.orientation * Vec3::new(sign * self.ipd_mm * 0.5, 0.0, 0.0),
                orientation: head.orientation,
            },
            fov,
        };
        let right_grip = self.right_controller_at(time_s);
        let left_grip = self.left_controller_at(time_s);
        let hands = if self.hand_tracking {
            [
                Some(hand_at(left_grip.grip, Handedness::Left, 60.0)),
                Some(hand_at(
                    right_grip.grip,
                    Handedness::Right,
                    if within(time_s, script::PINCH_S) {
                        8.0
                    } else {
                        60.0
                    },
                )),
            ]
        } else {
            [None, None]
        };
        XrFrame {
            predicted_display_time_ns: (time_s * 1e9).round() as i64,
            display_period_ns: self.period_ns,
            views: [
                eye(-1.0, QUEST_LEFT_FOV),
                eye(1.0, QUEST_LEFT_FOV.mirrored()),
            ],
            head,
            hands,
            controllers: [Some(left_grip), Some(right_grip)],
        }
    }

    /// Head pose: in front of the target (stage −z side… +z towards the viewer), swaying ±15°
    /// around it over four seconds and always looking at it.
    fn head_at(&self, time_s: f64) -> Pose {
        let sway = (15f32.to_radians()) * (time_s as f32 * std::f32::consts::TAU / 4.0).sin();
        let offset = Quat::from_rotation_y(sway) * Vec3::new(0.0, 150.0, self.distance_mm);
        let position_mm = self.target_mm + offset;
        Pose {
            position_mm,
            orientation: look_rotation(position_mm.as_dvec3(), self.target_mm.as_dvec3(), DVec3::Y)
                .as_quat(),
        }
    }

    /// Right controller: rests to the right of the target; draws a horizontal arc over it while
    /// the trigger is held; carries the twin while gripping.
    fn right_controller_at(&self, time_s: f64) -> ControllerState {
        let rest = self.target_mm + Vec3::new(150.0, 100.0, 250.0);
        let mut position = rest;
        let mut orientation = Quat::IDENTITY;
        let (mut trigger, mut squeeze, mut buttons) = (0.0, 0.0, 0);
        if within(time_s, script::MENU_RIGHT_S) {
            buttons |= MENU_BUTTON;
        }
        if within(time_s, script::TRIGGER_S) {
            trigger = 1.0;
            let s = progress(time_s, script::TRIGGER_S);
            position = self.target_mm + Vec3::new(-60.0 + 120.0 * s, 40.0 * (s * 3.0).sin(), 120.0);
        }
        if within(time_s, script::GRIP_S) || within(time_s, script::TWO_HAND_S) {
            squeeze = 1.0;
        }
        let grip_s = progress(time_s, script::GRIP_S);
        if time_s >= script::GRIP_S.0 {
            position = rest + Vec3::new(script::GRIP_MOVE_MM * grip_s, 0.0, 0.0);
            orientation = Quat::from_rotation_y(script::GRIP_TURN_DEG.to_radians() * grip_s);
        }
        if time_s >= script::TWO_HAND_S.0 {
            let s = progress(time_s, script::TWO_HAND_S);
            position = self.two_hand_centre() + Vec3::new(75.0 + 37.5 * s, 0.0, 0.0) * 2.0;
        }
        let pose = Pose {
            position_mm: position,
            orientation,
        };
        let mut thumbstick = glam::Vec2::ZERO;
        if within(time_s, script::STICK_TURN_S) {
            thumbstick.x = 1.0;
        }
        if within(time_s, script::STICK_SCALE_S) {
            thumbstick.y = 1.0;
        }
        ControllerState {
            grip: pose,
            aim: pose,
            buttons,
            trigger,
            squeeze,
            thumbstick,
        }
    }

    /// Left controller: rests to the left; presses menu once; joins the two-hand scale.
    fn left_controller_at(&self, time_s: f64) -> ControllerState {
        let mut position = self.target_mm + Vec3::new(-150.0, 100.0, 250.0);
        let mut buttons = 0;
        if within(time_s, script::MENU_LEFT_S) {
            buttons |= MENU_BUTTON;
        }
        let mut squeeze = 0.0;
        if time_s >= script::TWO_HAND_S.0 {
            let s = progress(time_s, script::TWO_HAND_S);
            position = self.two_hand_centre() - Vec3::new(75.0 + 37.5 * s, 0.0, 0.0) * 2.0;
            if within(time_s, script::TWO_HAND_S) {
                squeeze = 1.0;
            }
        }
        let pose = Pose {
            position_mm: position,
            orientation: Quat::IDENTITY,
        };
        let thumbstick = if within(time_s, script::STICK_MOVE_S) {
            glam::Vec2::Y
        } else {
            glam::Vec2::ZERO
        };
        ControllerState {
            grip: pose,
            aim: pose,
            buttons,
            trigger: 0.0,
            squeeze,
            thumbstick,
        }
    }

    fn two_hand_centre(&self) -> Vec3 {
        self.target_mm + Vec3::new(script::GRIP_MOVE_MM, 100.0, 250.0)
    }
}

impl XrSource for SimulatedXr {
    fn recommended_eye_size(&self) -> [u32; 2] {
        self.eye_size
    }

    fn next_frame(&mut self) -> Result<Option<XrFrame>, XrError> {
        if self.frame >= self.frame_count {
            return Ok(None);
        }
        let time_s = self.frame as f64 * self.period_ns as f64 * 1e-9;
        self.frame += 1;
        Ok(Some(self.frame_at(time_s)))
    }

    fn submit(&mut self, _frame: &XrFrame, eyes: &[RgbaImage; 2]) -> Result<(), XrError> {
        if self.keep_submitted {
            self.submitted.push(eyes.clone());
        }
        Ok(())
    }

    fn request_exit(&mut self) -> Result<(), XrError> {
        self.frame_count = self.frame_count.min(self.frame);
        Ok(())
    }
}

fn within(t: f64, (start, end): (f64, f64)) -> bool {
    t >= start && t < end
}

fn progress(t: f64, (start, end): (f64, f64)) -> f32 {
    ((t - start) / (end - start)).clamp(0.0, 1.0) as f32
}

/// A hand in the `XR_EXT_hand_tracking` joint layout around a grip pose: palm, wrist, then
/// thumb and four fingers pointing forward (−z), with the thumb and index tips `pinch_gap_mm`
/// apart (small = pinching).
#[must_use]
pub fn hand_at(grip: Pose, hand: Handedness, pinch_gap_mm: f32) -> HandJoints {
    let side = match hand {
        Handedness::Left => -1.0,
        Handedness::Right => 1.0,
    };
    let mut local = [Vec3::ZERO; HAND_JOINT_COUNT];
    local[0] = Vec3::new(0.0, 0.0, -40.0); // palm
    local[WRIST_JOINT] = Vec3::new(0.0, 0.0, 20.0);
    // Fingers 1..=4 (index..little): metacarpal, proximal, intermediate, distal, tip.
    for finger in 0..4 {
        let x = side * (15.0 - 12.0 * finger as f32);
        for j in 0..5 {
            local[6 + finger * 5 + j] = Vec3::new(x, 0.0, -(10.0 + 25.0 * j as f32));
        }
    }
    // The index tip, then the thumb chain ending `pinch_gap_mm` from it.
    let index_tip = local[10];
    let thumb_tip = index_tip + Vec3::new(-side * pinch_gap_mm, 0.0, 0.0);
    let thumb_base = Vec3::new(side * 30.0, 0.0, 0.0);
    for j in 0..4 {
        local[2 + j] = thumb_base.lerp(thumb_tip, j as f32 / 3.0);
    }
    let mut joints = HandJoints::default();
    for (joint, p) in joints.joints.iter_mut().zip(local) {
        *joint = HandJoint {
            pose: Pose {
                position_mm: grip.position_mm + grip.orientation * p,
                orientation: grip.orientation,
            },
            radius_mm: 8.0,
        };
    }
    joints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_views_look_like_a_headset() {
        let xr = SimulatedXr::new(Vec3::new(0.0, 1000.0, -500.0), [160, 168], 10);
        let f = xr.frame_at(0.7);
        let [l, r] = f.views;
        assert!((l.pose.position_mm.distance(r.pose.position_mm) - 63.0).abs() < 1e-3);
        // Left eye is to the left of the head, in the head's own frame.
        let local = f.head.orientation.inverse() * (l.pose.position_mm - f.head.position_mm);
        assert!(local.x < 0.0);
        assert!(l.fov.angle_left < 0.0 && l.fov.angle_right > 0.0);
        assert!(l.fov.angle_down < 0.0 && l.fov.angle_up > 0.0);
        // Each eye sees more to its outside than towards the nose.
        assert!(-l.fov.angle_left > l.fov.angle_right);
        assert!(r.fov.angle_right > -r.fov.angle_left);
        // The head looks at the target.
        let forward = f.head.orientation * Vec3::NEG_Z;
        let to_target = (xr.target_mm - f.head.position_mm).normalize();
        assert!(forward.dot(to_target) > 0.9999);
    }

    #[test]
    fn the_script_ends_and_stamps_display_times() {
        let mut xr = SimulatedXr::new(Vec3::ZERO, [8, 8], 3);
        let mut times = Vec::new();
        while let Some(f) = xr.next_frame().expect("simulated") {
            times.push(f.predicted_display_time_ns);
        }
        assert_eq!(times, vec![0, PERIOD_90HZ_NS, 2 * PERIOD_90HZ_NS]);
    }

    #[test]
    fn the_script_ends_early_when_asked_to_exit() {
        let mut xr = SimulatedXr::new(Vec3::ZERO, [8, 8], 10);
        assert!(xr.next_frame().expect("simulated").is_some());
        xr.request_exit().expect("simulated");
        xr.request_exit().expect("a second request does nothing");
        assert!(xr.next_frame().expect("simulated").is_none());
    }
}
