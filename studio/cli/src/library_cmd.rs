//! `twinray library`: the embedded lesson library (a folder of bundles and an SQLite FTS5
//! index): add, list, search, show, open, remove, export, verify, reindex.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use twinray_library::{location, Library};

use crate::replay_cmd::{self, ReplayArgs};

/// Arguments of `twinray library`.
#[derive(Debug, Args)]
#[command(after_help = "\
The library is --library DIR, else $TWINRAY_LIBRARY, else $XDG_DATA_HOME/twinray/library
(~/.local/share/twinray/library).

Examples:
  twinray library add spine.twlesson
  twinray library search L3
  twinray library search \"lumbar vertebrae\"
  twinray library show 3fa2
  twinray library open 3fa2 --at 22 --out frame.png
  twinray library export 3fa2 copy.twlesson")]
pub struct LibraryArgs {
    /// The library folder.
    #[arg(long, global = true, value_name = "DIR")]
    library: Option<PathBuf>,
    #[command(subcommand)]
    command: LibraryCommand,
}

#[derive(Debug, Subcommand)]
enum LibraryCommand {
    /// Add bundles (each stored once, however often added).
    Add {
        /// The .twlesson bundles.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
    },
    /// List every lesson.
    List,
    /// Find lessons by title, description, chapters, notes and the anatomy drawn on; prints
    /// the replay command that opens each hit where it matched.
    Search {
        /// Words to find (all of them, in one entry).
        query: Vec<String>,
        /// Most lessons shown.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Show a lesson: manifest fields, chapters, notes and anatomy with their times.
    Show {
        /// The lesson id (or its first characters).
        id: String,
    },
    /// Render a lesson from the library at an instant (as `twinray replay`).
    Open {
        /// The lesson id (or its first characters).
        id: String,
        /// Lesson time in seconds.
        #[arg(long, default_value_t = 0.0)]
        at: f64,
        /// The PNG to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Remove a lesson (its bundle and index entries).
    Remove {
        /// The lesson id (or its first characters).
        id: String,
    },
    /// Copy a lesson's bundle out of the library (never over an existing file).
    Export {
        /// The lesson id (or its first characters).
        id: String,
        /// Where to write it.
        out: PathBuf,
    },
    /// Verify every stored bundle and the index.
    Verify,
    /// Rebuild the index from the stored bundles (the index is a cache).
    Reindex,
}

fn replay_line(file: &Path, at: f64) -> String {
    format!(
        "twinray replay {} --at {at:.1} --out frame.png",
        file.display()
    )
}

/// Runs `twinray library`.
pub fn run(args: LibraryArgs) -> Result<ExitCode> {
    let root = location(args.library.as_deref())?;
    let mut lib = Library::open(&root)?;
    match args.command {
        LibraryCommand::Add { bundles } => {
            for b in &bundles {
                let row = lib.add(b)?;
                println!(
                    "added {} \"{}\" ({})",
                    &row.id[..12],
                    row.title,
                    b.display()
                );
            }
        }
        LibraryCommand::List => {
            for r in lib.list()? {
                println!(
                    "{}  {:6.1} s  {}{}",
                    &r.id[..12],
                    r.duration_s,
                    r.title,
                    if r.author.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", r.author)
                    }
                );
            }
        }
        LibraryCommand::Search { query, limit } => {
            let hits = lib.search(&query.join(" "), limit)?;
            if hits.is_empty() {
                println!("no lesson matches '{}'", query.join(" "));
            }
            for h in hits {
                println!(
                    "{}  {}: {} \"{}\" at {:.1} s{}",
                    &h.lesson.id[..12],
                    h.lesson.title,
                    h.kind.name(),
                    h.text,
                    h.time_s,
                    if h.chapter.is_empty() {
                        String::new()
                    } else {
                        format!(" (chapter \"{}\")", h.chapter)
                    }
                );
                println!("    {}", replay_line(&h.lesson.file, h.time_s));
            }
        }
        LibraryCommand::Show { id } => {
            let r = lib.get(&id)?;
            println!("{}\n  title        {}\n  author       {}\n  description  {}\n  case         {}\n  duration     {:.1} s\n  file         {}",
                r.id, r.title, r.author, r.description, r.case_ref, r.duration_s, r.file.display());
            for e in lib.entries(&r.id)? {
                println!("  {:8.1} s  {:<11} {}", e.time_s, e.kind.name(), e.text);
            }
        }
        LibraryCommand::Open { id, at, out } => {
            let r = lib.get(&id)?;
            let args = ReplayArgs::for_frame(r.file, at, out);
            return replay_cmd::run(&args);
        }
        LibraryCommand::Remove { id } => {
            let r = lib.remove(&id)?;
            println!("removed {} \"{}\"", &r.id[..12], r.title);
        }
        LibraryCommand::Export { id, out } => {
            let r = lib.export(&id, &out)?;
            println!("exported \"{}\" -> {}", r.title, out.display());
        }
        LibraryCommand::Verify => {
            let problems = lib.verify()?;
            for p in &problems {
                println!("DAMAGED {p}");
            }
            if !problems.is_empty() {
                println!("{}: {} problem(s)", root.display(), problems.len());
                return Ok(ExitCode::from(1));
            }
            println!("{}: ok, {} lessons", root.display(), lib.list()?.len());
        }
        LibraryCommand::Reindex => {
            let (count, skipped) = lib.reindex()?;
            for s in &skipped {
                eprintln!("warning: {s}");
            }
            println!("reindexed {count} lessons in {}", root.display());
            if !skipped.is_empty() {
                bail!("{} bundles could not be indexed", skipped.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
