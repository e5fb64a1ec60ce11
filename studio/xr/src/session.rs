//! The VR frame loop, the same for a headset and for the simulation.
//!
//! Per frame: read the views and input from the [`XrSource`]; turn input into lesson events
//! (recorded while recording); get the lesson state (replayed from a lesson, or built live from
//! those events); let the scene module turn it into render inputs — the one place that does,
//! shared with the desktop and the replayer; replace its camera with each eye's and its sample
//! step with the comfort governor's; render both eyes; submit; feed the frame time back to the
//! governor. Tracking and recording never wait for image quality.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use twinray_lessons::event::{Event, LabelMapHash, Payload, Pose};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::player::Player;
use twinray_lessons::recorder::{Recorder, RecorderOptions, RecordingReport};
use twinray_lessons::state::{LessonState, SceneState};
use twinray_renderer::{FrameStats, RgbaImage};
use twinray_voice::capture::VoiceCapture;
use twinray_voice::clock::LessonClock;
use twinray_voice::device::MicrophoneSource;
use twinray_voice::output::NarrationOutput;

use crate::comfort::{ComfortGovernor, ComfortReport, Quality};
use crate::input::{Interaction, TwinPlacement, VrCommand};
use crate::panel::{LearnerPanel, Playback};
use crate::source::{EyeView, XrFrame, XrSource};
use crate::stereo::eye_cameras;
use twinray_scene::Case;
use twinray_volume::{CtVolume, LabelVolume};

use crate::XrError;
use twinray_scene::annotations::{TeachingTools, TextLabel};
use twinray_scene::boards::{default_board_pose, BoardImage};
use twinray_scene::{FrameRenderer, LabelMaps, LearnerView, SceneBuilder};

/// What the headset shows.
#[derive(Debug)]
pub enum Content {
    /// Teaching on a case: input edits a live lesson state, recorded on demand.
    Live {
        /// Where a recording goes when the recording button is pressed.
        record_to: Option<PathBuf>,
    },
    /// Replaying a lesson: the instructor's avatar, strokes and scene at the headset's time.
    Replay(Box<Player>),
}

/// Settings of a VR run.
#[derive(Debug, Clone, Default)]
pub struct VrOptions {
    /// Write each frame's eye images here as `frame-NNNNN-left.png` / `-right.png`.
    pub eye_png_dir: Option<PathBuf>,
    /// Use this quality every frame instead of the comfort governor's (tests, benchmarks).
    pub fixed_quality: Option<Quality>,
    /// Lesson time of the first frame (replay starts there).
    pub start_time_ns: i64,
    /// Real time (a headset, not a scripted source): record the default microphone with a
    /// lesson, and play a replayed lesson's narration through the default output.
    pub sound: bool,
    /// End the session cleanly after this many frames.
    pub max_frames: Option<u64>,
    /// End the session cleanly once this is set (by a signal handler, another thread, a test).
    pub stop: Option<Arc<AtomicBool>>,
    /// Teaching on a case: start recording at the first frame (into the content's
    /// `record_to`), as if the record button had been pressed.
    pub record_at_start: bool,
    /// Teaching on a case: images the user brought (`twinray vr --board`), placed one per
    /// press of the board button, in this order, as boards in front of the head.
    pub boards: Vec<BoardImage>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The runtime (or the script) ended it.
    Source,
    /// [`VrOptions::max_frames`] frames were shown.
    FrameLimit,
    /// [`VrOptions::stop`] was set.
    Stopped,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct VrReport {
    /// Frames rendered.
    pub frames: u64,
    /// Render time of each frame (both eyes), nanoseconds.
    pub frame_times_ns: Vec<i64>,
    /// The governor's last decision.
    pub last_comfort: Option<ComfortReport>,
    /// The finished recording, if one was made.
    pub recording: Option<RecordingReport>,
    /// Stats of the last left-eye render.
    pub last_stats: Option<FrameStats>,
    /// Wall time from the start of the first frame to the submission of the last one.
    pub elapsed: Duration,
    /// Why the session ended (`None` only while it runs).
    pub ended_by: Option<SessionEnd>,
}

/// A VR session on one case. See the module docs.
pub struct VrSession {
    builder: SceneBuilder,
    renderer: FrameRenderer,
    governor: ComfortGovernor,
    interaction: Interaction,
    content: Content,
    live: LessonState,
    recorder: Option<Recorder>,
    /// The microphone of the recording in progress.
    voice: Option<VoiceCapture>,
    /// The replayed lesson's narration.
    narration: Option<NarrationOutput>,
    case_ref: String,
    /// [`VrOptions::record_at_start`], until the first frame has started the recording.
    record_pending: bool,
    options: VrOptions,
    labels: SessionLabels,
    /// Boards and measurements drawn from the lesson.
    tools: TeachingTools,
    /// A replay's learner controls (panel, playback, the learner's own placement of the
    /// lesson's world), made at the first frame.
    learner: Option<LearnerControls>,
    last_state: Option<LessonState>,
    /// Rays of measure-tool trigger presses that met no board, for the anatomy pick of the
    /// frame being drawn (patient mm: origin, direction).
    anatomy_picks: Vec<(glam::Vec3, glam::Vec3)>,
    /// The labelled structure the right controller's ray met in the last live frame.
    pointed: Option<String>,
    /// Images brought in and not placed yet ([`VrOptions::boards`]).
    boards_to_place: VecDeque<BoardImage>,
    /// The texts the last frame showed in the scene (values, names).
    last_texts: Vec<TextLabel>,
}

/// What a learner does to a replay without changing the lesson: the panel's playback, and
/// where the lesson's world (twin, instructor and strokes together) stands for them.
#[derive(Debug, Clone)]
pub struct LearnerControls {
    /// The panel in the headset.
    pub panel: LearnerPanel,
    /// Play/pause, speed, follow, volume and the lesson time they give.
    pub playback: Playback,
    /// The learner's room from the lesson's room: identity until the learner grabs the
    /// world (grip) or follows the instructor.
    pub view_from_lesson: Pose,
    grips: [bool; 2],
    grab: Option<(usize, Pose, Pose)>,
}

impl LearnerControls {
    fn new(player: &Player) -> Self {
        let chapters = twinray_lessons::tools::info(player.reader().path())
            .map(|i| {
                i.chapters
                    .into_iter()
                    .map(|c| (c.time_ns, c.title))
                    .collect()
            })
            .unwrap_or_default();
        let range = player.time_range_ns().unwrap_or((0, 0));
        Self {
            panel: LearnerPanel::new(chapters, range),
            playback: Playback::default(),
            view_from_lesson: Pose::IDENTITY,
            grips: [false; 2],
            grab: None,
        }
    }

    /// The panel, and grabbing the world with a grip (one hand moves and turns it).
    fn update(&mut self, frame: &XrFrame, clock_ns: i64) {
        self.panel.update(frame, &mut self.playback, clock_ns);
        for i in 0..2 {
            let c = frame.controllers[i];
            let was = self.grips[i];
            self.grips[i] = c.is_some_and(|c| {
                if was {
                    c.squeeze > crate::input::RELEASE_VALUE
                } else {
                    c.squeeze >= crate::input::PRESS_VALUE
                }
            });
            match (self.grab, self.grips[i], c) {
                (None, true, Some(c)) => self.grab = Some((i, c.grip, self.view_from_lesson)),
                (Some((hand, h0, o0)), true, Some(c)) if hand == i => {
                    let turn = (c.grip.orientation * h0.orientation.inverse()).normalize();
                    self.view_from_lesson = Pose {
                        position_mm: c.grip.position_mm + turn * (o0.position_mm - h0.position_mm),
                        orientation: (turn * o0.orientation).normalize(),
                    };
                }
                (Some((hand, ..)), false, _) if hand == i => self.grab = None,
                _ => {}
            }
        }
    }

    /// Following the instructor: the lesson's world moves so that the instructor's head is
    /// where the learner's is (position only).
    fn follow(&mut self, state: &LessonState, frame: &XrFrame) {
        if let (true, Some(head)) = (self.playback.follow_instructor, state.head) {
            self.view_from_lesson.position_mm =
                frame.head.position_mm - self.view_from_lesson.orientation * head.position_mm;
        }
    }

    /// The eyes' views in the lesson's room.
    fn lesson_views(&self, views: &[EyeView; 2]) -> [EyeView; 2] {
        let o = self.view_from_lesson;
        let inv = o.orientation.inverse();
        views.map(|v| EyeView {
            pose: Pose {
                position_mm: inv * (v.pose.position_mm - o.position_mm),
                orientation: (inv * v.pose.orientation).normalize(),
            },
            ..v
        })
    }
}

/// The labels a session shows, and the case's image: what a label map is re-uploaded with and
/// what label statistics and needle paths are computed on. Both are the case's own volumes,
/// moved in, not copies.
struct SessionLabels {
    ct: CtVolume,
    maps: LabelMaps,
}

impl std::fmt::Debug for VrSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrSession")
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

impl VrSession {
    /// A session on `case`, rendering with `renderer` (made on the source's device). The
    /// session keeps the case's image and labels (taken, not copied): measurements in the
    /// headset are computed on them as the desktop computes them.
    #[must_use]
    pub fn new(
        case: Case,
        renderer: FrameRenderer,
        twin: Pose,
        content: Content,
        mut options: VrOptions,
    ) -> Self {
        let scene = SceneState {
            stage_from_patient: twin,
            ..SceneState::default()
        };
        let narration = match (&content, options.sound) {
            (Content::Replay(player), true) => open_narration(player),
            _ => None,
        };
        let mut interaction = Interaction::new(TwinPlacement::rigid(twin), 1);
        interaction.pivot_patient_mm = case.ct.geometry().centre_mm().as_vec3();
        // Live, the headset names what the controller's ray meets itself (as the desktop's
        // live view names what is under the pointer); a replay names what the instructor's pen
        // was on while drawing, as the desktop's replay and `twinray replay` do.
        let boards_to_place = std::mem::take(&mut options.boards).into();
        let tools = match &content {
            Content::Live { .. } => TeachingTools::for_case(&case).without_pen_names(),
            Content::Replay(_) => TeachingTools::for_case(&case),
        };
        Self {
            builder: SceneBuilder::for_case(&case),
            renderer,
            governor: ComfortGovernor::new(),
            interaction,
            content,
            live: LessonState::new(scene),
            recorder: None,
            voice: None,
            narration,
            case_ref: case.case_ref.clone(),
            record_pending: options.record_at_start,
            options,
            learner: None,
            last_state: None,
            anatomy_picks: Vec::new(),
            pointed: None,
            tools,
            boards_to_place,
            last_texts: Vec::new(),
            labels: SessionLabels {
                maps: LabelMaps::new(*case.ct.geometry(), case.labels.map(Arc::new)),
                ct: case.ct,
            },
        }
    }

    /// Shows `labels` (a segmentation's result, on the case's grid) from lesson time
    /// `time_ns` on, and records the change when recording: the map once, by hash, and the
    /// scene change that shows it.
    ///
    /// # Errors
    /// [`XrError::Labels`] when the map does not fit the case's grid or the format's limits.
    pub fn show_labels(&mut self, labels: LabelVolume, time_ns: i64) -> Result<(), XrError> {
        let blob = self.labels.maps.add_live(labels).map_err(XrError::Labels)?;
        for event in blob.into_events(time_ns) {
            self.live.apply(&event);
            if let Some(recorder) = &self.recorder {
                recorder.record(event);
            }
        }
        Ok(())
    }

    /// The label map the renderer shows: `None` for the case's own labels.
    #[must_use]
    pub fn shown_label_map(&self) -> Option<LabelMapHash> {
        self.renderer.label_map()
    }

    /// Uploads the labels `wanted` names, if the renderer holds others, and returns them. A
    /// map that cannot be read (a damaged chunk, another grid) is said once and the case's
    /// labels are shown.
    fn sync_labels(
        &mut self,
        wanted: Option<LabelMapHash>,
    ) -> Result<Option<Arc<LabelVolume>>, XrError> {
        let player = match &mut self.content {
            Content::Replay(player) => Some(&mut **player),
            Content::Live { .. } => None,
        };
        let shown = self.labels.maps.resolve(wanted, player);
        if let Some(warning) = &shown.warning {
            crate::say!("warning: {warning}");
        }
        self.renderer.show_labels(&self.labels.ct, &shown)?;
        Ok(shown.labels)
    }

    /// Runs frames until the source ends the session, or until [`VrOptions::max_frames`]
    /// frames were shown or [`VrOptions::stop`] is set: then it asks the source to end the
    /// session and lets it finish the runtime's shutdown. A recording in progress is finished
    /// (its footer written) however the session ended, as long as no error stopped it.
    ///
    /// # Errors
    /// When the runtime, the renderer, the recorder or writing an eye image fails.
    pub fn run(&mut self, source: &mut dyn XrSource) -> Result<VrReport, XrError> {
        let mut report = VrReport::default();
        let mut first_time_ns = None;
        let mut first_started = None;
        loop {
            if report.ended_by.is_none() {
                let stopped = self
                    .options
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::SeqCst));
                let reason = if stopped {
                    Some(SessionEnd::Stopped)
                } else if self.options.max_frames.is_some_and(|n| report.frames >= n) {
                    Some(SessionEnd::FrameLimit)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    report.ended_by = Some(reason);
                    source.request_exit()?;
                }
            }
            let Some(frame) = source.next_frame()? else {
                break;
            };
            let t0 = *first_time_ns.get_or_insert(frame.predicted_display_time_ns);
            let time_ns = frame.predicted_display_time_ns - t0 + self.options.start_time_ns;
            let started = Instant::now();
            let first_started = *first_started.get_or_insert(started);
            let (eyes, stats) =
                self.render_frame(&frame, time_ns, source.recommended_eye_size())?;
            let render_ns = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
            report.frame_times_ns.push(render_ns);
            report.last_comfort =
                Some(self.governor.frame_done(render_ns, frame.display_period_ns));
            report.last_stats = Some(stats);
            if let Some(dir) = &self.options.eye_png_dir {
                for (eye, name) in eyes.iter().zip(["left", "right"]) {
                    let path = dir.join(format!("frame-{:05}-{name}.png", report.frames));
                    eye.write_png(&path)?;
                }
            }
            source.submit(&frame, &eyes)?;
            report.frames += 1;
            report.elapsed = first_started.elapsed();
        }
        report.ended_by.get_or_insert(SessionEnd::Source);
        report.recording = self.finish_recording()?;
        Ok(report)
    }

    /// Finishes the recording in progress (footer written), if there is one: what the end of
    /// [`Self::run`] does, for callers that drive [`Self::render_frame`] themselves.
    ///
    /// # Errors
    /// When writing the end of the lesson fails.
    pub fn finish_recording(&mut self) -> Result<Option<RecordingReport>, XrError> {
        let Some(recorder) = self.recorder.take() else {
            return Ok(None);
        };
        stop_voice(self.voice.take());
        recorder.finish().map(Some).map_err(finishing)
    }

    /// One frame at lesson time `time_ns`: input, state, both eyes at the recommended size
    /// scaled by the frame's quality. [`Self::run`] calls it per frame; tests call it for
    /// fixed instants.
    ///
    /// # Errors
    /// When rendering or the recorder fails.
    pub fn render_frame(
        &mut self,
        frame: &XrFrame,
        time_ns: i64,
        recommended: [u32; 2],
    ) -> Result<([RgbaImage; 2], FrameStats), XrError> {
        let (state, twin) = match &mut self.content {
            Content::Replay(player) => {
                let learner = self
                    .learner
                    .get_or_insert_with(|| LearnerControls::new(player));
                learner.update(frame, time_ns);
                let lesson_ns = learner.playback.lesson_time_ns(time_ns);
                let playback = learner.playback;
                if let Some(n) = &mut self.narration {
                    n.set_volume(playback.volume);
                    n.update(lesson_ns, playback.playing, playback.speed);
                }
                let state = player.state_at(lesson_ns);
                learner.follow(&state, frame);
                let twin = TwinPlacement::of_scene(&state.scene);
                (state, twin)
            }
            Content::Live { record_to } => {
                let record_to = record_to.clone();
                self.live_frame(frame, time_ns, record_to.as_deref())?
            }
        };
        let labels = self.sync_labels(state.scene.label_map)?;
        let quality = self
            .options
            .fixed_quality
            .unwrap_or_else(|| self.governor.quality());
        let size = quality.eye_size(recommended);
        let mut inputs = self
            .builder
            .frame(&state, &LearnerView::Orbit(Default::default()), size);
        inputs.options.step_voxels = quality.step_voxels;
        // Boards and measurements, their values computed on the case's image and the labels
        // shown, as the desktop computes them.
        let player = match &mut self.content {
            Content::Replay(player) => Some(&mut **player),
            Content::Live { .. } => None,
        };
        for warning in self.tools.annotate(
            &mut inputs,
            &state,
            player,
            Some(&self.labels.ct),
            labels.as_deref(),
        ) {
            crate::say!("warning: {warning}");
        }
        if matches!(self.content, Content::Live { .. }) {
            // A grip takes hold of a board where this frame shows it.
            self.interaction.set_boards(&inputs.boards, &state.scene);
            self.pick_measure_points(&mut inputs, labels.as_deref(), time_ns)?;
            self.name_pointed_structure(frame, &mut inputs, labels.as_deref())?;
            self.show_measure_tool(frame, &mut inputs);
        }
        self.last_texts.clone_from(&inputs.annotations.texts);
        // A replay's learner may have moved the lesson's world (grabbed it, or follows the
        // instructor): the eyes look at it from where they stand in it.
        let views = match (&self.content, &self.learner) {
            (Content::Replay(_), Some(learner)) => {
                if learner.playback.follow_instructor {
                    inputs.overlays.glasses.clear();
                }
                learner.lesson_views(&frame.views)
            }
            _ => frame.views,
        };
        let [left_camera, right_camera] = eye_cameras(&views, &twin);
        inputs.camera = left_camera;
        let (mut left, stats) = self.renderer.render(&inputs, size)?;
        inputs.camera = right_camera;
        let (mut right, _) = self.renderer.render(&inputs, size)?;
        for warning in self.builder.take_warnings() {
            crate::say!("warning: {warning}");
        }
        if let (Content::Replay(_), Some(learner)) = (&self.content, &self.learner) {
            if learner.panel.visible() {
                let image = learner.panel.draw(&learner.playback, state.time_ns);
                learner.panel.composite(&image, &frame.views[0], &mut left);
                learner.panel.composite(&image, &frame.views[1], &mut right);
            }
        }
        self.last_state = Some(state);
        Ok(([left, right], stats))
    }

    /// The measure tool's presses on the anatomy: the point where each controller ray meets
    /// the surface the frame shows (the pen's pick, with this frame's transfer function and
    /// cuts), added to the measurement being placed; a completed one is applied and recorded.
    /// Label statistics take the structure of `labels` (those the frame shows) at the point.
    fn pick_measure_points(
        &mut self,
        inputs: &mut twinray_scene::FrameInputs,
        labels: Option<&LabelVolume>,
        time_ns: i64,
    ) -> Result<(), XrError> {
        let rays = std::mem::take(&mut self.anatomy_picks);
        if rays.is_empty() {
            return Ok(());
        }
        let mut out = crate::input::InputOutcome::default();
        for (origin, dir) in rays {
            if let Some(p) = self.pick_along(inputs, origin, dir)? {
                // Within one voxel of the surface point, as the desktop's click looks it up.
                self.interaction.measure_point(
                    twinray_lessons::event::Space::Patient,
                    p.as_vec3(),
                    |q| labels.and_then(|l| l.label_near(q.as_dvec3(), 1)),
                    &mut out,
                    time_ns,
                );
            } else {
                self.interaction.missed_the_anatomy();
            }
        }
        for event in &out.events {
            self.live.apply(event);
            if let Some(recorder) = &self.recorder {
                recorder.record(event.clone());
            }
        }
        Ok(())
    }

    /// The first surface point (patient mm) the frame shows along the ray from `origin` in
    /// direction `dir` (patient mm): the pen's pick, with the frame's transfer function and
    /// cuts, through a one-pixel camera on the ray.
    fn pick_along(
        &mut self,
        inputs: &mut twinray_scene::FrameInputs,
        origin: glam::Vec3,
        dir: glam::Vec3,
    ) -> Result<Option<glam::DVec3>, XrError> {
        let (origin, dir) = (origin.as_dvec3(), dir.as_dvec3().normalize_or_zero());
        if dir == glam::DVec3::ZERO || !origin.is_finite() {
            return Ok(None);
        }
        let up = if dir.y.abs() < 0.9 {
            glam::DVec3::Y
        } else {
            glam::DVec3::X
        };
        let camera = inputs.camera;
        inputs.camera = twinray_renderer::Camera::look_at(
            origin,
            origin + dir,
            up,
            twinray_renderer::Frustum::symmetric(1.0, 1.0),
        );
        let picked = self.renderer.pick(inputs, [1, 1], [0.5, 0.5]);
        inputs.camera = camera;
        Ok(picked?)
    }

    /// Names the labelled structure the right controller's ray meets (as the desktop names
    /// what is under the mouse): a text at that point in the scene, facing the viewer.
    fn name_pointed_structure(
        &mut self,
        frame: &XrFrame,
        inputs: &mut twinray_scene::FrameInputs,
        labels: Option<&LabelVolume>,
    ) -> Result<(), XrError> {
        self.pointed = None;
        let Some(aim) = frame.controllers[1].map(|c| c.aim) else {
            return Ok(());
        };
        let twin = self.interaction.twin();
        let origin = twin.patient_from_stage(aim.position_mm);
        let dir =
            twin.stage_from_patient.orientation.inverse() * (aim.orientation * glam::Vec3::NEG_Z);
        let Some(p) = self.pick_along(inputs, origin, dir)? else {
            return Ok(());
        };
        if let Some(id) = labels.and_then(|l| l.label_near(p, 1)) {
            let name = self.tools.label_name(id);
            inputs
                .annotations
                .texts
                .push(twinray_scene::annotations::TextLabel {
                    measurement_id: None,
                    anchor_mm: p,
                    text: name.clone(),
                });
            self.pointed = Some(name);
        }
        Ok(())
    }

    /// While a measure tool is chosen (the tool button), its name and the point the trigger
    /// places next are shown at the right controller, so the instructor knows what the trigger
    /// does before pressing it.
    fn show_measure_tool(&self, frame: &XrFrame, inputs: &mut twinray_scene::FrameInputs) {
        let (Some(tool), Some(aim)) = (
            self.interaction.measure_tool,
            frame.controllers[1].map(|c| c.aim),
        ) else {
            return;
        };
        inputs
            .annotations
            .texts
            .push(twinray_scene::annotations::TextLabel {
                measurement_id: None,
                anchor_mm: self
                    .interaction
                    .twin()
                    .patient_from_stage(aim.position_mm)
                    .as_dvec3(),
                text: match self.interaction.measure_miss() {
                    Some(miss) => format!("{}: {}", tool.name(), miss.text()),
                    None => format!(
                        "{}: point {} of {}",
                        tool.name(),
                        self.interaction.measure_points().len() + 1,
                        tool.points_needed()
                    ),
                },
            });
    }

    /// The labelled structure the right controller pointed at in the last live frame (shown
    /// there as a text in the scene).
    #[must_use]
    pub fn pointed_structure(&self) -> Option<&str> {
        self.pointed.as_deref()
    }

    /// The texts the last frame showed in the scene: each measurement's value (by its id),
    /// the name of what is pointed at, the measure tool's hint.
    #[must_use]
    pub fn shown_texts(&self) -> &[TextLabel] {
        &self.last_texts
    }

    /// Images brought in ([`VrOptions::boards`]) that the board button has not placed yet.
    #[must_use]
    pub fn boards_to_place(&self) -> usize {
        self.boards_to_place.len()
    }

    /// The live input's state, to choose its tools (the measure tool) before or between frames.
    pub fn interaction_mut(&mut self) -> &mut Interaction {
        &mut self.interaction
    }

    /// The learner's controls of a replay (after its first frame).
    #[must_use]
    pub fn learner_controls(&self) -> Option<&LearnerControls> {
        self.learner.as_ref()
    }

    /// The lesson state the last frame showed.
    #[must_use]
    pub fn last_state(&self) -> Option<&LessonState> {
        self.last_state.as_ref()
    }

    /// Input to events, recording and the live state for one frame of teaching on a case.
    fn live_frame(
        &mut self,
        frame: &XrFrame,
        time_ns: i64,
        record_to: Option<&Path>,
    ) -> Result<(LessonState, TwinPlacement), XrError> {
        let outcome = self.interaction.update(frame, time_ns);
        if std::mem::take(&mut self.record_pending) {
            self.toggle_recording(record_to, time_ns)?;
        }
        for command in &outcome.commands {
            match command {
                VrCommand::ToggleRecording => self.toggle_recording(record_to, time_ns)?,
                VrCommand::PlaceBoard => self.place_next_board(frame.head, time_ns),
            }
        }
        for event in &outcome.events {
            // The learner's own head is the camera, not an avatar in front of it.
            if !matches!(event.payload, Payload::Head(_)) {
                self.live.apply(event);
            }
            if let Some(recorder) = &self.recorder {
                // Never blocks: a slow disk drops events (counted), never frames.
                recorder.record(event.clone());
            }
        }
        self.anatomy_picks.clone_from(&outcome.anatomy_picks);
        // A board being moved shows every frame's pose; the events above recorded some.
        for change in &outcome.shown {
            self.live.scene.apply(change);
        }
        // The live scene holds the twin's pose and scale (its recorded events), so the scene
        // module places hands and strokes on a scaled twin as a replay will.
        let twin = TwinPlacement::of_scene(&self.live.scene);
        Ok((self.live.clone(), twin))
    }

    /// The board button: the next image brought in becomes a board in front of `head`, facing
    /// it ([`crate::input::board_pose_facing`]), at the width the desktop gives a new board
    /// (its real width when the image's spacing is known). Recorded as the desktop records
    /// one: the image (stored once per lesson by its hash), then the `BoardShow`. With no image
    /// left, or one whose pixels do not decode, nothing is placed (said on stderr: a headset
    /// session goes on).
    fn place_next_board(&mut self, head: Pose, time_ns: i64) {
        let Some(image) = self.boards_to_place.pop_front() else {
            crate::say!("vr: no image board left to place (bring one with --board FILE)");
            return;
        };
        if let Err(e) = self.tools.boards.add_live(&image.blob) {
            crate::say!("warning: the image board is not placed: {e}");
            return;
        }
        let (_, width_mm) = default_board_pose(
            self.labels.ct.geometry(),
            &image.blob,
            image.patient_orientation.as_ref(),
        );
        let pose =
            crate::input::board_pose_facing(head, &TwinPlacement::of_scene(&self.live.scene));
        let board_id = self.live.scene.boards.keys().max().map_or(1, |id| id + 1);
        // Titled by number, as on the desktop: a file name can name the patient.
        let title = format!("X-ray {board_id}");
        crate::say!(
            "vr: {title} placed in front of you, {width_mm:.0} mm wide: {}",
            image.description
        );
        for event in image
            .blob
            .into_events(time_ns, board_id, title, pose, width_mm)
        {
            self.live.apply(&event);
            if let Some(recorder) = &self.recorder {
                recorder.record(event);
            }
        }
    }

    /// The record button: finishes the recording in progress, or starts one at `record_to`.
    fn toggle_recording(&mut self, record_to: Option<&Path>, time_ns: i64) -> Result<(), XrError> {
        if let Some(recorder) = self.recorder.take() {
            stop_voice(self.voice.take());
            let r = recorder.finish().map_err(finishing)?;
            crate::say!(
                "vr: recorded {} events to {}",
                r.event_count,
                r.path.display()
            );
            return Ok(());
        }
        let Some(path) = record_to else {
            crate::say!("vr: not recording: no destination (pass --out DIR or --record FILE)");
            return Ok(());
        };
        // A label map and board images shown when recording starts go into the new lesson
        // too, before the scene changes that show them.
        let scene = &self.live.scene;
        let stored = scene
            .label_map
            .and_then(|h| self.labels.maps.live_blob(&h))
            .map(|blob| Payload::LabelMap(Box::new(blob.clone())))
            .into_iter()
            .chain(scene.boards.values().filter_map(|b| {
                let blob = self.tools.boards.live_blob(&b.image)?;
                Some(Payload::Image(Box::new(blob.clone())))
            }))
            .collect();
        let recorder = start_recording(path, &self.case_ref, scene, stored, time_ns)?;
        if self.options.sound {
            self.voice = start_voice(&recorder, time_ns);
        }
        self.recorder = Some(recorder);
        Ok(())
    }

    /// Renders every later frame at `quality` instead of the governor's choice (benchmarks).
    pub fn set_fixed_quality(&mut self, quality: Option<Quality>) {
        self.options.fixed_quality = quality;
    }

    /// The twin's placement now (after input).
    #[must_use]
    pub fn twin(&self) -> TwinPlacement {
        self.interaction.twin()
    }
}

/// The default microphone on the lesson clock of a recording that starts at lesson time
/// `time_ns` now; `None` (and a message) without one: the lesson records without voice.
fn start_voice(recorder: &Recorder, time_ns: i64) -> Option<VoiceCapture> {
    let now = Instant::now();
    let since_start = Duration::from_nanos(u64::try_from(time_ns).unwrap_or(0));
    let clock = LessonClock::starting_at(now.checked_sub(since_start).unwrap_or(now));
    let handle = recorder.handle();
    let started = MicrophoneSource::open(None).and_then(|mic| {
        VoiceCapture::start(
            Box::new(mic),
            clock,
            Box::new(move |e| {
                handle.record(e);
            }),
        )
    });
    match started {
        Ok(capture) => {
            crate::say!("vr: recording the voice from {}", capture.source_name());
            Some(capture)
        }
        Err(e) => {
            crate::say!("vr: recording without voice: {e}");
            None
        }
    }
}

fn stop_voice(voice: Option<VoiceCapture>) {
    if let Some(Err(e)) = voice.map(VoiceCapture::stop) {
        crate::say!("vr: the voice recording ended with an error: {e}");
    }
}

/// The replayed lesson's narration through the default output, if it has one and there is one.
fn open_narration(player: &Player) -> Option<NarrationOutput> {
    let opened = player
        .reader()
        .try_clone()
        .map_err(twinray_voice::VoiceError::from)
        .and_then(NarrationOutput::open);
    match opened {
        Ok(Some(n)) => {
            crate::say!("vr: narration on {}", n.device_name());
            Some(n)
        }
        Ok(None) => None,
        Err(e) => {
            crate::say!("vr: the narration is not played: {e}");
            None
        }
    }
}

/// The error of finishing the session's recording.
fn finishing(source: twinray_lessons::LessonError) -> XrError {
    XrError::Lesson {
        action: "finishing the VR recording".into(),
        source,
    }
}

/// Starts a recording at `path` (or the next free name) from `scene`: `stored` (label maps,
/// board images) first, then the changes that make the scene.
fn start_recording(
    path: &Path,
    case_ref: &str,
    scene: &SceneState,
    stored: Vec<Payload>,
    time_ns: i64,
) -> Result<Recorder, XrError> {
    let anchor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0));
    let mut header = LessonHeader::new(case_ref, anchor);
    header.title = Some("VR lesson".into());
    // Never over an earlier lesson: the menu button pressed twice records `vr-2.lesson`.
    let recorder =
        Recorder::create_unique(path, &header, RecorderOptions::default()).map_err(|source| {
            XrError::Lesson {
                action: format!("starting a recording at {}", path.display()),
                source,
            }
        })?;
    // The scene as it is when recording starts, so the lesson replays from the right state.
    for payload in stored {
        recorder.record(Event::new(time_ns, payload));
    }
    for change in scene.to_changes() {
        recorder.record(Event::new(time_ns, Payload::Scene(change)));
    }
    crate::say!("vr: recording to {}", recorder.path().display());
    Ok(recorder)
}
