//! The event model: what a lesson records.
//!
//! Every event carries `time_ns`, session-relative integer nanoseconds (the wall-clock anchor
//! lives in the file header). Every position is in millimetres, in a space named per stream:
//!
//! | stream        | space                                                                 |
//! |---------------|-----------------------------------------------------------------------|
//! | head, hands, controllers, gestures | [`Space::Stage`]: the OpenXR stage (room) space, in mm |
//! | strokes       | the [`Space`] named in each [`StrokeBegin`]                            |
//! | scene         | clip plane, crop box, MPR slices: [`Space::Patient`]; twin pose: `stage_from_patient` |
//! | viewpoints    | the [`Space`] named in each [`Viewpoint`]                              |
//!
//! Millimetres everywhere (not OpenXR's metres) so that one quantisation step means the same
//! thing in every stream; the studio multiplies by 1000 at the OpenXR boundary.

use glam::{Quat, Vec2, Vec3};
use serde::{Deserialize, Serialize};

/// Number of joints per hand in the `XR_EXT_hand_tracking` joint set.
pub const HAND_JOINT_COUNT: usize = 26;

/// Index of the wrist joint in the `XR_EXT_hand_tracking` joint set (`XR_HAND_JOINT_WRIST_EXT`).
pub const WRIST_JOINT: usize = 1;

/// A rigid pose: position in millimetres and orientation, in the space of its stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// Position in millimetres.
    pub position_mm: Vec3,
    /// Orientation (unit quaternion).
    pub orientation: Quat,
}

impl Default for Pose {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Pose {
    /// The identity pose.
    pub const IDENTITY: Self = Self {
        position_mm: Vec3::ZERO,
        orientation: Quat::IDENTITY,
    };

    /// Interpolates between two poses: lerp for the position, slerp for the orientation.
    #[must_use]
    pub fn interpolate(&self, other: &Self, s: f32) -> Self {
        Self {
            position_mm: self.position_mm.lerp(other.position_mm, s),
            orientation: self.orientation.slerp(other.orientation, s),
        }
    }
}

/// The coordinate space a position is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// The room: the OpenXR stage reference space, in millimetres.
    Stage,
    /// The case's patient coordinates (the volume's patient space), in millimetres; moves with
    /// the twin when the instructor moves it.
    Patient,
}

/// Which hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handedness {
    /// The left hand.
    Left,
    /// The right hand.
    Right,
}

impl Handedness {
    /// 0 for left, 1 for right: the index into per-hand arrays.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Left => 0,
            Self::Right => 1,
        }
    }

    /// Both hands, in index order.
    pub const BOTH: [Self; 2] = [Self::Left, Self::Right];
}

/// One hand joint: pose and radius.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HandJoint {
    /// Joint pose in stage space.
    pub pose: Pose,
    /// Joint radius in millimetres.
    pub radius_mm: f32,
}

impl Default for HandJoint {
    fn default() -> Self {
        Self {
            pose: Pose::IDENTITY,
            radius_mm: 0.0,
        }
    }
}

/// All joints of a tracked hand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HandJoints {
    /// The 26 joints, in `XR_EXT_hand_tracking` order.
    pub joints: [HandJoint; HAND_JOINT_COUNT],
    /// Bit `i` set: joint `i` was tracked (not inferred) by the runtime.
    pub tracked_mask: u32,
}

impl Default for HandJoints {
    fn default() -> Self {
        Self {
            joints: [HandJoint::default(); HAND_JOINT_COUNT],
            tracked_mask: (1 << HAND_JOINT_COUNT) - 1,
        }
    }
}

/// One hand-tracking sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandSample {
    /// Which hand.
    pub hand: Handedness,
    /// The joints, or `None` when the runtime lost the hand.
    pub joints: Option<HandJoints>,
}

/// The state of one motion controller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ControllerState {
    /// Grip pose in stage space.
    pub grip: Pose,
    /// Aim pose in stage space.
    pub aim: Pose,
    /// Bit mask of pressed buttons (the studio's button numbering).
    pub buttons: u32,
    /// Trigger value, 0 to 1.
    pub trigger: f32,
    /// Squeeze (grip) value, 0 to 1.
    pub squeeze: f32,
    /// Thumbstick, each axis -1 to 1.
    pub thumbstick: Vec2,
}

/// One controller sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerSample {
    /// Which hand holds it.
    pub hand: Handedness,
    /// Its state, or `None` when it is not tracked.
    pub state: Option<ControllerState>,
}

/// Discrete gestures recognised by the studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GestureKind {
    /// Thumb and index finger touch.
    Pinch,
    /// Whole-hand grab.
    Grab,
    /// Index finger pointing.
    Point,
    /// The previous gesture ended.
    Release,
    /// A gesture code this build does not know (from a newer writer); kept, not dropped.
    Other(u8),
}

/// A gesture, with the pose at which it happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gesture {
    /// Which hand.
    pub hand: Handedness,
    /// What gesture.
    pub kind: GestureKind,
    /// Where, in stage space.
    pub pose: Pose,
}

/// Brush used for a stroke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Brush {
    /// Solid pen.
    Pen,
    /// Wide marker.
    Marker,
    /// Translucent highlighter.
    Highlighter,
    /// A brush code this build does not know (from a newer writer).
    Other(u8),
}

/// The look of a stroke.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrokeStyle {
    /// sRGB colour and alpha.
    pub colour_rgba: [u8; 4],
    /// Nominal width in millimetres.
    pub width_mm: f32,
    /// The brush.
    pub brush: Brush,
}

/// A stroke starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrokeBegin {
    /// Id unique within the lesson; later points, end, erase and undo refer to it.
    pub stroke_id: u32,
    /// The space its points are in (drawn on the patient, or in the room).
    pub space: Space,
    /// How it looks.
    pub style: StrokeStyle,
}

/// One point of a stroke; its time is the event's `time_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrokePoint {
    /// The stroke it belongs to.
    pub stroke_id: u32,
    /// Position in the stroke's space, millimetres.
    pub position_mm: Vec3,
    /// Pen pressure, 0 to 1.
    pub pressure: f32,
}

/// One control point of a transfer-function curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransferPoint {
    /// Density in Hounsfield units.
    pub density_hu: f32,
    /// Linear RGB and opacity, 0 to 1.
    pub rgba: [f32; 4],
}

/// A clip plane in patient space: keeps points with `normal · p <= distance_mm`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipPlane {
    /// Unit normal.
    pub normal: Vec3,
    /// Signed distance from the patient origin along `normal`, millimetres.
    pub distance_mm: f32,
}

/// An axis-aligned crop box in patient space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropBox {
    /// Minimum corner, millimetres.
    pub min_mm: Vec3,
    /// Maximum corner, millimetres.
    pub max_mm: Vec3,
}

/// A change to the scene. Scene values are stored exactly (not quantised): they change at
/// human speed, so exactness costs nothing worth saving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneChange {
    /// A transfer-function preset was chosen (by name). The curve is sent separately.
    Preset {
        /// Preset name.
        name: String,
    },
    /// The transfer-function curve was edited; the full new curve.
    TransferCurve {
        /// Control points.
        points: Vec<TransferPoint>,
    },
    /// Window/level for MPR views.
    WindowLevel {
        /// Window centre (level), HU.
        centre_hu: f32,
        /// Window width, HU.
        width_hu: f32,
    },
    /// A label was shown or hidden.
    LabelVisibility {
        /// Label value.
        label: u32,
        /// Shown?
        visible: bool,
    },
    /// A label's colour changed.
    LabelColour {
        /// Label value.
        label: u32,
        /// sRGB colour.
        colour_rgb: [u8; 3],
    },
    /// A label's opacity changed.
    LabelOpacity {
        /// Label value.
        label: u32,
        /// Opacity, 0 to 1.
        opacity: f32,
    },
    /// The clip plane was set or removed.
    ClipPlane {
        /// The plane, or `None` for no clipping.
        plane: Option<ClipPlane>,
    },
    /// The crop box was set or removed.
    CropBox {
        /// The box, or `None` for no cropping.
        crop: Option<CropBox>,
    },
    /// The twin was moved in the room.
    TwinPose {
        /// Transform from patient space to stage space (position in mm).
        stage_from_patient: Pose,
    },
    /// MPR slice positions in patient space: x sagittal, y coronal, z axial, millimetres.
    MprSlices {
        /// Slice positions.
        slices_mm: Vec3,
    },
    /// The twin's uniform scale changed (1.2): two-grip scaling, the thumbstick. Kept apart
    /// from [`SceneChange::TwinPose`] so that a 1.1 reader, which skips it, still places the
    /// twin (at life size) instead of misreading a longer pose.
    TwinScale {
        /// Stage millimetres per patient millimetre (1 = life size).
        scale: f32,
    },
    /// The labels shown changed (1.2): a segmentation run during the lesson. The map itself
    /// is stored once in the lesson, in a [`LabelMapBlob`] with this hash.
    LabelMap {
        /// [`LabelMapBlob::hash`] of the map now shown, or `None` for the case's own labels.
        hash: Option<LabelMapHash>,
    },
}

/// BLAKE3 of a label map's dimensions and voxels ([`LabelMapBlob::hash_of`]).
pub type LabelMapHash = [u8; 32];

/// A label map stored in a lesson (1.2), compressed, named by its content hash: the labels a
/// segmentation produced during the lesson, on the case's grid. A lesson holds each map once
/// however often it is shown; [`SceneChange::LabelMap`] says when it is.
///
/// The voxels stay compressed until [`Self::voxels`] is asked for them, so a reader that only
/// replays motion never inflates a map, and a hostile declared size costs nothing until then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMapBlob {
    /// Content hash of `dims` and the voxels.
    pub hash: LabelMapHash,
    /// Grid size (i, j, k), `i` fastest; the case's grid.
    pub dims: [u32; 3],
    /// The voxels as little-endian `u16` label ids, one zstd frame.
    pub zstd: Vec<u8>,
}

/// Most voxels a stored label map may have (2²⁸, a 640×640×640 grid; 512 MiB as ids):
/// [`LabelMapBlob::voxels`] never allocates more than this, whatever a file declares.
pub const MAX_LABEL_MAP_VOXELS: u64 = 1 << 28;

/// What is wrong with a stored label map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelMapError {
    /// Its dimensions hold more voxels than [`MAX_LABEL_MAP_VOXELS`], or none.
    #[error("a label map of {dims:?} voxels is outside 1 ..= {MAX_LABEL_MAP_VOXELS} voxels")]
    BadSize {
        /// The declared dimensions.
        dims: [u32; 3],
    },
    /// Its voxel count is not the product of its dimensions.
    #[error("a label map of {dims:?} needs {expected} voxels, {found} were given")]
    WrongLength {
        /// The declared dimensions.
        dims: [u32; 3],
        /// Their product.
        expected: u64,
        /// Voxels present.
        found: u64,
    },
    /// The compressed voxels do not decompress.
    #[error("the label map's voxels do not decompress: {0}")]
    Decompress(String),
    /// The voxels do not have the hash the lesson names them by.
    #[error("the label map's voxels do not match its hash (damaged)")]
    HashMismatch,
}

impl LabelMapBlob {
    /// Compresses a map of `dims` (`voxels` in `i`-fastest order) and names it by its hash.
    ///
    /// # Errors
    /// [`LabelMapError::BadSize`] or [`LabelMapError::WrongLength`] for a map that does not
    /// fit its dimensions or the limit.
    pub fn encode(dims: [u32; 3], voxels: &[u16]) -> Result<Self, LabelMapError> {
        let expected = Self::voxel_count(dims)?;
        if voxels.len() as u64 != expected {
            return Err(LabelMapError::WrongLength {
                dims,
                expected,
                found: voxels.len() as u64,
            });
        }
        let bytes: Vec<u8> = voxels.iter().flat_map(|v| v.to_le_bytes()).collect();
        let zstd = zstd::bulk::compress(&bytes, 3)
            .map_err(|e| LabelMapError::Decompress(e.to_string()))?;
        Ok(Self {
            hash: Self::hash_of(dims, &bytes),
            dims,
            zstd,
        })
    }

    /// The content hash of a map: BLAKE3 of the three dimensions (`u32` little-endian) and
    /// the voxels' little-endian bytes.
    #[must_use]
    pub fn hash_of(dims: [u32; 3], voxel_bytes: &[u8]) -> LabelMapHash {
        let mut h = blake3::Hasher::new();
        for d in dims {
            h.update(&d.to_le_bytes());
        }
        h.update(voxel_bytes);
        *h.finalize().as_bytes()
    }

    /// The voxel count of `dims`, checked against [`MAX_LABEL_MAP_VOXELS`].
    ///
    /// # Errors
    /// [`LabelMapError::BadSize`] for an empty or too large grid.
    pub fn voxel_count(dims: [u32; 3]) -> Result<u64, LabelMapError> {
        let n = dims.iter().map(|&d| u64::from(d)).product::<u64>();
        if n == 0 || n > MAX_LABEL_MAP_VOXELS {
            return Err(LabelMapError::BadSize { dims });
        }
        Ok(n)
    }

    /// Decompresses the voxels (`i` fastest) and checks them against the hash. Memory grows
    /// with what actually decompresses, never past the declared size.
    ///
    /// # Errors
    /// A [`LabelMapError`] when the size is out of bounds, the bytes are damaged or short,
    /// or the voxels do not have the map's hash.
    pub fn voxels(&self) -> Result<Vec<u16>, LabelMapError> {
        use std::io::Read;
        let n = Self::voxel_count(self.dims)?;
        let want = n * 2;
        let decoder = zstd::stream::read::Decoder::new(self.zstd.as_slice())
            .map_err(|e| LabelMapError::Decompress(e.to_string()))?;
        let mut bytes = Vec::new();
        decoder
            .take(want + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| LabelMapError::Decompress(e.to_string()))?;
        if bytes.len() as u64 != want {
            return Err(LabelMapError::WrongLength {
                dims: self.dims,
                expected: n,
                found: bytes.len() as u64 / 2,
            });
        }
        if Self::hash_of(self.dims, &bytes) != self.hash {
            return Err(LabelMapError::HashMismatch);
        }
        Ok(bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect())
    }

    /// The two events that record a segmentation's result at `time_ns`: the map (stored once
    /// per lesson: the encoder drops a map the file holds already) and the scene change that
    /// shows it.
    #[must_use]
    pub fn into_events(self, time_ns: i64) -> [Event; 2] {
        let hash = Some(self.hash);
        [
            Event::new(time_ns, Payload::LabelMap(Box::new(self))),
            Event::new(time_ns, Payload::Scene(SceneChange::LabelMap { hash })),
        ]
    }

    /// The hash as 64 hex digits (for messages and `lesson dump`).
    #[must_use]
    pub fn hash_hex(hash: &LabelMapHash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A chapter mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chapter {
    /// Title shown in the chapter list.
    pub title: String,
}

/// A suggested viewpoint the learner can jump to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Viewpoint {
    /// Name shown to the learner.
    pub name: String,
    /// The space of `pose`.
    pub space: Space,
    /// Camera pose.
    pub pose: Pose,
}

/// A text note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The note.
    pub text: String,
}

/// A raw audio record of the reserved type `0x60` (format 1.0). Nothing writes these; they
/// are kept so that files holding them (the v1 fixture) read back exactly. Narration is
/// [`VoicePacket`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioPacket {
    /// Codec identifier (0 = unspecified; to be assigned by the voice work).
    pub codec: u8,
    /// Sample rate in hertz.
    pub sample_rate_hz: u32,
    /// Number of channels.
    pub channel_count: u8,
    /// Encoded audio.
    pub data: Vec<u8>,
}

/// How a voice stream is coded. Every packet of one stream has the same format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoiceFormat {
    /// Codec ([`VoiceFormat::OPUS`] is the only one defined).
    pub codec: u8,
    /// Sample rate of the sample indices (and of the decoded signal), hertz.
    pub sample_rate_hz: u32,
    /// Channels.
    pub channel_count: u8,
    /// Samples at the start of the decoded stream that precede the first input sample (the
    /// encoder's look-ahead; Ogg Opus calls it pre-skip).
    pub pre_skip: u16,
}

impl VoiceFormat {
    /// Opus (RFC 6716).
    pub const OPUS: u8 = 1;

    /// Mono Opus at 48 kHz, what the studio records.
    #[must_use]
    pub fn opus_mono(pre_skip: u16) -> Self {
        Self {
            codec: Self::OPUS,
            sample_rate_hz: 48_000,
            channel_count: 1,
            pre_skip,
        }
    }
}

/// One encoded packet of the narration. Its event time is the lesson time of its first input
/// sample as the recorder estimated it; that only places the packet in a chunk. Playback
/// places audio by [`VoiceSync`] records, which tie sample indices to the lesson clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicePacket {
    /// The stream's coding.
    pub format: VoiceFormat,
    /// Index (at `format.sample_rate_hz`, counted from the stream's first input sample) of
    /// the first input sample this packet encodes. Increases by the packet length from one
    /// packet to the next; a jump means packets were lost.
    pub sample_index: u64,
    /// Input samples the packet encodes (960 for 20 ms at 48 kHz).
    pub sample_count: u16,
    /// How many of those are recorded sound; the rest is padding that flushes the encoder
    /// when a recording stops (0 for a pure padding packet).
    pub valid_samples: u16,
    /// The codec's bytes.
    pub data: Vec<u8>,
}

impl VoicePacket {
    /// Index one past the last recorded (non-padding) input sample.
    #[must_use]
    pub fn valid_end(&self) -> u64 {
        self.sample_index + u64::from(self.valid_samples)
    }

    /// Index one past the last input sample the packet covers.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.sample_index + u64::from(self.sample_count)
    }
}

/// Ties the narration to the lesson clock: input sample `sample_index` was captured at this
/// event's lesson time. Written about once a second from the capture timestamps, so a
/// sound card running fast or slow is corrected at playback instead of drifting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceSync {
    /// The input sample.
    pub sample_index: u64,
    /// The audio clock restarts here (recording resumed after a pause, a voice-over
    /// begins): playback does not interpolate across it.
    pub starts_segment: bool,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// Head pose in stage space (sampled at display rate).
    Head(Pose),
    /// A hand-tracking sample. Boxed so that every event stays small in the recorder's channel.
    Hand(Box<HandSample>),
    /// A controller sample.
    Controller(ControllerSample),
    /// A discrete gesture.
    Gesture(Gesture),
    /// A stroke starts.
    StrokeBegin(StrokeBegin),
    /// A stroke point.
    StrokePoint(StrokePoint),
    /// A stroke ends.
    StrokeEnd {
        /// The stroke.
        stroke_id: u32,
    },
    /// Strokes were erased.
    StrokeErase {
        /// The strokes.
        stroke_ids: Vec<u32>,
    },
    /// A stroke was undone.
    StrokeUndo {
        /// The stroke.
        stroke_id: u32,
    },
    /// The scene changed.
    Scene(SceneChange),
    /// A chapter starts.
    Chapter(Chapter),
    /// A suggested viewpoint.
    Viewpoint(Viewpoint),
    /// A text note.
    Note(Note),
    /// A reserved raw audio record (format 1.0; nothing writes it).
    Audio(AudioPacket),
    /// A packet of the narration.
    Voice(VoicePacket),
    /// A narration sync point.
    VoiceSync(VoiceSync),
    /// A label map stored in the lesson (1.2); shown by a [`SceneChange::LabelMap`]. Boxed:
    /// it is large and rare.
    LabelMap(Box<LabelMapBlob>),
}

/// One timestamped event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Session-relative time in nanoseconds.
    pub time_ns: i64,
    /// What happened.
    #[serde(flatten)]
    pub payload: Payload,
}

impl Event {
    /// An event at `time_ns`.
    #[must_use]
    pub fn new(time_ns: i64, payload: Payload) -> Self {
        Self { time_ns, payload }
    }

    /// The stream this event belongs to.
    #[must_use]
    pub fn stream(&self) -> StreamId {
        self.payload.stream()
    }
}

impl Payload {
    /// The stream this payload belongs to.
    #[must_use]
    pub fn stream(&self) -> StreamId {
        match self {
            Self::Head(_) => StreamId::Head,
            Self::Hand(_) => StreamId::Hands,
            Self::Controller(_) => StreamId::Controllers,
            Self::Gesture(_) => StreamId::Gestures,
            Self::StrokeBegin(_)
            | Self::StrokePoint(_)
            | Self::StrokeEnd { .. }
            | Self::StrokeErase { .. }
            | Self::StrokeUndo { .. } => StreamId::Strokes,
            Self::Scene(_) => StreamId::Scene,
            Self::Chapter(_) | Self::Viewpoint(_) | Self::Note(_) => StreamId::Marks,
            Self::Audio(_) | Self::Voice(_) | Self::VoiceSync(_) => StreamId::Audio,
            Self::LabelMap(_) => StreamId::LabelMaps,
        }
    }
}

/// The streams of a lesson, as numbered in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamId {
    /// Keyframes (scene state snapshots); accounted as a stream for sizes.
    Keyframe = 0,
    /// Head poses.
    Head = 1,
    /// Hand tracking.
    Hands = 2,
    /// Controllers.
    Controllers = 3,
    /// Gestures.
    Gestures = 4,
    /// Strokes.
    Strokes = 5,
    /// Scene changes.
    Scene = 6,
    /// Chapters, viewpoints and notes.
    Marks = 7,
    /// The narration: voice packets and their sync points.
    Audio = 8,
    /// Label maps stored in the lesson (1.2).
    LabelMaps = 9,
}

impl StreamId {
    /// All known streams.
    pub const ALL: [Self; 10] = [
        Self::Keyframe,
        Self::Head,
        Self::Hands,
        Self::Controllers,
        Self::Gestures,
        Self::Strokes,
        Self::Scene,
        Self::Marks,
        Self::Audio,
        Self::LabelMaps,
    ];

    /// The stream with this file code, if this build knows it.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == code)
    }

    /// Short lower-case name, used by `info` and `dump`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Keyframe => "keyframe",
            Self::Head => "head",
            Self::Hands => "hands",
            Self::Controllers => "controllers",
            Self::Gestures => "gestures",
            Self::Strokes => "strokes",
            Self::Scene => "scene",
            Self::Marks => "marks",
            Self::Audio => "audio",
            Self::LabelMaps => "label maps",
        }
    }
}
