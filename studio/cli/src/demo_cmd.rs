//! `twinray demo`: records the scripted demo lesson ([`twinray_scene::demo`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use twinray_scene::demo::{record_demo, script};
use twinray_scene::Case;

use crate::shared::load_case;

/// Arguments of `twinray demo`.
#[derive(Debug, Args)]
#[command(after_help = "\
Records about 50 s of lesson time (in well under a second). Replay it with
  twinray replay demo.lesson --at 20 --azimuth 180 --elevation 20 --out frame.png")]
pub struct DemoArgs {
    /// Where to write the lesson (an existing file is refused unless --replace).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE when it exists (recordings never replace a file otherwise).
    #[arg(long)]
    pub replace: bool,
    /// Teach on another case instead of the embedded demo: a CT (NIfTI or DICOM) …
    #[arg(long, value_name = "FILE")]
    pub ct: Option<PathBuf>,
    /// … with its TotalSegmentator vertebra labels (L1–L5 are needed for the strokes).
    #[arg(long, value_name = "FILE", requires = "ct")]
    pub labels: Option<PathBuf>,
}

/// Runs `twinray demo`.
///
/// # Errors
/// If the case cannot be loaded or lacks L1–L5, or the lesson cannot be written.
pub fn run(args: &DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let case = match &args.ct {
        Some(ct) => load_case(ct, args.labels.as_deref())?,
        None => Case::demo()?,
    };
    if args.replace && args.out.is_file() {
        std::fs::remove_file(&args.out)
            .with_context(|| format!("replacing {}", args.out.display()))?;
    }
    let report = record_demo(&case, &args.out)?;
    eprintln!(
        "recorded {:.0} s of lesson on {} ({}): {} events in {} chunks, {} bytes, in {:.0} ms -> {}",
        script::DURATION_S,
        case.origin,
        case.case_ref,
        report.event_count,
        report.chunk_count,
        report.bytes_written,
        started.elapsed().as_secs_f64() * 1e3,
        args.out.display()
    );
    Ok(())
}
