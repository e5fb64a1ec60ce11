//! The embedded lesson library: a folder holding `.twlesson` bundles, each stored once under
//! its content hash (`bundles/<blake3>.twlesson`), and `index.sqlite`, an SQLite FTS5 index of
//! what each lesson teaches: title, author, description, chapter titles, notes, and the anatomy
//! the instructor actually drew on (each stroke point looked up in the bundle's label map).
//!
//! The index is a cache: everything in it comes from the bundles, and [`Library::reindex`]
//! rebuilds it from the folder. SQLite runs in WAL mode with a busy timeout, and each add is one
//! immediate transaction, so several processes can add at once.

mod index;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};

pub use index::{lesson_entries, Entry, EntryKind};

/// Errors of the library; each names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// A file or folder could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("{path}: the library index: {source}")]
    Sql {
        /// The index file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] twinray_bundle::BundleError),
    /// A bundle is damaged and is not added.
    #[error("{path} is damaged ({problems}); it is not added (`twinray bundle verify` lists the damage)")]
    Damaged {
        /// The bundle.
        path: PathBuf,
        /// What is damaged.
        problems: String,
    },
    /// No lesson with this id (or id prefix) is in the library.
    #[error("no lesson '{id}' in the library {root} (`twinray library list` shows the ids)")]
    NotFound {
        /// What was asked for.
        id: String,
        /// The library.
        root: PathBuf,
    },
    /// The output exists already.
    #[error("{path} already exists; export never overwrites a file")]
    Exists {
        /// The output.
        path: PathBuf,
    },
    /// The lesson inside a bundle cannot be read.
    #[error("{path}: its lesson: {reason}")]
    Lesson {
        /// The bundle.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No library location: no flag, no `TWINRAY_LIBRARY`, no data directory.
    #[error("no library location: pass --library DIR or set TWINRAY_LIBRARY (neither XDG_DATA_HOME nor HOME is set)")]
    NoLocation,
}

/// The environment variable naming the library folder.
pub const LIBRARY_ENV: &str = "TWINRAY_LIBRARY";

/// The library folder: the flag, else `TWINRAY_LIBRARY`, else `$XDG_DATA_HOME/twinray/library`,
/// else `~/.local/share/twinray/library`.
///
/// # Errors
/// If none of them is set.
pub fn location(flag: Option<&Path>) -> Result<PathBuf, LibraryError> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var(LIBRARY_ENV) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = var("XDG_DATA_HOME") {
        return Ok(PathBuf::from(p).join("twinray/library"));
    }
    if let Some(h) = var("HOME") {
        return Ok(PathBuf::from(h).join(".local/share/twinray/library"));
    }
    Err(LibraryError::NoLocation)
}

/// One lesson in the library.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonRow {
    /// Its id: the BLAKE3 of the bundle file (hex).
    pub id: String,
    /// The stored bundle.
    pub file: PathBuf,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
    /// The case's content hash.
    pub case_ref: String,
    /// Duration in seconds.
    pub duration_s: f64,
}

/// One search hit: the lesson and the best-matching entry in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The lesson.
    pub lesson: LessonRow,
    /// What matched.
    pub kind: EntryKind,
    /// The matching text.
    pub text: String,
    /// Where in the lesson (seconds from its start).
    pub time_s: f64,
    /// The chapter at that time.
    pub chapter: String,
    /// bm25 score, weighted by kind (lower is better).
    pub rank: f64,
}

/// An open library.
#[derive(Debug)]
pub struct Library {
    root: PathBuf,
    db_path: PathBuf,
    db: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lessons (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    title TEXT NOT NULL,
    author TEXT NOT NULL,
    description TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    duration_s REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS entries USING fts5(
    lesson_id UNINDEXED, kind UNINDEXED, time_s UNINDEXED, chapter UNINDEXED, text,
    tokenize = 'porter unicode61'
);
";

impl Library {
    /// Opens (creating when needed) the library at `root`.
    ///
    /// # Errors
    /// If the folder or the index cannot be created or opened.
    pub fn open(root: &Path) -> Result<Self, LibraryError> {
        std::fs::create_dir_all(root.join("bundles")).map_err(|source| LibraryError::Io {
            path: root.to_path_buf(),
            what: "creating the library folder".to_owned(),
            source,
        })?;
        let db_path = root.join("index.sqlite");
        let sql = |source| LibraryError::Sql {
            path: db_path.clone(),
            source,
        };
        let db = Connection::open(&db_path).map_err(sql)?;
        db.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        db.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Self {
            root: root.to_path_buf(),
            db_path,
            db,
        })
    }

    /// The library folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn sql(&self, source: rusqlite::Error) -> LibraryError {
        LibraryError::Sql {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Adds a bundle: verifies it, stores it once under its content hash, and indexes it.
    /// Adding the same bundle again changes nothing. Returns the lesson.
    ///
    /// # Errors
    /// If the bundle is damaged or cannot be read, or the library cannot be written.
    pub fn add(&mut self, bundle: &Path) -> Result<LessonRow, LibraryError> {
        let report = twinray_bundle::verify(bundle)?;
        if !report.is_clean() {
            let problems: Vec<String> = report
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.member, p.problem))
                .collect();
            return Err(LibraryError::Damaged {
                path: bundle.to_path_buf(),
                problems: problems.join("; "),
            });
        }
        let io = |what: &str, source| LibraryError::Io {
            path: bundle.to_path_buf(),
            what: what.to_owned(),
            source,
        };
        let mut hasher = blake3::Hasher::new();
        let mut file = std::fs::File::open(bundle).map_err(|e| io("opening", e))?;
        std::io::copy(&mut file, &mut hasher).map_err(|e| io("reading", e))?;
        let id = hasher.finalize().to_hex().to_string();
        let stored = self.root.join("bundles").join(format!("{id}.twlesson"));
        if !stored.exists() {
            let tmp = self.root.join("bundles").join(format!(
                ".{id}.{}.{:?}.partial",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::copy(bundle, &tmp).map_err(|e| io("copying into the library", e))?;
            std::fs::rename(&tmp, &stored).map_err(|e| io("moving into the library", e))?;
        }
        self.index_one(&id, &stored)
    }

    /// Indexes one stored bundle (replacing what the index held for it).
    fn index_one(&mut self, id: &str, stored: &Path) -> Result<LessonRow, LibraryError> {
        let (row, entries) = index::read_bundle(id, stored)?;
        self.insert(&row, &entries)?;
        Ok(row)
    }

    /// Puts a lesson and its entries into the index in one transaction, replacing what it held
    /// for `row.id` (its file is `bundles/<id>.twlesson`). [`Self::add`] uses it; benchmarks
    /// fill an index with synthetic lessons through it.
    ///
    /// # Errors
    /// If the index cannot be written.
    pub fn insert(&mut self, row: &LessonRow, entries: &[Entry]) -> Result<(), LibraryError> {
        let id = row.id.as_str();
        let db_path = self.db_path.clone();
        let sql = |source| LibraryError::Sql {
            path: db_path.clone(),
            source,
        };
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        delete_lesson_rows(&tx, id).map_err(sql)?;
        tx.execute(
            "INSERT INTO lessons (id, file, title, author, description, case_ref, duration_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                format!("bundles/{id}.twlesson"),
                row.title,
                row.author,
                row.description,
                row.case_ref,
                row.duration_s
            ],
        )
        .map_err(sql)?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO entries (lesson_id, kind, time_s, chapter, text) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for e in entries {
                insert
                    .execute(params![id, e.kind.name(), e.time_s, e.chapter, e.text])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn row_from(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<LessonRow> {
        let file: String = r.get(1)?;
        Ok(LessonRow {
            id: r.get(0)?,
            file: self.root.join(file),
            title: r.get(2)?,
            author: r.get(3)?,
            description: r.get(4)?,
            case_ref: r.get(5)?,
            duration_s: r.get(6)?,
        })
    }

    /// Every lesson, by title.
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn list(&self) -> Result<Vec<LessonRow>, LibraryError> {
        let mut stmt = self
            .db
            .prepare("SELECT id, file, title, author, description, case_ref, duration_s FROM lessons ORDER BY title, id")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| self.row_from(r))
            .map_err(|e| self.sql(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e));
        rows
    }

    /// The lesson whose id is `id` or starts with it (at least 4 characters).
    ///
    /// # Errors
    /// If none or several match.
    pub fn get(&self, id: &str) -> Result<LessonRow, LibraryError> {
        let not_found = || LibraryError::NotFound {
            id: id.to_owned(),
            root: self.root.clone(),
        };
        if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let matches: Vec<LessonRow> = self
            .list()?
            .into_iter()
            .filter(|r| r.id.starts_with(&id.to_ascii_lowercase()))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(not_found()),
        }
    }

    /// What the index holds for a lesson: its chapters, notes and anatomy, in time order.
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn entries(&self, id: &str) -> Result<Vec<Entry>, LibraryError> {
        let mut stmt = self
            .db
            .prepare("SELECT kind, time_s, chapter, text FROM entries WHERE lesson_id = ?1 ORDER BY time_s, rowid")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![id], |r| {
                let kind: String = r.get(0)?;
                Ok(Entry {
                    kind: EntryKind::from_name(&kind),
                    time_s: r.get(1)?,
                    chapter: r.get(2)?,
                    text: r.get(3)?,
                })
            })
            .map_err(|e| self.sql(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e));
        rows
    }

    /// Searches: bm25 over every entry (titles weigh most, then anatomy and chapters, then
    /// descriptions and notes), best entry per lesson, best lessons first.
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, LibraryError> {
        let terms: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(|t| format!("\"{t}\""))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let fts = terms.join(" ");
        let mut stmt = self
            .db
            .prepare(
                "SELECT e.lesson_id, e.kind, e.time_s, e.chapter, e.text,
                        bm25(entries) * CASE e.kind WHEN 'title' THEN 4.0 WHEN 'anatomy' THEN 3.0
                            WHEN 'chapter' THEN 3.0 WHEN 'author' THEN 2.0 ELSE 1.0 END AS r,
                        l.id, l.file, l.title, l.author, l.description, l.case_ref, l.duration_s
                 FROM entries e JOIN lessons l ON l.id = e.lesson_id
                 WHERE entries MATCH ?1 ORDER BY r, e.time_s, l.id LIMIT 2000",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![fts], |r| {
                let kind: String = r.get(1)?;
                let file: String = r.get(7)?;
                Ok(Hit {
                    kind: EntryKind::from_name(&kind),
                    time_s: r.get(2)?,
                    chapter: r.get(3)?,
                    text: r.get(4)?,
                    rank: r.get(5)?,
                    lesson: LessonRow {
                        id: r.get(6)?,
                        file: self.root.join(file),
                        title: r.get(8)?,
                        author: r.get(9)?,
                        description: r.get(10)?,
                        case_ref: r.get(11)?,
                        duration_s: r.get(12)?,
                    },
                })
            })
            .map_err(|e| self.sql(e))?;
        let mut hits: Vec<Hit> = Vec::new();
        for row in rows {
            let hit = row.map_err(|e| self.sql(e))?;
            if !hits.iter().any(|h| h.lesson.id == hit.lesson.id) {
                hits.push(hit);
                if hits.len() >= limit {
                    break;
                }
            }
        }
        Ok(hits)
    }

    /// Removes a lesson: its index rows and its stored bundle.
    ///
    /// # Errors
    /// If it is not in the library or cannot be removed.
    pub fn remove(&mut self, id: &str) -> Result<LessonRow, LibraryError> {
        let row = self.get(id)?;
        let db_path = self.db_path.clone();
        let sql = |source| LibraryError::Sql {
            path: db_path.clone(),
            source,
        };
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        delete_lesson_rows(&tx, &row.id).map_err(sql)?;
        tx.commit().map_err(sql)?;
        std::fs::remove_file(&row.file).map_err(|source| LibraryError::Io {
            path: row.file.clone(),
            what: "removing".to_owned(),
            source,
        })?;
        Ok(row)
    }

    /// Copies a lesson's bundle to `out` (never over an existing file).
    ///
    /// # Errors
    /// If it is not in the library, `out` exists, or copying fails.
    pub fn export(&self, id: &str, out: &Path) -> Result<LessonRow, LibraryError> {
        let row = self.get(id)?;
        if out.exists() {
            return Err(LibraryError::Exists {
                path: out.to_path_buf(),
            });
        }
        std::fs::copy(&row.file, out).map_err(|source| LibraryError::Io {
            path: out.to_path_buf(),
            what: "exporting".to_owned(),
            source,
        })?;
        Ok(row)
    }

    /// Verifies every stored bundle (and that each indexed lesson's file exists): the problems
    /// found, one line each (empty when all is well).
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn verify(&self) -> Result<Vec<String>, LibraryError> {
        let mut problems = Vec::new();
        for row in self.list()? {
            match twinray_bundle::verify(&row.file) {
                Ok(r) => {
                    for p in r.problems {
                        problems.push(format!(
                            "{} ({}): {}: {}",
                            row.id, row.title, p.member, p.problem
                        ));
                    }
                }
                Err(e) => problems.push(format!("{} ({}): {e}", row.id, row.title)),
            }
        }
        for file in self.stored_files()? {
            let id = stored_id(&file);
            if self.get(&id).is_err() {
                problems.push(format!(
                    "{} is not in the index (`twinray library reindex` adds it)",
                    file.display()
                ));
            }
        }
        Ok(problems)
    }

    fn stored_files(&self) -> Result<Vec<PathBuf>, LibraryError> {
        let dir = self.root.join("bundles");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| LibraryError::Io {
                path: dir.clone(),
                what: "listing".to_owned(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "twlesson")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// Rebuilds the index from the stored bundles; returns how many were indexed and the
    /// bundles that could not be (with why).
    ///
    /// # Errors
    /// If the index cannot be written.
    pub fn reindex(&mut self) -> Result<(usize, Vec<String>), LibraryError> {
        self.db
            .execute_batch("DELETE FROM lessons; DELETE FROM entries;")
            .map_err(|e| self.sql(e))?;
        let mut count = 0;
        let mut skipped = Vec::new();
        for file in self.stored_files()? {
            let id = stored_id(&file);
            match self.index_one(&id, &file) {
                Ok(_) => count += 1,
                Err(e) => skipped.push(e.to_string()),
            }
        }
        Ok((count, skipped))
    }
}

fn stored_id(file: &Path) -> String {
    file.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// Removes a lesson's row and its search entries (inside the caller's transaction).
fn delete_lesson_rows(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM lessons WHERE id = ?1", params![id])?;
    tx.execute("DELETE FROM entries WHERE lesson_id = ?1", params![id])?;
    Ok(())
}
