//! The studio's state apart from its drawing.
//!
//! Everything the user can do is an [`Action`] handed to [`App::apply`]: the window turns mouse
//! and panel input into actions, tests send them directly. Scene edits go through the lessons
//! crate's [`SceneChange`] so that what the view shows and what a recording holds are the same
//! thing; while recording, each change, the desktop camera (the instructor's head), pen strokes
//! and chapter marks are handed to the real [`Recorder`]. The microphone is recorded beside
//! them on a voice thread (`twinray_voice`) on the same lesson clock; a replayed lesson's
//! narration plays through the speakers following the playhead.

pub mod case;
pub mod library;
pub mod mpr;
pub mod scene_bridge;
pub mod segment_job;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use glam::{DMat3, DMat4, DQuat, DVec3, Quat, Vec3};
use twinray_io::{LabelNames, LabelVolume};
use twinray_lessons::event::{
    Brush, Chapter, ClipPlane as SceneClip, CropBox as SceneCrop, Event, LabelMapBlob,
    LabelMapHash, Note, Payload, Pose, SceneChange, Space, StrokeBegin, StrokePoint, StrokeStyle,
    TransferPoint,
};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::player::Player;
use twinray_lessons::recorder::{Recorder, RecorderOptions, RecordingReport};
use twinray_lessons::state::{LabelState, LessonState, SceneState, WindowLevel};
use twinray_lessons::tools::ChapterInfo;
use twinray_renderer::{Camera, RenderOptions};
use twinray_scene::annotations::{Annotations, TeachingTools};
use twinray_scene::boards::{BoardDrag, BoardFrames, BOARD_WIDTH_RANGE_MM};
use twinray_scene::builder::{orbit_camera, DEFAULT_FOV_DEG};
use twinray_scene::{FrameInputs, LabelMaps, LearnerView, OrbitView, SceneBuilder, ShownLabels};
use twinray_transfer_functions::{Palette, Preset, TransferFunction};
use twinray_voice::capture::VoiceCapture;
use twinray_voice::clock::LessonClock;
use twinray_voice::device::MicrophoneSource;
use twinray_voice::narration::NarrationStats;
use twinray_voice::output::NarrationOutput;
use twinray_voice::playback::NarrationPlayer;
use twinray_voice::source::VoiceSource;
use twinray_voice::VoiceError;

use case::OpenCase;
use segment_job::{JobOutcome, SegmentationJob};

/// Interval between recorded head poses while the camera is still: the player treats a head
/// without samples nearby as untracked.
const HEAD_INTERVAL_NS: i64 = 33_000_000;
/// Pen points closer than this to the previous one are not recorded.
const MIN_PEN_STEP_MM: f32 = 0.5;
/// Default MPR window/level: a bone window, for the spine lessons the demo is made for.
pub const DEFAULT_WINDOW: WindowLevel = WindowLevel {
    centre_hu: 400.0,
    width_hu: 1800.0,
};

pub use twinray_scene::annotations::MeasureTool;

/// Pen settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PenStyle {
    /// sRGB colour and alpha.
    pub colour_rgba: [u8; 4],
    /// Width in millimetres.
    pub width_mm: f32,
}

/// A stroke drawn in this session (shown while authoring).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthoredStroke {
    /// Id, unique in the session.
    pub stroke_id: u32,
    /// Look.
    pub style: PenStyle,
    /// Where it is drawn: on the anatomy, or on an X-ray board.
    pub space: Space,
    /// Points in mm of `space` (patient mm, or board mm).
    pub points_mm: Vec<Vec3>,
}

/// Which microphone a recording uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VoiceInput {
    /// No voice.
    Off,
    /// The system's default input.
    #[default]
    Default,
    /// An input device by name (as `twinray_voice::device::input_device_names` lists them).
    Device(String),
}

/// Opens the voice source of a recording in place of the microphone (tests, a file).
pub struct VoiceSourceFactory(pub Box<dyn Fn() -> Result<Box<dyn VoiceSource>, VoiceError>>);

impl std::fmt::Debug for VoiceSourceFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceSourceFactory")
    }
}

/// A recording in progress.
#[derive(Debug)]
pub struct Recording {
    recorder: Recorder,
    /// The lesson clock the voice thread reads (paused with the recording).
    clock: LessonClock,
    /// The voice capture, when a microphone opened.
    voice: Option<VoiceCapture>,
    /// What the window says about the voice: the device, or why there is none.
    pub voice_status: String,
    /// App time when recording started.
    started_ns: i64,
    /// App time when paused, if paused.
    paused_at_ns: Option<i64>,
    /// Total paused time so far.
    paused_total_ns: i64,
    last_head_ns: i64,
    /// Chapters marked so far (lesson time, title).
    pub chapters: Vec<ChapterInfo>,
    /// Events handed to the recorder.
    pub event_count: u64,
}

impl Recording {
    /// The lesson file.
    pub fn path(&self) -> &Path {
        self.recorder.path()
    }

    /// Whether paused.
    pub fn is_paused(&self) -> bool {
        self.paused_at_ns.is_some()
    }

    /// Whether the voice is being captured.
    pub fn has_voice(&self) -> bool {
        self.voice.is_some()
    }

    /// The microphone's peak level, 0..1 (0 without voice).
    pub fn voice_level(&self) -> f32 {
        self.voice.as_ref().map_or(0.0, VoiceCapture::level)
    }

    /// Why the microphone stopped delivering, if it did.
    pub fn voice_problem(&self) -> Option<String> {
        self.voice.as_ref().and_then(VoiceCapture::problem)
    }

    /// Lesson time at app time `now_ns`: paused stretches are cut out.
    pub fn lesson_time_ns(&self, now_ns: i64) -> i64 {
        self.paused_at_ns.unwrap_or(now_ns) - self.started_ns - self.paused_total_ns
    }
}

/// A lesson being replayed.
pub struct Replay {
    player: Player,
    /// The lesson file.
    pub path: PathBuf,
    /// First and last event time.
    pub range_ns: (i64, i64),
    /// Playhead.
    pub time_ns: i64,
    /// Playing or paused.
    pub playing: bool,
    /// Playback speed (1 = real time).
    pub speed: f64,
    /// Chapters in time order.
    pub chapters: Vec<ChapterInfo>,
    /// The learner's camera follows the instructor's head instead of orbiting freely.
    pub follow_instructor: bool,
    /// The lesson's state at the playhead.
    pub state: LessonState,
    /// Label maps a segmentation made during the lesson, when it holds any.
    label_maps: Option<LabelMaps>,
    /// The labels the lesson shows at the playhead (`None`: the case's own).
    shown_labels: Option<ShownLabels>,
    /// Boards and measurements of the lesson, drawn on the case.
    tools: TeachingTools,
    /// The case's image and labels, for measurement values.
    ct: Arc<twinray_io::CtVolume>,
    case_labels: Option<Arc<LabelVolume>>,
    /// The boards and measurements at the playhead.
    teaching: (Annotations, BoardFrames),
    /// Board images that cannot be shown, to say once.
    board_warnings: Vec<String>,
    /// The narration playing through the speakers, when the lesson has one and an output
    /// opened.
    narration: Option<NarrationOutput>,
    /// What the window says about the narration (where it plays, why it does not, which
    /// seconds were lost); `None` for a lesson without narration.
    pub narration_status: Option<String>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("path", &self.path)
            .field("time_ns", &self.time_ns)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// Problems the player met (damaged chunks), for the status line.
    pub fn problems(&self) -> Vec<String> {
        self.player.problems().values().cloned().collect()
    }

    fn seek(&mut self, time_ns: i64) {
        self.time_ns = time_ns.clamp(self.range_ns.0, self.range_ns.1);
        self.state = self.player.state_at(self.time_ns);
        if let Some(maps) = &mut self.label_maps {
            self.shown_labels =
                Some(maps.resolve(self.state.scene.label_map, Some(&mut self.player)));
        }
        let labels = match &self.shown_labels {
            Some(shown) => shown.labels.as_deref(),
            None => self.case_labels.as_deref(),
        };
        let (annotations, boards, warnings) =
            self.tools
                .teach(&self.state, Some(&mut self.player), Some(&self.ct), labels);
        self.teaching = (annotations, boards);
        self.board_warnings.extend(warnings);
    }

    /// Why a label map of the lesson cannot be shown, said once.
    fn take_label_warning(&mut self) -> Option<String> {
        self.shown_labels.as_mut().and_then(|s| s.warning.take())
    }

    /// Warnings about the lesson's labels and boards, each once.
    fn take_warnings(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self.take_label_warning().into_iter().collect();
        out.append(&mut self.board_warnings);
        out
    }
}

/// Everything a user can do in the studio.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Time passes (app-relative nanoseconds, monotonic): advances replay, samples the head.
    Tick {
        /// Now.
        now_ns: i64,
    },
    /// Orbit the camera by these angles.
    Orbit {
        /// Degrees around the head–feet axis.
        d_azimuth_deg: f64,
        /// Degrees towards the head.
        d_elevation_deg: f64,
    },
    /// Move the orbited point in the image plane, as fractions of the view's height.
    Pan {
        /// Rightwards.
        right: f64,
        /// Upwards.
        up: f64,
    },
    /// Move closer (factor > 1) or away.
    Zoom {
        /// Distance divisor.
        factor: f64,
    },
    /// Back to the view that frames the whole case.
    ResetView,
    /// Choose a transfer-function preset (its own curve replaces an edited one).
    SetPreset(String),
    /// Show or hide a label.
    SetLabelVisible {
        /// Label id.
        label: u16,
        /// Shown?
        visible: bool,
    },
    /// Recolour a label (sRGB).
    SetLabelColour {
        /// Label id.
        label: u16,
        /// Colour.
        colour_rgb: [u8; 3],
    },
    /// Set a label's opacity.
    SetLabelOpacity {
        /// Label id.
        label: u16,
        /// 0 to 1.
        opacity: f32,
    },
    /// Show only this label (unlabelled tissue hidden too).
    Isolate(u16),
    /// Show every label and the unlabelled tissue.
    ShowAllLabels,
    /// Filter the label list by name.
    SetLabelSearch(String),
    /// Move a curve control point (kept between its neighbours).
    MoveCurvePoint {
        /// Point index.
        index: usize,
        /// New density.
        density_hu: f32,
        /// New opacity.
        opacity: f32,
    },
    /// Recolour a curve control point (linear RGB, 0 to 1).
    SetCurvePointColour {
        /// Point index.
        index: usize,
        /// Colour.
        rgb: [f32; 3],
    },
    /// Add a control point on the curve at a density (colour and opacity interpolated).
    AddCurvePoint {
        /// Density.
        density_hu: f32,
    },
    /// Remove a control point (at least two stay).
    RemoveCurvePoint(usize),
    /// Set or remove the clip plane.
    SetClipPlane(Option<SceneClip>),
    /// Set or remove the crop box.
    SetCropBox(Option<SceneCrop>),
    /// Move the MPR crosshair (patient mm).
    SetCrosshair(DVec3),
    /// MPR window/level.
    SetWindowLevel(WindowLevel),
    /// Pen colour and width for the next strokes.
    SetPenStyle(PenStyle),
    /// Pen down at the picked surface point (`None`: the mouse is over empty space).
    PenDown(Option<DVec3>),
    /// Pen moved to a picked surface point.
    PenMove(Option<DVec3>),
    /// Pen lifted.
    PenUp,
    /// Start recording a lesson to a file.
    StartRecording(PathBuf),
    /// Pause or resume recording.
    PauseRecording,
    /// Resume recording.
    ResumeRecording,
    /// Stop and finalise the lesson.
    StopRecording,
    /// Mark a chapter at the current lesson time.
    AddChapter(String),
    /// Open a lesson to replay on the open case; refused when the lesson names another case
    /// (the one policy of `twinray_scene::lesson`: a lesson replays on the case it was taught on).
    OpenLesson(PathBuf),
    /// Open a lesson on the open case whatever case it names: for a front end that has already
    /// chosen the case by that policy (`twinray studio LESSON`, with or without --force-case).
    OpenLessonOnThisCase(PathBuf),
    /// Back to authoring.
    CloseLesson,
    /// Start playback.
    Play,
    /// Pause playback.
    Pause,
    /// Move the playhead.
    Seek(i64),
    /// Playback speed.
    SetSpeed(f64),
    /// Move the playhead to a chapter's start.
    JumpToChapter(usize),
    /// Follow the instructor's head, or orbit freely.
    SetFollowInstructor(bool),
    /// Put an image (a DICOM radiograph, PNG or JPEG) on a board beside the twin; recorded.
    AddBoard(PathBuf),
    /// Move a board by `offset_mm` (patient mm) and scale its width by `scale` (recorded; its
    /// strokes and measurements go with it).
    MoveBoard {
        /// The board.
        board_id: u32,
        /// How far, patient mm.
        offset_mm: Vec3,
        /// Width factor (1: unchanged).
        scale: f32,
    },
    /// Take a board away (recorded).
    HideBoard(u32),
    /// Take hold of a board at `grip_mm` (patient mm, a point of it under the pointer) to move
    /// it by hand; records nothing yet.
    GrabBoard {
        /// The board.
        board_id: u32,
        /// Where the pointer holds it.
        grip_mm: DVec3,
    },
    /// Move the board held: the point held follows the pointer's ray (`ray_origin_mm`,
    /// `ray_dir`, patient mm) in the plane through it facing the camera, and its width is
    /// `scale` times its width when grabbed. Shown at once, recorded at most every
    /// [`twinray_scene::boards::BOARD_DRAG_RECORD_INTERVAL_NS`].
    DragBoard {
        /// Where the pointer's ray starts.
        ray_origin_mm: DVec3,
        /// Its direction (any length).
        ray_dir: DVec3,
        /// Width factor since the grab (1: unchanged).
        scale: f32,
    },
    /// Let go of the board held: its final pose is recorded.
    ReleaseBoard,
    /// The pen touches an X-ray board at `point_mm` (board mm: x along the image's columns,
    /// y up, from its centre) and starts a stroke there.
    PenDownOnBoard {
        /// The board.
        board_id: u32,
        /// Where on it.
        point_mm: Vec3,
    },
    /// The pen moves on a board (continues a stroke started on that board).
    PenMoveOnBoard {
        /// The board.
        board_id: u32,
        /// Where on it.
        point_mm: Vec3,
    },
    /// Choose what clicks on the anatomy measure (`None`: they do not).
    SetMeasureTool(Option<MeasureTool>),
    /// A click of the measure tool on the anatomy (`None`: it missed the surface).
    MeasurePoint(Option<DVec3>),
    /// A click of the measure tool on an X-ray board, at `point_mm` (board mm).
    MeasurePointOnBoard {
        /// The board.
        board_id: u32,
        /// Where on it.
        point_mm: Vec3,
    },
    /// Hide every measurement shown (recorded).
    ClearMeasurements,
    /// Segment the open case's CT in the background; its labels replace the case's when it
    /// finishes.
    StartSegmentation {
        /// Model description (.json) or ONNX file with its .json beside it; the built-in
        /// model when `None`.
        model: Option<PathBuf>,
    },
    /// Stop the running segmentation; the case keeps its labels.
    CancelSegmentation,
    /// The microphone for the next recording.
    SetVoiceInput(VoiceInput),
    /// Mute or unmute the microphone (the recording keeps time with silence).
    SetVoiceMuted(bool),
    /// Narration volume during replay, 0..1.
    SetNarrationVolume(f32),
    /// Mute or unmute the narration during replay.
    SetNarrationMuted(bool),
    /// Bundle the last recorded lesson with the open case and add it to the library.
    SaveToLibrary {
        /// Its title (the lesson's file name when empty).
        title: String,
        /// A PNG of the view, the library's thumbnail.
        thumbnail_png: Option<Vec<u8>>,
    },
    /// Search the library; the hits go to [`App::library_hits`].
    SearchLibrary(String),
    /// Open a library lesson at a time, in seconds from its start.
    OpenFromLibrary {
        /// The lesson's library id.
        id: String,
        /// Where to start.
        at_s: f64,
    },
}

/// Names the labels on the GPU: the app's labels revision, and the lesson's label map shown
/// (`None`: the case's own).
pub type LabelsKey = (u64, Option<LabelMapHash>);

/// The studio's state.
#[derive(Debug)]
pub struct App {
    /// The open case.
    pub case: OpenCase,
    /// The authored scene: what the view shows while authoring, and what recordings start from.
    pub scene: SceneState,
    /// The desktop camera (the learner's own camera while replaying).
    pub view: OrbitView,
    /// Turns the scene on screen into render inputs, as for replay and VR; keeps its parsed
    /// presets and warnings between frames.
    builder: RefCell<SceneBuilder>,
    /// Boards and measurements of the authored scene (board images placed in this session).
    tools: RefCell<TeachingTools>,
    /// What clicks on the anatomy measure.
    pub measure_tool: Option<MeasureTool>,
    /// The points of the measurement being placed.
    pub measure_points: Vec<(Space, Vec3)>,
    /// The board being moved by hand: the drag, the point held (patient mm) and the normal of
    /// the plane it moves in (the camera's view direction at the grab).
    board_drag: Option<(BoardDrag, DVec3, DVec3)>,
    /// Text of the label search box.
    pub label_search: String,
    /// Pen style.
    pub pen: PenStyle,
    /// Strokes drawn in this session.
    pub strokes: Vec<AuthoredStroke>,
    active_stroke: Option<usize>,
    next_stroke_id: u32,
    /// The recording in progress.
    pub recording: Option<Recording>,
    /// What the last finished recording reported.
    pub last_recording: Option<RecordingReport>,
    /// The lesson being replayed.
    pub replay: Option<Replay>,
    /// App time of the last tick.
    pub now_ns: i64,
    /// Bumped whenever the 3D image must be rendered again.
    pub view_revision: u64,
    /// Bumped whenever the MPR slices must be sampled again.
    pub mpr_revision: u64,
    /// Bumped whenever the case's label map is replaced (the renderer uploads it again).
    pub labels_revision: u64,
    /// The segmentation running in the background.
    pub segmentation: Option<SegmentationJob>,
    /// The label map the last segmentation put in place, stored into lessons by hash.
    live_label_map: Option<LabelMapBlob>,
    /// What a background job last reported (finished, cancelled, failed), for the status bar;
    /// the window takes it.
    pub notice: Option<String>,
    palette: Palette,
    /// The instant app time 0 stands for.
    pub epoch: Instant,
    /// The microphone recordings use.
    pub voice_input: VoiceInput,
    /// Record silence in place of the microphone (keeps time).
    pub voice_muted: bool,
    /// Opens the voice source instead of the microphone, when set.
    pub voice_source: Option<VoiceSourceFactory>,
    /// What the last recording's voice thread did.
    pub last_voice: Option<NarrationStats>,
    /// Narration volume, 0..1.
    pub narration_volume: f32,
    /// Narration muted.
    pub narration_muted: bool,
    /// The lesson library (`--library`, `TWINRAY_LIBRARY`, or the user's data folder);
    /// `None` when there is nowhere to keep one.
    pub library_root: Option<twinray_library::Location>,
    /// The last library search's hits.
    pub library_hits: Vec<twinray_library::Hit>,
}

impl App {
    /// The studio on a case, authoring, with the default scene.
    ///
    /// App time (`now_ns` of [`Action::Tick`]) counts from [`Self::epoch`]: the window ticks
    /// with `epoch.elapsed()`, so the voice thread can place captured sound on the same clock.
    pub fn new(case: OpenCase) -> Self {
        let view = OrbitView::default();
        let builder = RefCell::new(SceneBuilder::with_intensity(
            *case.ct.geometry(),
            case.intensity,
        ));
        let mr = case.intensity.modality == twinray_io::Modality::Mr;
        let modality = case.intensity.modality;
        // A CT opens on the bone window the demo's spine lessons expect; an MR on its own
        // window (its DICOM window, else the 0.1–99.9th percentiles).
        let [low, high] = case.intensity.window;
        let mut scene = SceneState {
            preset: Some(Preset::default_for(case.intensity.modality).to_owned()),
            window_level: Some(if mr {
                WindowLevel {
                    centre_hu: 0.5 * (low + high),
                    width_hu: high - low,
                }
            } else {
                DEFAULT_WINDOW
            }),
            ..SceneState::default()
        };
        scene.mpr_slices_mm = Some(case.ct.geometry().centre_mm().as_vec3());
        Self {
            case,
            scene,
            view,
            builder,
            tools: RefCell::new(
                TeachingTools::new(LabelNames::totalsegmentator_for(modality)).without_pen_names(),
            ),
            measure_tool: None,
            measure_points: Vec::new(),
            board_drag: None,
            label_search: String::new(),
            pen: PenStyle {
                colour_rgba: [255, 0, 255, 255],
                width_mm: 2.0,
            },
            strokes: Vec::new(),
            active_stroke: None,
            next_stroke_id: 1,
            recording: None,
            last_recording: None,
            replay: None,
            now_ns: 0,
            view_revision: 1,
            mpr_revision: 1,
            labels_revision: 1,
            segmentation: None,
            live_label_map: None,
            notice: None,
            palette: if mr {
                Palette::totalsegmentator_mr()
            } else {
                Palette::totalsegmentator()
            },
            epoch: Instant::now(),
            voice_input: VoiceInput::Default,
            voice_muted: false,
            voice_source: None,
            last_voice: None,
            narration_volume: 1.0,
            narration_muted: false,
            library_root: twinray_library::location(None).ok(),
            library_hits: Vec::new(),
        }
    }

    /// The instant of app time `app_ns`.
    pub fn instant_of(&self, app_ns: i64) -> Instant {
        self.epoch + Duration::from_nanos(u64::try_from(app_ns).unwrap_or(0))
    }

    /// Applies one action. Errors (a file that cannot be written or read, an action that does
    /// not fit the mode) leave the state as it was.
    pub fn apply(&mut self, action: Action) -> Result<()> {
        match action {
            Action::Tick { now_ns } => self.tick(now_ns),
            Action::Orbit {
                d_azimuth_deg,
                d_elevation_deg,
            } => {
                self.view.azimuth_deg = (self.view.azimuth_deg + d_azimuth_deg).rem_euclid(360.0);
                self.view.elevation_deg =
                    (self.view.elevation_deg + d_elevation_deg).clamp(-89.0, 89.0);
                self.camera_moved();
            }
            Action::Pan { right, up } => {
                let geometry = self.case.ct.geometry();
                let cam = orbit_camera(geometry, &self.view, [1, 1]);
                let view_height_mm = 2.0
                    * self.view.distance_mm(geometry)
                    * (DEFAULT_FOV_DEG.to_radians() / 2.0).tan();
                let r = cam.world_from_view.x_axis.truncate();
                let u = cam.world_from_view.y_axis.truncate();
                self.view.pan_mm -= (r * right + u * up) * view_height_mm;
                self.camera_moved();
            }
            Action::Zoom { factor } => {
                if !(factor.is_finite() && factor > 0.0) {
                    bail!("zoom factor {factor} is not a positive number");
                }
                // From a tenth of the framing distance to twenty times closer.
                self.view.zoom = (self.view.zoom * factor).clamp(0.1, 20.0);
                self.camera_moved();
            }
            Action::ResetView => {
                self.view = OrbitView::default();
                self.camera_moved();
            }
            Action::SetPreset(name) => {
                Preset::load(&name).with_context(|| format!("preset '{name}'"))?;
                self.change_scene(SceneChange::Preset { name })?;
                if !self.scene.transfer_curve.is_empty() {
                    self.change_scene(SceneChange::TransferCurve { points: Vec::new() })?;
                }
            }
            Action::SetLabelVisible { label, visible } => {
                self.change_scene(SceneChange::LabelVisibility {
                    label: u32::from(label),
                    visible,
                })?;
            }
            Action::SetLabelColour { label, colour_rgb } => {
                self.change_scene(SceneChange::LabelColour {
                    label: u32::from(label),
                    colour_rgb,
                })?;
            }
            Action::SetLabelOpacity { label, opacity } => {
                self.change_scene(SceneChange::LabelOpacity {
                    label: u32::from(label),
                    opacity: opacity.clamp(0.0, 1.0),
                })?;
            }
            Action::Isolate(keep) => {
                for label in self.label_ids_with_tissue() {
                    let visible = label == keep;
                    if self.label_state(label).visible != visible {
                        self.change_scene(SceneChange::LabelVisibility {
                            label: u32::from(label),
                            visible,
                        })?;
                    }
                }
            }
            Action::ShowAllLabels => {
                for label in self.label_ids_with_tissue() {
                    if !self.label_state(label).visible {
                        self.change_scene(SceneChange::LabelVisibility {
                            label: u32::from(label),
                            visible: true,
                        })?;
                    }
                }
            }
            Action::SetLabelSearch(text) => self.label_search = text,
            Action::MoveCurvePoint {
                index,
                density_hu,
                opacity,
            } => {
                let mut curve = self.curve();
                if index >= curve.len() {
                    bail!("no curve point {index}");
                }
                let range = self.case.range;
                let lo = if index == 0 {
                    range.low
                } else {
                    curve[index - 1].density_hu
                };
                let hi = curve.get(index + 1).map_or(range.high, |p| p.density_hu);
                curve[index].density_hu = density_hu.clamp(lo, hi);
                curve[index].rgba[3] = opacity.clamp(0.0, 1.0);
                self.change_scene(SceneChange::TransferCurve { points: curve })?;
            }
            Action::SetCurvePointColour { index, rgb } => {
                let mut curve = self.curve();
                let Some(point) = curve.get_mut(index) else {
                    bail!("no curve point {index}");
                };
                point.rgba[..3].copy_from_slice(&rgb.map(|c| c.clamp(0.0, 1.0)));
                self.change_scene(SceneChange::TransferCurve { points: curve })?;
            }
            Action::AddCurvePoint { density_hu } => {
                let mut curve = self.curve();
                let density_hu = density_hu.clamp(self.case.range.low, self.case.range.high);
                let tf = self.transfer_function();
                let [r, g, b] = tf.preset.colour_at(density_hu);
                let at = curve.partition_point(|p| p.density_hu < density_hu);
                curve.insert(
                    at,
                    TransferPoint {
                        density_hu,
                        rgba: [r, g, b, tf.preset.opacity_at(density_hu)],
                    },
                );
                self.change_scene(SceneChange::TransferCurve { points: curve })?;
            }
            Action::RemoveCurvePoint(index) => {
                let mut curve = self.curve();
                if curve.len() <= 2 || index >= curve.len() {
                    bail!("the curve keeps at least two points");
                }
                curve.remove(index);
                self.change_scene(SceneChange::TransferCurve { points: curve })?;
            }
            Action::SetClipPlane(plane) => self.change_scene(SceneChange::ClipPlane { plane })?,
            Action::SetCropBox(crop) => self.change_scene(SceneChange::CropBox { crop })?,
            Action::SetCrosshair(p) => {
                self.change_scene(SceneChange::MprSlices {
                    slices_mm: p.as_vec3(),
                })?;
            }
            Action::SetWindowLevel(wl) => {
                self.change_scene(SceneChange::WindowLevel {
                    centre_hu: wl.centre_hu,
                    width_hu: wl.width_hu.max(1.0),
                })?;
            }
            Action::SetPenStyle(style) => self.pen = style,
            Action::PenDown(point) => self.pen_down(point),
            Action::PenMove(point) => self.pen_move(point),
            Action::PenUp => self.pen_up(),
            Action::StartRecording(path) => self.start_recording(&path)?,
            Action::PauseRecording => {
                let now = self.now_ns;
                let at = self.instant_of(now);
                let rec = self.recording.as_mut().context("not recording")?;
                rec.paused_at_ns.get_or_insert(now);
                rec.clock.pause(at);
            }
            Action::ResumeRecording => {
                let now = self.now_ns;
                let at = self.instant_of(now);
                let rec = self.recording.as_mut().context("not recording")?;
                if let Some(paused) = rec.paused_at_ns.take() {
                    rec.paused_total_ns += now - paused;
                }
                rec.clock.resume(at);
                self.record_head(true);
            }
            Action::SetVoiceInput(input) => {
                if self.recording.is_some() {
                    bail!("the microphone is chosen before recording starts");
                }
                self.voice_input = input;
            }
            Action::SetVoiceMuted(muted) => {
                self.voice_muted = muted;
                if let Some(voice) = self.recording.as_ref().and_then(|r| r.voice.as_ref()) {
                    voice.set_muted(muted);
                }
            }
            Action::SetNarrationVolume(volume) => {
                if !volume.is_finite() {
                    bail!("volume {volume} is not a number");
                }
                self.narration_volume = volume.clamp(0.0, 1.0);
                if let Some(n) = self.replay.as_mut().and_then(|r| r.narration.as_mut()) {
                    n.set_volume(self.narration_volume);
                }
            }
            Action::SaveToLibrary {
                title,
                thumbnail_png,
            } => {
                let root = self
                    .library_root
                    .clone()
                    .context("no library location: pass --library DIR or set TWINRAY_LIBRARY")?;
                let lesson = self
                    .last_recording
                    .as_ref()
                    .map(|r| r.path.clone())
                    .context("record a lesson first: Save to library stores the last recording")?;
                let (title, id) = library::save(&root, &lesson, &self.case, &title, thumbnail_png)?;
                self.notice = Some(format!(
                    "saved '{title}' to the library at {root} (id {})",
                    &id[..id.len().min(12)]
                ));
            }
            Action::SearchLibrary(query) => {
                let root = self
                    .library_root
                    .clone()
                    .context("no library location: pass --library DIR or set TWINRAY_LIBRARY")?;
                self.library_hits = if query.trim().is_empty() {
                    Vec::new()
                } else {
                    library::search(&root, &query)?
                };
                if self.library_hits.is_empty() && !query.trim().is_empty() {
                    self.notice = Some(format!("nothing in the library matches '{query}'"));
                }
            }
            Action::OpenFromLibrary { id, at_s } => {
                let root = self
                    .library_root
                    .clone()
                    .context("no library location: pass --library DIR or set TWINRAY_LIBRARY")?;
                let lesson = library::lesson_for_open_case(&root, &id, &self.case, at_s)?;
                self.replay = None;
                self.open_lesson(&lesson, false)?;
                if let Some(replay) = self.replay.as_mut() {
                    #[allow(clippy::cast_possible_truncation)]
                    let t = replay.range_ns.0 + (at_s * 1e9) as i64;
                    replay.seek(t.clamp(replay.range_ns.0, replay.range_ns.1));
                }
                self.bump();
            }
            Action::SetNarrationMuted(muted) => {
                self.narration_muted = muted;
                if let Some(n) = self.replay.as_mut().and_then(|r| r.narration.as_mut()) {
                    n.set_muted(muted);
                }
            }
            Action::StopRecording => {
                self.stop_recording()?;
            }
            Action::AddChapter(title) => {
                let now = self.now_ns;
                let rec = self
                    .recording
                    .as_mut()
                    .context("chapters are marked while recording")?;
                let time_ns = rec.lesson_time_ns(now);
                rec.chapters.push(ChapterInfo {
                    time_ns,
                    title: title.clone(),
                });
                self.record(Payload::Chapter(Chapter { title }));
            }
            Action::OpenLesson(path) => self.open_lesson(&path, true)?,
            Action::OpenLessonOnThisCase(path) => self.open_lesson(&path, false)?,
            Action::CloseLesson => {
                self.replay = None;
                self.bump();
            }
            Action::Play => {
                let replay = self.replay_mut()?;
                if replay.time_ns >= replay.range_ns.1 {
                    replay.seek(replay.range_ns.0);
                }
                replay.playing = true;
            }
            Action::Pause => self.replay_mut()?.playing = false,
            Action::Seek(t) => {
                self.replay_mut()?.seek(t);
                self.bump();
            }
            Action::SetSpeed(speed) => {
                if !(speed.is_finite() && speed > 0.0) {
                    bail!("speed {speed} is not a positive number");
                }
                self.replay_mut()?.speed = speed;
            }
            Action::JumpToChapter(i) => {
                let replay = self.replay_mut()?;
                let t = replay
                    .chapters
                    .get(i)
                    .with_context(|| format!("no chapter {i}"))?
                    .time_ns;
                replay.seek(t);
                self.bump();
            }
            Action::SetFollowInstructor(follow) => {
                self.replay_mut()?.follow_instructor = follow;
                self.bump();
            }
            Action::AddBoard(path) => self.add_board(&path)?,
            Action::MoveBoard {
                board_id,
                offset_mm,
                scale,
            } => {
                let board = self
                    .scene
                    .boards
                    .get(&board_id)
                    .with_context(|| format!("board {board_id} is not shown"))?;
                if !(scale.is_finite() && scale > 0.0 && offset_mm.is_finite()) {
                    bail!("a board moves by a finite offset and a positive scale");
                }
                let mut pose = board.pose;
                pose.position_mm += offset_mm;
                let width_mm =
                    (board.width_mm * scale).clamp(BOARD_WIDTH_RANGE_MM.0, BOARD_WIDTH_RANGE_MM.1);
                self.change_scene(SceneChange::BoardPose {
                    board_id,
                    pose,
                    width_mm,
                })?;
            }
            Action::GrabBoard { board_id, grip_mm } => {
                let board = self
                    .scene
                    .boards
                    .get(&board_id)
                    .with_context(|| format!("board {board_id} is not shown"))?;
                if !grip_mm.is_finite() {
                    bail!("a board is held at a finite point");
                }
                let facing = self
                    .camera([1, 1])
                    .world_from_view
                    .transform_vector3(DVec3::NEG_Z)
                    .normalize_or_zero();
                self.board_drag = Some((BoardDrag::grab(board_id, board), grip_mm, facing));
            }
            Action::DragBoard {
                ray_origin_mm,
                ray_dir,
                scale,
            } => {
                let (drag, grip_mm, facing) =
                    self.board_drag.as_mut().context("no board is held")?;
                // The held point follows the ray in the plane facing the camera; a ray along
                // that plane leaves the board where it is.
                let rate = ray_dir.dot(*facing);
                let s = (*grip_mm - ray_origin_mm).dot(*facing) / rate;
                let to = ray_origin_mm + ray_dir * s;
                let offset_mm = if rate.abs() > 1e-9 && s.is_finite() && s > 0.0 {
                    (to - *grip_mm).as_vec3()
                } else {
                    Vec3::ZERO
                };
                let motion = twinray_lessons::event::Pose {
                    position_mm: offset_mm,
                    orientation: glam::Quat::IDENTITY,
                };
                let now = self.now_ns;
                let (change, record) = drag.moved(motion, scale, now);
                self.show_scene_change(change, record)?;
            }
            Action::ReleaseBoard => {
                if let Some((drag, _, _)) = self.board_drag.take() {
                    if let Some(change) = drag.release() {
                        self.change_scene(change)?;
                    }
                }
            }
            Action::HideBoard(board_id) => {
                if !self.scene.boards.contains_key(&board_id) {
                    bail!("board {board_id} is not shown");
                }
                self.change_scene(SceneChange::BoardHide { board_id })?;
            }
            Action::PenDownOnBoard { board_id, point_mm } => {
                if !self.scene.boards.contains_key(&board_id) {
                    bail!("board {board_id} is not shown");
                }
                self.pen_down_in(Space::Board(board_id), point_mm);
            }
            Action::PenMoveOnBoard { board_id, point_mm } => {
                self.pen_move_in(Space::Board(board_id), point_mm);
            }
            Action::SetMeasureTool(tool) => {
                self.measure_tool = tool;
                self.measure_points.clear();
            }
            Action::MeasurePoint(point) => {
                let Some(p) = point else {
                    bail!(
                        "the click missed the anatomy's surface; click on tissue the preset shows"
                    );
                };
                self.measure_point(Space::Patient, p.as_vec3())?;
            }
            Action::MeasurePointOnBoard { board_id, point_mm } => {
                if !self.scene.boards.contains_key(&board_id) {
                    bail!("board {board_id} is not shown");
                }
                self.measure_point(Space::Board(board_id), point_mm)?;
            }
            Action::ClearMeasurements => {
                let ids: Vec<u32> = self.scene.measurements.keys().copied().collect();
                for id in ids {
                    self.change_scene(SceneChange::MeasurementHide { id })?;
                }
                self.measure_points.clear();
            }
            Action::StartSegmentation { model } => {
                if self.segmentation.is_some() {
                    bail!("a segmentation is already running; cancel it first");
                }
                let job = SegmentationJob::start(self.case.ct.clone(), model.as_deref())?;
                self.notice = Some(if job.builtin {
                    format!(
                        "segmenting with {}… (note: {})",
                        job.model_name,
                        twinray_segmentation::BUILTIN_MODEL_NOTICE
                    )
                } else {
                    format!("segmenting with {}…", job.model_name)
                });
                self.segmentation = Some(job);
            }
            Action::CancelSegmentation => {
                self.segmentation
                    .as_ref()
                    .context("no segmentation is running")?
                    .cancel();
            }
        }
        self.sync_narration();
        Ok(())
    }

    /// Tells the narration where the playhead is (after every action: a tick, a seek, play,
    /// pause, a speed change).
    fn sync_narration(&self) {
        if let Some(replay) = &self.replay {
            if let Some(n) = &replay.narration {
                n.update(replay.time_ns, replay.playing, replay.speed);
            }
        }
    }

    // ---- what the view shows -------------------------------------------------------------

    /// The scene on screen: the lesson's at the playhead while replaying, else the authored one.
    pub fn shown_scene(&self) -> &SceneState {
        self.replay.as_ref().map_or(&self.scene, |r| &r.state.scene)
    }

    /// The lesson state on screen: the lesson's at the playhead while replaying; while
    /// authoring, the authored scene with the strokes drawn in this session (no avatar: the
    /// instructor is the one looking).
    pub fn shown_state(&self) -> std::borrow::Cow<'_, LessonState> {
        if let Some(replay) = &self.replay {
            return std::borrow::Cow::Borrowed(&replay.state);
        }
        let mut state = LessonState::new(self.scene.clone());
        state.strokes = self
            .strokes
            .iter()
            .map(|s| twinray_lessons::state::VisibleStroke {
                begin: StrokeBegin {
                    stroke_id: s.stroke_id,
                    space: s.space,
                    style: StrokeStyle {
                        colour_rgba: s.style.colour_rgba,
                        width_mm: s.style.width_mm,
                        brush: Brush::Pen,
                    },
                },
                begin_time_ns: 0,
                points: s
                    .points_mm
                    .iter()
                    .map(|&position_mm| twinray_lessons::state::TimedStrokePoint {
                        time_ns: 0,
                        position_mm,
                        pressure: 1.0,
                    })
                    .collect(),
            })
            .collect();
        std::borrow::Cow::Owned(state)
    }

    /// Where the view looks from: the desktop camera, or the instructor's head when following
    /// one while replaying (the scene falls back to the desktop camera where it was not tracked).
    pub fn learner_view(&self) -> LearnerView {
        match &self.replay {
            Some(r) if r.follow_instructor => LearnerView::FollowInstructor(self.view),
            _ => LearnerView::Orbit(self.view),
        }
    }

    /// Everything the 3D view's next frame of `size` pixels needs, made by the scene crate's
    /// [`SceneBuilder`] as replay and VR make it.
    pub fn frame(&self, size: [u32; 2]) -> FrameInputs {
        let mut frame =
            self.builder
                .borrow_mut()
                .frame(&self.shown_state(), &self.learner_view(), size);
        if let Some(replay) = &self.replay {
            frame.annotations = replay.teaching.0.clone();
            frame.boards = replay.teaching.1.clone();
        } else {
            let state = self.shown_state();
            let (annotations, boards, _) = self.tools.borrow_mut().teach(
                &state,
                None,
                Some(&self.case.ct),
                self.case.labels.as_deref(),
            );
            frame.annotations = annotations;
            frame.boards = boards;
        }
        frame
    }

    /// Problems the scene met (e.g. a lesson's unknown preset), each once; clears them.
    pub fn take_scene_warnings(&mut self) -> Vec<String> {
        let mut warnings = self.builder.borrow_mut().take_warnings();
        if let Some(replay) = self.replay.as_mut() {
            warnings.extend(replay.take_warnings());
        }
        warnings
    }

    /// The labels a frame shows, and a key that changes whenever they do: the case's, or,
    /// while replaying a lesson that stores label maps, the map it shows at the playhead.
    pub fn frame_labels(&self) -> (LabelsKey, Option<Arc<LabelVolume>>) {
        match self.replay.as_ref().and_then(|r| r.shown_labels.as_ref()) {
            Some(shown) => ((self.labels_revision, shown.hash), shown.labels.clone()),
            None => ((self.labels_revision, None), self.case.labels.clone()),
        }
    }

    /// The transfer function of the scene on screen.
    pub fn transfer_function(&self) -> TransferFunction {
        self.builder
            .borrow_mut()
            .transfer_function(self.shown_scene())
    }

    /// Clip plane and crop box of the scene on screen.
    pub fn render_options(&self) -> RenderOptions {
        self.builder.borrow().render_options(self.shown_scene())
    }

    /// The camera for an image of `size` pixels: the desktop camera, or the instructor's head
    /// when following one that was tracked at the playhead.
    pub fn camera(&self, size: [u32; 2]) -> Camera {
        // The pen asks on every pointer move: only a replay's head moves the camera, so the
        // authored strokes are not copied into a state for it.
        let builder = self.builder.borrow();
        match &self.replay {
            Some(replay) => builder.camera(&replay.state, &self.learner_view(), size),
            None => builder.camera(
                &LessonState::new(SceneState::default()),
                &self.learner_view(),
                size,
            ),
        }
        .0
    }

    /// The curve in effect on screen (edited, or the preset's).
    pub fn curve(&self) -> Vec<TransferPoint> {
        scene_bridge::effective_curve(self.shown_scene(), &self.transfer_function().preset)
    }

    /// The MPR crosshair, patient mm.
    pub fn crosshair_mm(&self) -> DVec3 {
        self.shown_scene()
            .mpr_slices_mm
            .map_or_else(|| self.case.ct.geometry().centre_mm(), |p| p.as_dvec3())
    }

    /// The MPR window/level.
    pub fn window_level(&self) -> WindowLevel {
        self.shown_scene().window_level.unwrap_or(DEFAULT_WINDOW)
    }

    // ---- labels ---------------------------------------------------------------------------

    /// A label's name from the TotalSegmentator table (`label 12` when it has none; 0 is the
    /// unlabelled tissue).
    pub fn label_name(&self, label: u16) -> String {
        if label == 0 {
            return "unlabelled tissue".to_owned();
        }
        if let Some(name) = self.case.label_names.as_ref().and_then(|n| n.get(label)) {
            return name.to_owned();
        }
        self.palette
            .get(label)
            .map_or_else(|| format!("label {label}"), |l| l.name.clone())
    }

    /// The name of the labelled structure at a point the pen or the pointer rests on (patient
    /// LPS mm; within a voxel of its surface), `None` off the labelled anatomy.
    pub fn structure_at(&self, point_mm: DVec3) -> Option<String> {
        let labels = self.case.labels.as_deref()?;
        labels.label_near(point_mm, 1).map(|id| self.label_name(id))
    }

    /// How a label is shown in the scene on screen.
    pub fn label_state(&self, label: u16) -> LabelState {
        self.shown_scene()
            .labels
            .get(&u32::from(label))
            .copied()
            .unwrap_or_default()
    }

    /// A label's colour on screen (its override, or the palette's), sRGB.
    pub fn label_colour(&self, label: u16) -> [u8; 3] {
        self.label_state(label).colour_rgb.unwrap_or_else(|| {
            let tf = self.transfer_function();
            let rgb = u8::try_from(label).map_or([0.5; 3], |id| tf.labels.get(id).rgb);
            rgb.map(|c| (c * 255.0).round() as u8)
        })
    }

    /// The labels of the case whose name contains the search text (any case), in id order;
    /// the unlabelled tissue (0) first.
    pub fn listed_labels(&self) -> Vec<u16> {
        let needle = self.label_search.trim().to_lowercase();
        self.label_ids_with_tissue()
            .into_iter()
            .filter(|&id| needle.is_empty() || self.label_name(id).to_lowercase().contains(&needle))
            .collect()
    }

    fn label_ids_with_tissue(&self) -> Vec<u16> {
        std::iter::once(0)
            .chain(self.case.present_labels.iter().copied())
            .collect()
    }

    // ---- internals ------------------------------------------------------------------------

    fn bump(&mut self) {
        self.view_revision += 1;
        self.mpr_revision += 1;
    }

    fn replay_mut(&mut self) -> Result<&mut Replay> {
        self.replay.as_mut().context("no lesson is open for replay")
    }

    fn change_scene(&mut self, change: SceneChange) -> Result<()> {
        self.show_scene_change(change, true)
    }

    /// Applies `change` to the scene, and records it when `record` (a drag shows every move
    /// but records some).
    fn show_scene_change(&mut self, change: SceneChange, record: bool) -> Result<()> {
        if self.replay.is_some() {
            bail!("the scene of a replayed lesson cannot be edited; close the lesson first");
        }
        self.scene.apply(&change);
        if matches!(
            change,
            SceneChange::MprSlices { .. } | SceneChange::WindowLevel { .. }
        ) {
            self.mpr_revision += 1;
        } else {
            self.view_revision += 1;
        }
        if record {
            self.record(Payload::Scene(change));
        }
        Ok(())
    }

    fn camera_moved(&mut self) {
        self.view_revision += 1;
        self.record_head(true);
    }

    fn tick(&mut self, now_ns: i64) {
        let dt_ns = (now_ns - self.now_ns).max(0);
        self.now_ns = now_ns;
        self.record_head(false);
        self.poll_segmentation();
        if let Some(replay) = self.replay.as_mut().filter(|r| r.playing) {
            let t = replay.time_ns + (dt_ns as f64 * replay.speed) as i64;
            if t >= replay.range_ns.1 {
                replay.playing = false;
            }
            replay.seek(t);
            self.bump();
        }
    }

    /// Adds a clicked point to the measurement being placed; with its last point, shows the
    /// measurement (recorded) and says its value.
    fn measure_point(&mut self, space: Space, p: Vec3) -> Result<()> {
        let Some(tool) = self.measure_tool else {
            bail!("choose what to measure first");
        };
        // One measurement lies in one space: the anatomy, or one board.
        if self
            .measure_points
            .first()
            .is_some_and(|(s, _)| *s != space)
        {
            self.measure_points.clear();
            self.notice = Some(format!(
                "{}: started again (its points must all be on the anatomy or all on one board)",
                tool.name()
            ));
        }
        if tool == MeasureTool::LabelStats && space != Space::Patient {
            bail!("label statistics need a click on a labelled structure of the twin");
        }
        self.measure_points.push((space, p));
        if self.measure_points.len() < tool.points_needed() {
            self.notice = Some(format!(
                "{}: point {} of {}",
                tool.name(),
                self.measure_points.len(),
                tool.points_needed()
            ));
            return Ok(());
        }
        let q: Vec<Vec3> = self.measure_points.drain(..).map(|(_, v)| v).collect();
        let labels = self.case.labels.as_deref();
        let measurement = tool
            .measurement(space, &q, |p| {
                labels.and_then(|l| l.label_near(p.as_dvec3(), 1))
            })
            .context("no labelled structure there to measure")?;
        let id = self.scene.measurements.keys().max().map_or(1, |id| id + 1);
        self.change_scene(SceneChange::MeasurementShow { id, measurement })?;
        let frame = self.frame([2, 2]);
        let value = frame
            .annotations
            .texts
            .iter()
            .find(|t| t.measurement_id == Some(id))
            .map_or_else(String::new, |t| t.text.replace('\n', ", "));
        self.notice = Some(format!("{} {id}: {value}", tool.name()));
        Ok(())
    }

    /// Where the shown boards stand (for the pen: which board a pointer ray meets).
    pub fn board_frames(&self) -> BoardFrames {
        let state = self.shown_state();
        self.tools.borrow().boards.frames(&state.scene)
    }

    /// Loads an image onto a new board beside the twin (where its Patient Orientation says it
    /// faces the viewer), stores the image once in the recording and shows the board.
    fn add_board(&mut self, path: &Path) -> Result<()> {
        if self.replay.is_some() {
            bail!("boards cannot be added to a replayed lesson; close the lesson first");
        }
        let image = twinray_scene::boards::load_board_image(path)?;
        let (pose, width_mm) = twinray_scene::boards::default_board_pose(
            self.case.ct.geometry(),
            &image.blob,
            image.patient_orientation.as_ref(),
        );
        self.tools.borrow_mut().boards.add_live(&image.blob)?;
        let board_id = self.scene.boards.keys().max().map_or(1, |id| id + 1);
        // Titled by number: a file name can name the patient.
        let title = format!("X-ray {board_id}");
        self.record(Payload::Image(Box::new(image.blob.clone())));
        self.change_scene(SceneChange::BoardShow {
            board_id,
            image: image.blob.hash,
            title: title.clone(),
            pose,
            width_mm,
        })?;
        self.notice = Some(format!(
            "{title} beside the twin, {:.0} mm wide: {}",
            width_mm, image.description
        ));
        Ok(())
    }

    /// Takes the background segmentation's outcome, if it has finished: its labels replace
    /// the case's (a recording notes it), a cancelled or failed one leaves them alone.
    fn poll_segmentation(&mut self) {
        let Some(outcome) = self.segmentation.as_mut().and_then(SegmentationJob::poll) else {
            return;
        };
        let Some(job) = self.segmentation.take() else {
            return;
        };
        match outcome {
            JobOutcome::Done { labels, names } => {
                let classes: Vec<&str> = names
                    .iter()
                    .filter(|(id, _)| *id != 0)
                    .map(|(_, name)| name)
                    .collect();
                let mut text = format!(
                    "labels replaced by the segmentation of model '{}' ({}): {}",
                    job.model_name,
                    job.model_origin,
                    classes.join(", ")
                );
                for warning in
                    twinray_segmentation::plausibility::implausible_spans(&labels, &names)
                {
                    text.push_str("; warning: ");
                    text.push_str(&warning);
                }
                if let Some(why) = job
                    .normalization
                    .modality_warning(self.case.intensity.modality)
                {
                    text.push_str("; warning: ");
                    text.push_str(why);
                }
                if job.builtin {
                    text.push_str("; note: ");
                    text.push_str(twinray_segmentation::BUILTIN_MODEL_NOTICE);
                }
                // The map goes into the lesson (once, by hash) so a replay shows these labels
                // from this moment on, and into any recording started later.
                let dims = labels
                    .geometry()
                    .dims
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
                match LabelMapBlob::encode(dims, labels.voxels()) {
                    Ok(blob) => {
                        let change = SceneChange::LabelMap {
                            hash: Some(blob.hash),
                        };
                        self.record(Payload::LabelMap(Box::new(blob.clone())));
                        if self.replay.is_none() {
                            self.scene.apply(&change);
                            self.record(Payload::Scene(change));
                        }
                        self.live_label_map = Some(blob);
                    }
                    Err(e) => {
                        text.push_str("; warning: the labels cannot be stored in a lesson: ");
                        text.push_str(&e.to_string());
                    }
                }
                self.case.replace_labels(labels, names);
                self.labels_revision += 1;
                self.bump();
                self.record(Payload::Note(Note { text: text.clone() }));
                self.notice = Some(text);
            }
            JobOutcome::Cancelled => {
                self.notice = Some(format!(
                    "segmentation with {} cancelled; the labels are unchanged",
                    job.model_name
                ));
            }
            JobOutcome::Failed(message) => self.notice = Some(message),
        }
    }

    /// Hands an event to the recorder at the current lesson time (nothing when not recording
    /// or paused).
    fn record(&mut self, payload: Payload) {
        let now = self.now_ns;
        if let Some(rec) = self.recording.as_mut().filter(|r| !r.is_paused()) {
            let time_ns = rec.lesson_time_ns(now);
            if rec.recorder.record(Event::new(time_ns, payload)) {
                rec.event_count += 1;
            }
        }
    }

    /// The desktop camera is the instructor's head: recorded on every move, and at least every
    /// [`HEAD_INTERVAL_NS`] while still.
    fn record_head(&mut self, moved: bool) {
        let now = self.now_ns;
        let Some(rec) = self.recording.as_mut().filter(|r| !r.is_paused()) else {
            return;
        };
        if !moved && now - rec.last_head_ns < HEAD_INTERVAL_NS {
            return;
        }
        rec.last_head_ns = now;
        let pose =
            pose_of(&orbit_camera(self.case.ct.geometry(), &self.view, [1, 1]).world_from_view);
        self.record(Payload::Head(pose));
    }

    /// Opens the microphone (or the injected source) and starts the voice thread on the
    /// recording's clock. Never fails the recording: without voice, the status says why.
    fn start_voice(
        &self,
        recorder: &Recorder,
        clock: &LessonClock,
    ) -> (Option<VoiceCapture>, String) {
        let source = match (&self.voice_source, &self.voice_input) {
            (_, VoiceInput::Off) => return (None, "voice off".to_owned()),
            (Some(factory), _) => (factory.0)(),
            (None, VoiceInput::Default) => {
                MicrophoneSource::open(None).map(|m| Box::new(m) as Box<dyn VoiceSource>)
            }
            (None, VoiceInput::Device(name)) => {
                MicrophoneSource::open(Some(name)).map(|m| Box::new(m) as Box<dyn VoiceSource>)
            }
        };
        let source = match source {
            Ok(s) => s,
            Err(e) => return (None, e.to_string()),
        };
        let label = format!("{} at {} Hz", source.name(), source.sample_rate_hz());
        let handle = recorder.handle();
        match VoiceCapture::start(
            source,
            clock.clone(),
            Box::new(move |e| {
                handle.record(e);
            }),
        ) {
            Ok(capture) => {
                capture.set_muted(self.voice_muted);
                (Some(capture), label)
            }
            Err(e) => (None, e.to_string()),
        }
    }

    fn start_recording(&mut self, path: &Path) -> Result<()> {
        if self.recording.is_some() {
            bail!("already recording");
        }
        if self.replay.is_some() {
            bail!("close the replayed lesson before recording");
        }
        let anchor_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let header = LessonHeader::new(self.case.case_ref.clone(), anchor_unix_ns);
        // Never over an earlier lesson: pressing Record again with the same name records into
        // `name-2.lesson`, and the status bar says where it went.
        let recorder = Recorder::create_unique(path, &header, RecorderOptions::default())
            .with_context(|| format!("starting a recording in {}", path.display()))?;
        if recorder.path() != path {
            self.notice = Some(format!(
                "{} exists; recording into {}",
                path.display(),
                recorder.path().display()
            ));
        }
        let clock = LessonClock::starting_at(self.instant_of(self.now_ns));
        let (voice, voice_status) = self.start_voice(&recorder, &clock);
        if voice.is_none() && self.voice_input != VoiceInput::Off {
            let without = format!("recording without voice: {voice_status}");
            self.notice = Some(match self.notice.take() {
                Some(earlier) => format!("{earlier}; {without}"),
                None => without,
            });
        }
        self.recording = Some(Recording {
            recorder,
            clock,
            voice,
            voice_status,
            started_ns: self.now_ns,
            paused_at_ns: None,
            paused_total_ns: 0,
            last_head_ns: self.now_ns,
            chapters: Vec::new(),
            event_count: 0,
        });
        // The lesson starts from what is on screen, not from the player's default scene,
        // including labels a segmentation put in place (the map first, then the change
        // that shows it).
        if let Some(blob) = self
            .live_label_map
            .clone()
            .filter(|b| self.scene.label_map == Some(b.hash))
        {
            self.record(Payload::LabelMap(Box::new(blob)));
        }
        // The boards' images before the changes that show them.
        let images: Vec<_> = {
            let tools = self.tools.borrow();
            self.scene
                .boards
                .values()
                .filter_map(|b| tools.boards.live_blob(&b.image).cloned())
                .collect()
        };
        for blob in images {
            self.record(Payload::Image(Box::new(blob)));
        }
        for change in self.scene.to_changes() {
            self.record(Payload::Scene(change));
        }
        self.record_head(true);
        Ok(())
    }

    /// Stops recording and finalises the lesson file (index and footer). Closing the window
    /// calls this too, so a recording is never left without its footer.
    pub fn stop_recording(&mut self) -> Result<Option<RecordingReport>> {
        if self.active_stroke.is_some() {
            self.pen_up();
        }
        let Some(mut rec) = self.recording.take() else {
            return Ok(None);
        };
        let path = rec.path().to_path_buf();
        // The voice first: its last packets (the encoder flushed) go in before the footer.
        if let Some(voice) = rec.voice.take() {
            match voice.stop() {
                Ok(stats) => self.last_voice = Some(stats),
                Err(e) => {
                    self.notice = Some(format!("the voice recording ended with an error: {e}"));
                }
            }
        }
        let report = rec
            .recorder
            .finish()
            .with_context(|| format!("finishing the lesson {}", path.display()))?;
        self.last_recording = Some(report.clone());
        Ok(Some(report))
    }

    fn open_lesson(&mut self, path: &Path, check_case: bool) -> Result<()> {
        if self.recording.is_some() {
            bail!("stop recording before opening a lesson");
        }
        let info = twinray_lessons::tools::info(path)
            .with_context(|| format!("opening the lesson {}", path.display()))?;
        if check_case && !self.case.is_named_by(&info.header.case_ref) {
            bail!(
                "{} was recorded on case {}, not on the open case {} ({}): open it with `twinray studio {} --case CT` (and --labels), or --force-case",
                path.display(),
                info.header.case_ref,
                self.case.name,
                self.case.case_ref,
                path.display()
            );
        }
        let player =
            Player::open(path).with_context(|| format!("opening the lesson {}", path.display()))?;
        let range_ns = player
            .time_range_ns()
            .with_context(|| format!("{}: the lesson holds no events", path.display()))?;
        let mut replay = Replay {
            state: LessonState {
                time_ns: range_ns.0,
                ..LessonState::new(SceneState::default())
            },
            player,
            path: path.to_path_buf(),
            range_ns,
            time_ns: range_ns.0,
            playing: false,
            speed: 1.0,
            chapters: info.chapters,
            follow_instructor: false,
            narration: None,
            narration_status: None,
            label_maps: None,
            shown_labels: None,
            tools: TeachingTools::new(LabelNames::totalsegmentator_for(
                self.case.intensity.modality,
            )),
            ct: self.case.ct.clone(),
            case_labels: self.case.labels.clone(),
            teaching: (Annotations::default(), BoardFrames::default()),
            board_warnings: Vec::new(),
        };
        if replay.player.holds_label_maps() {
            replay.label_maps = Some(LabelMaps::new(
                *self.case.ct.geometry(),
                self.case.labels.clone(),
            ));
        }
        replay.seek(range_ns.0);
        self.open_narration(&mut replay);
        self.replay = Some(replay);
        self.bump();
        Ok(())
    }

    /// Opens the speakers for the replayed lesson's narration; without a sound output the
    /// replay goes on silently and says why.
    fn open_narration(&self, replay: &mut Replay) {
        let player = replay
            .player
            .reader()
            .try_clone()
            .map_err(VoiceError::from)
            .and_then(NarrationPlayer::new);
        let player = match player {
            Ok(p) if p.has_voice() => p,
            Ok(_) => {
                replay.narration_status = None;
                return;
            }
            Err(e) => {
                replay.narration_status = Some(format!("narration not played: {e}"));
                return;
            }
        };
        let lost = &player.index().lost;
        let spans: Vec<(i64, i64)> = lost.iter().map(|l| (l.start_ns, l.end_ns)).collect();
        let lost = twinray_voice::playback::describe_lost(&spans)
            .map_or_else(String::new, |said| format!("; {said}"));
        match NarrationOutput::with_player(player) {
            Ok(mut output) => {
                output.set_volume(self.narration_volume);
                output.set_muted(self.narration_muted);
                replay.narration_status = Some(format!(
                    "narration on {} (silent at speeds other than 1×){lost}",
                    output.device_name()
                ));
                replay.narration = Some(output);
            }
            Err(e) => replay.narration_status = Some(format!("narration not played: {e}{lost}")),
        }
    }

    fn pen_down(&mut self, point: Option<DVec3>) {
        if self.active_stroke.is_some() {
            self.pen_up();
        }
        if let Some(p) = point {
            self.pen_down_in(Space::Patient, p.as_vec3());
        }
    }

    /// Starts a stroke in `space` (the anatomy, or a board) at `p`, mm of that space.
    fn pen_down_in(&mut self, space: Space, p: Vec3) {
        if self.active_stroke.is_some() {
            self.pen_up();
        }
        let stroke_id = self.next_stroke_id;
        self.next_stroke_id += 1;
        self.record(Payload::StrokeBegin(StrokeBegin {
            stroke_id,
            space,
            style: StrokeStyle {
                colour_rgba: self.pen.colour_rgba,
                width_mm: self.pen.width_mm,
                brush: Brush::Pen,
            },
        }));
        self.strokes.push(AuthoredStroke {
            stroke_id,
            style: self.pen,
            space,
            points_mm: Vec::new(),
        });
        self.active_stroke = Some(self.strokes.len() - 1);
        self.pen_move_in(space, p);
    }

    fn pen_move(&mut self, point: Option<DVec3>) {
        if let Some(p) = point {
            self.pen_move_in(Space::Patient, p.as_vec3());
        }
    }

    /// Continues the active stroke, if it is drawn in `space` (a pen dragged off a board
    /// onto the anatomy lifts nothing and draws nothing there).
    fn pen_move_in(&mut self, space: Space, p: Vec3) {
        let Some(i) = self.active_stroke else {
            return;
        };
        let stroke = &mut self.strokes[i];
        if stroke.space != space
            || stroke
                .points_mm
                .last()
                .is_some_and(|last| last.distance(p) < MIN_PEN_STEP_MM)
        {
            return;
        }
        stroke.points_mm.push(p);
        let stroke_id = stroke.stroke_id;
        self.view_revision += 1;
        self.record(Payload::StrokePoint(StrokePoint {
            stroke_id,
            position_mm: p,
            pressure: 1.0,
        }));
    }

    fn pen_up(&mut self) {
        if let Some(i) = self.active_stroke.take() {
            let stroke_id = self.strokes[i].stroke_id;
            self.record(Payload::StrokeEnd { stroke_id });
        }
    }
}

/// A camera pose as the lesson's head pose (stage = patient space on the desktop).
pub fn pose_of(world_from_view: &DMat4) -> Pose {
    let rotation = DQuat::from_mat3(&DMat3::from_mat4(*world_from_view)).normalize();
    Pose {
        position_mm: world_from_view.w_axis.truncate().as_vec3(),
        orientation: Quat::from_xyzw(
            rotation.x as f32,
            rotation.y as f32,
            rotation.z as f32,
            rotation.w as f32,
        ),
    }
}

#[cfg(test)]
mod tests;
