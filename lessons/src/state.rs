//! Scene state, keyframes and the state of a lesson at one instant.
//!
//! Which events change the discrete state of a lesson (the scene, the chapter and which strokes
//! exist) is decided in one place, `discrete_effect`: the encoder's keyframes
//! ([`Keyframe::apply`]), the player's replay (which folds events into a [`Keyframe`]) and the
//! live view ([`LessonState::apply`]) all go through it, so what was recorded, what is replayed
//! and what was shown live cannot drift apart.

use std::collections::BTreeMap;

use glam::{Mat4, Vec2, Vec3};
use serde::{Deserialize, Serialize};

use crate::event::{
    ClipPlane, ControllerState, CropBox, Event, HandJoints, ImageHash, LabelMapHash, Measurement,
    Payload, Pose, SceneChange, Space, StrokeBegin, TransferPoint,
};

/// How one label is shown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelState {
    /// Shown?
    pub visible: bool,
    /// Colour override, if the instructor set one.
    pub colour_rgb: Option<[u8; 3]>,
    /// Opacity, 0 to 1.
    pub opacity: f32,
}

impl Default for LabelState {
    fn default() -> Self {
        Self {
            visible: true,
            colour_rgb: None,
            opacity: 1.0,
        }
    }
}

/// Window/level for MPR views.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowLevel {
    /// Window centre (level), HU.
    pub centre_hu: f32,
    /// Window width, HU.
    pub width_hu: f32,
}

/// An image board as shown (1.3); see [`SceneChange::BoardShow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardState {
    /// Its image, stored in the lesson ([`crate::player::Player::image`]).
    pub image: ImageHash,
    /// What it shows ("Pelvis AP").
    pub title: String,
    /// Its centre and orientation in patient space.
    pub pose: Pose,
    /// Its displayed width, patient millimetres.
    pub width_mm: f32,
}

impl BoardState {
    /// The transform from board millimetres ([`Space::Board`]) to patient millimetres, given
    /// the image's [`crate::event::ImageBlob::natural_size_mm`]: scale by
    /// `width_mm / natural_size_mm.x`, then the pose. A width or natural size that is not a
    /// positive finite number (damage) shows the board at its natural size, and a pose with a
    /// non-unit rotation is normalised (the identity when it cannot be), so a hostile file
    /// never yields NaN.
    #[must_use]
    pub fn patient_from_board(&self, natural_size_mm: Vec2) -> Mat4 {
        let scale = self.width_mm / natural_size_mm.x;
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let rotation = glam::Vec4::from(self.pose.orientation)
            .try_normalize()
            .map_or(glam::Quat::IDENTITY, glam::Quat::from_vec4);
        let position = if self.pose.position_mm.is_finite() {
            self.pose.position_mm
        } else {
            Vec3::ZERO
        };
        Mat4::from_scale_rotation_translation(Vec3::splat(scale), rotation, position)
    }
}

/// The whole scene state: everything a [`SceneChange`] can change. The default is the state
/// at the start of a lesson before any change ("whatever the studio shows by default").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneState {
    /// Transfer-function preset name.
    pub preset: Option<String>,
    /// Transfer-function curve (empty: the preset's own curve).
    pub transfer_curve: Vec<TransferPoint>,
    /// Window/level, if set.
    pub window_level: Option<WindowLevel>,
    /// Per-label display state; labels not listed are shown with their default style.
    pub labels: BTreeMap<u32, LabelState>,
    /// Clip plane in patient space.
    pub clip_plane: Option<ClipPlane>,
    /// Crop box in patient space.
    pub crop_box: Option<CropBox>,
    /// Where the twin stands in the room.
    pub stage_from_patient: Pose,
    /// The twin's uniform scale in the room, stage mm per patient mm (1 = life size; 1.2).
    /// Applied about the patient origin before `stage_from_patient`. Use
    /// [`Self::twin_scale`], which refuses values no twin can have.
    pub twin_scale: f32,
    /// MPR slice positions in patient space, if set.
    pub mpr_slices_mm: Option<Vec3>,
    /// The label map shown, by hash (stored in the lesson), or `None` for the case's own
    /// labels (1.2).
    pub label_map: Option<LabelMapHash>,
    /// Image boards shown, by id (1.3).
    pub boards: BTreeMap<u32, BoardState>,
    /// Measurements shown, by id (1.3). One on a board that is not shown is not drawn
    /// ([`Self::is_space_shown`]).
    pub measurements: BTreeMap<u32, Measurement>,
}

impl Default for SceneState {
    fn default() -> Self {
        Self {
            preset: None,
            transfer_curve: Vec::new(),
            window_level: None,
            labels: BTreeMap::new(),
            clip_plane: None,
            crop_box: None,
            stage_from_patient: Pose::IDENTITY,
            twin_scale: 1.0,
            mpr_slices_mm: None,
            label_map: None,
            boards: BTreeMap::new(),
            measurements: BTreeMap::new(),
        }
    }
}

impl SceneState {
    /// The twin's scale, or 1 (life size) when the recorded one is not a positive finite
    /// number (a damaged or hostile file must not turn the twin inside out or into NaN).
    #[must_use]
    pub fn twin_scale(&self) -> f32 {
        if self.twin_scale.is_finite() && self.twin_scale > 0.0 {
            self.twin_scale
        } else {
            1.0
        }
    }

    /// Whether what lies in `space` is shown: the room and the patient always are, a board's
    /// plane while the board is shown. Strokes and measurements on a hidden board stay in the
    /// state (they come back if the board id is shown again) but are not drawn.
    #[must_use]
    pub fn is_space_shown(&self, space: Space) -> bool {
        match space {
            Space::Stage | Space::Patient => true,
            Space::Board(id) => self.boards.contains_key(&id),
        }
    }

    /// Applies one change.
    pub fn apply(&mut self, change: &SceneChange) {
        match change {
            SceneChange::Preset { name } => self.preset = Some(name.clone()),
            SceneChange::TransferCurve { points } => self.transfer_curve.clone_from(points),
            SceneChange::WindowLevel {
                centre_hu,
                width_hu,
            } => {
                self.window_level = Some(WindowLevel {
                    centre_hu: *centre_hu,
                    width_hu: *width_hu,
                });
            }
            SceneChange::LabelVisibility { label, visible } => {
                self.labels.entry(*label).or_default().visible = *visible;
            }
            SceneChange::LabelColour { label, colour_rgb } => {
                self.labels.entry(*label).or_default().colour_rgb = Some(*colour_rgb);
            }
            SceneChange::LabelOpacity { label, opacity } => {
                self.labels.entry(*label).or_default().opacity = *opacity;
            }
            SceneChange::ClipPlane { plane } => self.clip_plane = *plane,
            SceneChange::CropBox { crop } => self.crop_box = *crop,
            SceneChange::TwinPose { stage_from_patient } => {
                self.stage_from_patient = *stage_from_patient;
            }
            SceneChange::MprSlices { slices_mm } => self.mpr_slices_mm = Some(*slices_mm),
            SceneChange::TwinScale { scale } => self.twin_scale = *scale,
            SceneChange::LabelMap { hash } => self.label_map = *hash,
            SceneChange::BoardShow {
                board_id,
                image,
                title,
                pose,
                width_mm,
            } => {
                self.boards.insert(
                    *board_id,
                    BoardState {
                        image: *image,
                        title: title.clone(),
                        pose: *pose,
                        width_mm: *width_mm,
                    },
                );
            }
            SceneChange::BoardPose {
                board_id,
                pose,
                width_mm,
            } => {
                if let Some(board) = self.boards.get_mut(board_id) {
                    board.pose = *pose;
                    board.width_mm = *width_mm;
                }
            }
            SceneChange::BoardHide { board_id } => {
                self.boards.remove(board_id);
            }
            SceneChange::MeasurementShow { id, measurement } => {
                self.measurements.insert(*id, *measurement);
            }
            SceneChange::MeasurementHide { id } => {
                self.measurements.remove(id);
            }
        }
    }

    /// A list of changes that rebuilds this state from the default one. Keyframes store the
    /// scene this way, so there is one encoding for scene data and a reader that skips an
    /// unknown change skips just that field.
    #[must_use]
    pub fn to_changes(&self) -> Vec<SceneChange> {
        let mut out = Vec::new();
        if let Some(name) = &self.preset {
            out.push(SceneChange::Preset { name: name.clone() });
        }
        if !self.transfer_curve.is_empty() {
            out.push(SceneChange::TransferCurve {
                points: self.transfer_curve.clone(),
            });
        }
        if let Some(wl) = self.window_level {
            out.push(SceneChange::WindowLevel {
                centre_hu: wl.centre_hu,
                width_hu: wl.width_hu,
            });
        }
        for (&label, s) in &self.labels {
            out.push(SceneChange::LabelVisibility {
                label,
                visible: s.visible,
            });
            if let Some(colour_rgb) = s.colour_rgb {
                out.push(SceneChange::LabelColour { label, colour_rgb });
            }
            out.push(SceneChange::LabelOpacity {
                label,
                opacity: s.opacity,
            });
        }
        if self.clip_plane.is_some() {
            out.push(SceneChange::ClipPlane {
                plane: self.clip_plane,
            });
        }
        if self.crop_box.is_some() {
            out.push(SceneChange::CropBox {
                crop: self.crop_box,
            });
        }
        if self.stage_from_patient != Pose::IDENTITY {
            out.push(SceneChange::TwinPose {
                stage_from_patient: self.stage_from_patient,
            });
        }
        // Compared bitwise: a NaN a file held must survive a keyframe as it is.
        if self.twin_scale.to_bits() != 1f32.to_bits() {
            out.push(SceneChange::TwinScale {
                scale: self.twin_scale,
            });
        }
        if let Some(slices_mm) = self.mpr_slices_mm {
            out.push(SceneChange::MprSlices { slices_mm });
        }
        if self.label_map.is_some() {
            out.push(SceneChange::LabelMap {
                hash: self.label_map,
            });
        }
        for (&board_id, b) in &self.boards {
            out.push(SceneChange::BoardShow {
                board_id,
                image: b.image,
                title: b.title.clone(),
                pose: b.pose,
                width_mm: b.width_mm,
            });
        }
        for (&id, &measurement) in &self.measurements {
            out.push(SceneChange::MeasurementShow { id, measurement });
        }
        out
    }
}

/// A stroke that is visible at a keyframe, and where to find its points.
///
/// Keyframes list strokes rather than copying their geometry: an hour of annotation would
/// otherwise be rewritten every few seconds. The points are found by reading forward from
/// `first_chunk_seq` through the index (random access, never a scan from the start).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeyframeStroke {
    /// The stroke's begin event.
    pub begin: StrokeBegin,
    /// When it began.
    pub begin_time_ns: i64,
    /// Sequence number of the chunk holding its begin event.
    pub first_chunk_seq: u64,
    /// Whether its end event came before the keyframe.
    pub ended: bool,
}

/// The state stored at the start of a keyframe chunk: enough to replay from there on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Keyframe {
    /// The scene.
    pub scene: SceneState,
    /// Title of the current chapter.
    pub chapter: Option<String>,
    /// Visible strokes, by id.
    pub strokes: BTreeMap<u32, KeyframeStroke>,
}

impl Keyframe {
    /// Applies one event, recorded in the chunk with sequence number `chunk_seq` (where a
    /// stroke that begins with it will find its points). Events that do not change the
    /// discrete state (poses, points, notes, …) leave it as it is.
    pub fn apply(&mut self, event: &Event, chunk_seq: u64) {
        match discrete_effect(&mut self.scene, &mut self.chapter, event) {
            Some(StrokeEffect::Begin(begin)) => {
                self.strokes.insert(
                    begin.stroke_id,
                    KeyframeStroke {
                        begin: *begin,
                        begin_time_ns: event.time_ns,
                        first_chunk_seq: chunk_seq,
                        ended: false,
                    },
                );
            }
            Some(StrokeEffect::End(id)) => {
                if let Some(s) = self.strokes.get_mut(&id) {
                    s.ended = true;
                }
            }
            Some(StrokeEffect::Remove(ids)) => {
                for id in ids {
                    self.strokes.remove(id);
                }
            }
            None => {}
        }
    }
}

/// What an event does to the set of visible strokes; see [`discrete_effect`].
#[derive(Debug, Clone, Copy)]
enum StrokeEffect<'a> {
    /// A stroke begins; a visible stroke with the same id is replaced by it.
    Begin(&'a StrokeBegin),
    /// A stroke ends: it stays visible, and no more points are expected.
    End(u32),
    /// These strokes disappear (erased or undone); ids not visible are ignored.
    Remove(&'a [u32]),
}

/// The one rule for how an event changes the discrete state of a lesson: applies its effect on
/// the scene and the chapter, and returns its effect on the visible strokes for the caller to
/// carry out on its own stroke storage (a map in keyframes, a sorted list in
/// [`LessonState`]). The match names every payload, so a new kind of event has to be
/// decided on here, once, for the encoder, the player and the live view together.
fn discrete_effect<'a>(
    scene: &mut SceneState,
    chapter: &mut Option<String>,
    event: &'a Event,
) -> Option<StrokeEffect<'a>> {
    match &event.payload {
        Payload::Scene(change) => scene.apply(change),
        Payload::Chapter(c) => *chapter = Some(c.title.clone()),
        Payload::StrokeBegin(begin) => return Some(StrokeEffect::Begin(begin)),
        Payload::StrokeEnd { stroke_id } => return Some(StrokeEffect::End(*stroke_id)),
        Payload::StrokeErase { stroke_ids } => return Some(StrokeEffect::Remove(stroke_ids)),
        Payload::StrokeUndo { stroke_id } => {
            return Some(StrokeEffect::Remove(std::slice::from_ref(stroke_id)));
        }
        // Sampled streams and points are not discrete state; gestures, viewpoints, notes and
        // audio are moments in the timeline, not something that stays visible.
        Payload::Head(_)
        | Payload::Hand(_)
        | Payload::Controller(_)
        | Payload::Gesture(_)
        | Payload::StrokePoint(_)
        | Payload::Viewpoint(_)
        | Payload::Note(_)
        | Payload::Audio(_)
        | Payload::Voice(_)
        | Payload::VoiceSync(_)
        // A stored map or image is data, not state: a `SceneChange::LabelMap` or
        // `SceneChange::BoardShow` shows it.
        | Payload::LabelMap(_)
        | Payload::Image(_) => {}
    }
    None
}

/// A point of a visible stroke.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimedStrokePoint {
    /// When it was drawn.
    pub time_ns: i64,
    /// Position in the stroke's space, millimetres.
    pub position_mm: Vec3,
    /// Pen pressure, 0 to 1.
    pub pressure: f32,
}

/// A stroke as visible at some instant: only the points drawn up to then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisibleStroke {
    /// The begin event (id, space, style).
    pub begin: StrokeBegin,
    /// When it began.
    pub begin_time_ns: i64,
    /// Points drawn up to the instant, in time order.
    pub points: Vec<TimedStrokePoint>,
}

/// Everything shown at one instant: what [`crate::player::Player::state_at`] rebuilds from a
/// file, and what [`LessonState::apply`] keeps up to date from live events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LessonState {
    /// The instant, session-relative nanoseconds.
    pub time_ns: i64,
    /// Scene state.
    pub scene: SceneState,
    /// Current chapter title.
    pub chapter: Option<String>,
    /// Instructor's head pose (stage space), interpolated; `None` if not tracked near `time_ns`.
    pub head: Option<Pose>,
    /// Hands (left, right), interpolated; `None` where not tracked.
    pub hands: [Option<HandJoints>; 2],
    /// Controllers (left, right); `None` where not tracked.
    pub controllers: [Option<ControllerState>; 2],
    /// Visible strokes, by ascending id.
    pub strokes: Vec<VisibleStroke>,
}

impl LessonState {
    /// The state at time 0 on `scene`, before any event: no chapter, nothing tracked, no
    /// strokes.
    #[must_use]
    pub fn new(scene: SceneState) -> Self {
        Self {
            time_ns: 0,
            scene,
            chapter: None,
            head: None,
            hands: [None, None],
            controllers: [None, None],
            strokes: Vec::new(),
        }
    }

    /// Applies one live event, in time order: the fold a live view (the studio while
    /// recording or teaching) runs instead of replaying a file.
    ///
    /// `time_ns` only moves forward. Head, hands and controllers take the latest sample as
    /// is (no interpolation and no staleness timeout: a live view has no later sample to
    /// interpolate towards, and a lost hand arrives as a sample without joints). A stroke
    /// point is appended to its stroke if that stroke is visible. Scene, chapter and which
    /// strokes exist change by the same rule as keyframes and replay, and `strokes` stays
    /// sorted by id.
    ///
    /// The head is set like any other sample. Whether to show it is the view's choice, not
    /// the lesson's: a VR view, whose camera is the viewer's own head, skips head events or
    /// ignores `head`.
    pub fn apply(&mut self, event: &Event) {
        self.time_ns = self.time_ns.max(event.time_ns);
        match &event.payload {
            Payload::Head(pose) => self.head = Some(*pose),
            Payload::Hand(h) => self.hands[h.hand.index()] = h.joints,
            Payload::Controller(c) => self.controllers[c.hand.index()] = c.state,
            Payload::StrokePoint(p) => {
                if let Ok(i) = self.stroke_position(p.stroke_id) {
                    self.strokes[i].points.push(TimedStrokePoint {
                        time_ns: event.time_ns,
                        position_mm: p.position_mm,
                        pressure: p.pressure,
                    });
                }
            }
            _ => {}
        }
        match discrete_effect(&mut self.scene, &mut self.chapter, event) {
            Some(StrokeEffect::Begin(begin)) => {
                let stroke = VisibleStroke {
                    begin: *begin,
                    begin_time_ns: event.time_ns,
                    points: Vec::new(),
                };
                match self.stroke_position(begin.stroke_id) {
                    Ok(i) => self.strokes[i] = stroke,
                    Err(i) => self.strokes.insert(i, stroke),
                }
            }
            Some(StrokeEffect::Remove(ids)) => {
                self.strokes.retain(|s| !ids.contains(&s.begin.stroke_id));
            }
            // A visible stroke carries no "ended" flag: its points simply stop coming.
            Some(StrokeEffect::End(_)) | None => {}
        }
    }

    /// The visible strokes drawn on board `board_id` (1.3), by ascending id; none while the
    /// board is not shown. Their points are in the board's millimetres ([`Space::Board`]).
    pub fn board_strokes(&self, board_id: u32) -> impl Iterator<Item = &VisibleStroke> {
        let shown = self.scene.boards.contains_key(&board_id);
        self.strokes
            .iter()
            .filter(move |s| shown && s.begin.space == Space::Board(board_id))
    }

    /// Where stroke `id` is in `strokes` (`Ok`), or where it would be inserted to keep them
    /// sorted (`Err`).
    fn stroke_position(&self, id: u32) -> Result<usize, usize> {
        self.strokes
            .binary_search_by_key(&id, |s| s.begin.stroke_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap.
mod tests {
    use super::*;
    use crate::event::{
        Brush, Chapter, ControllerSample, HandSample, Handedness, Space, StrokePoint, StrokeStyle,
    };

    fn begin(stroke_id: u32, width_mm: f32) -> Payload {
        Payload::StrokeBegin(StrokeBegin {
            stroke_id,
            space: Space::Patient,
            style: StrokeStyle {
                colour_rgba: [255, 0, 0, 255],
                width_mm,
                brush: Brush::Pen,
            },
        })
    }

    fn point(stroke_id: u32, x: f32) -> Payload {
        Payload::StrokePoint(StrokePoint {
            stroke_id,
            position_mm: Vec3::new(x, 0.0, 0.0),
            pressure: 0.5,
        })
    }

    /// A live state after applying `payloads` at times 1, 2, 3, … ns.
    fn folded(payloads: Vec<Payload>) -> LessonState {
        let mut s = LessonState::new(SceneState::default());
        for (t, p) in (1..).zip(payloads) {
            s.apply(&Event::new(t, p));
        }
        s
    }

    fn ids(s: &LessonState) -> Vec<u32> {
        s.strokes.iter().map(|v| v.begin.stroke_id).collect()
    }

    #[test]
    fn a_stroke_grows_point_by_point() {
        let mut s = folded(vec![begin(4, 2.0)]);
        assert_eq!(s.strokes[0].begin_time_ns, 1);
        assert!(s.strokes[0].points.is_empty());
        for (i, x) in [10.0, 11.0, 12.5].into_iter().enumerate() {
            s.apply(&Event::new(10 + i as i64, point(4, x)));
            assert_eq!(s.strokes[0].points.len(), i + 1);
        }
        let p = s.strokes[0].points[2];
        assert_eq!((p.time_ns, p.position_mm.x, p.pressure), (12, 12.5, 0.5));
        // Points of a stroke that is not visible go nowhere; the end keeps the stroke.
        s.apply(&Event::new(20, point(9, 0.0)));
        s.apply(&Event::new(21, Payload::StrokeEnd { stroke_id: 4 }));
        assert_eq!(ids(&s), [4]);
        assert_eq!(s.strokes[0].points.len(), 3);
        assert_eq!(s.time_ns, 21);
    }

    #[test]
    fn erase_and_undo_remove_strokes() {
        let s = folded(vec![
            begin(1, 1.0),
            begin(2, 1.0),
            begin(3, 1.0),
            point(2, 0.0),
            Payload::StrokeUndo { stroke_id: 2 },
        ]);
        assert_eq!(ids(&s), [1, 3]);
        let mut s = s;
        s.apply(&Event::new(
            10,
            Payload::StrokeErase {
                stroke_ids: vec![3, 1, 99],
            },
        ));
        assert!(s.strokes.is_empty());
    }

    #[test]
    fn ids_stay_sorted_and_a_rebegun_id_replaces_the_old_stroke() {
        let s = folded(vec![
            begin(5, 1.0),
            begin(2, 1.0),
            point(2, 1.0),
            begin(9, 1.0),
            begin(7, 1.0),
            begin(2, 3.0),
        ]);
        assert_eq!(ids(&s), [2, 5, 7, 9]);
        let two = &s.strokes[0];
        assert_eq!((two.begin.style.width_mm, two.begin_time_ns), (3.0, 6));
        assert!(two.points.is_empty());
    }

    #[test]
    fn scene_changes_and_chapters_apply_on_the_initial_scene() {
        let mut scene = SceneState::default();
        scene.apply(&SceneChange::Preset {
            name: "CT bone".to_owned(),
        });
        let mut s = LessonState::new(scene.clone());
        assert_eq!((s.time_ns, s.chapter.as_deref()), (0, None));
        let change = SceneChange::WindowLevel {
            centre_hu: 40.0,
            width_hu: 400.0,
        };
        s.apply(&Event::new(5, Payload::Scene(change.clone())));
        s.apply(&Event::new(
            6,
            Payload::Chapter(Chapter {
                title: "Liver".to_owned(),
            }),
        ));
        scene.apply(&change);
        assert_eq!(s.scene, scene);
        assert_eq!(s.scene.preset.as_deref(), Some("CT bone"));
        assert_eq!(s.chapter.as_deref(), Some("Liver"));
    }

    #[test]
    fn head_hands_and_controllers_take_the_latest_sample() {
        let head = Pose {
            position_mm: Vec3::new(0.0, 1600.0, 0.0),
            orientation: glam::Quat::IDENTITY,
        };
        let mut s = folded(vec![
            Payload::Head(head),
            Payload::Hand(Box::new(HandSample {
                hand: Handedness::Right,
                joints: Some(HandJoints::default()),
            })),
            Payload::Controller(ControllerSample {
                hand: Handedness::Left,
                state: Some(ControllerState {
                    grip: head,
                    aim: head,
                    buttons: 1,
                    trigger: 0.5,
                    squeeze: 0.0,
                    thumbstick: glam::Vec2::ZERO,
                }),
            }),
        ]);
        assert_eq!(s.head, Some(head));
        assert_eq!(s.hands, [None, Some(HandJoints::default())]);
        assert_eq!(s.controllers[0].map(|c| c.buttons), Some(1));
        assert!(s.controllers[1].is_none());
        // A lost hand clears it; a late event does not move time back.
        s.apply(&Event::new(
            2,
            Payload::Hand(Box::new(HandSample {
                hand: Handedness::Right,
                joints: None,
            })),
        ));
        assert_eq!(s.hands, [None, None]);
        assert_eq!(s.time_ns, 3);
    }

    #[test]
    fn keyframes_record_where_strokes_begin_and_that_they_ended() {
        let mut kf = Keyframe::default();
        kf.apply(&Event::new(1, begin(1, 1.0)), 4);
        kf.apply(&Event::new(2, begin(2, 1.0)), 5);
        kf.apply(&Event::new(3, Payload::StrokeEnd { stroke_id: 1 }), 5);
        kf.apply(&Event::new(4, Payload::StrokeUndo { stroke_id: 2 }), 6);
        assert_eq!(kf.strokes.len(), 1);
        let s = kf.strokes[&1];
        assert_eq!((s.begin_time_ns, s.first_chunk_seq, s.ended), (1, 4, true));
    }
}
