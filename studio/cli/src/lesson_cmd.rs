//! `twinray lesson …`: inspect, check, repair and dump lesson files; export and import their
//! narration.
//!
//! The work is done by `twinray_lessons::tools`; this module only parses arguments, prints
//! and chooses exit codes: 0 success / clean, 1 damage found (`verify`; `dump` when it had
//! to skip damaged chunks), and errors (unreadable file, not a lesson) are returned to
//! `main`, which reports them (exit 2).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::tools;
use twinray_lessons::voice::VoiceIndex;
use twinray_voice::playback::VoiceCheck;

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
    /// Write the lesson's narration as an Ogg Opus file (the recorded packets, not
    /// re-encoded), e.g. for a podcast player or an editor.
    ExportAudio {
        /// The lesson file.
        file: PathBuf,
        /// Where to write the .opus file (never replaced if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a voice-over to a lesson recorded without narration: writes a NEW lesson with
    /// every event of the original and the WAV file as its narration from --at on. The
    /// original is left untouched.
    #[command(
        after_help = "Example:\n  twinray lesson import-audio spine.lesson --audio voice.wav --at 2.5 --out spine-narrated.lesson"
    )]
    ImportAudio {
        /// The lesson file (left untouched).
        file: PathBuf,
        /// The voice-over: a WAV file (any rate, any channel count; mixed to mono, resampled to 48 kHz).
        #[arg(long)]
        audio: PathBuf,
        /// Lesson time, in seconds, at which the voice-over starts.
        #[arg(long, default_value_t = 0.0)]
        at: f64,
        /// The new lesson file (never replaced if it exists).
        #[arg(long)]
        out: PathBuf,
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
            // The voice is decoded too: a packet the codec refuses is voice lost, even when
            // every checksum is good.
            let voice = twinray_voice::playback::check_voice(LessonReader::open(&file)?)
                .with_context(|| format!("checking the narration of {}", file.display()))?;
            let voice_lost = voice.as_ref().and_then(VoiceCheck::describe_lost);
            match (&voice, &voice_lost) {
                (None, _) => println!("voice: none"),
                (Some(v), None) => println!("voice: {:.1} s, every packet decodes", v.duration_s),
                (Some(_), Some(lost)) => println!("{lost}"),
            }
            Ok(if report.is_clean() && voice_lost.is_none() {
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
        LessonCommand::ExportAudio { file, out } => export_audio(&file, &out),
        LessonCommand::ImportAudio {
            file,
            audio,
            at,
            out,
        } => {
            if !at.is_finite() || at.abs() > 8.64e6 {
                bail!("--at {at}: give the start in seconds of lesson time (within ±100 days)");
            }
            #[allow(clippy::cast_possible_truncation)]
            let at_ns = (at * 1e9).round() as i64;
            let report = twinray_voice::import::import_voice_over(&file, &audio, at_ns, &out)
                .with_context(|| {
                    format!(
                        "adding {} to {} as {}",
                        audio.display(),
                        file.display(),
                        out.display()
                    )
                })?;
            #[allow(clippy::cast_precision_loss)]
            let seconds = report.narration.recorded_samples as f64 / 48_000.0;
            println!(
                "wrote {}: {} events of {} and {seconds:.1} s of narration from {at:.3} s ({} packets, {:.1} kbit/s)",
                report.path.display(),
                report.events_copied,
                file.display(),
                report.narration.packets,
                if seconds > 0.0 {
                    #[allow(clippy::cast_precision_loss)]
                    let bits = report.narration.bytes as f64 * 8.0;
                    bits / seconds / 1000.0
                } else {
                    0.0
                }
            );
            if report.chunks_skipped > 0 {
                eprintln!(
                    "warning: {}: {} damaged chunks could not be copied",
                    file.display(),
                    report.chunks_skipped
                );
            }
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

/// `lesson export-audio`: the packets into a new .opus file; a half-written file is removed.
fn export_audio(file: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    let mut reader = LessonReader::open(file)?;
    let index = VoiceIndex::build(&mut reader)?;
    if !index.has_voice() {
        bail!("{} has no narration to export", file.display());
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out);
    let handle = match created {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} exists; twinray never replaces a file: choose another --out",
                out.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", out.display())),
    };
    let mut writer = std::io::BufWriter::new(handle);
    let result = twinray_voice::ogg_export::export_ogg_opus(&mut reader, &index, &mut writer)
        .map_err(anyhow::Error::from)
        .and_then(|stats| {
            writer
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", out.display()))?;
            Ok(stats)
        });
    match result {
        Ok(stats) => {
            #[allow(clippy::cast_precision_loss)]
            let seconds = stats.samples as f64 / 48_000.0;
            println!(
                "wrote {}: {seconds:.2} s of narration ({} samples at 48 kHz, {} packets{})",
                out.display(),
                stats.samples,
                stats.packets,
                if stats.lost_packets > 0 {
                    format!(", {} lost packets as silence", stats.lost_packets)
                } else {
                    String::new()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::fs::remove_file(out);
            Err(e.context(format!(
                "exporting the narration of {} to {}",
                file.display(),
                out.display()
            )))
        }
    }
}
