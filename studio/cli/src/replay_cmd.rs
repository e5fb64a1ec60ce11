//! `twinray replay`: renders a recorded lesson headless — one instant, every frame, or a video —
//! from a learner's viewpoint (free orbit, or following the instructor's head).
//!
//! The lesson names its case only by content hash; the embedded demo case is used when the
//! hash is the demo's, otherwise `--ct`/`--labels` must give a case with the same hash. A
//! damaged lesson replays what is readable, and stderr says what is not.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use twinray_lessons::player::Player;
use twinray_lessons::state::LessonState;
use twinray_lessons::tools::format_time_ns;
use twinray_renderer::GpuContext;

use twinray_scene::annotations::TeachingTools;
use twinray_scene::lesson::damage_messages;
use twinray_scene::{FrameInputs, FrameRenderer, LabelMaps, LearnerView, OrbitView, SceneBuilder};

use crate::shared::{check_output_folder, open_with_case, parse_size, private_temp_dir, DeviceArg};

/// Arguments of `twinray replay`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  twinray replay demo.lesson --at 12.5 --azimuth 40 --elevation 10 --out frame.png
  twinray replay demo.lesson --at 20 --follow-instructor --out instructor.png
  twinray replay demo.lesson --frames frames/ --fps 30 --size 640x360
  twinray replay demo.lesson --video lesson.mp4 --fps 30        (needs ffmpeg on PATH)
  twinray replay other.lesson --ct ct.nii.gz --labels labels.nii.gz --at 5 --out f.png")]
pub struct ReplayArgs {
    /// The lesson file, or a .twlesson bundle (which carries its case).
    #[arg(value_name = "LESSON")]
    pub lesson: PathBuf,
    /// Lesson time to render, in seconds (with --out).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub at: f64,
    /// Learner camera azimuth in degrees (0 = anterior, positive towards the patient's left).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub azimuth: f64,
    /// Learner camera elevation in degrees towards the head.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub elevation: f64,
    /// Zoom factor of the learner camera (2 = twice as close).
    #[arg(long, default_value_t = 1.0)]
    pub zoom: f64,
    /// See through the instructor's eyes (the recorded head pose) instead of orbiting; falls
    /// back to the orbit while the head is not tracked.
    #[arg(long)]
    pub follow_instructor: bool,
    /// Image size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "512x512", value_parser = parse_size)]
    pub size: [u32; 2],
    /// Write the frame at --at to this PNG.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["frames", "video"])]
    pub out: Option<PathBuf>,
    /// Render the whole lesson into this folder (frame_00000.png, …).
    #[arg(long, value_name = "DIR")]
    pub frames: Option<PathBuf>,
    /// Render the whole lesson into an H.264 video (needs ffmpeg on PATH).
    #[arg(long, value_name = "FILE")]
    pub video: Option<PathBuf>,
    /// Frames per second of lesson time for --frames and --video.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// The case's CT, when the lesson was not taught on the embedded demo case.
    #[arg(long, value_name = "FILE")]
    pub ct: Option<PathBuf>,
    /// The case's labels.
    #[arg(long, value_name = "FILE", requires = "ct")]
    pub labels: Option<PathBuf>,
    /// Replay on --ct/--labels even if their content hash is not the lesson's (a warning
    /// instead of an error).
    #[arg(long, requires = "ct")]
    pub force_case: bool,
    /// Render on a GPU, on the CPU (lavapipe) or on the best available.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
}

impl ReplayArgs {
    /// One frame of `lesson` at `at` seconds into `out`, with every other option at its default.
    pub fn for_frame(lesson: PathBuf, at: f64, out: PathBuf) -> Self {
        Self {
            lesson,
            at,
            azimuth: 0.0,
            elevation: 0.0,
            zoom: 1.0,
            follow_instructor: false,
            size: [512, 512],
            out: Some(out),
            frames: None,
            video: None,
            fps: 30.0,
            ct: None,
            labels: None,
            force_case: false,
            device: None,
        }
    }
}

/// The most frames one replay renders: four hours at 30 frames per second. A lesson whose time
/// range asks for more is damaged or crafted, and rendering it would never end.
const MAX_FRAMES: usize = 4 * 3600 * 30;

/// How many frames cover `t0..=t1` at `fps`, refused past [`MAX_FRAMES`].
fn frame_count(t0: i64, t1: i64, fps: f64) -> Result<usize> {
    let span_s = (i128::from(t1) - i128::from(t0)).max(0) as f64 * 1e-9;
    let frames = (span_s * fps).floor() + 1.0;
    if !(frames.is_finite() && frames <= MAX_FRAMES as f64) {
        bail!(
            "{span_s:.0} s at {fps} frames per second would be {frames:.0} frames; twinray renders at most {MAX_FRAMES} (4 hours at 30 fps) in one replay"
        );
    }
    Ok(frames as usize)
}

/// Frames are numbered from `frame_00000.png`; a folder that already holds some (an earlier,
/// longer run) would mix them into the video and the user's folder, so it is refused.
fn refuse_earlier_frames(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the frames folder {}", dir.display()))?;
    let earlier = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("frame_") && name.ends_with(".png")
        })
        .count();
    if earlier > 0 {
        bail!(
            "the frames folder {} already holds {earlier} frame_*.png files of an earlier replay; choose an empty folder (nothing there is overwritten)",
            dir.display()
        );
    }
    Ok(())
}

fn secs_to_ns(s: f64) -> i64 {
    (s * 1e9).round() as i64
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn describe(state: &LessonState, frame: &FrameInputs) -> String {
    let mut text = format!(
        "t {:.2} s, chapter {:?}, preset {}, {} stroke segments, {} avatar capsules{}",
        state.time_ns as f64 * 1e-9,
        state.chapter.as_deref().unwrap_or("-"),
        frame.transfer_function.preset.name,
        frame.overlays.strokes.len(),
        frame.overlays.glasses.len() + frame.overlays.hands.len(),
        if frame.follows_instructor {
            ", through the instructor's eyes"
        } else {
            ""
        }
    );
    let boards = frame.boards.boards.len();
    if boards > 0 {
        text.push_str(&format!(
            ", {boards} board{}",
            if boards == 1 { "" } else { "s" }
        ));
    }
    let (values, names): (Vec<_>, Vec<_>) = frame
        .annotations
        .texts
        .iter()
        .partition(|t| t.measurement_id.is_some());
    let words = |texts: Vec<&twinray_scene::annotations::TextLabel>| {
        texts
            .iter()
            .map(|t| t.text.replace('\n', ", "))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !names.is_empty() {
        text.push_str(&format!(", pointing at {}", words(names)));
    }
    if !values.is_empty() {
        text.push_str(&format!(", measurements: {}", words(values)));
    }
    text
}

/// Runs `twinray replay`.
///
/// # Errors
/// If the lesson is not a lesson, its case is not available, rendering fails, or an output
/// cannot be written.
pub fn run(args: &ReplayArgs) -> Result<ExitCode> {
    if !(args.fps.is_finite() && args.fps > 0.0 && args.fps <= 1000.0) {
        bail!("--fps {} must be between 0 and 1000", args.fps);
    }
    if !args.at.is_finite() {
        bail!("--at {} is not a number of seconds", args.at);
    }
    // Check the tools before spending minutes rendering.
    let ffmpeg = match &args.video {
        Some(video) => Some(on_path("ffmpeg").with_context(|| {
            format!(
                "--video {} needs ffmpeg on PATH (apt-get install ffmpeg), which was not found; --frames DIR writes the frames as PNGs instead",
                video.display()
            )
        })?),
        None => None,
    };
    for out in [&args.out, &args.video].into_iter().flatten() {
        check_output_folder(out)?;
    }

    let opened = Instant::now();
    let (mut player, case) = open_with_case(
        &args.lesson,
        args.ct.as_deref(),
        args.labels.as_deref(),
        args.force_case,
    )?;
    let ctx = GpuContext::new(DeviceArg::resolve(args.device)?)?;
    let mut renderer =
        FrameRenderer::new(ctx.clone(), &case.ct, case.labels.as_ref(), &case.intensity)?;
    let mut builder = SceneBuilder::for_case(&case);
    // Labels a segmentation made during the lesson replace the case's when the lesson says.
    let mut label_maps = player
        .holds_label_maps()
        .then(|| LabelMaps::new(*case.ct.geometry(), case.labels.clone().map(Arc::new)));
    let mut tools = TeachingTools::for_case(&case);
    // Shows the labels the lesson shows at `state`, and draws its boards and measurements.
    let mut prepare = |player: &mut Player,
                       renderer: &mut FrameRenderer,
                       state: &LessonState,
                       frame: &mut FrameInputs|
     -> Result<()> {
        let mut labels = case.labels.as_ref();
        let shown;
        if let Some(maps) = &mut label_maps {
            shown = maps.resolve(state.scene.label_map, Some(&mut *player));
            if let Some(warning) = &shown.warning {
                eprintln!("warning: {}: {warning}", args.lesson.display());
            }
            renderer.show_labels(&case.ct, &shown)?;
            labels = shown.labels.as_deref();
        }
        for warning in tools.annotate(frame, state, Some(player), Some(&case.ct), labels) {
            eprintln!("warning: {}: {warning}", args.lesson.display());
        }
        Ok(())
    };
    let orbit = OrbitView {
        azimuth_deg: args.azimuth,
        elevation_deg: args.elevation,
        zoom: args.zoom,
        ..OrbitView::default()
    };
    let view = if args.follow_instructor {
        LearnerView::FollowInstructor(orbit)
    } else {
        LearnerView::Orbit(orbit)
    };
    let range = player.time_range_ns();
    if range.is_none() {
        eprintln!(
            "warning: {}: no readable events; showing the case as a lesson starts",
            args.lesson.display()
        );
    }

    if let Some(out) = &args.out {
        let t_ns = secs_to_ns(args.at);
        if let Some((t0, t1)) = range {
            if t_ns < t0 || t_ns > t1 {
                eprintln!(
                    "warning: --at {} s is outside the lesson's readable time ({} to {})",
                    args.at,
                    format_time_ns(t0),
                    format_time_ns(t1)
                );
            }
        }
        let state = player.state_at(t_ns);
        let mut frame = builder.frame(&state, &view, args.size);
        prepare(&mut player, &mut renderer, &state, &mut frame)?;
        let (image, _) = renderer.render(&frame, args.size)?;
        image.write_png(out)?;
        eprintln!(
            "replayed {} at {} on {} ({} ms from opening): {} -> {}",
            args.lesson.display(),
            format_time_ns(t_ns),
            ctx.device_name(),
            opened.elapsed().as_millis(),
            describe(&state, &frame),
            out.display()
        );
    }

    if args.frames.is_some() || args.video.is_some() {
        let (t0, t1) = range.unwrap_or((0, 0));
        let t0 = t0.min(0);
        let count = frame_count(t0, t1, args.fps).with_context(|| {
            format!(
                "{}: its readable time runs from {} to {}",
                args.lesson.display(),
                format_time_ns(t0),
                format_time_ns(t1)
            )
        })?;
        let period_ns = 1e9 / args.fps;
        let temp;
        let dir = if let Some(dir) = &args.frames {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the frames folder {}", dir.display()))?;
            refuse_earlier_frames(dir)?;
            dir.clone()
        } else {
            temp = private_temp_dir("replay")?;
            temp.clone()
        };
        let started = Instant::now();
        for n in 0..count {
            let t_ns = t0 + (n as f64 * period_ns).round() as i64;
            let state = player.state_at(t_ns);
            let mut frame = builder.frame(&state, &view, args.size);
            prepare(&mut player, &mut renderer, &state, &mut frame)?;
            let (image, _) = renderer.render(&frame, args.size)?;
            let path = dir.join(format!("frame_{n:05}.png"));
            image.write_png(&path)?;
            if n % (args.fps.ceil() as usize).max(1) == 0 || n + 1 == count {
                let done = n + 1;
                let eta = started.elapsed().as_secs_f64() / done as f64 * (count - done) as f64;
                eprintln!(
                    "frame {done}/{count} at {} ({:.0} s left): {}",
                    format_time_ns(t_ns),
                    eta,
                    describe(&state, &frame)
                );
            }
        }
        eprintln!(
            "rendered {count} frames of {}x{} in {:.1} s -> {}",
            args.size[0],
            args.size[1],
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        if let (Some(video), Some(ffmpeg)) = (&args.video, &ffmpeg) {
            // The narration over exactly the video's span, on the lesson clock.
            let narration = narration_wav(&player, t0, count as f64 / args.fps)
                .with_context(|| format!("rendering the narration of {}", args.lesson.display()))?;
            let mut ffmpeg_cmd = Command::new(ffmpeg);
            ffmpeg_cmd
                .args(["-y", "-loglevel", "error", "-framerate"])
                .arg(format!("{}", args.fps))
                .arg("-i")
                .arg(dir.join("frame_%05d.png"));
            if let Some((wav, _)) = &narration {
                ffmpeg_cmd
                    .arg("-i")
                    .arg(wav)
                    .args(["-map", "0:v", "-map", "1:a"]);
            }
            ffmpeg_cmd.args([
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
            ]);
            if narration.is_some() {
                ffmpeg_cmd.args(["-c:a", "aac", "-b:a", "96k"]);
            }
            let status = ffmpeg_cmd
                .arg(video)
                .status()
                .with_context(|| format!("running {}", ffmpeg.display()))?;
            if args.frames.is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if let Some((_, narration_dir)) = &narration {
                let _ = std::fs::remove_dir_all(narration_dir);
            }
            if !status.success() {
                bail!("ffmpeg failed ({status}) writing {}", video.display());
            }
            eprintln!("wrote {}", video.display());
        }
    }

    for w in builder.take_warnings() {
        eprintln!("warning: {}: {w}", args.lesson.display());
    }
    let damage = damage_messages(&player);
    for d in &damage {
        eprintln!("warning: {}: {d}", args.lesson.display());
    }
    if !damage.is_empty() {
        eprintln!(
            "warning: {}: the lesson is damaged; what is listed above was skipped and everything else was replayed (`twinray lesson verify` checks it, `twinray lesson recover` rebuilds it)",
            args.lesson.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The lesson's narration from lesson time `t0_ns` for `seconds`, as a 48 kHz WAV file in a
/// private temporary folder (the file and the folder, for removal); `None` without narration.
fn narration_wav(
    player: &twinray_lessons::player::Player,
    t0_ns: i64,
    seconds: f64,
) -> anyhow::Result<Option<(std::path::PathBuf, std::path::PathBuf)>> {
    let mut narration =
        twinray_voice::playback::NarrationPlayer::new(player.reader().try_clone()?)?;
    if !narration.has_voice() {
        return Ok(None);
    }
    // 10 ms at a time, so the drift correction follows the lesson clock as live playback does.
    const BLOCK: usize = 480;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = (seconds * 48_000.0).round() as usize;
    let mut samples = vec![0.0f32; total];
    for (k, block) in samples.chunks_mut(BLOCK).enumerate() {
        #[allow(clippy::cast_possible_wrap)]
        let t = t0_ns + (k * BLOCK) as i64 * 1_000_000_000 / 48_000;
        narration.render(t, block)?;
    }
    let dir = private_temp_dir("narration")?;
    let wav = dir.join("narration.wav");
    twinray_voice::wav::write_wav(&wav, 48_000, &samples)?;
    if !narration.undecodable().is_empty() {
        eprintln!(
            "warning: {} stretches of narration would not decode and are silent in the video",
            narration.undecodable().len()
        );
    }
    Ok(Some((wav, dir)))
}

#[cfg(test)]
mod tests {
    use super::{frame_count, MAX_FRAMES};

    #[test]
    fn the_frame_count_covers_the_range_and_is_bounded() {
        assert_eq!(frame_count(0, 50_000_000_000, 0.2).expect("11 frames"), 11);
        assert_eq!(frame_count(0, 0, 30.0).expect("one frame"), 1);
        assert_eq!(frame_count(5, 0, 30.0).expect("an empty range"), 1);
        let hours_4 = 4 * 3600 * 1_000_000_000_i64;
        assert_eq!(
            frame_count(0, hours_4 - 1, 30.0).expect("just under"),
            MAX_FRAMES
        );
        // A crafted time range (from the far past to the far future) is refused, not rendered.
        let e = frame_count(i64::MIN, i64::MAX, 30.0).expect_err("too many frames");
        assert!(e.to_string().contains("at most 432000"), "{e}");
    }
}
