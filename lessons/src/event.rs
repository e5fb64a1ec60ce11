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
//! | boards (1.3)  | board poses: [`Space::Patient`]; strokes and measurements on a board: [`Space::Board`] |
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
    /// The plane of image board `id` (1.3; see [`SceneChange::BoardShow`]): image
    /// millimetres from the board's centre, `x` along the image's columns (to the right), `y`
    /// up the image (towards row 0), `z` along the board's normal (0 on the board). Image
    /// millimetres come from the image's [`PixelSpacing`], or are one per pixel when it is
    /// unknown. The board's pose and displayed width map them into patient space, so what is
    /// drawn on a board follows it when it is moved or scaled.
    Board(u32),
}

impl Space {
    /// The board this space is on, if it is a board's.
    #[must_use]
    pub fn board(self) -> Option<u32> {
        match self {
            Self::Board(id) => Some(id),
            Self::Stage | Self::Patient => None,
        }
    }
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
    /// An image board is shown (1.3): a 2D image (an X-ray, a CT/MR slice, a photograph)
    /// placed in the scene. The image is stored once in the lesson, in an [`ImageBlob`] with
    /// this hash. Showing a board id that is shown already replaces it (its strokes stay).
    BoardShow {
        /// Id unique within the lesson (a new board gets a new id); strokes and measurements
        /// on it name it in [`Space::Board`].
        board_id: u32,
        /// [`ImageBlob::hash`] of its image.
        image: ImageHash,
        /// What the image shows, for the learner ("Pelvis AP"): at most
        /// [`MAX_BOARD_TITLE_BYTES`] bytes (the encoder cuts a longer one at a character
        /// boundary). Never a file name or text from the image's DICOM header: nothing here
        /// may identify the patient.
        title: String,
        /// Where the board is, in patient space (it moves with the twin): its centre, and a
        /// rotation whose +x is the image's column direction (to the right), +y the image's
        /// up direction (rows grow along −y), and +z the board's normal, facing the viewer.
        pose: Pose,
        /// Displayed width in patient millimetres; the height follows the image's aspect and
        /// pixel spacing ([`ImageBlob::natural_size_mm`]). For an image of known spacing,
        /// `natural_size_mm().x` is life size; for unknown spacing the caller picks a size.
        width_mm: f32,
    },
    /// A shown board was moved or scaled (1.3); ignored for a board that is not shown.
    BoardPose {
        /// The board.
        board_id: u32,
        /// Its new pose in patient space (as in [`SceneChange::BoardShow`]).
        pose: Pose,
        /// Its new displayed width, patient millimetres.
        width_mm: f32,
    },
    /// A board is hidden (1.3), with the strokes and measurements on it.
    BoardHide {
        /// The board.
        board_id: u32,
    },
    /// A measurement is shown (1.3), or a shown one with this id is edited. The lesson
    /// stores what was placed, not the value: the player computes the value from the case
    /// (or the board's pixel spacing), in one place per kind.
    MeasurementShow {
        /// Id unique within the lesson.
        id: u32,
        /// What is measured, and where.
        measurement: Measurement,
    },
    /// A measurement is hidden (1.3).
    MeasurementHide {
        /// The measurement.
        id: u32,
    },
}

/// Longest board title (bytes of UTF-8) a lesson holds: a name for the view, not a text.
pub const MAX_BOARD_TITLE_BYTES: usize = 256;

/// What a measurement measures (1.3): its inputs, each kind's points in one [`Space`] (so a
/// measurement cannot mix the anatomy and a board, or two boards). Points are millimetres in
/// that space: [`Space::Patient`] for points placed on the anatomy's surface, a
/// [`Space::Board`] for points on an X-ray board. Values (millimetres, degrees, HU) are not
/// stored: the player computes them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measurement {
    /// The distance between two points (shown in mm).
    Distance {
        /// Where the points are.
        space: Space,
        /// One end.
        a_mm: Vec3,
        /// The other end.
        b_mm: Vec3,
    },
    /// The angle at `vertex_mm` between the rays to `a_mm` and `b_mm` (shown in degrees).
    Angle {
        /// Where the points are.
        space: Space,
        /// A point on the first ray.
        a_mm: Vec3,
        /// The vertex.
        vertex_mm: Vec3,
        /// A point on the second ray.
        b_mm: Vec3,
    },
    /// A Cobb angle: the angle between two endplate lines, each given by two points.
    Cobb {
        /// Where the points are (the twin, or an X-ray board).
        space: Space,
        /// The upper endplate line.
        line1_mm: [Vec3; 2],
        /// The lower endplate line.
        line2_mm: [Vec3; 2],
    },
    /// A needle trajectory from the skin entry point to the target (shown with its length
    /// and the structures it passes).
    Trajectory {
        /// Where the points are.
        space: Space,
        /// Entry point.
        entry_mm: Vec3,
        /// Target point.
        target_mm: Vec3,
    },
    /// The volume and HU statistics of a label of the labels shown at the time.
    LabelStats {
        /// The label.
        label_id: u16,
    },
    /// A measurement kind this build does not know (from a newer writer): kept as a note
    /// that something was measured there, without its inputs.
    Other(u8),
}

impl Measurement {
    /// The space of its points; `None` for kinds without points.
    #[must_use]
    pub fn space(&self) -> Option<Space> {
        match self {
            Self::Distance { space, .. }
            | Self::Angle { space, .. }
            | Self::Cobb { space, .. }
            | Self::Trajectory { space, .. } => Some(*space),
            Self::LabelStats { .. } | Self::Other(_) => None,
        }
    }
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

/// BLAKE3 of an image's size, pixel format, pixel spacing and pixels ([`ImageBlob::hash_of`]):
/// the name a board's image is stored under (1.3). Shown and serialised as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageHash(pub [u8; 32]);

impl ImageHash {
    /// The hash as 64 lower-case hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits; `None` for anything else.
    #[must_use]
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl std::fmt::Display for ImageHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for ImageHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageHash({})", self.to_hex())
    }
}

impl Serialize for ImageHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ImageHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        Self::from_hex(&hex).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// How a board image's pixels are stored (1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelFormat {
    /// One byte per pixel, grey, ready to show: a DICOM image after its VOI window (and
    /// MONOCHROME1 inversion) was applied, or a grey PNG/JPEG.
    Grey8,
    /// Four bytes per pixel, sRGB and alpha (straight, not premultiplied): PNG/JPEG colour.
    Rgba8,
}

impl PixelFormat {
    /// Bytes per pixel.
    #[must_use]
    pub fn bytes_per_pixel(self) -> u64 {
        match self {
            Self::Grey8 => 1,
            Self::Rgba8 => 4,
        }
    }

    /// Code in the file.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Grey8 => 1,
            Self::Rgba8 => 2,
        }
    }

    /// From the code in the file; `None` for a format this build does not know.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Grey8),
            2 => Some(Self::Rgba8),
            _ => None,
        }
    }
}

/// The physical size of a board image's pixels (1.3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelSpacing {
    /// Known, from the image (DICOM Pixel Spacing or Imager Pixel Spacing).
    Known {
        /// Distance between the centres of adjacent rows, millimetres (DICOM's first value).
        row_mm: f32,
        /// Distance between the centres of adjacent columns, millimetres (DICOM's second).
        col_mm: f32,
        /// Measured at the detector (Imager Pixel Spacing, not corrected for the beam's
        /// magnification): distances on the board are larger than in the patient, typically
        /// by 10–20 % for a projection radiograph. The player says so beside the value.
        at_detector: bool,
    },
    /// Unknown (a PNG/JPEG, or a DICOM image without spacing): board millimetres are one per
    /// pixel, and the player shows values in pixels with "unknown spacing".
    Unknown,
}

impl PixelSpacing {
    /// Whether a known spacing is usable: both values finite, positive and at most
    /// [`MAX_PIXEL_SPACING_MM`]. `Unknown` is valid.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        match *self {
            Self::Known { row_mm, col_mm, .. } => [row_mm, col_mm]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0 && *v <= MAX_PIXEL_SPACING_MM),
            Self::Unknown => true,
        }
    }
}

/// Largest pixel spacing a stored image may have, millimetres: far above any radiograph
/// (0.1–0.2 mm) or CT/MR slice (≤ 5 mm), so only damage is refused.
pub const MAX_PIXEL_SPACING_MM: f32 = 100.0;

/// Widest or tallest image a board may show, pixels. The largest radiographic detectors are
/// about 4300 pixels a side and mammography about 4100 × 5300; 8192 leaves room for those
/// while staying within the 2D texture size the studio's GPUs support (a device that only has
/// Vulkan's guaranteed 4096 must downsample).
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// Most pixels a board image may have (2²⁶, e.g. 8192 × 8192 or 6 × 10 k): at four bytes a
/// pixel 256 MiB decompressed, which [`ImageBlob::pixels`] never allocates past, whatever a
/// file declares.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// A board's image stored in a lesson (1.3), compressed, named by its content hash, like a
/// [`LabelMapBlob`]: a lesson holds each image once however often it is shown, and
/// [`SceneChange::BoardShow`] says when and where it is. It holds pixels and their spacing
/// only: no file name and no DICOM attribute text, so nothing in it identifies the patient
/// beyond what the pixels show (burnt-in text is the loader's to refuse or mask).
///
/// Pixels are rows top to bottom, each left to right. They stay compressed until
/// [`Self::pixels`] is asked for them, so a hostile declared size costs nothing until then
/// and never more than the declared, bounded size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlob {
    /// Content hash ([`Self::hash_of`]).
    pub hash: ImageHash,
    /// Width, pixels (columns).
    pub width: u32,
    /// Height, pixels (rows).
    pub height: u32,
    /// How the pixels are stored.
    pub format: PixelFormat,
    /// The pixels' physical size.
    pub spacing: PixelSpacing,
    /// The pixels, one zstd frame.
    pub zstd: Vec<u8>,
}

/// What is wrong with a stored (or to be stored) board image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// A side is 0 or over [`MAX_IMAGE_SIDE`], or the pixels over [`MAX_IMAGE_PIXELS`].
    #[error(
        "an image of {width} × {height} pixels is outside 1 ..= {MAX_IMAGE_SIDE} a side and \
         {MAX_IMAGE_PIXELS} pixels"
    )]
    BadSize {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The pixel bytes are not width × height × bytes per pixel.
    #[error("an image of {width} × {height} needs {expected} bytes of pixels, {found} were given")]
    WrongLength {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Bytes needed.
        expected: u64,
        /// Bytes present (at most one more than needed: decompression stops there).
        found: u64,
    },
    /// A known pixel spacing that is not finite, positive and at most
    /// [`MAX_PIXEL_SPACING_MM`].
    #[error("the image's pixel spacing is not a usable size")]
    BadSpacing,
    /// Compressed, the image is larger than a lesson stores
    /// ([`crate::encoder::MAX_IMAGE_BYTES`]): downsample it.
    #[error(
        "the image compresses to {compressed_bytes} bytes, more than the {limit} a lesson stores"
    )]
    TooLarge {
        /// Compressed size.
        compressed_bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The compressed pixels do not decompress.
    #[error("the image's pixels do not decompress: {0}")]
    Decompress(String),
    /// The pixels do not have the hash the lesson names them by.
    #[error("the image's pixels do not match its hash (damaged)")]
    HashMismatch,
}

/// zstd level for board images: an image is compressed once, when it is loaded, so a slower
/// level that keeps more images under [`crate::encoder::MAX_IMAGE_BYTES`] is worth it.
const IMAGE_ZSTD_LEVEL: i32 = 9;

impl ImageBlob {
    /// Compresses an image and names it by its hash.
    ///
    /// # Errors
    /// [`ImageError::BadSize`], [`ImageError::WrongLength`] or [`ImageError::BadSpacing`] for
    /// an image that does not fit its size, the limits or a usable spacing;
    /// [`ImageError::TooLarge`] when it compresses to more than a lesson stores (the caller
    /// downsamples and tries again).
    pub fn encode(
        width: u32,
        height: u32,
        format: PixelFormat,
        spacing: PixelSpacing,
        pixels: &[u8],
    ) -> Result<Self, ImageError> {
        let expected = Self::byte_count(width, height, format)?;
        if pixels.len() as u64 != expected {
            return Err(ImageError::WrongLength {
                width,
                height,
                expected,
                found: pixels.len() as u64,
            });
        }
        if !spacing.is_valid() {
            return Err(ImageError::BadSpacing);
        }
        let zstd = zstd::bulk::compress(pixels, IMAGE_ZSTD_LEVEL)
            .map_err(|e| ImageError::Decompress(e.to_string()))?;
        let limit = crate::encoder::MAX_IMAGE_BYTES as u64;
        if zstd.len() as u64 > limit {
            return Err(ImageError::TooLarge {
                compressed_bytes: zstd.len() as u64,
                limit,
            });
        }
        Ok(Self {
            hash: Self::hash_of(width, height, format, spacing, pixels),
            width,
            height,
            format,
            spacing,
            zstd,
        })
    }

    /// The content hash of an image: BLAKE3 of width and height (`u32` LE), the pixel format
    /// code (u8), the spacing as the file stores it (a tag u8, 0 unknown, 1 known, then for
    /// a known one row and column mm as `f32` LE and the detector flag u8), and the pixels.
    /// The spacing is part of the name: the same pixels at another spacing are another board.
    #[must_use]
    pub fn hash_of(
        width: u32,
        height: u32,
        format: PixelFormat,
        spacing: PixelSpacing,
        pixels: &[u8],
    ) -> ImageHash {
        let mut h = blake3::Hasher::new();
        h.update(&width.to_le_bytes());
        h.update(&height.to_le_bytes());
        h.update(&[format.code()]);
        match spacing {
            PixelSpacing::Unknown => {
                h.update(&[0]);
            }
            PixelSpacing::Known {
                row_mm,
                col_mm,
                at_detector,
            } => {
                h.update(&[1]);
                h.update(&row_mm.to_le_bytes());
                h.update(&col_mm.to_le_bytes());
                h.update(&[u8::from(at_detector)]);
            }
        }
        h.update(pixels);
        ImageHash(*h.finalize().as_bytes())
    }

    /// The pixel byte count of an image, checked against [`MAX_IMAGE_SIDE`] and
    /// [`MAX_IMAGE_PIXELS`].
    ///
    /// # Errors
    /// [`ImageError::BadSize`] for an empty or too large image.
    pub fn byte_count(width: u32, height: u32, format: PixelFormat) -> Result<u64, ImageError> {
        let n = u64::from(width) * u64::from(height);
        if width == 0
            || height == 0
            || width > MAX_IMAGE_SIDE
            || height > MAX_IMAGE_SIDE
            || n > MAX_IMAGE_PIXELS
        {
            return Err(ImageError::BadSize { width, height });
        }
        Ok(n * format.bytes_per_pixel())
    }

    /// Decompresses the pixels (rows top to bottom) and checks them against the hash. Memory
    /// grows with what actually decompresses, never past the declared size.
    ///
    /// # Errors
    /// An [`ImageError`] when the size or spacing is out of bounds, the bytes are damaged or
    /// short, or the pixels do not have the image's hash.
    pub fn pixels(&self) -> Result<Vec<u8>, ImageError> {
        use std::io::Read;
        let want = Self::byte_count(self.width, self.height, self.format)?;
        if !self.spacing.is_valid() {
            return Err(ImageError::BadSpacing);
        }
        let decoder = zstd::stream::read::Decoder::new(self.zstd.as_slice())
            .map_err(|e| ImageError::Decompress(e.to_string()))?;
        let mut bytes = Vec::new();
        decoder
            .take(want + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImageError::Decompress(e.to_string()))?;
        if bytes.len() as u64 != want {
            return Err(ImageError::WrongLength {
                width: self.width,
                height: self.height,
                expected: want,
                found: bytes.len() as u64,
            });
        }
        if Self::hash_of(self.width, self.height, self.format, self.spacing, &bytes) != self.hash {
            return Err(ImageError::HashMismatch);
        }
        Ok(bytes)
    }

    /// The image's size in board millimetres (the units of [`Space::Board`]): width × column
    /// spacing by height × row spacing, or one millimetre a pixel when the spacing is
    /// unknown. A board shown `width_mm` wide is this size scaled by
    /// `width_mm / natural_size_mm().x`.
    #[must_use]
    pub fn natural_size_mm(&self) -> Vec2 {
        // Sides are at most 8192, exact in f32.
        #[allow(clippy::cast_precision_loss)]
        let px = Vec2::new(self.width as f32, self.height as f32);
        match self.spacing {
            PixelSpacing::Known { row_mm, col_mm, .. } if self.spacing.is_valid() => {
                px * Vec2::new(col_mm, row_mm)
            }
            PixelSpacing::Known { .. } | PixelSpacing::Unknown => px,
        }
    }

    /// The two events that show an image as a board at `time_ns`: the image (stored once per
    /// lesson: the encoder drops an image the file holds already) and the
    /// [`SceneChange::BoardShow`] that places it.
    #[must_use]
    pub fn into_events(
        self,
        time_ns: i64,
        board_id: u32,
        title: String,
        pose: Pose,
        width_mm: f32,
    ) -> [Event; 2] {
        let image = self.hash;
        [
            Event::new(time_ns, Payload::Image(Box::new(self))),
            Event::new(
                time_ns,
                Payload::Scene(SceneChange::BoardShow {
                    board_id,
                    image,
                    title,
                    pose,
                    width_mm,
                }),
            ),
        ]
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
    /// A board image stored in the lesson (1.3); shown by a [`SceneChange::BoardShow`].
    /// Boxed: it is large and rare.
    Image(Box<ImageBlob>),
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
            Self::Image(_) => StreamId::Images,
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
    /// Board images stored in the lesson (1.3).
    Images = 10,
}

impl StreamId {
    /// All known streams.
    pub const ALL: [Self; 11] = [
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
        Self::Images,
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
            Self::Images => "images",
        }
    }
}
