//! The `twinray` command line: parsing, dispatch, and exit codes (2 for errors).

use crate::{
    bundle_cmd, demo_cmd, dicom_cmd, lesson_cmd, library_cmd, measure_cmd, preset_cmd,
    radiograph_cmd, render_cmd, replay_cmd, segment_cmd, studio_cmd, vr_cmd,
};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// twinray: patient digital twins for medical education.
///
/// Renders CT volumes with their anatomical labels by ray marching on the GPU (or on the CPU
/// through lavapipe), and records and replays lessons taught on them.
#[derive(Debug, Parser)]
#[command(name = "twinray", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render a CT volume (with optional labels) to a PNG, headless.
    Render(render_cmd::RenderArgs),
    /// Inspect, check, repair and dump recorded lessons.
    #[command(subcommand)]
    Lesson(lesson_cmd::LessonCommand),
    /// List the DICOM series in a folder: geometry, codecs, warnings, skipped files.
    Info(dicom_cmd::InfoArgs),
    /// Show a radiograph (CR, DX) as an X-ray board does: size, spacing, orientation, window.
    Radiograph(radiograph_cmd::RadiographArgs),
    /// Convert a DICOM series to NIfTI with its patient geometry.
    Convert(dicom_cmd::ConvertArgs),
    /// Label the anatomy in a CT with a segmentation model (ONNX), nnU-Net style.
    Segment(segment_cmd::SegmentArgs),
    /// Measure a case headless: per-label volume and HU statistics, needle trajectories.
    #[command(subcommand)]
    Measure(measure_cmd::MeasureCommand),
    /// Record the scripted demo lesson (a lumbar spine lesson on the embedded demo case).
    Demo(demo_cmd::DemoArgs),
    /// Render a lesson at an instant (or every frame of it) from a learner's viewpoint.
    Replay(replay_cmd::ReplayArgs),
    /// Write a self-contained, de-identified lesson bundle (.twlesson); verify or show one.
    Bundle(bundle_cmd::BundleArgs),
    /// The lesson library: add, list, search, show, open, remove, export, verify, reindex.
    Library(library_cmd::LibraryArgs),
    /// Show a transfer-function preset's opacity and colour at some values, or list the presets
    /// in a file (twinray's, or 3D Slicer's presets.xml, .vp.json, .vp).
    Preset(preset_cmd::PresetArgs),
    /// Open the studio window on a case or a lesson (the embedded demo case without one).
    Studio(studio_cmd::StudioArgs),
    /// Teach or replay in a headset through OpenXR, or from a simulated headset (--simulate).
    Vr(vr_cmd::VrArgs),
}

/// Parses the command line, runs the command and returns the exit status; errors are
/// printed with their context chain.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Lesson(cmd) => lesson_cmd::run(cmd),
        Command::Info(args) => dicom_cmd::info(&args).map(|()| ExitCode::SUCCESS),
        Command::Radiograph(args) => radiograph_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Convert(args) => dicom_cmd::convert(&args).map(|()| ExitCode::SUCCESS),
        Command::Segment(args) => segment_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Measure(cmd) => measure_cmd::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => demo_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => replay_cmd::run(&args),
        Command::Studio(args) => studio_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Vr(args) => vr_cmd::run(&args),
        Command::Bundle(args) => bundle_cmd::run(&args),
        Command::Library(args) => library_cmd::run(args),
        Command::Preset(args) => preset_cmd::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", report(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line. Library errors already spell out their cause in
/// their own message ("cannot read F: No such file"), so a cause whose text is already there
/// is not repeated.
fn report(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let lib = anyhow::Error::new(io).context("cannot read /ct.nii.gz: No such file");
        assert_eq!(report(&lib), "cannot read /ct.nii.gz: No such file");
        let chained = anyhow::anyhow!("bad header").context("loading /ct.nii.gz");
        assert_eq!(report(&chained), "loading /ct.nii.gz: bad header");
    }
}
