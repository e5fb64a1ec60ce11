//! `twinray vr`: teach on a case or replay a lesson in a headset through OpenXR, or run the
//! same loop headless from a simulated headset (`--simulate`).
//!
//! SIGINT and SIGTERM end the session cleanly (the runtime is asked to end it, a recording in
//! progress is finished) and the command exits 0; a second signal ends the process at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use glam::Vec3;
use twinray_renderer::GpuContext;

use twinray_scene::boards::load_board_image;
use twinray_scene::demo::demo_twin_pose;
use twinray_scene::{Case, FrameRenderer};
use twinray_xr::comfort::Quality;
use twinray_xr::openxr_glue::OpenXrSource;
use twinray_xr::session::{Content, SessionEnd, VrOptions, VrSession};
use twinray_xr::source::{SimulatedXr, XrSource};

use crate::shared::{load_case, open_with_case, parse_size, DeviceArg};

/// Arguments of `twinray vr`.
#[derive(Debug, Args)]
#[command(after_help = "\
Controllers: trigger (or a thumb–index pinch with hand tracking) draws, grip grabs the twin
(both grips: scale and turn; with the ray on an X-ray board, grip moves that board), right
menu starts/stops recording, left menu marks a chapter; on Touch controllers X or B steps
through the measure tools (distance, angle, Cobb angle, needle path, label statistics) and Y
places the next --board image in front of you (with a board in a grip: hides that board).
The session's state changes (READY, FOCUSED, STOPPING, …) are printed on stderr. Ctrl-C or
SIGTERM ends the session cleanly and finishes a recording in progress (exit status 0); a
second one ends the process at once.

Examples:
  twinray vr                                   teach on the demo case in a headset
  twinray vr demo.lesson                       replay a lesson in a headset
  twinray vr --record lesson.lesson            teach and record from the first frame
  twinray vr --board chest.dcm --board hip.png bring two images in as boards (Y places each)
  twinray vr --frames 600                      end the session after 600 frames
  twinray vr --simulate --frames 450 --out vr/ scripted headset, eye PNGs and vr/vr.lesson")]
pub struct VrArgs {
    /// A CT (NIfTI or DICOM) to teach on, or a .lesson file to replay; the demo case if absent.
    #[arg(value_name = "CASE_OR_LESSON")]
    pub input: Option<PathBuf>,
    /// Labels for a CT given as CASE_OR_LESSON (or the case of a lesson not on the demo case).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// The CT of a lesson's case, when the lesson was not taught on the demo case.
    #[arg(long, value_name = "FILE")]
    pub ct: Option<PathBuf>,
    /// Run from a scripted headset instead of an OpenXR runtime, headless.
    #[arg(long)]
    pub simulate: bool,
    /// End the session cleanly after this many frames (a headset: none by default; the
    /// simulated headset: 90, one second).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Folder for the simulated eye images (frame-NNNNN-left.png, …) and, when recording
    /// is toggled on, the lesson (vr.lesson); for a headset, where recordings go.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Teaching on a case: record a lesson into this file from the first frame (the record
    /// button stops it; the end of the session finishes it). An existing file is never
    /// replaced: the next free name (`lesson-2.lesson`, …) is taken and printed.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Teaching on a case: an image to bring in as a board (DICOM CR/DX or a single CT/MR
    /// slice, PNG or JPEG; repeatable). Each press of the board button (Y on the left Touch
    /// controller) places the next one in front of you, facing you, at its real size when
    /// its pixel spacing is known; recorded as the desktop records a board.
    #[arg(long = "board", value_name = "FILE")]
    pub boards: Vec<PathBuf>,
    /// Per-eye size of the simulated headset, WIDTHxHEIGHT.
    #[arg(long, default_value = "320x336", value_parser = parse_size, requires = "simulate")]
    pub eye_size: [u32; 2],
    /// Fixed sample step in voxels instead of the comfort governor's choice (simulation).
    #[arg(long, requires = "simulate")]
    pub step: Option<f32>,
    /// Render on a GPU, on the CPU (lavapipe) or on the best available (simulation only: a
    /// headset renders on the runtime's device).
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
}

/// Runs `twinray vr`.
pub fn run(args: &VrArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let is_lesson = args.input.as_ref().is_some_and(|p| {
        p.extension().is_some_and(|e| e == "lesson") || twinray_bundle::is_bundle_path(p)
    });
    let (case, content) = if is_lesson {
        if args.record.is_some() {
            bail!("--record records a lesson taught on a case; a lesson is replayed, not recorded");
        }
        if !args.boards.is_empty() {
            bail!("--board brings images in while teaching on a case; a replayed lesson is not changed");
        }
        let lesson = args.input.clone().context("a lesson path")?;
        let (player, case) =
            open_with_case(&lesson, args.ct.as_deref(), args.labels.as_deref(), false)?;
        twinray_xr::say!(
            "vr: the left menu button (or the left palm held up) shows the learner's panel: \
             play/pause, timeline, chapters, follow, speed, volume; grip carries the lesson"
        );
        (case, Content::Replay(Box::new(player)))
    } else {
        let case = match &args.input {
            Some(ct) => load_case(ct, args.labels.as_deref())?,
            None => Case::demo()?,
        };
        let record_to = args
            .record
            .clone()
            .or_else(|| args.out.as_ref().map(|d| d.join("vr.lesson")));
        (case, Content::Live { record_to })
    };
    // Read before the headset starts, so a file that cannot be a board is said at once.
    let mut boards = Vec::with_capacity(args.boards.len());
    for (k, path) in args.boards.iter().enumerate() {
        let image = load_board_image(path)?;
        twinray_xr::say!(
            "vr: board image {} ready ({}); the Y button places it",
            k + 1,
            image.description
        );
        boards.push(image);
    }
    let twin = demo_twin_pose(case.ct.geometry().centre_mm());
    let twin_centre_mm = Vec3::new(0.0, 1200.0, -600.0);

    let stop = stop_on_signals()?;
    let mut source: Box<dyn XrSource>;
    let ctx: Arc<GpuContext>;
    if args.simulate {
        ctx = GpuContext::new(DeviceArg::resolve(args.device)?)?;
        let frames = args.frames.unwrap_or(90);
        source = Box::new(SimulatedXr::new(twin_centre_mm, args.eye_size, frames));
    } else {
        if args.device.is_some() {
            bail!("--device applies to --simulate only: a headset renders on the OpenXR runtime's device");
        }
        let xr = OpenXrSource::start()?.stop_when(stop.clone());
        ctx = xr.gpu();
        source = Box::new(xr);
    }
    let renderer =
        FrameRenderer::new(ctx.clone(), &case.ct, case.labels.as_ref(), &case.intensity)?;
    let options = VrOptions {
        eye_png_dir: if args.simulate {
            args.out.clone()
        } else {
            None
        },
        fixed_quality: args.step.map(|step_voxels| Quality {
            step_voxels,
            resolution_scale: 1.0,
        }),
        start_time_ns: 0,
        // A headset runs in real time: the microphone and the narration are live. The
        // simulated headset renders scripted frames as fast as it can, so it stays silent.
        sound: !args.simulate,
        max_frames: args.frames,
        stop: Some(stop),
        record_at_start: args.record.is_some(),
        boards,
    };
    let mut session = VrSession::new(case, renderer, twin, content, options);
    let report = session.run(source.as_mut())?;
    let mut times: Vec<i64> = report.frame_times_ns.clone();
    times.sort_unstable();
    let median_ms = times.get(times.len() / 2).map_or(0.0, |&t| t as f64 * 1e-6);
    let secs = report.elapsed.as_secs_f64();
    twinray_xr::say!(
        "vr: {} frames submitted in {secs:.2} s ({:.1} per second) on {}, median stereo frame \
         {median_ms:.1} ms{}",
        report.frames,
        if secs > 0.0 {
            report.frames as f64 / secs
        } else {
            0.0
        },
        ctx.device_name(),
        report
            .last_comfort
            .map(|c| format!("; comfort: {c}"))
            .unwrap_or_default()
    );
    match report.ended_by {
        Some(SessionEnd::FrameLimit) => {
            twinray_xr::say!("vr: ended after {} frames (--frames)", report.frames);
        }
        Some(SessionEnd::Stopped) => twinray_xr::say!("vr: ended by a signal"),
        Some(SessionEnd::Source) | None => {}
    }
    if let Some(r) = &report.recording {
        twinray_xr::say!(
            "vr: recorded {} events ({} dropped) to {}",
            r.event_count,
            r.dropped_event_count,
            r.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag that SIGINT and SIGTERM set, for the frame loop to end the session cleanly. A second
/// signal, while the session is still ending, ends the process at once (status 128 + signal).
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, stop.clone())
            .context("installing the signal handlers")?;
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the signal handlers")?;
    }
    Ok(stop)
}
