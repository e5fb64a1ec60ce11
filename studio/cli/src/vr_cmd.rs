//! `twinray vr`: teach on a case or replay a lesson in a headset through OpenXR, or run the
//! same loop headless from a simulated headset (`--simulate`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use glam::Vec3;
use twinray_renderer::GpuContext;

use twinray_scene::demo::demo_twin_pose;
use twinray_scene::{Case, FrameRenderer};
use twinray_xr::comfort::Quality;
use twinray_xr::openxr_glue::OpenXrSource;
use twinray_xr::session::{Content, VrOptions, VrSession};
use twinray_xr::source::{SimulatedXr, XrSource};

use crate::shared::{load_case, open_with_case, parse_size, DeviceArg};

/// Arguments of `twinray vr`.
#[derive(Debug, Args)]
#[command(after_help = "\
Controllers: trigger (or a thumb–index pinch with hand tracking) draws, grip grabs the twin
(both grips: scale and turn), right menu starts/stops recording, left menu marks a chapter.

Examples:
  twinray vr                                   teach on the demo case in a headset
  twinray vr demo.lesson                       replay a lesson in a headset
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
    /// Frames to simulate (90 per second).
    #[arg(long, default_value_t = 90, requires = "simulate")]
    pub frames: u64,
    /// Folder for the simulated eye images (frame-NNNNN-left.png, …) and, when recording
    /// is toggled on, the lesson (vr.lesson); for a headset, where recordings go.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
        let lesson = args.input.clone().context("a lesson path")?;
        let (player, case) =
            open_with_case(&lesson, args.ct.as_deref(), args.labels.as_deref(), false)?;
        (case, Content::Replay(Box::new(player)))
    } else {
        let case = match &args.input {
            Some(ct) => load_case(ct, args.labels.as_deref())?,
            None => Case::demo()?,
        };
        let record_to = args.out.as_ref().map(|d| d.join("vr.lesson"));
        (case, Content::Live { record_to })
    };
    let twin = demo_twin_pose(case.ct.geometry().centre_mm());
    let twin_centre_mm = Vec3::new(0.0, 1200.0, -600.0);

    let mut source: Box<dyn XrSource>;
    let ctx: std::sync::Arc<GpuContext>;
    if args.simulate {
        ctx = GpuContext::new(DeviceArg::resolve(args.device)?)?;
        source = Box::new(SimulatedXr::new(twin_centre_mm, args.eye_size, args.frames));
    } else {
        if args.device.is_some() {
            bail!("--device applies to --simulate only: a headset renders on the OpenXR runtime's device");
        }
        let xr = OpenXrSource::start()?;
        ctx = xr.gpu();
        source = Box::new(xr);
    }
    let renderer = FrameRenderer::new(ctx.clone(), &case.ct, case.labels.as_ref())?;
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
    };
    let mut session = VrSession::new(&case, renderer, twin, content, options);
    let report = session.run(source.as_mut())?;
    let mut times: Vec<i64> = report.frame_times_ns.clone();
    times.sort_unstable();
    let median_ms = times.get(times.len() / 2).map_or(0.0, |&t| t as f64 * 1e-6);
    eprintln!(
        "vr: {} frames on {}, median stereo frame {:.1} ms{}",
        report.frames,
        ctx.device_name(),
        median_ms,
        report
            .last_comfort
            .map(|c| format!("; comfort: {c}"))
            .unwrap_or_default()
    );
    if let Some(r) = &report.recording {
        eprintln!(
            "vr: recorded {} events ({} dropped) to {}",
            r.event_count,
            r.dropped_event_count,
            r.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
