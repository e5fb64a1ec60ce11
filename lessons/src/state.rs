//! Scene state, keyframes and the replayed state of a lesson at one instant.

use std::collections::BTreeMap;

use glam::Vec3;
use serde::{Deserialize, Serialize};

use crate::event::{
    ClipPlane, ControllerState, CropBox, HandJoints, Pose, SceneChange, StrokeBegin, TransferPoint,
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
    /// MPR slice positions in patient space, if set.
    pub mpr_slices_mm: Option<Vec3>,
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
            mpr_slices_mm: None,
        }
    }
}

impl SceneState {
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
        if let Some(slices_mm) = self.mpr_slices_mm {
            out.push(SceneChange::MprSlices { slices_mm });
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

/// Everything the player shows at one instant.
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
