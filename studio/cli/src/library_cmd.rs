//! `twinray library`: the lesson library (a folder with an SQLite index, or an institution's
//! PostgreSQL + S3): add, list, search, show, open, remove, export, verify, reindex.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use twinray_library::{location, Library};

use crate::replay_cmd::{self, ReplayArgs};

/// Arguments of `twinray library`.
#[derive(Debug, Args)]
#[command(after_help = "\
The library is --library, else $TWINRAY_LIBRARY, else $XDG_DATA_HOME/twinray/library
(~/.local/share/twinray/library). It is a folder, or an institution's library on its servers:
  --library 'postgresql://USER@HOST/DB?objects=s3://BUCKET'
(the index in PostgreSQL, the lessons' files in S3-compatible storage; the S3 endpoint and keys
come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, and
AWS_ALLOW_HTTP=true for a plain-HTTP endpoint).

Examples:
  twinray library add spine.twlesson
  twinray library search L3
  twinray library search \"lumbar vertebrae\"
  twinray library show 3fa2
  twinray library open 3fa2 --at 22 --out frame.png
  twinray library export 3fa2 copy.twlesson")]
pub struct LibraryArgs {
    /// The library: a folder, or postgresql://…?objects=s3://BUCKET.
    #[arg(long, global = true, value_name = "DIR|URL")]
    library: Option<String>,
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
    /// Remove a lesson (its index entries, its manifest, and the files no other lesson uses).
    Remove {
        /// The lesson id (or its first characters).
        id: String,
    },
    /// Write a lesson's bundle out of the library (never over an existing file).
    Export {
        /// The lesson id (or its first characters).
        id: String,
        /// Where to write it.
        out: PathBuf,
    },
    /// Verify every lesson's stored files against their hashes, and the index.
    Verify,
    /// Rebuild the index from the stored lessons (the index is a cache).
    Reindex,
}

/// The command that shows a lesson at a time (as `twinray replay --at`).
fn open_line(id: &str, at: f64) -> String {
    format!(
        "twinray library open {} --at {at:.1} --out frame.png",
        &id[..12]
    )
}

/// Runs `twinray library`.
pub fn run(args: LibraryArgs) -> Result<ExitCode> {
    let root = location(args.library.as_deref())?;
    let mut lib = Library::open_at(&root)?;
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
                println!("    {}", open_line(&h.lesson.id, h.time_s));
            }
        }
        LibraryCommand::Show { id } => {
            let r = lib.get(&id)?;
            println!("{}\n  title        {}\n  author       {}\n  description  {}\n  case         {}\n  duration     {:.1} s",
                r.id, r.title, r.author, r.description, r.case_ref, r.duration_s);
            for e in lib.entries(&r.id)? {
                println!("  {:8.1} s  {:<11} {}", e.time_s, e.kind.name(), e.text);
            }
        }
        LibraryCommand::Open { id, at, out } => {
            let file = lib.bundle_file(&id)?;
            let args = ReplayArgs::for_frame(file, at, out);
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
                println!("{}: {} problem(s)", root, problems.len());
                return Ok(ExitCode::from(1));
            }
            println!("{}: ok, {} lessons", root, lib.list()?.len());
        }
        LibraryCommand::Reindex => {
            let (count, skipped) = lib.reindex()?;
            for s in &skipped {
                eprintln!("warning: {s}");
            }
            println!("reindexed {count} lessons in {}", root);
            if !skipped.is_empty() {
                bail!("{} bundles could not be indexed", skipped.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
