//! The lesson library: bundles kept as content-addressed parts, so a case used by many lessons
//! is stored once, and an index of what each lesson teaches: title, author, description,
//! chapter titles, notes, and the anatomy the instructor actually drew on (each stroke point
//! looked up in the bundle's label map).
//!
//! Two places it can live, chosen by its location ([`Location`]):
//! - a folder on this machine (the default): `objects/` and `manifests/` beside
//!   `index.sqlite`, an SQLite FTS5 index;
//! - an institution's servers: S3-compatible object storage for the parts and PostgreSQL (its
//!   own full-text search) for the index, named by one URL
//!   (`postgresql://host/db?objects=s3://bucket`).
//!
//! The index is a cache: everything in it comes from the manifests in the store, and
//! [`Library::reindex`] rebuilds it. Adds and removes take the library's write lock (a lock
//! file, or a PostgreSQL advisory lock), so several processes can add at once and a remove
//! never deletes a part another lesson is being added with.

mod db;
mod index;
mod store;

use std::path::{Path, PathBuf};

use db::Db;
pub use db::{redact, MemberRef};
pub use index::{lesson_entries, Entry, EntryKind};
pub use store::{is_hash, Store};

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
    #[error("{path}: the library index: {reason}")]
    Sql {
        /// The index file or database URL (without password).
        path: String,
        /// The cause.
        reason: String,
    },
    /// The object store failed.
    #[error("{location}: {reason}")]
    Store {
        /// The object.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The library location cannot be used.
    #[error("library location {location}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// Why.
        reason: String,
    },
    /// A stored part does not match the manifest that names it.
    #[error("{location}: {reason} (`twinray library verify` lists every damaged part)")]
    Damage {
        /// The lesson or part.
        location: String,
        /// What is wrong.
        reason: String,
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
        root: String,
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

/// The environment variable naming the library (a folder or an institution's URL).
pub const LIBRARY_ENV: &str = "TWINRAY_LIBRARY";

/// The largest manifest or part read from a store, as for bundle files.
const MAX_PART_BYTES: u64 = twinray_bundle::MAX_MEMBER_BYTES;

/// Where a library lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on this machine (objects, manifests and an SQLite index).
    Folder(PathBuf),
    /// An institution's servers: PostgreSQL for the index, S3-compatible storage for the parts.
    Institution {
        /// The PostgreSQL URL (without the `objects` parameter).
        index_url: String,
        /// `s3://bucket[/prefix]`.
        objects_url: String,
    },
}

impl Location {
    /// Reads a location: `postgres://…` or `postgresql://…` with an `objects=s3://bucket`
    /// parameter names an institution's library; anything else is a folder.
    ///
    /// # Errors
    /// If a PostgreSQL URL names no object store.
    pub fn parse(text: &str) -> Result<Self, LibraryError> {
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Ok(Self::Folder(PathBuf::from(text)));
        }
        let bad = |reason: &str| LibraryError::Location {
            location: redact(text),
            reason: reason.to_owned(),
        };
        let (base, query) = text.split_once('?').unwrap_or((text, ""));
        let mut objects = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("objects", v)) => objects = Some(v.to_owned()),
                _ => kept.push(pair),
            }
        }
        let objects_url = objects.ok_or_else(|| {
            bad("add ?objects=s3://BUCKET to say where the lessons' files are stored")
        })?;
        if !objects_url.starts_with("s3://") {
            return Err(bad("objects= must be an s3://bucket[/prefix] URL"));
        }
        let index_url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(Self::Institution {
            index_url,
            objects_url,
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(p) => write!(f, "{}", p.display()),
            Self::Institution {
                index_url,
                objects_url,
            } => write!(f, "{} (files in {objects_url})", redact(index_url)),
        }
    }
}

/// The library: the flag, else `TWINRAY_LIBRARY`, else `$XDG_DATA_HOME/twinray/library`,
/// else `~/.local/share/twinray/library`.
///
/// # Errors
/// If none of them is set, or the one given cannot be read as a location.
pub fn location(flag: Option<&str>) -> Result<Location, LibraryError> {
    if let Some(p) = flag {
        return Location::parse(p);
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var(LIBRARY_ENV) {
        return Location::parse(&p.to_string_lossy());
    }
    if let Some(p) = var("XDG_DATA_HOME") {
        return Ok(Location::Folder(PathBuf::from(p).join("twinray/library")));
    }
    if let Some(h) = var("HOME") {
        return Ok(Location::Folder(
            PathBuf::from(h).join(".local/share/twinray/library"),
        ));
    }
    Err(LibraryError::NoLocation)
}

/// One lesson in the library.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonRow {
    /// Its id: the BLAKE3 of its manifest (hex), which lists every member's hash, so it names
    /// the bundle's whole content.
    pub id: String,
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
    location: Location,
    store: Store,
    db: Db,
    /// The lock file of a folder library (PostgreSQL locks in the database).
    lock_file: Option<PathBuf>,
    /// Where lessons are put back together as bundle files for opening.
    open_dir: PathBuf,
}

/// The write lock of a folder library: held while the file stays open.
struct FolderLock(#[allow(dead_code)] std::fs::File);

impl FolderLock {
    /// Waits for and takes the lock at `path` (creating the file).
    fn take(path: &Path) -> Result<Self, LibraryError> {
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| LibraryError::Io {
                path: path.to_path_buf(),
                what: "opening the library's lock file".to_owned(),
                source,
            })?;
        file.lock().map_err(|source| LibraryError::Io {
            path: path.to_path_buf(),
            what: "locking the library".to_owned(),
            source,
        })?;
        Ok(Self(file))
    }
}

impl Library {
    /// Opens (creating when needed) the folder library at `root`.
    ///
    /// # Errors
    /// If the folder or the index cannot be created or opened.
    pub fn open(root: &Path) -> Result<Self, LibraryError> {
        Self::open_at(&Location::Folder(root.to_path_buf()))
    }

    /// Opens the library at `location`; a new or deleted index is rebuilt from the store.
    ///
    /// # Errors
    /// If the store or the index cannot be reached or created.
    pub fn open_at(location: &Location) -> Result<Self, LibraryError> {
        let (store, (db, index_is_new), lock_file, open_dir) = match location {
            Location::Folder(root) => {
                std::fs::create_dir_all(root).map_err(|source| LibraryError::Io {
                    path: root.clone(),
                    what: "creating the library folder".to_owned(),
                    source,
                })?;
                // Opening sets WAL mode and may create or rebuild the schema: two processes
                // opening a new library at once got "database is locked" from SQLite (switching
                // to WAL does not wait), so opening takes the write lock too.
                let lock_file = root.join(".lock");
                let db = {
                    let _lock = FolderLock::take(&lock_file)?;
                    Db::open_sqlite(root.join("index.sqlite"))?
                };
                (
                    Store::Folder(root.clone()),
                    db,
                    Some(lock_file),
                    root.join("open"),
                )
            }
            Location::Institution {
                index_url,
                objects_url,
            } => {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .unwrap_or_else(std::env::temp_dir);
                let tag = blake3::hash(format!("{index_url}\n{objects_url}").as_bytes()).to_hex()
                    [..16]
                    .to_owned();
                (
                    Store::S3(store::S3Store::connect(objects_url)?),
                    Db::open_postgres(index_url)?,
                    None,
                    cache.join("twinray/library-open").join(tag),
                )
            }
        };
        let mut lib = Self {
            location: location.clone(),
            store,
            db,
            lock_file,
            open_dir,
        };
        if index_is_new && !lib.store.list(store::MANIFESTS)?.is_empty() {
            lib.reindex()?;
        }
        lib.adopt_loose_bundles()?;
        Ok(lib)
    }

    /// Where the library is.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Runs `f` holding the library's write lock.
    fn exclusive<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, LibraryError>,
    ) -> Result<T, LibraryError> {
        let _folder_lock = self
            .lock_file
            .as_deref()
            .map(FolderLock::take)
            .transpose()?;
        self.db.lock_writes()?;
        let result = f(self);
        let unlocked = self.db.unlock_writes();
        let value = result?;
        unlocked?;
        Ok(value)
    }

    /// Libraries written before parts were stored once kept whole bundles in `bundles/`: each
    /// is added the new way, and its old file removed only once it is stored and indexed.
    fn adopt_loose_bundles(&mut self) -> Result<(), LibraryError> {
        let Location::Folder(root) = &self.location else {
            return Ok(());
        };
        let old = root.join("bundles");
        let Ok(dir) = std::fs::read_dir(&old) else {
            return Ok(());
        };
        let files: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| twinray_bundle::is_bundle_path(p))
            .collect();
        for file in files {
            self.add(&file)?;
            std::fs::remove_file(&file).map_err(|source| LibraryError::Io {
                path: file.clone(),
                what: "removing after storing it in the new layout".to_owned(),
                source,
            })?;
        }
        let _ = std::fs::remove_dir(&old);
        Ok(())
    }

    /// Adds a bundle: verifies it, stores each member not already stored (a case shared with
    /// another lesson is not stored again) and its manifest, and indexes it. Adding the same
    /// bundle again changes nothing. Returns the lesson.
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
        let mut b = twinray_bundle::Bundle::open(bundle)?;
        let manifest_json = b.manifest_json().to_vec();
        let manifest = b.manifest().clone();
        let id = blake3::hash(&manifest_json).to_hex().to_string();
        self.exclusive(|lib| {
            // Each member is read once: the ones the index needs are kept for it, the others
            // read only when their part is not stored yet.
            let mut for_index = std::collections::BTreeMap::new();
            for m in &manifest.members {
                let key = store::object_key(&m.blake3);
                let indexed = index::INDEXED_MEMBERS.contains(&m.name.as_str());
                let stored = lib.store.exists(&key)?;
                if indexed || !stored {
                    let bytes = b.read(&m.name)?;
                    if !stored {
                        lib.store.put(&key, &bytes)?;
                    }
                    if indexed {
                        for_index.insert(m.name.clone(), bytes);
                    }
                }
            }
            let key = store::manifest_key(&id);
            if !lib.store.exists(&key)? {
                lib.store.put(&key, &manifest_json)?;
            }
            let (row, entries) = index::read_lesson(&id, bundle, &manifest, &mut |name| {
                Ok(for_index.remove(name))
            })?;
            lib.db.insert(&row, &member_refs(&manifest), &entries)?;
            Ok(row)
        })
    }

    /// Puts a lesson and its entries into the index (no parts stored): benchmarks fill an
    /// index with synthetic lessons through it.
    ///
    /// # Errors
    /// If the index cannot be written.
    pub fn insert(&mut self, row: &LessonRow, entries: &[Entry]) -> Result<(), LibraryError> {
        self.db.insert(row, &[], entries)
    }

    /// Every lesson, by title.
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn list(&mut self) -> Result<Vec<LessonRow>, LibraryError> {
        self.db.lessons()
    }

    /// The lesson whose id is `id` or starts with it (at least 4 characters).
    ///
    /// # Errors
    /// If none or several match.
    pub fn get(&mut self, id: &str) -> Result<LessonRow, LibraryError> {
        let not_found = || LibraryError::NotFound {
            id: id.to_owned(),
            root: self.location.to_string(),
        };
        if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let want = id.to_ascii_lowercase();
        let matches: Vec<LessonRow> = self
            .db
            .lessons()?
            .into_iter()
            .filter(|r| r.id.starts_with(&want))
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
    pub fn entries(&mut self, id: &str) -> Result<Vec<Entry>, LibraryError> {
        self.db.entries(id)
    }

    /// Searches: every word must appear in one entry; best entry per lesson, best lessons
    /// first (titles weigh most, then anatomy and chapters, then authors, descriptions and
    /// notes).
    ///
    /// # Errors
    /// If the index cannot be read.
    pub fn search(&mut self, query: &str, limit: usize) -> Result<Vec<Hit>, LibraryError> {
        self.db.search(query, limit)
    }

    /// The manifest of a lesson, read from the store and checked against its id.
    fn manifest(&self, id: &str) -> Result<(Vec<u8>, twinray_bundle::Manifest), LibraryError> {
        let key = store::manifest_key(id);
        let bytes = self.store.get(&key, twinray_bundle::MAX_MANIFEST_BYTES)?;
        if blake3::hash(&bytes).to_hex().as_str() != id {
            return Err(LibraryError::Damage {
                location: format!("{} {key}", self.store.describe()),
                reason: "the manifest's bytes changed (its BLAKE3 is not the lesson's id)".into(),
            });
        }
        let manifest = twinray_bundle::parse_manifest(Path::new(&key), &bytes)?;
        Ok((bytes, manifest))
    }

    /// A stored part, checked against its manifest entry.
    fn part(&self, entry: &twinray_bundle::MemberEntry) -> Result<Vec<u8>, LibraryError> {
        if !is_hash(&entry.blake3) {
            return Err(LibraryError::Damage {
                location: entry.name.clone(),
                reason: format!("'{}' is not a BLAKE3 hash", entry.blake3),
            });
        }
        let key = store::object_key(&entry.blake3);
        let bytes = self.store.get(&key, entry.size.min(MAX_PART_BYTES))?;
        if bytes.len() as u64 != entry.size
            || blake3::hash(&bytes).to_hex().as_str() != entry.blake3
        {
            return Err(LibraryError::Damage {
                location: format!("{} {key} ({})", self.store.describe(), entry.name),
                reason: "its bytes changed (size or BLAKE3 differs from the manifest)".into(),
            });
        }
        Ok(bytes)
    }

    /// One member of a lesson (e.g. its thumbnail), checked; `None` when it has none.
    ///
    /// # Errors
    /// If the lesson is not stored or the part is damaged.
    pub fn member(&mut self, id: &str, name: &str) -> Result<Option<Vec<u8>>, LibraryError> {
        let row = self.get(id)?;
        let (_, manifest) = self.manifest(&row.id)?;
        manifest.member(name).map(|e| self.part(e)).transpose()
    }

    /// The lesson as a bundle file to open (replay, studio, VR): put back together from its
    /// parts, once, under the library's `open/` folder (a cache that may be deleted).
    ///
    /// # Errors
    /// If it is not in the library or its parts are damaged.
    pub fn bundle_file(&mut self, id: &str) -> Result<PathBuf, LibraryError> {
        let row = self.get(id)?;
        let path = self.open_dir.join(format!("{}.twlesson", row.id));
        if path.is_file() {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.open_dir).map_err(|source| LibraryError::Io {
            path: self.open_dir.clone(),
            what: "creating".to_owned(),
            source,
        })?;
        match self.assemble(&row.id, &path) {
            Err(LibraryError::Bundle(twinray_bundle::BundleError::Exists { .. })) => Ok(path),
            other => other.map(|()| path),
        }
    }

    fn assemble(&self, id: &str, out: &Path) -> Result<(), LibraryError> {
        let (json, _) = self.manifest(id)?;
        let mut failure = None;
        let written = twinray_bundle::write_from_parts(out, &json, &mut |entry| {
            self.part(entry).map_err(|e| {
                let reason = e.to_string();
                failure = Some(e);
                twinray_bundle::BundleError::Member {
                    path: out.to_path_buf(),
                    member: entry.name.clone(),
                    reason,
                }
            })
        });
        match (written, failure) {
            (Ok(_), _) => Ok(()),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// The hashes of every stored part (a part is one distinct member: the same case in many
    /// lessons is one part).
    ///
    /// # Errors
    /// If the store cannot be listed.
    pub fn stored_parts(&self) -> Result<Vec<String>, LibraryError> {
        Ok(self
            .store
            .list(store::OBJECTS)?
            .into_iter()
            .filter(|n| is_hash(n))
            .collect())
    }

    /// Removes a lesson: its index rows, its manifest, and the parts no other lesson uses.
    ///
    /// # Errors
    /// If it is not in the library or cannot be removed.
    pub fn remove(&mut self, id: &str) -> Result<LessonRow, LibraryError> {
        let row = self.get(id)?;
        self.exclusive(|lib| {
            let orphans = lib.db.delete(&row.id)?;
            lib.store.delete(&store::manifest_key(&row.id))?;
            for hash in orphans.iter().filter(|h| is_hash(h)) {
                lib.store.delete(&store::object_key(hash))?;
            }
            let _ = std::fs::remove_file(lib.open_dir.join(format!("{}.twlesson", row.id)));
            Ok(row)
        })
    }

    /// Writes a lesson's bundle to `out` (never over an existing file).
    ///
    /// # Errors
    /// If it is not in the library, `out` exists, or its parts are damaged.
    pub fn export(&mut self, id: &str, out: &Path) -> Result<LessonRow, LibraryError> {
        let row = self.get(id)?;
        if out.exists() {
            return Err(LibraryError::Exists {
                path: out.to_path_buf(),
            });
        }
        self.assemble(&row.id, out)?;
        Ok(row)
    }

    /// Checks every lesson's manifest and parts against their hashes, and that every stored
    /// manifest is indexed: the problems found, one line each (empty when all is well).
    ///
    /// # Errors
    /// If the index or the store cannot be read.
    pub fn verify(&mut self) -> Result<Vec<String>, LibraryError> {
        let mut problems = Vec::new();
        let rows = self.db.lessons()?;
        for row in &rows {
            match self.manifest(&row.id) {
                Ok((_, manifest)) => {
                    for entry in &manifest.members {
                        if let Err(e) = self.part(entry) {
                            problems
                                .push(format!("{} ({}): {}: {e}", row.id, row.title, entry.name));
                        }
                    }
                }
                Err(e) => problems.push(format!("{} ({}): {e}", row.id, row.title)),
            }
        }
        for name in self.store.list(store::MANIFESTS)? {
            let id = name.trim_end_matches(".json");
            if !rows.iter().any(|r| r.id == id) {
                problems.push(format!(
                    "{}{name} is not in the index (`twinray library reindex` adds it)",
                    store::MANIFESTS
                ));
            }
        }
        Ok(problems)
    }

    /// Rebuilds the index from the manifests and parts in the store; returns how many lessons
    /// were indexed and those that could not be (with why).
    ///
    /// # Errors
    /// If the index cannot be written or the store listed.
    pub fn reindex(&mut self) -> Result<(usize, Vec<String>), LibraryError> {
        self.exclusive(|lib| {
            lib.db.clear()?;
            let mut count = 0;
            let mut skipped = Vec::new();
            for name in lib.store.list(store::MANIFESTS)? {
                let Some(id) = name.strip_suffix(".json").filter(|id| is_hash(id)) else {
                    continue;
                };
                match lib.index_stored(id) {
                    Ok(()) => count += 1,
                    Err(e) => skipped.push(e.to_string()),
                }
            }
            Ok((count, skipped))
        })
    }

    fn index_stored(&mut self, id: &str) -> Result<(), LibraryError> {
        let (_, manifest) = self.manifest(id)?;
        let source = PathBuf::from(format!(
            "{}/{}",
            self.store.describe(),
            store::manifest_key(id)
        ));
        let (row, entries) = index::read_lesson(id, &source, &manifest, &mut |name| {
            manifest.member(name).map(|e| self.part(e)).transpose()
        })?;
        self.db.insert(&row, &member_refs(&manifest), &entries)
    }
}

fn member_refs(manifest: &twinray_bundle::Manifest) -> Vec<MemberRef> {
    manifest
        .members
        .iter()
        .map(|m| MemberRef {
            name: m.name.clone(),
            hash: m.blake3.clone(),
            size: m.size,
        })
        .collect()
}
