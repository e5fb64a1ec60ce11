//! Controller and hand input turned into lesson events: the same events the desktop studio
//! records, so a lesson taught in VR replays anywhere.
//!
//! - trigger, or a pinch of tracked thumb and index tips, draws a stroke at the pen tip (the
//!   controller's aim pose, or the point between the pinching finger tips), in patient space
//!   so that it stays on the anatomy when the twin moves;
//! - grip grabs the twin: one hand moves and turns it rigidly, two hands move it by their
//!   midpoint, turn it about the vertical and scale it by their distance; a grip pressed with
//!   the controller's ray on an X-ray board takes the board instead, which then moves and turns
//!   rigidly with that controller (the other hand's grip closing on it scales it by the
//!   hands' distance) until the grip is let go (recorded as board poses at most
//!   every `BOARD_DRAG_RECORD_INTERVAL_NS`, and the last one on release, as the desktop does);
//! - the thumbsticks move it smoothly: the left one slides it over the floor (forward is
//!   where the head looks), the right one turns it about the vertical (x) and scales it (y),
//!   both about the volume's centre;
//! - the right menu button starts and stops recording, the left one marks a chapter;
//! - the tool button (X or B on Touch controllers) steps through the measure tools: the
//!   trigger draws, then places the points of a distance, an angle, a Cobb angle or a needle
//!   path, or picks a labelled structure for its statistics, then draws again;
//! - the board button (Y on the left Touch controller) asks the session to place the next
//!   image the user brought (`twinray vr --board FILE`) as a board in front of the head.
//!
//! Every change of the twin's placement is recorded, its scale included
//! (`SceneChange::TwinScale`, lesson format 1.2), so a lesson taught on a scaled twin
//! replays with the hands on the same anatomy.
//!
//! Presses use hysteresis (a press needs more than a release) so a trembling finger on the
//! threshold does not break a stroke into pieces.

use glam::{Quat, Vec3};
use std::collections::BTreeMap;
use twinray_lessons::event::{
    Brush, Chapter, ControllerSample, ControllerState, Event, Gesture, GestureKind, HandJoints,
    HandSample, Handedness, Payload, Pose, SceneChange, Space, StrokeBegin, StrokePoint,
    StrokeStyle,
};

use twinray_lessons::state::{BoardState, SceneState};
use twinray_scene::annotations::MeasureTool;
use twinray_scene::boards::{BoardDrag, BoardFrames};

use crate::source::{XrFrame, BOARD_BUTTON, MENU_BUTTON, TOOL_BUTTON};

/// A pinch starts when thumb and index tips come closer than this (mm)…
pub const PINCH_START_MM: f32 = 20.0;
/// …and ends when they part further than this.
pub const PINCH_END_MM: f32 = 30.0;
/// Trigger and grip values that press…
pub const PRESS_VALUE: f32 = 0.7;
/// …and release.
pub const RELEASE_VALUE: f32 = 0.3;
/// A new stroke point is recorded once the pen tip moved this far (patient mm).
pub const STROKE_SPACING_MM: f32 = 2.0;
/// Two-hand scaling stays within these factors of the case's real size.
pub const SCALE_RANGE: (f32, f32) = (0.1, 10.0);
/// Thumbstick deflection below this does nothing (sticks rest a little off centre).
pub const STICK_DEAD_ZONE: f32 = 0.15;
/// Full left-stick deflection slides the twin this fast (mm per second).
pub const STICK_MOVE_MM_PER_S: f32 = 500.0;
/// Full right-stick x turns the twin this fast (degrees per second).
pub const STICK_TURN_DEG_PER_S: f32 = 90.0;
/// Full right-stick y scales the twin by this factor per second (up: larger).
pub const STICK_SCALE_PER_S: f32 = 2.0;
/// Longest frame step the sticks integrate over: after a stall the twin does not jump.
const STICK_MAX_STEP_NS: i64 = 100_000_000;

/// Joint indices of the finger tips used for pinching (`XR_EXT_hand_tracking`).
const THUMB_TIP: usize = 5;
const INDEX_TIP: usize = 10;

/// What the VR loop must do besides recording events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrCommand {
    /// The recording button was pressed.
    ToggleRecording,
    /// The board button was pressed with no board held: place the next image brought in as a
    /// board in front of the head (the session holds the images; see [`board_pose_facing`]).
    /// (With a board in a grip the button hides that board, an event of its own.)
    PlaceBoard,
}

/// The twin's placement in the room: the lesson's `stage_from_patient` and its scale
/// (`SceneState::twin_scale`), applied to the patient before the pose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwinPlacement {
    /// Rigid pose of the patient frame in the stage.
    pub stage_from_patient: Pose,
    /// Uniform scale (1 = life size).
    pub scale: f32,
}

impl TwinPlacement {
    /// Life size at `stage_from_patient`.
    #[must_use]
    pub fn rigid(stage_from_patient: Pose) -> Self {
        Self {
            stage_from_patient,
            scale: 1.0,
        }
    }

    /// The placement a scene shows (its pose and its sanitised scale).
    #[must_use]
    pub fn of_scene(scene: &SceneState) -> Self {
        Self {
            stage_from_patient: scene.stage_from_patient,
            scale: scene.twin_scale(),
        }
    }

    /// The scene changes that move a twin from `self` to `to`: its pose, and its scale when
    /// that changed.
    #[must_use]
    pub fn changes_to(&self, to: &Self) -> Vec<SceneChange> {
        let mut out = Vec::new();
        if to.stage_from_patient != self.stage_from_patient {
            out.push(SceneChange::TwinPose {
                stage_from_patient: to.stage_from_patient,
            });
        }
        if to.scale != self.scale {
            out.push(SceneChange::TwinScale { scale: to.scale });
        }
        out
    }

    /// A stage point in patient coordinates.
    #[must_use]
    pub fn patient_from_stage(&self, stage_mm: Vec3) -> Vec3 {
        let p = &self.stage_from_patient;
        p.orientation.inverse() * (stage_mm - p.position_mm) / self.scale
    }

    /// A patient point in stage coordinates.
    #[must_use]
    pub fn stage_from_patient(&self, patient_mm: Vec3) -> Vec3 {
        let p = &self.stage_from_patient;
        p.position_mm + p.orientation * (patient_mm * self.scale)
    }
}

/// How far along the gaze a board brought in with the board button stands (room mm): about
/// arm's length, near enough to read and for a grip's ray to take it and carry it elsewhere.
pub const BOARD_PLACE_DISTANCE_MM: f32 = 500.0;

/// Where a board brought in with the board button stands, as [`SceneChange::BoardShow`]
/// records it (patient space, so it moves with the twin like every board):
/// [`BOARD_PLACE_DISTANCE_MM`] along the gaze of `head` (stage), facing the eyes (its +z
/// towards the head), upright (its +y as near the room's up as facing allows, so the image
/// reads the right way up), on a twin placed at `twin`.
#[must_use]
pub fn board_pose_facing(head: Pose, twin: &TwinPlacement) -> Pose {
    let gaze = (head.orientation * Vec3::NEG_Z).normalize_or(Vec3::NEG_Z);
    let normal = -gaze;
    // Looking straight up or down the room's up is no help: the head's own up is.
    let up = [Vec3::Y, head.orientation * Vec3::Y]
        .into_iter()
        .map(|u| u - normal * normal.dot(u))
        .find(|u| u.length() > 0.1)
        .unwrap_or(Vec3::Y)
        .normalize();
    let right = up.cross(normal);
    let stage = Quat::from_mat3(&glam::Mat3::from_cols(right, up, normal)).normalize();
    Pose {
        position_mm: twin.patient_from_stage(head.position_mm + gaze * BOARD_PLACE_DISTANCE_MM),
        orientation: (twin.stage_from_patient.orientation.inverse() * stage).normalize(),
    }
}

#[derive(Debug, Clone, Copy)]
struct ActiveStroke {
    id: u32,
    hand: Handedness,
    /// The anatomy, or the board the pen touched when the stroke began.
    space: Space,
    /// The last point, in `space`'s mm.
    last_mm: Vec3,
}

/// How near the pen tip must come to an X-ray board's plane (patient mm, in front of it or
/// just behind) for a stroke to be drawn on the board rather than in the air beside it: a
/// hand cannot hold a pen exactly on a plane it does not feel.
const BOARD_TOUCH_MM: f64 = 15.0;

#[derive(Debug, Clone, Copy)]
struct GrabAnchor {
    /// Grip poses of the hands holding, at the anchor ([left, right]).
    hands: [Option<Pose>; 2],
    twin: TwinPlacement,
}

/// A board held by one controller's grip.
#[derive(Debug, Clone)]
struct BoardHold {
    /// The hand holding it (index into `XrFrame::controllers`).
    hand: usize,
    drag: BoardDrag,
    /// The grip's pose in patient space when it took hold.
    grip_at_grab: Pose,
    /// The board's scale against its width when it was taken (1 until a second hand scales it).
    scale: f32,
    /// The other hand, when its grip joined on the same board: the two grips' distance then
    /// (patient mm) and the scale then. Their distance scales the board, as two hands scale
    /// the twin.
    second: Option<(f32, f32)>,
}

/// Per-hand pressed states with hysteresis.
#[derive(Debug, Clone, Copy, Default)]
struct HandButtons {
    trigger: bool,
    pinch: bool,
    grip: bool,
    menu: bool,
    tool: bool,
    board: bool,
}

/// Interaction state carried from frame to frame. See the module docs.
#[derive(Debug, Clone)]
pub struct Interaction {
    buttons: [HandButtons; 2],
    stroke: Option<ActiveStroke>,
    next_stroke_id: u32,
    grab: Option<GrabAnchor>,
    twin: TwinPlacement,
    chapters: u32,
    last_time_ns: Option<i64>,
    /// The look of new strokes.
    pub style: StrokeStyle,
    /// The point (patient mm) the right thumbstick turns and scales the twin about: the
    /// volume's centre, so the anatomy stays where it is while it turns.
    pub pivot_patient_mm: Vec3,
    /// The boards shown, where they stand (set by the session each frame).
    boards: BoardFrames,
    /// Their states (pose and width), to start a drag from.
    board_states: BTreeMap<u32, BoardState>,
    board_hold: Option<BoardHold>,
    /// What a trigger press measures (`None`: the trigger draws).
    pub measure_tool: Option<MeasureTool>,
    /// The points of the measurement being placed.
    measure_points: Vec<(Space, Vec3)>,
    /// Why the last trigger press placed nothing (shown at the controller until the next
    /// press or tool), so a press on empty space or unlabelled tissue is not met with silence.
    measure_miss: Option<MeasureMiss>,
    /// The highest measurement id in the scene (new ones follow it).
    last_measurement_id: u32,
}

/// Why a trigger press of the measure tool placed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureMiss {
    /// The controller's ray met no anatomy (nor a board).
    NoAnatomy,
    /// Label statistics: no labelled structure within a voxel of the picked point.
    NoLabel,
}

impl MeasureMiss {
    /// What the controller's hint says.
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            Self::NoAnatomy => "the ray meets no anatomy there",
            Self::NoLabel => "no labelled structure there",
        }
    }
}

/// What one frame of input produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputOutcome {
    /// Lesson events at the frame's time: head, hands and controllers every frame, then
    /// gestures, strokes, scene changes and chapters as they happen.
    pub events: Vec<Event>,
    /// Commands for the VR loop.
    pub commands: Vec<VrCommand>,
    /// Rays (patient mm: origin, direction) of trigger presses of the measure tool that met
    /// no board: the session picks the anatomy along each and gives the point to
    /// [`Interaction::measure_point`].
    pub anatomy_picks: Vec<(Vec3, Vec3)>,
    /// Scene changes to show now but not to record: a held board's poses between the ones
    /// recorded in `events`.
    pub shown: Vec<SceneChange>,
}

impl Interaction {
    /// Starts with the twin where the lesson (or the case's default) put it; stroke ids start
    /// at `first_stroke_id` so they do not collide with strokes already in the lesson.
    #[must_use]
    pub fn new(twin: TwinPlacement, first_stroke_id: u32) -> Self {
        Self {
            buttons: [HandButtons::default(); 2],
            stroke: None,
            next_stroke_id: first_stroke_id,
            grab: None,
            twin,
            chapters: 0,
            last_time_ns: None,
            style: StrokeStyle {
                colour_rgba: [255, 200, 0, 255],
                width_mm: 3.0,
                brush: Brush::Pen,
            },
            pivot_patient_mm: Vec3::ZERO,
            boards: BoardFrames::default(),
            board_states: BTreeMap::new(),
            board_hold: None,
            measure_tool: None,
            measure_points: Vec::new(),
            measure_miss: None,
            last_measurement_id: 0,
        }
    }

    /// Steps to the next measure tool (the tool button): none (the trigger draws), distance,
    /// angle, Cobb angle, needle path, label statistics, then none again. Points placed with
    /// the previous tool are dropped.
    pub fn next_measure_tool(&mut self) {
        // None (the pen), then each tool in turn, then the pen again.
        self.measure_tool = match self.measure_tool {
            None => MeasureTool::ALL.first().copied(),
            Some(tool) => MeasureTool::ALL
                .iter()
                .skip_while(|t| **t != tool)
                .nth(1)
                .copied(),
        };
        self.measure_points.clear();
        self.measure_miss = None;
    }

    /// Why the last trigger press of the measure tool placed nothing, if it did not.
    #[must_use]
    pub fn measure_miss(&self) -> Option<MeasureMiss> {
        self.measure_miss
    }

    /// The session's pick along the controller's ray met no anatomy: nothing was placed.
    pub fn missed_the_anatomy(&mut self) {
        self.measure_miss = Some(MeasureMiss::NoAnatomy);
    }

    /// Adds a point of the measure tool at `p` in `space` (the anatomy or one board), as the
    /// desktop's clicks do: a point in another space than the first starts the measurement
    /// again, and with its last point the measurement is shown, recorded in `out`.
    /// `label_at` names the labelled structure at a patient point (label statistics; the
    /// session looks it up in the labels the frame shows, as the desktop does in its case's).
    pub fn measure_point(
        &mut self,
        space: Space,
        p: Vec3,
        label_at: impl FnOnce(Vec3) -> Option<u16>,
        out: &mut InputOutcome,
        time_ns: i64,
    ) {
        let Some(tool) = self.measure_tool else {
            return;
        };
        if self
            .measure_points
            .first()
            .is_some_and(|(s, _)| *s != space)
        {
            self.measure_points.clear();
        }
        if tool == MeasureTool::LabelStats && space != Space::Patient {
            return;
        }
        self.measure_miss = None;
        self.measure_points.push((space, p));
        if self.measure_points.len() < tool.points_needed() {
            return;
        }
        let points: Vec<Vec3> = self.measure_points.drain(..).map(|(_, v)| v).collect();
        let measurement = tool.measurement(space, &points, label_at);
        if measurement.is_none() && tool == MeasureTool::LabelStats {
            self.measure_miss = Some(MeasureMiss::NoLabel);
        }
        if let Some(measurement) = measurement {
            self.last_measurement_id += 1;
            out.events.push(Event::new(
                time_ns,
                Payload::Scene(SceneChange::MeasurementShow {
                    id: self.last_measurement_id,
                    measurement,
                }),
            ));
        }
    }

    /// The measurement points placed so far (of the measurement not yet complete).
    #[must_use]
    pub fn measure_points(&self) -> &[(Space, Vec3)] {
        &self.measure_points
    }

    /// The boards a grip can take hold of: `frames` where they are drawn, `scene`'s states of
    /// them. The session calls it each frame with what it showed.
    pub fn set_boards(&mut self, frames: &BoardFrames, scene: &SceneState) {
        self.boards.clone_from(frames);
        self.board_states.clone_from(&scene.boards);
        let last = scene.measurements.keys().max().copied().unwrap_or(0);
        self.last_measurement_id = self.last_measurement_id.max(last);
    }

    /// The board held, if any.
    #[must_use]
    pub fn held_board(&self) -> Option<u32> {
        self.board_hold.as_ref().map(|h| h.drag.board_id)
    }

    /// A stage pose in patient space (the twin's scale does not change directions).
    fn patient_pose(&self, stage: Pose) -> Pose {
        Pose {
            position_mm: self.twin.patient_from_stage(stage.position_mm),
            orientation: (self.twin.stage_from_patient.orientation.inverse() * stage.orientation)
                .normalize(),
        }
    }

    /// The board the controller's aim ray (its −z, as OpenXR's aim pose points) meets first.
    fn board_under(&self, aim: Pose) -> Option<u32> {
        let ray = self.patient_pose(aim);
        let dir = (ray.orientation * Vec3::NEG_Z).as_dvec3();
        self.boards
            .hit(ray.position_mm.as_dvec3(), dir)
            .map(|(id, _, _)| id)
    }

    /// Boards held by a grip: taken when a grip is pressed with the ray on one, moved rigidly
    /// with that controller, let go with its grip (the last pose recorded).
    fn hold_boards(
        &mut self,
        frame: &XrFrame,
        grips_before: [bool; 2],
        out: &mut InputOutcome,
        time_ns: i64,
    ) {
        if let Some(hold) = &self.board_hold {
            if !self.buttons[hold.hand].grip || frame.controllers[hold.hand].is_none() {
                if let Some(hold) = self.board_hold.take() {
                    if let Some(last) = hold.drag.release() {
                        out.events.push(Event::new(time_ns, Payload::Scene(last)));
                    }
                }
            }
        }
        if self.board_hold.is_none() {
            for (i, controller) in frame.controllers.iter().enumerate() {
                let Some(c) = controller.filter(|_| self.buttons[i].grip && !grips_before[i])
                else {
                    continue;
                };
                let held = self
                    .board_under(c.aim)
                    .and_then(|id| Some((id, self.board_states.get(&id)?)));
                if let Some((id, state)) = held {
                    self.board_hold = Some(BoardHold {
                        hand: i,
                        drag: BoardDrag::grab(id, state),
                        grip_at_grab: self.patient_pose(c.grip),
                        scale: 1.0,
                        second: None,
                    });
                    break;
                }
            }
        }
        // The other hand joins the hold when its grip closes with its ray on the same board,
        // and leaves it when the grip opens (the board keeps the size it had then).
        if let Some(hold) = &self.board_hold {
            let other = 1 - hold.hand;
            let gap = match (frame.controllers[hold.hand], frame.controllers[other]) {
                (Some(a), Some(b)) => Some(
                    self.patient_pose(a.grip)
                        .position_mm
                        .distance(self.patient_pose(b.grip).position_mm),
                ),
                _ => None,
            };
            let joins = hold.second.is_none()
                && self.buttons[other].grip
                && !grips_before[other]
                && frame.controllers[other]
                    .is_some_and(|c| self.board_under(c.aim) == Some(hold.drag.board_id));
            let leaves = hold.second.is_some() && (!self.buttons[other].grip || gap.is_none());
            if let Some(hold) = &mut self.board_hold {
                match gap.filter(|g| *g > 1.0) {
                    Some(g) if joins => hold.second = Some((g, hold.scale)),
                    _ if leaves => hold.second = None,
                    Some(g) => {
                        if let Some((g0, s0)) = hold.second {
                            hold.scale = s0 * g / g0;
                        }
                    }
                    None => {}
                }
            }
        }
        let grip_now = self
            .board_hold
            .as_ref()
            .and_then(|h| frame.controllers[h.hand])
            .map(|c| self.patient_pose(c.grip));
        if let (Some(hold), Some(now)) = (&mut self.board_hold, grip_now) {
            // The grip's motion since it took hold, applied to the board as it was then.
            let turn = (now.orientation * hold.grip_at_grab.orientation.inverse()).normalize();
            let motion = Pose {
                position_mm: now.position_mm - turn * hold.grip_at_grab.position_mm,
                orientation: turn,
            };
            let (change, record) = hold.drag.moved(motion, hold.scale, time_ns);
            if record {
                out.events.push(Event::new(time_ns, Payload::Scene(change)));
            } else {
                out.shown.push(change);
            }
        }
    }

    /// Where the twin is now.
    #[must_use]
    pub fn twin(&self) -> TwinPlacement {
        self.twin
    }

    /// The twin's scale (recorded as `SceneChange::TwinScale`).
    #[must_use]
    pub fn twin_scale(&self) -> f32 {
        self.twin.scale
    }

    /// Processes one frame's input at lesson time `time_ns`.
    pub fn update(&mut self, frame: &XrFrame, time_ns: i64) -> InputOutcome {
        let mut out = InputOutcome::default();
        let ev = |payload| Event::new(time_ns, payload);
        out.events.push(ev(Payload::Head(frame.head)));
        for hand in Handedness::BOTH {
            let i = hand.index();
            out.events.push(ev(Payload::Hand(Box::new(HandSample {
                hand,
                joints: frame.hands[i],
            }))));
            out.events.push(ev(Payload::Controller(ControllerSample {
                hand,
                state: frame.controllers[i],
            })));
        }

        let mut grips_changed = false;
        let grips_before = self.buttons.map(|b| b.grip);
        for hand in Handedness::BOTH {
            let i = hand.index();
            let controller = frame.controllers[i];
            let joints = frame.hands[i];
            let before = self.buttons[i];
            let b = &mut self.buttons[i];
            let value = |v: f32, was: bool| {
                if was {
                    v > RELEASE_VALUE
                } else {
                    v >= PRESS_VALUE
                }
            };
            b.trigger = controller.is_some_and(|c| value(c.trigger, before.trigger));
            b.grip = controller.is_some_and(|c| value(c.squeeze, before.grip));
            b.menu = controller.is_some_and(|c| c.buttons & MENU_BUTTON != 0);
            b.tool = controller.is_some_and(|c| c.buttons & TOOL_BUTTON != 0);
            b.board = controller.is_some_and(|c| c.buttons & BOARD_BUTTON != 0);
            b.pinch = joints.is_some_and(|j| {
                let gap = pinch_gap_mm(&j);
                if before.pinch {
                    gap <= PINCH_END_MM
                } else {
                    gap < PINCH_START_MM
                }
            });
            let now = *b;

            if now.pinch != before.pinch {
                if let Some(j) = joints {
                    out.events.push(ev(Payload::Gesture(Gesture {
                        hand,
                        kind: if now.pinch {
                            GestureKind::Pinch
                        } else {
                            GestureKind::Release
                        },
                        pose: Pose {
                            position_mm: pinch_point_mm(&j),
                            orientation: j.joints[INDEX_TIP].pose.orientation,
                        },
                    })));
                }
            }
            if now.grip != before.grip {
                grips_changed = true;
                if let Some(c) = controller {
                    out.events.push(ev(Payload::Gesture(Gesture {
                        hand,
                        kind: if now.grip {
                            GestureKind::Grab
                        } else {
                            GestureKind::Release
                        },
                        pose: c.grip,
                    })));
                }
            }
            if now.menu && !before.menu {
                match hand {
                    Handedness::Right => out.commands.push(VrCommand::ToggleRecording),
                    Handedness::Left => {
                        self.chapters += 1;
                        out.events.push(ev(Payload::Chapter(Chapter {
                            title: format!("VR chapter {}", self.chapters),
                        })));
                    }
                }
            }

            if now.tool && !before.tool {
                self.next_measure_tool();
            }
            // The board button: with a board in a grip, puts that board away (hidden, as the
            // desktop's Hide does, its last pose recorded first); else the next image brought
            // in is placed.
            if now.board && !before.board {
                match self.board_hold.take() {
                    Some(hold) => {
                        let board_id = hold.drag.board_id;
                        if let Some(last) = hold.drag.release() {
                            out.events.push(ev(Payload::Scene(last)));
                        }
                        out.events
                            .push(ev(Payload::Scene(SceneChange::BoardHide { board_id })));
                    }
                    None => out.commands.push(VrCommand::PlaceBoard),
                }
            }

            // The measure tool: a trigger press places a point where the controller's ray
            // meets a board, or asks the session to pick the anatomy along it. Label
            // statistics always pick the anatomy: a board has no labelled structures, and the
            // pick (the volume's surface) sees through boards.
            let measuring = self.measure_tool.is_some();
            if let (true, true, false, Some(c)) =
                (measuring, now.trigger, before.trigger, controller)
            {
                let ray = self.patient_pose(c.aim);
                let dir = ray.orientation * Vec3::NEG_Z;
                let board = if self.measure_tool == Some(MeasureTool::LabelStats) {
                    None
                } else {
                    self.boards.hit(ray.position_mm.as_dvec3(), dir.as_dvec3())
                };
                match board {
                    Some((id, _, on_board)) => {
                        self.measure_point(Space::Board(id), on_board, |_| None, &mut out, time_ns);
                    }
                    None => out.anatomy_picks.push((ray.position_mm, dir)),
                }
            }
            // Strokes: one at a time, by the hand that started it (the trigger measures
            // instead while a measure tool is chosen; a pinch still draws).
            let drawing = (now.trigger && !measuring) || now.pinch;
            let tip = pen_tip_mm(controller.as_ref(), joints.as_ref(), now.pinch);
            match (self.stroke, drawing, tip) {
                (None, true, Some(tip)) => {
                    let id = self.next_stroke_id;
                    self.next_stroke_id += 1;
                    let p = self.twin.patient_from_stage(tip);
                    // A pen touching a board draws on it, in its millimetres (it then
                    // follows the board when it moves), as the desktop's pen does.
                    let (space, p) = match self.boards.touch(p.as_dvec3(), BOARD_TOUCH_MM, None) {
                        Some((board, on_board)) => (Space::Board(board), on_board),
                        None => (Space::Patient, p),
                    };
                    out.events.push(ev(Payload::StrokeBegin(StrokeBegin {
                        stroke_id: id,
                        space,
                        style: self.style,
                    })));
                    out.events.push(ev(Payload::StrokePoint(StrokePoint {
                        stroke_id: id,
                        position_mm: p,
                        pressure: 1.0,
                    })));
                    self.stroke = Some(ActiveStroke {
                        id,
                        hand,
                        space,
                        last_mm: p,
                    });
                }
                (Some(s), true, Some(tip)) if s.hand == hand => {
                    let p = self.twin.patient_from_stage(tip);
                    // On a board, points where the pen has left it are skipped (lifted).
                    let p = match s.space {
                        Space::Board(board) => self
                            .boards
                            .touch(p.as_dvec3(), BOARD_TOUCH_MM, Some(board))
                            .map(|(_, on_board)| on_board),
                        _ => Some(p),
                    };
                    if let Some(p) = p.filter(|p| p.distance(s.last_mm) >= STROKE_SPACING_MM) {
                        out.events.push(ev(Payload::StrokePoint(StrokePoint {
                            stroke_id: s.id,
                            position_mm: p,
                            pressure: 1.0,
                        })));
                        self.stroke = Some(ActiveStroke { last_mm: p, ..s });
                    }
                }
                (Some(s), false, _) | (Some(s), true, None) if s.hand == hand => {
                    out.events.push(ev(Payload::StrokeEnd { stroke_id: s.id }));
                    self.stroke = None;
                }
                _ => {}
            }
        }

        self.hold_boards(frame, grips_before, &mut out, time_ns);
        // Grabbing: re-anchor whenever the set of gripping hands changes (a hand holding a
        // board holds only the board).
        let on_board = |i: usize| {
            self.board_hold
                .as_ref()
                .is_some_and(|h| h.hand == i || (h.second.is_some() && h.hand == 1 - i))
        };
        let grip_poses: [Option<Pose>; 2] = [0, 1].map(|i| {
            if self.buttons[i].grip && !on_board(i) {
                frame.controllers[i].map(|c| c.grip)
            } else {
                None
            }
        });
        if grips_changed || grip_poses.iter().flatten().count() == 0 {
            self.grab = grip_poses
                .iter()
                .any(Option::is_some)
                .then_some(GrabAnchor {
                    hands: grip_poses,
                    twin: self.twin,
                });
        } else if let Some(anchor) = self.grab {
            let moved = grabbed_twin(&anchor, &grip_poses);
            self.move_twin(moved, &mut out, time_ns);
        }
        // Thumbsticks, while no hand holds the twin (the grab owns it then).
        let step_ns = self
            .last_time_ns
            .map_or(0, |t| (time_ns - t).clamp(0, STICK_MAX_STEP_NS));
        self.last_time_ns = Some(time_ns);
        if self.grab.is_none() && step_ns > 0 {
            let moved = stick_twin(
                &self.twin,
                frame,
                self.pivot_patient_mm,
                step_ns as f32 * 1e-9,
            );
            self.move_twin(moved, &mut out, time_ns);
        }
        out
    }

    /// Puts the twin at `to`, recording what changed.
    fn move_twin(&mut self, to: TwinPlacement, out: &mut InputOutcome, time_ns: i64) {
        for change in self.twin.changes_to(&to) {
            out.events.push(Event::new(time_ns, Payload::Scene(change)));
        }
        self.twin = to;
    }
}

/// A stick's deflection with the dead zone taken out (0 inside it, rising to ±1 at the rim).
fn stick_axis(v: f32) -> f32 {
    if !v.is_finite() || v.abs() < STICK_DEAD_ZONE {
        return 0.0;
    }
    v.signum() * ((v.abs() - STICK_DEAD_ZONE) / (1.0 - STICK_DEAD_ZONE)).min(1.0)
}

/// The twin after `dt_s` seconds of the sticks: the left slides it over the floor (its y
/// forward along the head's gaze, its x to the right), the right turns it about the vertical
/// through `pivot_patient_mm` (x) and scales it about that point (y).
fn stick_twin(
    twin: &TwinPlacement,
    frame: &XrFrame,
    pivot_patient_mm: Vec3,
    dt_s: f32,
) -> TwinPlacement {
    let stick = |i: usize| {
        frame.controllers[i].map_or(glam::Vec2::ZERO, |c| {
            glam::Vec2::new(stick_axis(c.thumbstick.x), stick_axis(c.thumbstick.y))
        })
    };
    let (left, right) = (stick(0), stick(1));
    if left == glam::Vec2::ZERO && right == glam::Vec2::ZERO {
        return *twin;
    }
    let flat = |v: Vec3| Vec3::new(v.x, 0.0, v.z).normalize_or_zero();
    let forward = flat(frame.head.orientation * Vec3::NEG_Z);
    let rightward = flat(frame.head.orientation * Vec3::X);
    let slide = (forward * left.y + rightward * left.x) * STICK_MOVE_MM_PER_S * dt_s;
    let turn = Quat::from_rotation_y(-right.x * STICK_TURN_DEG_PER_S.to_radians() * dt_s);
    let scale =
        (twin.scale * STICK_SCALE_PER_S.powf(right.y * dt_s)).clamp(SCALE_RANGE.0, SCALE_RANGE.1);
    // Turn and scale about the pivot: it stays where it is in the room.
    let pivot_stage = twin.stage_from_patient(pivot_patient_mm);
    let orientation = (turn * twin.stage_from_patient.orientation).normalize();
    let position = pivot_stage - orientation * (pivot_patient_mm * scale) + slide;
    TwinPlacement {
        stage_from_patient: Pose {
            position_mm: position,
            orientation,
        },
        scale,
    }
}

/// Distance between the thumb and index finger tips.
#[must_use]
pub fn pinch_gap_mm(joints: &HandJoints) -> f32 {
    joints.joints[THUMB_TIP]
        .pose
        .position_mm
        .distance(joints.joints[INDEX_TIP].pose.position_mm)
}

fn pinch_point_mm(joints: &HandJoints) -> Vec3 {
    (joints.joints[THUMB_TIP].pose.position_mm + joints.joints[INDEX_TIP].pose.position_mm) * 0.5
}

/// The pen tip: the pinch point while pinching, else the controller's aim position.
fn pen_tip_mm(
    controller: Option<&ControllerState>,
    joints: Option<&HandJoints>,
    pinching: bool,
) -> Option<Vec3> {
    match (pinching, joints, controller) {
        (true, Some(j), _) => Some(pinch_point_mm(j)),
        (_, _, Some(c)) => Some(c.aim.position_mm),
        _ => None,
    }
}

/// The twin's placement for the hands' current grip poses, given where they and the twin were
/// when the grab started.
fn grabbed_twin(anchor: &GrabAnchor, now: &[Option<Pose>; 2]) -> TwinPlacement {
    let t0 = anchor.twin;
    match (anchor.hands, *now) {
        ([Some(l0), Some(r0)], [Some(l1), Some(r1)]) => {
            let (c0, c1) = (
                (l0.position_mm + r0.position_mm) * 0.5,
                (l1.position_mm + r1.position_mm) * 0.5,
            );
            let (v0, v1) = (
                r0.position_mm - l0.position_mm,
                r1.position_mm - l1.position_mm,
            );
            let flat = |v: Vec3| Vec3::new(v.x, 0.0, v.z).normalize_or_zero();
            let turn = if flat(v0) == Vec3::ZERO || flat(v1) == Vec3::ZERO {
                Quat::IDENTITY
            } else {
                Quat::from_rotation_arc(flat(v0), flat(v1))
            };
            let ratio = if v0.length() > 1.0 {
                v1.length() / v0.length()
            } else {
                1.0
            };
            let scale = (t0.scale * ratio).clamp(SCALE_RANGE.0, SCALE_RANGE.1);
            let ratio = scale / t0.scale;
            TwinPlacement {
                stage_from_patient: Pose {
                    position_mm: c1 + turn * ((t0.stage_from_patient.position_mm - c0) * ratio),
                    orientation: (turn * t0.stage_from_patient.orientation).normalize(),
                },
                scale,
            }
        }
        ([Some(h0), None], [Some(h1), None]) | ([None, Some(h0)], [None, Some(h1)]) => {
            let turn = (h1.orientation * h0.orientation.inverse()).normalize();
            TwinPlacement {
                stage_from_patient: Pose {
                    position_mm: h1.position_mm
                        + turn * (t0.stage_from_patient.position_mm - h0.position_mm),
                    orientation: (turn * t0.stage_from_patient.orientation).normalize(),
                },
                scale: t0.scale,
            }
        }
        _ => t0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{script, SimulatedXr, XrSource};

    fn run_script(hand_tracking: bool) -> (Interaction, Vec<Event>, Vec<VrCommand>) {
        let target = Vec3::new(0.0, 1000.0, -500.0);
        let mut xr = SimulatedXr::new(target, [8, 8], 500);
        xr.hand_tracking = hand_tracking;
        let twin = TwinPlacement::rigid(Pose {
            position_mm: target,
            orientation: Quat::IDENTITY,
        });
        let mut interaction = Interaction::new(twin, 1);
        let (mut events, mut commands) = (Vec::new(), Vec::new());
        while let Some(frame) = xr.next_frame().expect("simulated") {
            let out = interaction.update(&frame, frame.predicted_display_time_ns);
            events.extend(out.events);
            commands.extend(out.commands);
        }
        (interaction, events, commands)
    }

    fn count(events: &[Event], f: impl Fn(&Payload) -> bool) -> usize {
        events.iter().filter(|e| f(&e.payload)).count()
    }

    #[test]
    fn trigger_draws_one_stroke_along_the_pen_path_in_patient_space() {
        let (_, events, _) = run_script(false);
        let begins: Vec<&StrokeBegin> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::StrokeBegin(b) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(begins.len(), 1, "controllers only: one trigger stroke");
        assert_eq!(begins[0].space, Space::Patient);
        let points: Vec<(i64, Vec3)> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::StrokePoint(p) if p.stroke_id == begins[0].stroke_id => {
                    Some((e.time_ns, p.position_mm))
                }
                _ => None,
            })
            .collect();
        // The twin sits at the target unrotated, so patient = stage − target: the pen swept
        // x from −60 to +60 mm at z = 120 mm.
        assert!(points.len() > 20, "{} points", points.len());
        let first = points[0].1;
        let last = points[points.len() - 1].1;
        assert!(
            (first.x + 60.0).abs() < 3.0 && (last.x - 60.0).abs() < 3.0,
            "{first} {last}"
        );
        assert!(points.iter().all(|(_, p)| (p.z - 120.0).abs() < 1e-3));
        for pair in points.windows(2) {
            assert!(pair[0].1.distance(pair[1].1) >= STROKE_SPACING_MM - 1e-4);
        }
        let t0 = (script::TRIGGER_S.0 * 1e9) as i64;
        let t1 = (script::TRIGGER_S.1 * 1e9) as i64;
        assert!(points.iter().all(|(t, _)| (t0..=t1).contains(t)));
        assert_eq!(
            count(&events, |p| matches!(p, Payload::StrokeEnd { .. })),
            1
        );
    }

    #[test]
    fn one_grip_moves_and_turns_the_twin_and_two_grips_scale_it() {
        let (interaction, events, _) = run_script(false);
        let poses: Vec<(i64, Pose)> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Scene(SceneChange::TwinPose { stage_from_patient }) => {
                    Some((e.time_ns, *stage_from_patient))
                }
                _ => None,
            })
            .collect();
        assert!(!poses.is_empty());
        // At the end of the one-hand grab: moved along +x by the hand's travel, and turned 20°
        // about +y (the twin turns about the hand, so its centre also swings).
        let end_one = (script::GRIP_S.1 * 1e9) as i64;
        let after_one = poses
            .iter()
            .rev()
            .find(|(t, _)| *t < end_one)
            .expect("moved during the grab")
            .1;
        let (axis, angle) = after_one.orientation.to_axis_angle();
        assert!(
            (angle.to_degrees() - script::GRIP_TURN_DEG).abs() < 0.5,
            "{angle}"
        );
        assert!(axis.y > 0.999);
        let target = Vec3::new(0.0, 1000.0, -500.0);
        let hand0 = target + Vec3::new(150.0, 100.0, 250.0);
        let expected = hand0
            + Vec3::new(script::GRIP_MOVE_MM, 0.0, 0.0)
            + Quat::from_rotation_y(script::GRIP_TURN_DEG.to_radians()) * (target - hand0);
        assert!(after_one.position_mm.distance(expected) < 2.0);
        // Two hands from 300 to 450 mm apart: 1.5 times life size, no extra turn.
        assert!(
            (interaction.twin_scale() - 1.5).abs() < 0.02,
            "{}",
            interaction.twin_scale()
        );
        let last = poses.last().expect("poses").1;
        assert!(last.orientation.angle_between(after_one.orientation) < 1e-3);
        // Grab and release gestures were recorded for both phases.
        assert_eq!(
            count(
                &events,
                |p| matches!(p, Payload::Gesture(g) if g.kind == GestureKind::Grab)
            ),
            3
        );
    }

    #[test]
    fn pinch_draws_with_hysteresis_and_menus_toggle_recording_and_chapters() {
        let (_, events, commands) = run_script(true);
        assert_eq!(commands, vec![VrCommand::ToggleRecording]);
        assert_eq!(
            count(
                &events,
                |p| matches!(p, Payload::Chapter(c) if c.title == "VR chapter 1")
            ),
            1
        );
        // Trigger stroke plus pinch stroke.
        assert_eq!(count(&events, |p| matches!(p, Payload::StrokeBegin(_))), 2);
        assert_eq!(
            count(
                &events,
                |p| matches!(p, Payload::Gesture(g) if g.kind == GestureKind::Pinch)
            ),
            1
        );
        // Head, two hands and two controllers every frame.
        assert_eq!(count(&events, |p| matches!(p, Payload::Head(_))), 500);
        assert_eq!(count(&events, |p| matches!(p, Payload::Hand(_))), 1000);
    }

    #[test]
    fn pinch_hysteresis_ignores_a_gap_between_the_thresholds() {
        let hand = |gap| crate::source::hand_at(Pose::IDENTITY, Handedness::Right, gap);
        let mut frame = SimulatedXr::new(Vec3::ZERO, [8, 8], 1).frame_at(0.0);
        frame.controllers = [None, None];
        let mut i = Interaction::new(TwinPlacement::rigid(Pose::IDENTITY), 1);
        let mut begins = 0;
        let mut ends = 0;
        for gap in [60.0, 25.0, 15.0, 25.0, 28.0, 25.0, 35.0, 25.0] {
            frame.hands = [None, Some(hand(gap))];
            for e in i.update(&frame, 0).events {
                match e.payload {
                    Payload::StrokeBegin(_) => begins += 1,
                    Payload::StrokeEnd { .. } => ends += 1,
                    _ => {}
                }
            }
        }
        // 25 mm neither starts (needs < 20) nor ends (needs > 30) a pinch.
        assert_eq!((begins, ends), (1, 1));
        assert!((pinch_gap_mm(&hand(15.0)) - 15.0).abs() < 1e-3);
    }

    #[test]
    fn thumbsticks_turn_slide_and_scale_the_twin_about_its_centre_and_record_it() {
        let target = Vec3::new(0.0, 1000.0, -500.0);
        let mut xr = SimulatedXr::new(target, [8, 8], 900);
        xr.hand_tracking = false;
        let mut interaction = Interaction::new(
            TwinPlacement::rigid(Pose {
                position_mm: target - Vec3::new(0.0, 0.0, 80.0),
                orientation: Quat::IDENTITY,
            }),
            1,
        );
        // The volume's centre, 80 mm from the patient origin.
        interaction.pivot_patient_mm = Vec3::new(0.0, 0.0, 80.0);
        let mut at = |end_s: f64, xr: &mut SimulatedXr| {
            let mut events = Vec::new();
            while let Some(frame) = xr.next_frame().expect("simulated") {
                events.extend(
                    interaction
                        .update(&frame, frame.predicted_display_time_ns)
                        .events,
                );
                if frame.predicted_display_time_ns as f64 * 1e-9 >= end_s {
                    break;
                }
            }
            (interaction.twin(), events)
        };
        let (before, _) = at(script::STICK_TURN_S.0 - 0.05, &mut xr);
        let pivot = |t: &TwinPlacement| t.stage_from_patient(Vec3::new(0.0, 0.0, 80.0));
        // Right stick x for a second: a quarter turn clockwise seen from above, about the
        // volume's centre (which stays put).
        let (turned, events) = at(script::STICK_TURN_S.1 + 0.05, &mut xr);
        let turn =
            turned.stage_from_patient.orientation * before.stage_from_patient.orientation.inverse();
        let (axis, angle) = turn.to_axis_angle();
        assert!(
            (angle.to_degrees() - STICK_TURN_DEG_PER_S).abs() < 1.5 && axis.y < -0.999,
            "{axis} {}",
            angle.to_degrees()
        );
        assert!(pivot(&turned).distance(pivot(&before)) < 0.01);
        assert!(events
            .iter()
            .any(|e| matches!(e.payload, Payload::Scene(SceneChange::TwinPose { .. }))));
        // Left stick forward for a second: 500 mm away over the floor, nothing else.
        let (slid, _) = at(script::STICK_MOVE_S.1 + 0.05, &mut xr);
        let moved = pivot(&slid) - pivot(&turned);
        assert!(moved.y.abs() < 1e-3, "{moved}");
        assert!(
            (moved.length() - STICK_MOVE_MM_PER_S).abs() < 15.0 && moved.z < -450.0,
            "{moved}"
        );
        assert_eq!(slid.scale, turned.scale);
        // Right stick up for a second: twice the size (from the 1.5 the two grips left), the
        // centre where it was, and the scale recorded.
        let (scaled, events) = at(script::STICK_SCALE_S.1 + 0.05, &mut xr);
        let factor = scaled.scale / slid.scale;
        assert!((factor - STICK_SCALE_PER_S).abs() < 0.03, "{factor}");
        assert!(pivot(&scaled).distance(pivot(&slid)) < 0.01);
        let last_scale = events.iter().rev().find_map(|e| match e.payload {
            Payload::Scene(SceneChange::TwinScale { scale }) => Some(scale),
            _ => None,
        });
        assert_eq!(last_scale, Some(scaled.scale));
        // A stick resting inside its dead zone does nothing.
        assert_eq!(stick_axis(STICK_DEAD_ZONE * 0.9), 0.0);
        assert_eq!(stick_axis(1.0), 1.0);
    }

    #[test]
    fn two_grip_scaling_is_recorded_as_the_twin_scale() {
        let (interaction, events, _) = run_script(false);
        let last_scale = events.iter().rev().find_map(|e| match e.payload {
            Payload::Scene(SceneChange::TwinScale { scale }) => Some(scale),
            _ => None,
        });
        assert_eq!(last_scale, Some(interaction.twin_scale()));
        assert!((interaction.twin_scale() - 1.5).abs() < 0.02);
    }

    /// The side of the square board of [`one_board`], mm.
    const BOARD_MM: f32 = 200.0;

    /// A scene with one 200 mm board facing the viewer (+z) at patient (150, 100, 0): with the
    /// twin at the simulated headset's target unrotated (patient = stage − target), behind the
    /// right controller's rest (150, 100, 250), whose ray points along −z.
    fn one_board() -> SceneState {
        let mut scene = SceneState::default();
        scene.boards.insert(
            1,
            BoardState {
                image: twinray_lessons::event::ImageHash([7; 32]),
                title: "X-ray 1".into(),
                pose: Pose {
                    position_mm: Vec3::new(150.0, 100.0, 0.0),
                    orientation: Quat::IDENTITY,
                },
                width_mm: BOARD_MM,
            },
        );
        scene
    }

    /// The board tests' setting: a simulated headset looking at `target` (stage mm), and the
    /// twin placed unrotated at `target`, so patient mm = stage mm − `target`.
    fn at_the_board_scene() -> (Vec3, SimulatedXr, Interaction) {
        let target = Vec3::new(0.0, 1000.0, -500.0);
        let xr = SimulatedXr::new(target, [8, 8], 500);
        let twin = TwinPlacement::rigid(Pose {
            position_mm: target,
            orientation: Quat::IDENTITY,
        });
        (target, xr, Interaction::new(twin, 1))
    }

    /// Where `scene`'s boards stand, as the session gives them to the interaction.
    fn board_frames(scene: &SceneState) -> BoardFrames {
        use std::sync::Arc;
        use twinray_lessons::event::PixelSpacing;
        use twinray_scene::boards::{BoardFrame, DecodedImage};
        let size = glam::Vec2::splat(BOARD_MM);
        let picture = Arc::new(DecodedImage {
            width: 1,
            height: 1,
            rgba: Arc::new(vec![255; 4]),
            natural_size_mm: size,
            spacing: PixelSpacing::Unknown,
        });
        BoardFrames {
            boards: scene
                .boards
                .iter()
                .map(|(&id, b)| {
                    let frame = BoardFrame {
                        patient_from_board: b.patient_from_board(size).as_dmat4(),
                        half_size_mm: (size * 0.5).as_dvec2(),
                        image: b.image,
                        spacing: PixelSpacing::Unknown,
                        picture: picture.clone(),
                    };
                    (id, frame)
                })
                .collect(),
        }
    }

    /// With the distance tool, two trigger presses with the ray on a board place a distance
    /// in the board's millimetres (as the desktop's clicks on a board do), a press beside it
    /// asks the session for an anatomy pick along the ray, and the trigger draws nothing.
    #[test]
    fn a_pen_touching_a_board_draws_on_it_in_its_millimetres_and_one_in_the_air_on_the_anatomy() {
        let (target, xr, mut interaction) = at_the_board_scene();
        let scene = one_board();
        interaction.set_boards(&board_frames(&scene), &scene);
        let mut t = 0.2;
        // A stroke of the right controller through `tips` (patient mm; the twin is at
        // `target`, unrotated): trigger down on the first, up after the last.
        let mut stroke = |interaction: &mut Interaction, tips: &[Vec3]| {
            let mut events = Vec::new();
            let last = tips.len() - 1;
            for (k, tip) in tips.iter().chain([&tips[last]]).enumerate() {
                let mut frame = xr.frame_at(t);
                let c = frame.controllers[1].as_mut().expect("right");
                c.aim.position_mm = target + *tip;
                c.trigger = if k <= last { 1.0 } else { 0.0 };
                t += 0.01;
                events.extend(
                    interaction
                        .update(&frame, frame.predicted_display_time_ns)
                        .events,
                );
            }
            events
                .into_iter()
                .filter_map(|e| match e.payload {
                    Payload::StrokeBegin(b) => Some(format!("begin {:?}", b.space)),
                    Payload::StrokePoint(p) => Some(format!("{:.0?}", p.position_mm)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // Touching the board (centre (150, 100, 0), facing +z): 10 mm in front, then 8 mm
        // behind, then off its edge (skipped), then back on it.
        let on_board = stroke(
            &mut interaction,
            &[
                Vec3::new(110.0, 130.0, 10.0),
                Vec3::new(170.0, 50.0, -8.0),
                Vec3::new(150.0 + BOARD_MM, 100.0, 0.0),
                Vec3::new(150.0, 100.0, 5.0),
            ],
        );
        assert_eq!(
            on_board,
            vec![
                "begin Board(1)",
                "Vec3(-40, 30, 0)",
                "Vec3(20, -50, 0)",
                "Vec3(0, 0, 0)"
            ]
        );
        // 100 mm in front of it: in the air, on the anatomy's frame.
        let in_air = stroke(&mut interaction, &[Vec3::new(150.0, 100.0, 100.0)]);
        assert_eq!(in_air, vec!["begin Patient", "Vec3(150, 100, 100)"]);
    }

    #[test]
    fn the_tool_button_steps_through_the_measure_tools_and_the_trigger_follows_it() {
        let (target, xr, mut interaction) = at_the_board_scene();
        let scene = one_board();
        interaction.set_boards(&board_frames(&scene), &scene);
        let mut t = 0.2;
        // One frame of the right controller aimed at the board's centre with the given
        // trigger value and tool button.
        let mut step = |interaction: &mut Interaction, trigger: f32, tool: bool| {
            let mut frame = xr.frame_at(t);
            let c = frame.controllers[1].as_mut().expect("right");
            c.aim.position_mm = target + Vec3::new(150.0, 100.0, 250.0);
            c.aim.orientation = Quat::IDENTITY;
            c.trigger = trigger;
            c.buttons = if tool { TOOL_BUTTON } else { 0 };
            t += 0.01;
            interaction.update(&frame, frame.predicted_display_time_ns)
        };
        let mut seen = vec![interaction.measure_tool];
        for _ in 0..6 {
            // Held for three frames: one press, one step.
            for held in [true, true, true, false] {
                step(&mut interaction, 0.0, held);
            }
            seen.push(interaction.measure_tool);
        }
        assert_eq!(
            seen,
            vec![
                None,
                Some(MeasureTool::Distance),
                Some(MeasureTool::Angle),
                Some(MeasureTool::Cobb),
                Some(MeasureTool::Trajectory),
                Some(MeasureTool::LabelStats),
                None
            ]
        );
        // With a tool chosen the trigger places a point instead of drawing; a step of the tool
        // drops it; with none the trigger draws again.
        for _ in 0..2 {
            step(&mut interaction, 0.0, true);
            step(&mut interaction, 0.0, false);
        }
        assert_eq!(interaction.measure_tool, Some(MeasureTool::Angle));
        let mut events = Vec::new();
        for trigger in [1.0, 1.0, 0.0] {
            events.extend(step(&mut interaction, trigger, false).events);
        }
        assert_eq!(interaction.measure_points().len(), 1);
        assert_eq!(count(&events, |p| matches!(p, Payload::StrokeBegin(_))), 0);
        for _ in 0..4 {
            step(&mut interaction, 0.0, true);
            step(&mut interaction, 0.0, false);
        }
        assert_eq!(interaction.measure_tool, None);
        assert!(interaction.measure_points().is_empty());
        let mut events = Vec::new();
        for trigger in [1.0, 1.0, 0.0] {
            events.extend(step(&mut interaction, trigger, false).events);
        }
        assert_eq!(count(&events, |p| matches!(p, Payload::StrokeBegin(_))), 1);
    }

    #[test]
    fn trigger_presses_of_the_measure_tool_on_a_board_record_a_distance_in_its_millimetres() {
        let (target, xr, mut interaction) = at_the_board_scene();
        interaction.measure_tool = Some(MeasureTool::Distance);
        let scene = one_board();
        interaction.set_boards(&board_frames(&scene), &scene);
        // The right controller at rest, then moved to aim at board points (stage mm).
        let aims = [
            Vec3::new(150.0 - 40.0, 100.0 + 30.0, 250.0),
            Vec3::new(150.0 + 20.0, 100.0 - 50.0, 250.0),
            Vec3::new(600.0, 100.0, 250.0),
        ];
        let mut events = Vec::new();
        let mut picks = Vec::new();
        let mut t = 0.2;
        for (k, aim) in aims.iter().enumerate() {
            for trigger in [0.0, 1.0, 1.0, 0.0] {
                let mut frame = xr.frame_at(t);
                let c = frame.controllers[1].as_mut().expect("right");
                c.aim.position_mm = target + *aim;
                c.aim.orientation = Quat::IDENTITY;
                c.trigger = trigger;
                let out = interaction.update(&frame, frame.predicted_display_time_ns);
                events.extend(out.events);
                picks.extend(out.anatomy_picks);
                t += 0.01;
            }
            assert_eq!(interaction.measure_points().len(), [1, 0, 0][k]);
        }
        assert_eq!(
            count(&events, |p| matches!(p, Payload::StrokeBegin(_))),
            0,
            "measuring, not drawing"
        );
        let shown: Vec<&SceneChange> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Scene(c @ SceneChange::MeasurementShow { .. }) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(
            shown,
            vec![&SceneChange::MeasurementShow {
                id: 1,
                measurement: twinray_lessons::event::Measurement::Distance {
                    space: Space::Board(1),
                    a_mm: Vec3::new(-40.0, 30.0, 0.0),
                    b_mm: Vec3::new(20.0, -50.0, 0.0),
                },
            }]
        );
        // Beside the board: one ray for the anatomy pick, from the aim along −z.
        assert_eq!(picks, vec![(Vec3::new(600.0, 100.0, 250.0), Vec3::NEG_Z)]);
    }

    /// The right controller's scripted grip (1.8–2.8 s: 100 mm to the right, turning 20°
    /// about the vertical) starts with its ray on a board: the board moves rigidly with the
    /// controller, recorded about ten times a second and at release, and the twin stays.
    #[test]
    fn a_grip_with_the_ray_on_a_board_moves_the_board_rigidly_not_the_twin() {
        let (target, xr, mut interaction) = at_the_board_scene();
        let mut scene = one_board();
        let size = glam::Vec2::splat(BOARD_MM);
        let frames_of = board_frames;
        // A point 50 mm right of the board's centre, where a stroke on the board would be.
        let on_board = Vec3::new(50.0, 0.0, 0.0);
        let patient_of = |scene: &SceneState| {
            scene.boards[&1]
                .patient_from_board(size)
                .transform_point3(on_board)
        };
        let point_before = patient_of(&scene);
        let (mut recorded, mut twin_moves, mut grabbed, mut last_held) =
            (Vec::new(), 0, None, None);
        let mut t = 1.7;
        while t < 3.0 {
            let frame = xr.frame_at(t);
            interaction.set_boards(&frames_of(&scene), &scene);
            let out = interaction.update(&frame, frame.predicted_display_time_ns);
            for e in &out.events {
                match &e.payload {
                    Payload::Scene(change @ SceneChange::BoardPose { pose, .. }) => {
                        scene.apply(change);
                        recorded.push((e.time_ns, *pose));
                    }
                    Payload::Scene(SceneChange::TwinPose { .. }) => twin_moves += 1,
                    _ => {}
                }
            }
            for change in &out.shown {
                scene.apply(change);
            }
            if interaction.held_board() == Some(1) {
                let grip = frame.controllers[1].expect("right controller").grip;
                grabbed.get_or_insert(grip);
                last_held = Some(grip);
            }
            t += 1.0 / 90.0;
        }
        assert_eq!(twin_moves, 0, "the grip held the board, not the twin");
        assert!(interaction.held_board().is_none(), "let go at 2.8 s");
        let (g0, g1) = (grabbed.expect("held"), last_held.expect("held"));
        // Rigidly with the controller: patient = stage − target here.
        let turn = g1.orientation * g0.orientation.inverse();
        let carried = |p: Vec3| (g1.position_mm - target) + turn * (p - (g0.position_mm - target));
        let board = scene.boards[&1].pose;
        assert!(
            (board.position_mm - carried(Vec3::new(150.0, 100.0, 0.0))).length() < 1e-2,
            "{board:?}"
        );
        assert!(board.orientation.angle_between(turn) < 1e-4);
        assert!((patient_of(&scene) - carried(point_before)).length() < 1e-2);
        // About ten a second over the second held, the last one the final pose.
        assert!(
            (9..=13).contains(&recorded.len()),
            "{} poses",
            recorded.len()
        );
        assert_eq!(recorded.last().map(|r| r.1), Some(board));
    }

    #[test]
    fn a_second_grip_on_a_held_board_scales_it_by_the_hands_distance_not_the_twin() {
        let (target, xr, mut interaction) = at_the_board_scene();
        let mut scene = one_board();
        // Both controllers aim at the board (centre (150, 100, 0), facing +z) from 250 mm
        // in front; `left` is the left grip's x, its squeeze `left_grip`.
        let controller = |x: f32, squeeze: f32| ControllerState {
            grip: Pose {
                position_mm: target + Vec3::new(x, 100.0, 250.0),
                orientation: Quat::IDENTITY,
            },
            aim: Pose {
                position_mm: target + Vec3::new(150.0, 100.0, 250.0),
                orientation: Quat::IDENTITY,
            },
            buttons: 0,
            trigger: 0.0,
            squeeze,
            thumbstick: glam::Vec2::ZERO,
        };
        let mut twin_moves = 0;
        let mut t = 0.2;
        let steps: [(f32, f32); 6] = [
            (100.0, 0.0), // right grip takes the board, the left hand is open
            (100.0, 1.0), // the left grip joins 100 mm from the right one
            (50.0, 1.0),  // 150 mm: 1.5 times as wide
            (25.0, 1.0),  // 175 mm: 1.75 times
            (25.0, 0.0),  // the left hand lets go: the size stays
            (100.0, 0.0),
        ];
        let mut widths = Vec::new();
        for (left_x, left_grip) in steps {
            let mut frame = xr.frame_at(t);
            frame.hands = [None, None];
            frame.controllers = [
                Some(controller(left_x, left_grip)),
                Some(controller(200.0, 1.0)),
            ];
            interaction.set_boards(&board_frames(&scene), &scene);
            let out = interaction.update(&frame, frame.predicted_display_time_ns);
            for e in &out.events {
                match &e.payload {
                    Payload::Scene(change @ SceneChange::BoardPose { .. }) => scene.apply(change),
                    Payload::Scene(
                        SceneChange::TwinPose { .. } | SceneChange::TwinScale { .. },
                    ) => {
                        twin_moves += 1;
                    }
                    _ => {}
                }
            }
            for change in &out.shown {
                scene.apply(change);
            }
            widths.push(scene.boards[&1].width_mm / BOARD_MM);
            t += 0.2;
        }
        assert_eq!(twin_moves, 0, "the grips held the board, not the twin");
        let want = [1.0, 1.0, 1.5, 1.75, 1.75, 1.75];
        for (w, x) in widths.iter().zip(want) {
            assert!((w - x).abs() < 1e-3, "{widths:?}");
        }
    }

    /// Label statistics in the headset: a trigger press with the ray on a board still asks for
    /// the anatomy along it (a board has no labelled structures), and the structure the
    /// session finds at the picked point is recorded as the desktop records it: its label id.
    #[test]
    fn the_label_statistics_tool_picks_the_anatomy_through_a_board_and_records_the_label() {
        let (target, xr, mut interaction) = at_the_board_scene();
        let scene = one_board();
        interaction.set_boards(&board_frames(&scene), &scene);
        interaction.measure_tool = Some(MeasureTool::LabelStats);
        let mut picks = Vec::new();
        let mut t = 0.2;
        for trigger in [0.0, 1.0, 1.0, 0.0] {
            let mut frame = xr.frame_at(t);
            let c = frame.controllers[1].as_mut().expect("right");
            // At the board's centre, as in the distance test that measured on the board.
            c.aim.position_mm = target + Vec3::new(150.0, 100.0, 250.0);
            c.aim.orientation = Quat::IDENTITY;
            c.trigger = trigger;
            let out = interaction.update(&frame, frame.predicted_display_time_ns);
            assert_eq!(count(&out.events, |p| matches!(p, Payload::Scene(_))), 0);
            picks.extend(out.anatomy_picks);
            t += 0.01;
        }
        assert_eq!(picks, vec![(Vec3::new(150.0, 100.0, 250.0), Vec3::NEG_Z)]);
        // The session's pick: a point on the anatomy, where its labels hold structure 31.
        let mut out = InputOutcome::default();
        let picked = Vec3::new(150.0, 100.0, -20.0);
        interaction.measure_point(
            Space::Patient,
            picked,
            |p| (p == picked).then_some(31),
            &mut out,
            5,
        );
        let shown: Vec<&SceneChange> = out
            .events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Scene(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(
            shown,
            vec![&SceneChange::MeasurementShow {
                id: 1,
                measurement: twinray_lessons::event::Measurement::LabelStats { label_id: 31 },
            }]
        );
        assert_eq!(interaction.measure_miss(), None);
        // No structure there: nothing is recorded, the tool waits for the next press, and
        // the controller's hint says why until then.
        let mut out = InputOutcome::default();
        interaction.measure_point(Space::Patient, picked, |_| None, &mut out, 6);
        assert!(out.events.is_empty());
        assert!(interaction.measure_points().is_empty());
        assert_eq!(interaction.measure_miss(), Some(MeasureMiss::NoLabel));
        interaction.measure_point(Space::Patient, picked, |_| Some(31), &mut out, 7);
        assert_eq!(out.events.len(), 1);
        assert_eq!(interaction.measure_miss(), None);
        interaction.missed_the_anatomy();
        assert_eq!(interaction.measure_miss(), Some(MeasureMiss::NoAnatomy));
        interaction.next_measure_tool();
        assert_eq!(interaction.measure_miss(), None, "a new tool starts afresh");
    }

    /// The board button (Y, on the left controller) asks the session for the next board once
    /// per press, and does nothing else: no stroke, no measure tool, no twin move.
    #[test]
    fn each_press_of_the_board_button_asks_once_for_a_board() {
        let (_, xr, mut interaction) = at_the_board_scene();
        let mut commands = Vec::new();
        let mut t = 0.2;
        for held in [false, true, true, true, false, true, false] {
            let mut frame = xr.frame_at(t);
            let c = frame.controllers[0].as_mut().expect("left");
            c.buttons = if held { BOARD_BUTTON } else { 0 };
            let out = interaction.update(&frame, frame.predicted_display_time_ns);
            assert_eq!(count(&out.events, |p| matches!(p, Payload::Scene(_))), 0);
            commands.extend(out.commands);
            t += 0.01;
        }
        assert_eq!(commands, vec![VrCommand::PlaceBoard, VrCommand::PlaceBoard]);
        assert_eq!(interaction.measure_tool, None);
    }

    /// The board button with a board in the other hand's grip puts that board away: its last
    /// pose, then a `BoardHide`, recorded; the grip then holds nothing and no board is asked for.
    #[test]
    fn the_board_button_hides_the_board_a_grip_holds() {
        let (_, xr, mut interaction) = at_the_board_scene();
        let mut scene = one_board();
        let (mut hidden, mut commands, mut t) = (Vec::new(), Vec::new(), 1.7);
        let mut pressed_while_held = false;
        while t < 2.6 {
            let mut frame = xr.frame_at(t);
            // Y pressed once, a few frames after the scripted grip has taken the board.
            let press = interaction.held_board() == Some(1) && !pressed_while_held && t > 2.0;
            pressed_while_held |= press;
            frame.controllers[0].as_mut().expect("left").buttons =
                if press { BOARD_BUTTON } else { 0 };
            interaction.set_boards(&board_frames(&scene), &scene);
            let out = interaction.update(&frame, frame.predicted_display_time_ns);
            for e in &out.events {
                if let Payload::Scene(change) = &e.payload {
                    scene.apply(change);
                    if let SceneChange::BoardHide { board_id } = change {
                        hidden.push(*board_id);
                    }
                }
            }
            commands.extend(out.commands);
            t += 1.0 / 90.0;
        }
        assert!(pressed_while_held, "the grip took the board");
        assert_eq!(hidden, vec![1]);
        assert!(commands.is_empty(), "{commands:?}");
        assert!(interaction.held_board().is_none());
        assert!(
            !scene.boards.contains_key(&1),
            "the scene no longer shows it"
        );
    }

    /// A board placed with the board button stands half a metre along the gaze, facing the
    /// eyes and upright, in patient space on a twin that is turned and scaled (so it moves with
    /// the twin, like every board).
    #[test]
    fn a_board_is_placed_along_the_gaze_facing_the_head_and_upright() {
        let head = Pose {
            position_mm: Vec3::new(100.0, 1600.0, 300.0),
            // Looking 30° down and turned 40° to the left.
            orientation: Quat::from_rotation_y(40f32.to_radians())
                * Quat::from_rotation_x(-30f32.to_radians()),
        };
        let twin = TwinPlacement {
            stage_from_patient: Pose {
                position_mm: Vec3::new(0.0, 1000.0, -500.0),
                orientation: Quat::from_rotation_y(1.0) * Quat::from_rotation_x(-1.2),
            },
            scale: 1.5,
        };
        let pose = board_pose_facing(head, &twin);
        let centre = twin.stage_from_patient(pose.position_mm);
        let gaze = head.orientation * Vec3::NEG_Z;
        let to_board = centre - head.position_mm;
        assert!((to_board.length() - BOARD_PLACE_DISTANCE_MM).abs() < 0.5);
        assert!(to_board.normalize().dot(gaze) > 0.9999);
        let in_stage = twin.stage_from_patient.orientation * pose.orientation;
        let normal = in_stage * Vec3::Z;
        assert!(normal.dot(-gaze) > 0.9999, "faces the head: {normal}");
        // Its rows run to the viewer's right, its up is the room's up tilted back 30°.
        let right = in_stage * Vec3::X;
        assert!(right.dot(head.orientation * Vec3::X) > 0.9999, "{right}");
        assert!(right.y.abs() < 1e-4);
        let up = in_stage * Vec3::Y;
        assert!((up.y - 30f32.to_radians().cos()).abs() < 1e-4, "{up}");
    }
}
