//! The VR frame loop, the same for a headset and for the simulation.
//!
//! Per frame: read the views and input from the [`XrSource`]; turn input into lesson events
//! (recorded while recording); get the lesson state (replayed from a lesson, or built live from
//! those events); let the scene module turn it into render inputs — the one place that does,
//! shared with the desktop and the replayer; replace its camera with each eye's and its sample
//! step with the comfort governor's; render both eyes; submit; feed the frame time back to the
//! governor. Tracking and recording never wait for image quality.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use twinray_lessons::event::{Event, Payload, Pose};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::player::Player;
use twinray_lessons::recorder::{Recorder, RecorderOptions, RecordingReport};
use twinray_lessons::state::{LessonState, SceneState, TimedStrokePoint, VisibleStroke};
use twinray_renderer::{FrameStats, RgbaImage};

use super::comfort::{ComfortGovernor, ComfortReport, Quality};
use super::input::{Interaction, TwinPlacement, VrCommand};
use super::source::{XrFrame, XrSource};
use super::stereo::eye_cameras;
use crate::case::Case;
use crate::scene::{FrameRenderer, LearnerView, SceneBuilder};

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
}

/// A lesson state kept up to date from live input events (teaching, not replaying).
#[derive(Debug, Clone)]
struct LiveState {
    state: LessonState,
}

impl LiveState {
    fn new(scene: SceneState) -> Self {
        Self {
            state: LessonState {
                time_ns: 0,
                scene,
                chapter: None,
                head: None,
                hands: [None, None],
                controllers: [None, None],
                strokes: Vec::new(),
            },
        }
    }

    fn apply(&mut self, event: &Event) {
        let s = &mut self.state;
        s.time_ns = s.time_ns.max(event.time_ns);
        match &event.payload {
            // The learner's own head is the camera, not an avatar in front of it.
            Payload::Head(_) => {}
            Payload::Hand(h) => s.hands[h.hand.index()] = h.joints,
            Payload::Controller(c) => s.controllers[c.hand.index()] = c.state,
            Payload::StrokeBegin(b) => s.strokes.push(VisibleStroke {
                begin: *b,
                begin_time_ns: event.time_ns,
                points: Vec::new(),
            }),
            Payload::StrokePoint(p) => {
                if let Some(stroke) = s
                    .strokes
                    .iter_mut()
                    .find(|v| v.begin.stroke_id == p.stroke_id)
                {
                    stroke.points.push(TimedStrokePoint {
                        time_ns: event.time_ns,
                        position_mm: p.position_mm,
                        pressure: p.pressure,
                    });
                }
            }
            Payload::StrokeErase { stroke_ids } => {
                s.strokes
                    .retain(|v| !stroke_ids.contains(&v.begin.stroke_id));
            }
            Payload::StrokeUndo { stroke_id } => {
                s.strokes.retain(|v| v.begin.stroke_id != *stroke_id);
            }
            Payload::Scene(change) => s.scene.apply(change),
            Payload::Chapter(c) => s.chapter = Some(c.title.clone()),
            _ => {}
        }
    }
}

/// The state the scene module sees for a scaled twin. The scene maps stage poses to the patient
/// through the rigid `stage_from_patient`; for a scaled twin, hand and controller poses are
/// first moved to where that rigid mapping puts them on the scaled anatomy.
fn unscaled_for_scene(state: &LessonState, twin: &TwinPlacement) -> LessonState {
    let mut out = state.clone();
    if (twin.scale - 1.0).abs() < f32::EPSILON {
        return out;
    }
    let rigid = TwinPlacement::rigid(twin.stage_from_patient);
    let fix = |p: &mut Pose| {
        p.position_mm = rigid.stage_from_patient(twin.patient_from_stage(p.position_mm));
    };
    for joints in out.hands.iter_mut().flatten() {
        for j in &mut joints.joints {
            fix(&mut j.pose);
            j.radius_mm /= twin.scale;
        }
    }
    for c in out.controllers.iter_mut().flatten() {
        fix(&mut c.grip);
        fix(&mut c.aim);
    }
    out
}

/// A VR session on one case. See the module docs.
pub struct VrSession {
    builder: SceneBuilder,
    renderer: FrameRenderer,
    governor: ComfortGovernor,
    interaction: Interaction,
    content: Content,
    live: LiveState,
    recorder: Option<Recorder>,
    case_ref: String,
    options: VrOptions,
}

impl std::fmt::Debug for VrSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrSession")
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

impl VrSession {
    /// A session on `case`, rendering with `renderer` (made on the source's device).
    #[must_use]
    pub fn new(
        case: &Case,
        renderer: FrameRenderer,
        twin: Pose,
        content: Content,
        options: VrOptions,
    ) -> Self {
        let scene = SceneState {
            stage_from_patient: twin,
            ..SceneState::default()
        };
        Self {
            builder: SceneBuilder::new(*case.ct.geometry()),
            renderer,
            governor: ComfortGovernor::new(),
            interaction: Interaction::new(TwinPlacement::rigid(twin), 1),
            content,
            live: LiveState::new(scene),
            recorder: None,
            case_ref: case.case_ref.clone(),
            options,
        }
    }

    /// Runs frames until the source ends the session.
    ///
    /// # Errors
    /// When the runtime, the renderer, the recorder or writing an eye image fails.
    pub fn run(&mut self, source: &mut dyn XrSource) -> Result<VrReport> {
        let mut report = VrReport::default();
        let mut first_time_ns = None;
        while let Some(frame) = source.next_frame()? {
            let t0 = *first_time_ns.get_or_insert(frame.predicted_display_time_ns);
            let time_ns = frame.predicted_display_time_ns - t0 + self.options.start_time_ns;
            let started = Instant::now();
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
                    eye.write_png(&path)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            source.submit(&frame, &eyes)?;
            report.frames += 1;
        }
        if let Some(recorder) = self.recorder.take() {
            report.recording = Some(recorder.finish().context("finishing the VR recording")?);
        }
        Ok(report)
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
    ) -> Result<([RgbaImage; 2], FrameStats)> {
        let (state, twin) = match &mut self.content {
            Content::Replay(player) => {
                let state = player.state_at(time_ns);
                let twin = TwinPlacement::rigid(state.scene.stage_from_patient);
                (state, twin)
            }
            Content::Live { record_to } => {
                let outcome = self.interaction.update(frame, time_ns);
                for command in &outcome.commands {
                    match command {
                        VrCommand::ToggleRecording => match self.recorder.take() {
                            Some(recorder) => {
                                let r = recorder.finish().context("finishing the VR recording")?;
                                eprintln!(
                                    "vr: recorded {} events to {}",
                                    r.event_count,
                                    r.path.display()
                                );
                            }
                            None => {
                                if record_to.is_none() {
                                    eprintln!("vr: not recording: no destination (pass --out DIR)");
                                }
                                if let Some(path) = record_to {
                                    self.recorder = Some(start_recording(
                                        path,
                                        &self.case_ref,
                                        &self.live.state.scene,
                                        time_ns,
                                    )?);
                                }
                            }
                        },
                    }
                }
                for event in &outcome.events {
                    self.live.apply(event);
                    if let Some(recorder) = &self.recorder {
                        // Never blocks: a slow disk drops events (counted), never frames.
                        recorder.record(event.clone());
                    }
                }
                let twin = self.interaction.twin();
                (unscaled_for_scene(&self.live.state, &twin), twin)
            }
        };
        let quality = self
            .options
            .fixed_quality
            .unwrap_or_else(|| self.governor.quality());
        let size = quality.eye_size(recommended);
        let mut inputs = self
            .builder
            .frame(&state, &LearnerView::Orbit(Default::default()), size);
        inputs.options.step_voxels = quality.step_voxels;
        let cameras = eye_cameras(&frame.views, &twin);
        let mut eyes = Vec::with_capacity(2);
        let mut stats = None;
        for camera in cameras {
            inputs.camera = camera;
            let (image, s) = self.renderer.render(&inputs, size)?;
            stats.get_or_insert(s);
            eyes.push(image);
        }
        for warning in self.builder.take_warnings() {
            eprintln!("warning: {warning}");
        }
        let [left, right]: [RgbaImage; 2] = eyes
            .try_into()
            .map_err(|_| anyhow::anyhow!("two eyes rendered"))?;
        Ok(([left, right], stats.context("no eye rendered")?))
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

fn start_recording(
    path: &Path,
    case_ref: &str,
    scene: &SceneState,
    time_ns: i64,
) -> Result<Recorder> {
    let anchor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0));
    let mut header = LessonHeader::new(case_ref, anchor);
    header.title = Some("VR lesson".into());
    let recorder = Recorder::create(path, &header, RecorderOptions::default())
        .with_context(|| format!("starting a recording at {}", path.display()))?;
    // The scene as it is when recording starts, so the lesson replays from the right state.
    for change in scene.to_changes() {
        recorder.record(Event::new(time_ns, Payload::Scene(change)));
    }
    eprintln!("vr: recording to {}", path.display());
    Ok(recorder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::{Quat, Vec3};
    use twinray_lessons::event::{ControllerState, HandJoints};

    #[test]
    fn a_scaled_twin_keeps_hands_on_the_same_anatomy_for_the_rigid_scene() {
        let twin = TwinPlacement {
            stage_from_patient: Pose {
                position_mm: Vec3::new(0.0, 1200.0, -600.0),
                orientation: Quat::from_rotation_y(0.4),
            },
            scale: 2.0,
        };
        let hand_mm = Vec3::new(30.0, 1250.0, -500.0);
        let pose = Pose {
            position_mm: hand_mm,
            orientation: Quat::IDENTITY,
        };
        let mut state = LiveState::new(SceneState {
            stage_from_patient: twin.stage_from_patient,
            ..SceneState::default()
        })
        .state;
        let mut joints = HandJoints::default();
        joints.joints[0].pose = pose;
        state.hands[1] = Some(joints);
        state.controllers[0] = Some(ControllerState {
            grip: pose,
            aim: pose,
            buttons: 0,
            trigger: 0.0,
            squeeze: 0.0,
            thumbstick: glam::Vec2::ZERO,
        });
        let seen = unscaled_for_scene(&state, &twin);
        let rigid = TwinPlacement::rigid(twin.stage_from_patient);
        let expected = twin.patient_from_stage(hand_mm);
        let palm = seen.hands[1].expect("hand").joints[0].pose.position_mm;
        assert!(rigid.patient_from_stage(palm).distance(expected) < 1e-3);
        let aim = seen.controllers[0].expect("controller").aim.position_mm;
        assert!(rigid.patient_from_stage(aim).distance(expected) < 1e-3);
    }

    #[test]
    fn live_events_fold_into_the_lesson_state() {
        use twinray_lessons::event::{Brush, Space, StrokeBegin, StrokePoint, StrokeStyle};
        let mut live = LiveState::new(SceneState::default());
        let begin = StrokeBegin {
            stroke_id: 7,
            space: Space::Patient,
            style: StrokeStyle {
                colour_rgba: [255, 0, 0, 255],
                width_mm: 2.0,
                brush: Brush::Pen,
            },
        };
        live.apply(&Event::new(10, Payload::StrokeBegin(begin)));
        for i in 0..3 {
            live.apply(&Event::new(
                20 + i,
                Payload::StrokePoint(StrokePoint {
                    stroke_id: 7,
                    position_mm: Vec3::splat(i as f32),
                    pressure: 1.0,
                }),
            ));
        }
        assert_eq!(live.state.strokes.len(), 1);
        assert_eq!(live.state.strokes[0].points.len(), 3);
        live.apply(&Event::new(30, Payload::StrokeUndo { stroke_id: 7 }));
        assert!(live.state.strokes.is_empty());
        assert_eq!(live.state.time_ns, 30);
    }
}
