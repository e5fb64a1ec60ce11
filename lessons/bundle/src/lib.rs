//! Lesson bundles (`.twlesson`): one file holding a lesson, the de-identified case it was taught
//! on, its label names, the transfer-function presets it uses, a thumbnail, and a manifest with
//! every member's size and BLAKE3 hash. The format is documented in `lessons/BUNDLE.md`.
//!
//! The container is a ZIP whose members are all *stored* (the large ones are already
//! compressed: gzip NIfTI, zstd lesson chunks, PNG), so any member is read in place without
//! unpacking the rest. This crate only writes, reads and verifies the container; what goes in
//! (the case matching the lesson's hash, the thumbnail) is the scene crate's job.
//!
//! Reading is bounded: the manifest is at most [`MAX_MANIFEST_BYTES`], a member at most
//! [`MAX_MEMBER_BYTES`] and never more than the file holds, so a crafted size allocates nothing.

mod nifti;
mod zipfile;

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use nifti::{deidentify_nifti, nifti_text_fields, NiftiTextFields};

/// The format name in every manifest.
pub const FORMAT: &str = "twinray-lesson-bundle";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest member.
pub const MANIFEST: &str = "manifest.json";
/// The lesson file, as recorded.
pub const LESSON: &str = "lesson.lesson";
/// The case's CT (NIfTI-1, gzip).
pub const CT: &str = "case/ct.nii.gz";
/// The case's labels (NIfTI-1, gzip), when labelled.
pub const LABELS: &str = "case/labels.nii.gz";
/// Label id → name (`id<TAB>name` lines).
pub const LABEL_NAMES: &str = "case/labels.tsv";
/// The thumbnail (PNG).
pub const THUMBNAIL: &str = "thumbnail.png";
/// The folder of transfer-function presets (`presets/NAME.toml`).
pub const PRESETS_DIR: &str = "presets/";

/// The largest manifest read (bytes).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest member read into memory (bytes): 8 GiB.
pub const MAX_MEMBER_BYTES: u64 = 8 << 30;
/// The most members a manifest may list.
pub const MAX_MEMBERS: usize = 4096;

/// Errors of bundle files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The bundle.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The output exists already; bundles never overwrite.
    #[error("{path} already exists; a bundle never overwrites a file (choose another --out or remove it)")]
    Exists {
        /// The output.
        path: PathBuf,
    },
    /// Not a ZIP, or a truncated one.
    #[error("{path} is not a twinray bundle: {reason}")]
    NotABundle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A ZIP but not a bundle this build reads (manifest missing, invalid, another version).
    #[error("{path}: bad bundle manifest: {reason}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A member is missing, too large, or its bytes do not match the manifest.
    #[error(
        "{path}: member {member}: {reason} (`twinray bundle verify` lists every damaged member)"
    )]
    Member {
        /// The file.
        path: PathBuf,
        /// The member.
        member: String,
        /// Why.
        reason: String,
    },
    /// A member name or content the writer refuses.
    #[error("{path}: cannot write member {member}: {reason}")]
    BadInput {
        /// The output.
        path: PathBuf,
        /// The member.
        member: String,
        /// Why.
        reason: String,
    },
}

/// What was done to keep the patient out of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Deidentification {
    /// The profile applied, e.g. "twinray-volume-only-v1".
    pub profile: String,
    /// Where the case came from: "nifti", "dicom" or "embedded demo".
    pub source: String,
    /// Whether any DICOM header is kept (never, in this version).
    pub dicom_header_kept: bool,
    /// The series' BurnedInAnnotation value ("NO", "absent", "YES (allowed by --allow-burned-in)",
    /// "not DICOM").
    pub burned_in_annotation: String,
    /// Each step taken, in words.
    pub steps: Vec<String>,
}

/// One member's size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Path inside the bundle.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Hex BLAKE3 of the bytes.
    pub blake3: String,
}

/// The manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
    /// When the bundle was written, Unix seconds (UTC).
    pub created_unix_s: i64,
    /// The lesson's `case_ref` (the case's content hash, which the embedded case has).
    pub case_ref: String,
    /// What de-identification was done.
    pub deidentification: Deidentification,
    /// Every other member, with size and hash.
    pub members: Vec<MemberEntry>,
}

impl Manifest {
    /// The entry of `name`.
    #[must_use]
    pub fn member(&self, name: &str) -> Option<&MemberEntry> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// The descriptive fields a writer supplies.
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
    /// The lesson's `case_ref`.
    pub case_ref: String,
    /// De-identification record.
    pub deidentification: Deidentification,
    /// Creation time, Unix seconds.
    pub created_unix_s: i64,
}

fn valid_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('/')
        && name != MANIFEST
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

/// Writes a bundle at `path` (which must not exist) holding `members` (name, bytes) and a
/// manifest built from `description`. The file appears complete or not at all.
///
/// # Errors
/// If `path` exists, a member name is invalid or repeated, or writing fails.
pub fn write(
    path: &Path,
    description: &Description,
    members: &[(String, Vec<u8>)],
) -> Result<Manifest, BundleError> {
    if path.exists() {
        return Err(BundleError::Exists {
            path: path.to_path_buf(),
        });
    }
    let mut entries = Vec::with_capacity(members.len());
    for (name, bytes) in members {
        if !valid_member_name(name) || entries.iter().any(|e: &MemberEntry| &e.name == name) {
            return Err(BundleError::BadInput {
                path: path.to_path_buf(),
                member: name.clone(),
                reason: "invalid or repeated member name".to_owned(),
            });
        }
        entries.push(MemberEntry {
            name: name.clone(),
            size: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        title: description.title.clone(),
        author: description.author.clone(),
        description: description.description.clone(),
        created_unix_s: description.created_unix_s,
        case_ref: description.case_ref.clone(),
        deidentification: description.deidentification.clone(),
        members: entries,
    };
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::BadInput {
            path: path.to_path_buf(),
            member: MANIFEST.to_owned(),
            reason: e.to_string(),
        })?;
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    write_zip(path, &manifest_json, &names, &mut |i| {
        Ok(members[i].1.clone())
    })?;
    Ok(manifest)
}

/// Writes a bundle at `path` (which must not exist) from a manifest's exact bytes and its
/// members, fetched one at a time in the manifest's order and checked against it: the lesson
/// library keeps bundles as content-addressed parts and puts them back together with this.
/// The ZIP layout is the one [`write`] makes, so a bundle [`write`] made comes back byte for
/// byte.
///
/// # Errors
/// If `path` exists, the manifest is not one this build reads, a fetched member does not
/// match its entry, or writing fails.
pub fn write_from_parts(
    path: &Path,
    manifest_json: &[u8],
    fetch: &mut dyn FnMut(&MemberEntry) -> Result<Vec<u8>, BundleError>,
) -> Result<Manifest, BundleError> {
    if path.exists() {
        return Err(BundleError::Exists {
            path: path.to_path_buf(),
        });
    }
    let manifest = parse_manifest(path, manifest_json)?;
    let names: Vec<&str> = manifest.members.iter().map(|m| m.name.as_str()).collect();
    if let Some(bad) = names.iter().find(|n| !valid_member_name(n)) {
        return Err(BundleError::BadInput {
            path: path.to_path_buf(),
            member: (*bad).to_owned(),
            reason: "invalid member name".to_owned(),
        });
    }
    write_zip(path, manifest_json, &names, &mut |i| {
        let entry = &manifest.members[i];
        let bytes = fetch(entry)?;
        if bytes.len() as u64 != entry.size
            || blake3::hash(&bytes).to_hex().as_str() != entry.blake3
        {
            return Err(BundleError::Member {
                path: path.to_path_buf(),
                member: entry.name.clone(),
                reason: "the stored part does not match the manifest (size or BLAKE3)".to_owned(),
            });
        }
        Ok(bytes)
    })?;
    Ok(manifest)
}

/// The ZIP of a bundle: the manifest first, then each member in order (`member(i)` gives the
/// bytes of `names[i]`). Written beside the output under a private name, then linked into
/// place: linking fails when the output exists, so nothing is ever overwritten, and a failed
/// write leaves nothing.
fn write_zip(
    path: &Path,
    manifest_json: &[u8],
    names: &[&str],
    member: &mut dyn FnMut(usize) -> Result<Vec<u8>, BundleError>,
) -> Result<(), BundleError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map_or_else(|| "bundle".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{file_name}.{}.{:?}.partial",
        std::process::id(),
        std::thread::current().id()
    ));
    let io = |what: &str, source: std::io::Error| BundleError::Io {
        path: path.to_path_buf(),
        what: what.to_owned(),
        source,
    };
    let result = (|| {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io("creating a temporary file beside it", e))?;
        let mut zip = zipfile::Writer::new(std::io::BufWriter::new(file));
        zip.add(MANIFEST, manifest_json)
            .map_err(|e| io("writing", e))?;
        for (i, name) in names.iter().enumerate() {
            let bytes = member(i)?;
            zip.add(name, &bytes).map_err(|e| io("writing", e))?;
        }
        let writer = zip.finish().map_err(|e| io("writing", e))?;
        let file = writer
            .into_inner()
            .map_err(|e| io("writing", e.into_error()))?;
        file.sync_all().map_err(|e| io("syncing", e))?;
        std::fs::hard_link(&tmp, path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BundleError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                io("moving into place", e)
            }
        })
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Parses and checks a manifest's bytes (format, version, member count); `path` names the
/// bundle in errors.
///
/// # Errors
/// If it is not valid JSON or not a manifest this build reads.
pub fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest, BundleError> {
    let bad = |reason: String| BundleError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format '{}' is not '{FORMAT}'",
            manifest.format
        )));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} (this build reads version {FORMAT_VERSION}; a newer twinray wrote it?)",
            manifest.format_version
        )));
    }
    if manifest.members.len() > MAX_MEMBERS {
        return Err(bad(format!(
            "{} members listed (at most {MAX_MEMBERS})",
            manifest.members.len()
        )));
    }
    Ok(manifest)
}

/// An open bundle: members are read on demand, in place.
#[derive(Debug)]
pub struct Bundle {
    path: PathBuf,
    file: File,
    /// The file's length: no member reaches past it.
    data_end: u64,
    entries: Vec<zipfile::Entry>,
    manifest: Manifest,
    /// The manifest's exact bytes (its BLAKE3 names the bundle's content in the library).
    manifest_json: Vec<u8>,
}

fn not_a_bundle(path: &Path, reason: impl Into<String>) -> BundleError {
    BundleError::NotABundle {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Bundle {
    /// Opens a bundle and reads its manifest.
    ///
    /// # Errors
    /// If the file cannot be read, is not a (complete) ZIP, or has no valid manifest.
    pub fn open(path: &Path) -> Result<Self, BundleError> {
        let mut file = File::open(path).map_err(|source| BundleError::Io {
            path: path.to_path_buf(),
            what: "opening".to_owned(),
            source,
        })?;
        let file_len = file
            .metadata()
            .map_err(|source| BundleError::Io {
                path: path.to_path_buf(),
                what: "reading its size".to_owned(),
                source,
            })?
            .len();
        let entries = zipfile::read_directory(&mut file, file_len).map_err(|reason| {
            not_a_bundle(
                path,
                format!("not a complete ZIP archive: {reason}; is it truncated or another kind of file?"),
            )
        })?;
        let data_end = file_len;
        let mut bundle = Self {
            path: path.to_path_buf(),
            file,
            data_end,
            entries,
            manifest: Manifest {
                format: String::new(),
                format_version: 0,
                title: String::new(),
                author: String::new(),
                description: String::new(),
                created_unix_s: 0,
                case_ref: String::new(),
                deidentification: Deidentification::default(),
                members: Vec::new(),
            },
            manifest_json: Vec::new(),
        };
        let bad = |reason: String| BundleError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = bundle
            .read_raw(MANIFEST, MAX_MANIFEST_BYTES)
            .map_err(|e| match e {
                BundleError::Member { reason, .. } => bad(reason),
                other => other,
            })?;
        bundle.manifest = parse_manifest(path, &bytes)?;
        bundle.manifest_json = bytes;
        Ok(bundle)
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's exact bytes, as stored.
    #[must_use]
    pub fn manifest_json(&self) -> &[u8] {
        &self.manifest_json
    }

    /// Whether the manifest lists `name`.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.manifest.member(name).is_some()
    }

    /// Reads a member listed in the manifest and checks its size and hash.
    ///
    /// # Errors
    /// If it is not listed, missing, too large, or its bytes changed.
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, BundleError> {
        let member_err = |reason: String| BundleError::Member {
            path: self.path.clone(),
            member: name.to_owned(),
            reason,
        };
        let Some(entry) = self.manifest.member(name).cloned() else {
            return Err(member_err("not in the bundle's manifest".to_owned()));
        };
        if entry.size > MAX_MEMBER_BYTES || entry.size > self.data_end {
            return Err(member_err(format!(
                "the manifest says {} bytes, more than the file holds or {MAX_MEMBER_BYTES} bytes",
                entry.size
            )));
        }
        let bytes = self.read_raw(name, entry.size)?;
        if bytes.len() as u64 != entry.size {
            return Err(BundleError::Member {
                path: self.path.clone(),
                member: name.to_owned(),
                reason: format!("{} bytes, the manifest says {}", bytes.len(), entry.size),
            });
        }
        if blake3::hash(&bytes).to_hex().as_str() != entry.blake3 {
            return Err(BundleError::Member {
                path: self.path.clone(),
                member: name.to_owned(),
                reason: "its bytes changed (BLAKE3 differs from the manifest)".to_owned(),
            });
        }
        Ok(bytes)
    }

    /// Reads a member's bytes (at most `limit`), checking only the ZIP's own framing and CRC.
    fn read_raw(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, BundleError> {
        let member_err = |reason: String| BundleError::Member {
            path: self.path.clone(),
            member: name.to_owned(),
            reason,
        };
        let Some(entry) = self.entries.iter().find(|e| e.name == name).cloned() else {
            return Err(member_err("missing from the ZIP".to_owned()));
        };
        if entry.size > limit || entry.size > self.data_end {
            return Err(member_err(format!(
                "{} bytes, more than the {limit} allowed or the file holds",
                entry.size
            )));
        }
        let mut out = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        zipfile::stream(&mut self.file, &entry, self.data_end, &mut |b| {
            out.extend_from_slice(b);
        })
        .map_err(member_err)?;
        Ok(out)
    }
}

/// One finding of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The member.
    pub member: String,
    /// What is wrong.
    pub problem: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Members checked and intact.
    pub intact: Vec<String>,
    /// Damaged, missing or unlisted members.
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every member of the bundle at `path` against its manifest (size and BLAKE3, and the
/// ZIP's CRC), and names each member whose bytes changed, that is missing, or that the
/// manifest does not list. A damaged manifest is named as `manifest.json`.
///
/// # Errors
/// If the file cannot be read or is not a ZIP at all.
pub fn verify(path: &Path) -> Result<VerifyReport, BundleError> {
    let mut report = VerifyReport::default();
    let mut bundle = match Bundle::open(path) {
        Ok(b) => b,
        Err(BundleError::Manifest { reason, .. } | BundleError::Member { reason, .. }) => {
            report.problems.push(VerifyProblem {
                member: MANIFEST.to_owned(),
                problem: reason,
            });
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.intact.push(MANIFEST.to_owned());
    let members = bundle.manifest.members.clone();
    for entry in &members {
        match hash_member(&mut bundle, &entry.name, entry.size) {
            Ok((size, hash)) if size == entry.size && hash == entry.blake3 => {
                report.intact.push(entry.name.clone());
            }
            Ok((size, _)) if size != entry.size => report.problems.push(VerifyProblem {
                member: entry.name.clone(),
                problem: format!("{size} bytes, the manifest says {}", entry.size),
            }),
            Ok(_) => report.problems.push(VerifyProblem {
                member: entry.name.clone(),
                problem: "its bytes changed (BLAKE3 differs from the manifest)".to_owned(),
            }),
            Err(problem) => report.problems.push(VerifyProblem {
                member: entry.name.clone(),
                problem,
            }),
        }
    }
    let names: Vec<String> = bundle.entries.iter().map(|e| e.name.clone()).collect();
    for name in names {
        if name != MANIFEST && bundle.manifest.member(&name).is_none() {
            report.problems.push(VerifyProblem {
                member: name,
                problem: "not listed in the manifest".to_owned(),
            });
        }
    }
    Ok(report)
}

/// Streams a member through BLAKE3 (nothing held in memory), with its length.
fn hash_member(bundle: &mut Bundle, name: &str, _expected: u64) -> Result<(u64, String), String> {
    let Some(entry) = bundle.entries.iter().find(|e| e.name == name).cloned() else {
        return Err("missing from the ZIP".to_owned());
    };
    let mut hasher = blake3::Hasher::new();
    zipfile::stream(&mut bundle.file, &entry, bundle.data_end, &mut |b| {
        hasher.update(b);
    })?;
    Ok((entry.size, hasher.finalize().to_hex().to_string()))
}

/// Whether `path` names a bundle by its extension (`.twlesson`).
#[must_use]
pub fn is_bundle_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("twlesson"))
}
