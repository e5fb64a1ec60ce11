//! X-ray boards beside the twin: loading an image for one (a DICOM radiograph or a PNG/JPEG
//! picture), where it stands by default, and the images a player draws boards with (stored
//! once per lesson by content hash, decoded on first use).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use glam::{DMat3, DMat4, DQuat, DVec3, Quat, Vec2, Vec3};
use twinray_io::dicom::{load_radiograph, DicomError, ImageSpacing};
use twinray_io::load_picture;
use twinray_lessons::event::{
    ImageBlob, ImageHash, PixelFormat, PixelSpacing, Pose, SceneChange, MAX_IMAGE_SIDE,
};
use twinray_lessons::player::Player;
use twinray_lessons::state::{BoardState, SceneState};
use twinray_volume::Geometry;

use crate::SceneError;

/// An image ready to become a board: stored in a lesson as it is.
#[derive(Debug, Clone)]
pub struct BoardImage {
    /// The pixels, named by their hash.
    pub blob: ImageBlob,
    /// Patient directions of the image's rows and columns (DICOM Patient Orientation), when
    /// the file says.
    pub patient_orientation: Option<(String, String)>,
    /// Words for the user: its size and spacing ("2140×1760 px, 0.143 × 0.143 mm per pixel,
    /// size at the detector"; "unknown spacing").
    pub description: String,
}

/// Reads an image for a board: a DICOM radiograph (CR, DX, a single CT/MR slice: VOI window
/// and MONOCHROME1 applied) or a PNG/JPEG picture. Images larger than a lesson stores
/// (8192 a side) are halved until they fit, and the spacing doubled with them.
///
/// # Errors
/// [`SceneError`] naming the file when it is neither, damaged, or too large to read.
pub fn load_board_image(path: &Path) -> Result<BoardImage, SceneError> {
    let bad = |what: String| SceneError::Board(format!("{}: {what}", path.display()));
    let radiograph = match load_radiograph(path) {
        Ok(r) => Some(r),
        Err(DicomError::NotDicom { .. }) => None,
        Err(e) => return Err(SceneError::Board(e.to_string())),
    };
    let (mut width, mut height, mut format, mut pixels, mut spacing, orientation) =
        if let Some(r) = radiograph {
            // The pixels go into lessons and bundles as they are: an image that says it
            // carries patient text in its pixels is refused, not shared.
            if r.burned_in_annotation {
                return Err(bad(
                    "says it has burned-in annotation (patient text in the pixels), which a \
                     board would carry into lessons and bundles; use a copy with the text \
                     removed (and Burned In Annotation set to NO)"
                        .to_owned(),
                ));
            }
            let spacing = match r.spacing {
                ImageSpacing::AtPatient { row_mm, column_mm } => (row_mm, column_mm, false),
                ImageSpacing::AtDetector { row_mm, column_mm } => (row_mm, column_mm, true),
                ImageSpacing::Unknown => (0.0, 0.0, false),
            };
            (
                r.width,
                r.height,
                PixelFormat::Grey8,
                r.display,
                spacing,
                r.patient_orientation,
            )
        } else {
            let p = load_picture(path).map_err(|e| SceneError::Board(e.to_string()))?;
            (
                p.width,
                p.height,
                PixelFormat::Rgba8,
                p.rgba,
                (0.0, 0.0, false),
                None,
            )
        };
    while width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        (width, height, pixels) = halve(width, height, format, &pixels);
        spacing.0 *= 2.0;
        spacing.1 *= 2.0;
    }
    // A grey image that came in as RGBA (a grey PNG) is stored as grey: a quarter the size.
    if format == PixelFormat::Rgba8
        && pixels
            .chunks_exact(4)
            .all(|p| p[0] == p[1] && p[1] == p[2] && p[3] == 255)
    {
        pixels = pixels.chunks_exact(4).map(|p| p[0]).collect();
        format = PixelFormat::Grey8;
    }
    let lesson_spacing = if spacing.0 > 0.0 && spacing.1 > 0.0 {
        #[allow(clippy::cast_possible_truncation)]
        PixelSpacing::Known {
            row_mm: spacing.0 as f32,
            col_mm: spacing.1 as f32,
            at_detector: spacing.2,
        }
    } else {
        PixelSpacing::Unknown
    };
    let blob = ImageBlob::encode(width, height, format, lesson_spacing, &pixels)
        .map_err(|e| bad(format!("cannot be stored in a lesson: {e}")))?;
    let description = format!("{width}×{height} px, {}", describe_spacing(&lesson_spacing));
    Ok(BoardImage {
        blob,
        patient_orientation: orientation,
        description,
    })
}

/// Words for a board's spacing.
#[must_use]
pub fn describe_spacing(spacing: &PixelSpacing) -> String {
    match *spacing {
        PixelSpacing::Known {
            row_mm,
            col_mm,
            at_detector: false,
        } => format!("{row_mm:.3} × {col_mm:.3} mm per pixel at the patient"),
        PixelSpacing::Known {
            row_mm,
            col_mm,
            at_detector: true,
        } => format!("{row_mm:.3} × {col_mm:.3} mm per pixel, size at the detector"),
        PixelSpacing::Unknown => "unknown spacing".to_owned(),
    }
}

/// Halves an image by averaging 2×2 blocks (an odd last row or column is dropped).
fn halve(width: u32, height: u32, format: PixelFormat, pixels: &[u8]) -> (u32, u32, Vec<u8>) {
    let bpp = usize::try_from(format.bytes_per_pixel()).unwrap_or(4);
    let (w, h) = (width as usize, height as usize);
    let (nw, nh) = ((w / 2).max(1), (h / 2).max(1));
    let mut out = Vec::with_capacity(nw * nh * bpp);
    for y in 0..nh {
        for x in 0..nw {
            for c in 0..bpp {
                let at = |xx: usize, yy: usize| {
                    u32::from(pixels[(yy.min(h - 1) * w + xx.min(w - 1)) * bpp + c])
                };
                let sum = at(2 * x, 2 * y)
                    + at(2 * x + 1, 2 * y)
                    + at(2 * x, 2 * y + 1)
                    + at(2 * x + 1, 2 * y + 1);
                out.push(u8::try_from((sum + 2) / 4).unwrap_or(255));
            }
        }
    }
    (
        u32::try_from(nw).unwrap_or(1),
        u32::try_from(nh).unwrap_or(1),
        out,
    )
}

/// The patient direction (LPS) a DICOM orientation letter string names: `L`, `R`, `A`, `P`,
/// `H`/`S`, `F`/`I`, or an oblique combination such as `LF`.
fn direction(letters: &str) -> Option<DVec3> {
    let mut v = DVec3::ZERO;
    for c in letters.chars() {
        v += match c.to_ascii_uppercase() {
            'L' => DVec3::X,
            'R' => -DVec3::X,
            'P' => DVec3::Y,
            'A' => -DVec3::Y,
            'H' | 'S' => DVec3::Z,
            'F' | 'I' => -DVec3::Z,
            _ => return None,
        };
    }
    v.try_normalize()
}

/// Where a new board stands: beside the twin on the patient's right (the viewer's left as
/// they face the patient), its centre level with the twin's, turned so that the image reads
/// as the file's Patient Orientation says (`L\F`, a PA chest as displayed: the rows run to the
/// patient's left, the columns to the feet, and the board faces a viewer in front of the
/// patient). Without an orientation it is shown the same way. Its width is its real width when
/// the spacing is known, else the twin's head–feet extent. Returns the pose and width in mm.
#[must_use]
pub fn default_board_pose(
    geometry: &Geometry,
    image: &ImageBlob,
    patient_orientation: Option<&(String, String)>,
) -> (Pose, f32) {
    let corners = geometry.corners_mm();
    let lo = corners
        .iter()
        .fold(DVec3::splat(f64::INFINITY), |a, &c| a.min(c));
    let hi = corners
        .iter()
        .fold(DVec3::splat(f64::NEG_INFINITY), |a, &c| a.max(c));
    let centre = (lo + hi) * 0.5;
    let extent = hi - lo;
    let natural = image.natural_size_mm().as_dvec2();
    let width_mm = match image.spacing {
        PixelSpacing::Known { .. } if image.spacing.is_valid() => natural.x,
        _ => extent.z.max(100.0) * natural.x / natural.y.max(1.0),
    };
    let height_mm = width_mm * natural.y / natural.x.max(1.0);
    let (row, down) = patient_orientation
        .and_then(|(r, c)| Some((direction(r)?, direction(c)?)))
        .filter(|(r, c)| r.cross(*c).length() > 0.5)
        .unwrap_or((DVec3::X, -DVec3::Z));
    let up = -down;
    let normal = row.cross(up).normalize();
    let rotation = DQuat::from_mat3(&DMat3::from_cols(row, up, normal)).normalize();
    let gap_mm = 0.1 * extent.x.max(50.0);
    let position = DVec3::new(
        lo.x - gap_mm - 0.5 * width_mm.max(height_mm) * row.x.abs().max(normal.x.abs()),
        centre.y,
        centre.z,
    );
    #[allow(clippy::cast_possible_truncation)]
    (
        Pose {
            position_mm: position.as_vec3(),
            orientation: Quat::from_xyzw(
                rotation.x as f32,
                rotation.y as f32,
                rotation.z as f32,
                rotation.w as f32,
            ),
        },
        width_mm as f32,
    )
}

/// A board image decoded for drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Straight-alpha RGBA, row by row from the top.
    pub rgba: Arc<Vec<u8>>,
    /// Its size in board millimetres ([`ImageBlob::natural_size_mm`]).
    pub natural_size_mm: Vec2,
    /// Its spacing, for the words beside a measurement on it.
    pub spacing: PixelSpacing,
}

/// The board images a player can show, decoded on first use and kept.
#[derive(Debug, Default)]
pub struct BoardImages {
    decoded: HashMap<ImageHash, Arc<DecodedImage>>,
    /// Images placed during a live session, to record again when a new recording starts.
    live: HashMap<ImageHash, ImageBlob>,
    failed: HashSet<ImageHash>,
}

impl BoardImages {
    /// Keeps an image placed now (live), decoded.
    ///
    /// # Errors
    /// When its pixels do not decode (never for an image [`load_board_image`] made).
    pub fn add_live(&mut self, blob: &ImageBlob) -> Result<(), SceneError> {
        let decoded = decode(blob).map_err(SceneError::Board)?;
        self.decoded.insert(blob.hash, Arc::new(decoded));
        self.live.insert(blob.hash, blob.clone());
        Ok(())
    }

    /// An image placed live, to record again.
    #[must_use]
    pub fn live_blob(&self, hash: &ImageHash) -> Option<&ImageBlob> {
        self.live.get(hash)
    }

    /// Decodes the images of the boards `scene` shows that are not decoded yet, from
    /// `player`'s lesson. Returns a warning for each image that cannot be shown (said once);
    /// its board is left out.
    pub fn sync(&mut self, scene: &SceneState, mut player: Option<&mut Player>) -> Vec<String> {
        let mut warnings = Vec::new();
        for board in scene.boards.values() {
            let hash = board.image;
            if self.decoded.contains_key(&hash) || self.failed.contains(&hash) {
                continue;
            }
            let decoded = player
                .as_deref_mut()
                .ok_or_else(|| "it was not given to this session".to_owned())
                .and_then(|p| {
                    p.image(&hash)
                        .ok_or_else(|| "its chunk is missing or damaged".to_owned())
                })
                .and_then(|blob| decode(&blob));
            match decoded {
                Ok(d) => {
                    self.decoded.insert(hash, Arc::new(d));
                }
                Err(why) => {
                    self.failed.insert(hash);
                    warnings.push(format!(
                        "the board \"{}\" cannot be shown: its image {} {why}",
                        board.title,
                        &hash.to_hex()[..12]
                    ));
                }
            }
        }
        warnings
    }

    /// A decoded image.
    #[must_use]
    pub fn get(&self, hash: &ImageHash) -> Option<&Arc<DecodedImage>> {
        self.decoded.get(hash)
    }

    /// Each shown board's transform from board mm to patient mm, for the boards whose image
    /// is decoded.
    #[must_use]
    pub fn frames(&self, scene: &SceneState) -> BoardFrames {
        let mut out = BoardFrames::default();
        for (&id, board) in &scene.boards {
            if let Some(image) = self.decoded.get(&board.image) {
                let m = board.patient_from_board(image.natural_size_mm);
                out.boards.insert(
                    id,
                    BoardFrame {
                        patient_from_board: m.as_dmat4(),
                        half_size_mm: (image.natural_size_mm * 0.5).as_dvec2(),
                        image: board.image,
                        spacing: image.spacing,
                        picture: image.clone(),
                    },
                );
            }
        }
        out
    }
}

fn decode(blob: &ImageBlob) -> Result<DecodedImage, String> {
    let pixels = blob.pixels().map_err(|e| e.to_string())?;
    let rgba = match blob.format {
        PixelFormat::Grey8 => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        PixelFormat::Rgba8 => pixels,
    };
    Ok(DecodedImage {
        width: blob.width,
        height: blob.height,
        rgba: Arc::new(rgba),
        natural_size_mm: blob.natural_size_mm(),
        spacing: blob.spacing,
    })
}

/// Where one shown board is.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardFrame {
    /// Board mm ([`twinray_lessons::event::Space::Board`]) to patient mm.
    pub patient_from_board: DMat4,
    /// Half its width and height in board mm.
    pub half_size_mm: glam::DVec2,
    /// Its image.
    pub image: ImageHash,
    /// Its image's spacing.
    pub spacing: PixelSpacing,
    /// Its pixels.
    pub picture: Arc<DecodedImage>,
}

/// The shown boards' frames, by board id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoardFrames {
    /// By board id.
    pub boards: std::collections::BTreeMap<u32, BoardFrame>,
}

impl BoardFrames {
    /// The transform from `space` to patient mm: `None` for a board not shown (or whose
    /// image is not decoded), and for stage space (the caller knows the twin's pose).
    #[must_use]
    pub fn patient_from(&self, board_id: u32) -> Option<DMat4> {
        self.boards.get(&board_id).map(|b| b.patient_from_board)
    }

    /// Where a pixel ray from `origin` along `dir` (patient mm) meets a shown board first:
    /// the board, the distance along the ray, and the point in board mm. For the pen drawing
    /// on a board and a measurement placed on one.
    #[must_use]
    pub fn hit(&self, origin: DVec3, dir: DVec3) -> Option<(u32, f64, Vec3)> {
        let mut best: Option<(u32, f64, Vec3)> = None;
        for (&id, b) in &self.boards {
            let board_from_patient = b.patient_from_board.inverse();
            let o = board_from_patient.transform_point3(origin);
            let d = board_from_patient.transform_vector3(dir);
            if d.z.abs() < 1e-12 {
                continue;
            }
            let s = -o.z / d.z;
            if s <= 0.0 {
                continue;
            }
            let p = o + d * s;
            if p.x.abs() > b.half_size_mm.x || p.y.abs() > b.half_size_mm.y {
                continue;
            }
            // `s` is in units of `dir`: the same distance in patient mm for every board.
            if best.is_none_or(|(_, t, _)| s < t) {
                best = Some((id, s, p.as_vec3()));
            }
        }
        best
    }

    /// The board a pen tip at `point` (patient mm) touches: the nearest one whose plane lies
    /// within `within_mm` of it (in front or just behind) with the tip over its image, and the
    /// tip's projection onto it in board mm. `only` restricts it to one board (a stroke stays
    /// on the board it began on). For drawing on a board with a pen held in the hand.
    #[must_use]
    pub fn touch(&self, point: DVec3, within_mm: f64, only: Option<u32>) -> Option<(u32, Vec3)> {
        let mut best: Option<(u32, f64, Vec3)> = None;
        for (&id, b) in &self.boards {
            if only.is_some_and(|o| o != id) {
                continue;
            }
            let board_from_patient = b.patient_from_board.inverse();
            let o = board_from_patient.transform_point3(point);
            // Board mm may be scaled against patient mm: measure the gap in patient mm.
            let gap_mm = (b.patient_from_board.transform_point3(o.with_z(0.0)) - point).length();
            if gap_mm > within_mm || o.x.abs() > b.half_size_mm.x || o.y.abs() > b.half_size_mm.y {
                continue;
            }
            if best.is_none_or(|(_, g, _)| gap_mm < g) {
                best = Some((id, gap_mm, o.with_z(0.0).as_vec3()));
            }
        }
        best.map(|(id, _, p)| (id, p))
    }
}

/// A board moved by hand records its pose at most this often (lesson time), plus its final
/// pose on release: a second's drag is about ten events, not one per frame, and a replay still
/// shows it glide (players interpolate nothing, so 10 Hz is the smoothness a learner sees).
pub const BOARD_DRAG_RECORD_INTERVAL_NS: i64 = 100_000_000;

/// The narrowest and widest a board can be made by hand or by button, mm.
pub const BOARD_WIDTH_RANGE_MM: (f32, f32) = (10.0, 5000.0);

/// A board held by a hand (the desktop's mouse, a controller's grip): where it was when
/// grabbed, and when its pose was last recorded, so that a drag shows every frame but records
/// at [`BOARD_DRAG_RECORD_INTERVAL_NS`] and its last pose. The desktop and VR share it, so a
/// board moved either way is recorded the same.
#[derive(Debug, Clone)]
pub struct BoardDrag {
    /// The board held.
    pub board_id: u32,
    grabbed: Pose,
    grabbed_width_mm: f32,
    last_recorded_ns: Option<i64>,
    /// The change last shown, when it was not recorded.
    unrecorded: Option<SceneChange>,
}

impl BoardDrag {
    /// Holds `board` (the state of board `board_id`) as it is now.
    #[must_use]
    pub fn grab(board_id: u32, board: &BoardState) -> Self {
        Self {
            board_id,
            grabbed: board.pose,
            grabbed_width_mm: board.width_mm,
            last_recorded_ns: None,
            unrecorded: None,
        }
    }

    /// The board moved rigidly by `motion` since it was grabbed (its grabbed pose turned by
    /// `motion.orientation` about the origin, then shifted by `motion.position_mm`; patient
    /// mm) and its width scaled by `scale` (kept within [`BOARD_WIDTH_RANGE_MM`]; a scale that
    /// is not a positive finite number leaves the width). Returns the change that shows it and
    /// whether to record it now: the first move, then at most every
    /// [`BOARD_DRAG_RECORD_INTERVAL_NS`] of `now_ns`.
    pub fn moved(&mut self, motion: Pose, scale: f32, now_ns: i64) -> (SceneChange, bool) {
        let turn = if motion.orientation.is_finite() && motion.orientation.length() > 0.5 {
            motion.orientation.normalize()
        } else {
            Quat::IDENTITY
        };
        let shift = if motion.position_mm.is_finite() {
            motion.position_mm
        } else {
            Vec3::ZERO
        };
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let change = SceneChange::BoardPose {
            board_id: self.board_id,
            pose: Pose {
                position_mm: turn * self.grabbed.position_mm + shift,
                orientation: (turn * self.grabbed.orientation).normalize(),
            },
            width_mm: (self.grabbed_width_mm * scale)
                .clamp(BOARD_WIDTH_RANGE_MM.0, BOARD_WIDTH_RANGE_MM.1),
        };
        let record = self
            .last_recorded_ns
            .is_none_or(|t| now_ns - t >= BOARD_DRAG_RECORD_INTERVAL_NS);
        if record {
            self.last_recorded_ns = Some(now_ns);
            self.unrecorded = None;
        } else {
            self.unrecorded = Some(change.clone());
        }
        (change, record)
    }

    /// Lets go: the last pose shown, to record, when it was not recorded yet.
    #[must_use]
    pub fn release(self) -> Option<SceneChange> {
        self.unrecorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_letters_give_lps_directions() {
        assert_eq!(direction("L"), Some(DVec3::X));
        assert_eq!(direction("F"), Some(-DVec3::Z));
        let lf = direction("LF").expect("oblique");
        assert!((lf - DVec3::new(1.0, 0.0, -1.0).normalize()).length() < 1e-12);
        assert_eq!(direction("Q"), None);
    }

    #[test]
    fn a_pa_chest_board_faces_a_viewer_in_front_of_the_patient_and_stands_on_their_right() {
        let geometry =
            Geometry::new([100, 100, 100], DMat4::IDENTITY).expect("grid of 1 mm voxels");
        let image = ImageBlob::encode(
            200,
            100,
            PixelFormat::Grey8,
            PixelSpacing::Known {
                row_mm: 1.0,
                col_mm: 1.0,
                at_detector: false,
            },
            &vec![128; 200 * 100],
        )
        .expect("image");
        let orientation = ("L".to_owned(), "F".to_owned());
        let (pose, width) = default_board_pose(&geometry, &image, Some(&orientation));
        assert!((width - 200.0).abs() < 1e-3, "real width: {width}");
        let q = pose.orientation.as_dquat();
        // Image +x runs to the patient's left, image up to the head, and the board's normal
        // points anterior (−y in LPS), towards a viewer facing the patient.
        assert!((q * DVec3::X - DVec3::X).length() < 1e-6);
        assert!((q * DVec3::Y - DVec3::Z).length() < 1e-6);
        assert!((q * DVec3::Z + DVec3::Y).length() < 1e-6);
        assert!(
            pose.position_mm.x < 0.0,
            "on the patient's right (−x): {pose:?}"
        );
    }

    #[test]
    fn halving_averages_blocks() {
        let (w, h, p) = halve(2, 2, PixelFormat::Grey8, &[0, 100, 200, 100]);
        assert_eq!((w, h), (1, 1));
        assert_eq!(p, vec![100]);
    }

    #[test]
    fn a_drag_records_at_its_interval_and_its_last_pose_on_release() {
        let board = BoardState {
            image: ImageHash([0; 32]),
            title: "X-ray 1".into(),
            pose: Pose {
                position_mm: Vec3::new(100.0, 0.0, 0.0),
                orientation: Quat::IDENTITY,
            },
            width_mm: 300.0,
        };
        let mut drag = BoardDrag::grab(1, &board);
        let ms = 1_000_000;
        let mut recorded = 0;
        let mut last = None;
        // One second at 60 frames a second, moving 1 mm a frame along z.
        for frame in 0..60 {
            let motion = Pose {
                position_mm: Vec3::new(0.0, 0.0, frame as f32),
                orientation: Quat::IDENTITY,
            };
            let (change, record) = drag.moved(motion, 1.0, frame * 16 * ms);
            recorded += usize::from(record);
            last = Some(change);
        }
        assert!((9..=11).contains(&recorded), "{recorded}");
        let Some(SceneChange::BoardPose { pose, width_mm, .. }) = drag.clone().release() else {
            panic!("the last pose is recorded on release");
        };
        assert_eq!(
            Some(SceneChange::BoardPose {
                board_id: 1,
                pose,
                width_mm
            }),
            last
        );
        assert_eq!(pose.position_mm, Vec3::new(100.0, 0.0, 59.0));
        // Turned a quarter about z (rigidly, about the patient origin) and twice as wide.
        let turn = Pose {
            position_mm: Vec3::ZERO,
            orientation: Quat::from_rotation_z(std::f32::consts::FRAC_PI_2),
        };
        let (change, record) = drag.moved(turn, 2.0, 2000 * ms);
        assert!(record);
        let SceneChange::BoardPose { pose, width_mm, .. } = change else {
            panic!("a pose");
        };
        assert!((pose.position_mm - Vec3::new(0.0, 100.0, 0.0)).length() < 1e-3);
        assert!((width_mm - 600.0).abs() < 1e-3);
        assert!(drag.release().is_none(), "recorded already");
    }
}
