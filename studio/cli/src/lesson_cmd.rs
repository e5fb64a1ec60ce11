//! `twinray lesson …`: inspect, check, repair and dump lesson files.
//!
//! The work is done by `twinray_lessons::tools`; this module only parses arguments, prints
//! and chooses exit codes: 0 success / clean, 1 damage found (`verify`; `dump` when it had
//! to skip damaged chunks), and errors (unreadable file, not a lesson) are returned to
//! `main`, which reports them (exit 2).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use twinray_lessons::tools;

/// `twinray lesson` subcommands.
#[derive(Debug, Subcommand)]
pub enum LessonCommand {
    /// Duration, case reference, streams with counts and sizes, chapters.
    Info {
        /// The lesson file.
        file: PathBuf,
    },
    /// Check every chunk, the sequence and the footer. Exit 0 if clean, 1 if damaged.
    Verify {
        /// The lesson file.
        file: PathBuf,
    },
    /// Rebuild a crashed, truncated or damaged lesson into a new file, keeping every intact
    /// chunk, and say what was lost.
    Recover {
        /// The damaged lesson file (left untouched).
        file: PathBuf,
        /// Where to write the rebuilt lesson.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the header and every event as JSON lines, in time order.
    Dump {
        /// The lesson file.
        file: PathBuf,
    },
}

/// Runs a `lesson` subcommand.
///
/// # Errors
/// If the file cannot be read or is not a lesson, or writing the output fails; the message
/// names the file and the problem.
pub fn run(cmd: LessonCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LessonCommand::Info { file } => {
            let info = tools::info(&file)?;
            print!("{info}");
            Ok(ExitCode::SUCCESS)
        }
        LessonCommand::Verify { file } => {
            let report = tools::verify(&file)?;
            print!("{report}");
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LessonCommand::Recover { file, out } => {
            let report = tools::recover(&file, &out)
                .with_context(|| format!("recovering {} into {}", file.display(), out.display()))?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        LessonCommand::Dump { file } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let report = match tools::dump(&file, &mut out) {
                Ok(report) => report,
                // `twinray lesson dump x | head` closes the pipe early: not an error.
                Err(twinray_lessons::LessonError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => return Err(e.into()),
            };
            drop(out);
            let mut stderr = std::io::stderr();
            for damaged in &report.damaged_chunks {
                let _ = writeln!(stderr, "warning: {}: skipped {damaged}", file.display());
            }
            Ok(if report.damaged_chunks.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
