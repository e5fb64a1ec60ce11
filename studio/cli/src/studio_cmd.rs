//! `twinray studio`: opens the desktop studio ([`twinray_desktop::window`]) on a case or a
//! lesson. The case a lesson replays on is chosen as `replay` and `vr` choose it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use twinray_desktop::app::case::{file_name, OpenCase};
use twinray_desktop::window::{self, StudioOptions};

use crate::shared::{load_case_as, open_with_case, private_temp_dir, DeviceArg, ImageArgs};

/// Arguments of `twinray studio`.
#[derive(Debug, Args)]
#[command(after_help = "\
Mouse in the 3D view: left drag orbits (or draws with the pen tool), right or middle drag pans,
the wheel zooms. Click in an MPR view to move the crosshair.

Examples:
  twinray studio                                  # the embedded demo case
  twinray studio ct.nii.gz --labels labels.nii.gz
  twinray studio mr.nii.gz --labels mr-labels.nii.gz   # an MR (mr-default preset)
  twinray studio lesson.lesson --at 22            # replay (on the demo case unless --case)
  xvfb-run twinray studio --screenshot shot.png   # draw once, save the window, exit")]
pub struct StudioArgs {
    /// A CT or MR image (NIfTI file or DICOM folder) to author on, or a .lesson file to
    /// replay.
    #[arg(value_name = "CASE_OR_LESSON")]
    pub input: Option<PathBuf>,
    /// Which DICOM series, and what the image is when its file does not say.
    #[command(flatten)]
    pub image: ImageArgs,
    /// Label map for the image.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// The CT a replayed lesson was recorded on (default: the demo case).
    #[arg(long, visible_alias = "ct", value_name = "FILE")]
    pub case: Option<PathBuf>,
    /// Replay the lesson on --case even when it is not the case the lesson was recorded on.
    #[arg(long)]
    pub force_case: bool,
    /// Window size in logical pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x800")]
    pub size: String,
    /// Start recording a lesson into this file as soon as the window opens (Stop, or closing
    /// the window, finalises it).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Open a replayed lesson at this many seconds from its start.
    #[arg(long, value_name = "SECONDS")]
    pub at: Option<f64>,
    /// The lesson library for "Save to library" and search (default: TWINRAY_LIBRARY, else
    /// the user's data folder, as for `twinray library`).
    #[arg(long, value_name = "DIR|URL")]
    pub library: Option<String>,
    /// Once the refined 3D frame is on screen, save the whole window to this PNG and exit.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// Render the volume on a GPU, on the CPU (lavapipe) or on the best available.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
}

/// Runs `twinray studio`.
pub fn run(args: StudioArgs) -> Result<()> {
    let (width, height) = args
        .size
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.trim().parse::<f32>().ok()?, h.trim().parse::<f32>().ok()?)))
        .filter(|(w, h)| (200.0..=8192.0).contains(w) && (200.0..=8192.0).contains(h))
        .with_context(|| format!("--size '{}' is not WIDTHxHEIGHT (200 to 8192)", args.size))?;
    let is_lesson = |p: &PathBuf| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("lesson"))
    };
    let (case, lesson) = match &args.input {
        // A bundle: its case comes from inside it, and the window opens its lesson from a
        // private copy (the desktop opens lessons by path).
        Some(p) if twinray_bundle::is_bundle_path(p) => {
            let opened = twinray_scene::bundle::open_bundle(p)?;
            let bytes = twinray_bundle::Bundle::open(p)?.read(twinray_bundle::LESSON)?;
            let copy = private_temp_dir("studio")?.join("lesson.lesson");
            std::fs::write(&copy, bytes).with_context(|| format!("writing {}", copy.display()))?;
            (OpenCase::from_case(file_name(p), opened.case), Some(copy))
        }
        Some(p) if is_lesson(p) => {
            let (_, case) = open_with_case(
                p,
                args.case.as_deref(),
                args.labels.as_deref(),
                args.force_case,
            )?;
            let name = args
                .case
                .as_deref()
                .map_or_else(|| "demo: lumbar spine".to_owned(), file_name);
            (OpenCase::from_case(name, case), Some(p.clone()))
        }
        Some(ct) => (
            OpenCase::from_case(
                file_name(ct),
                load_case_as(ct, args.labels.as_deref(), &args.image)?,
            ),
            None,
        ),
        None => (OpenCase::demo()?, None),
    };
    window::run(StudioOptions {
        case,
        lesson,
        at_s: args.at,
        record: args.record,
        screenshot: args.screenshot,
        size: [width, height],
        device: DeviceArg::resolve(args.device)?,
        library: args
            .library
            .as_deref()
            .map(twinray_library::Location::parse)
            .transpose()?,
    })
}
