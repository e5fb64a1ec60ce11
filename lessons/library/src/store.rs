//! Where a library's bytes live: content-addressed objects (`objects/<blake3>`, one per
//! distinct bundle member, so a case shared by many lessons is stored once) and one manifest
//! per lesson (`manifests/<id>.json`, its exact bytes, `id` being their BLAKE3). Everything a
//! library knows can be rebuilt from these two prefixes; the index is a cache of them.
//!
//! Two kinds of store: a folder on this machine, and S3-compatible object storage for an
//! institution (through `object_store`, driven from a small private tokio runtime, since the
//! rest of the library is synchronous).

use std::io::Write;

use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};

use crate::LibraryError;

/// The prefix of member objects.
pub const OBJECTS: &str = "objects/";
/// The prefix of lesson manifests.
pub const MANIFESTS: &str = "manifests/";

/// The key of a member object.
#[must_use]
pub fn object_key(blake3_hex: &str) -> String {
    format!("{OBJECTS}{blake3_hex}")
}

/// The key of a lesson's manifest.
#[must_use]
pub fn manifest_key(id: &str) -> String {
    format!("{MANIFESTS}{id}.json")
}

/// Whether `s` is a 64-digit lower-case hex BLAKE3 (what ids and object names are): keys are
/// built only from these, so nothing read from a store can name a path outside it.
#[must_use]
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A library's object store.
pub enum Store {
    /// A folder: `<root>/objects/…`, `<root>/manifests/…`.
    Folder(PathBuf),
    /// S3-compatible object storage.
    S3(S3Store),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(p) => write!(f, "Store::Folder({})", p.display()),
            Self::S3(s) => write!(f, "Store::S3({})", s.url),
        }
    }
}

/// An S3 bucket (and optional prefix) through `object_store`.
pub struct S3Store {
    url: String,
    prefix: String,
    store: object_store::aws::AmazonS3,
    runtime: tokio::runtime::Runtime,
}

impl S3Store {
    /// Connects to `s3://bucket[/prefix]`. The endpoint, region and credentials come from the
    /// usual environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint on a private network).
    ///
    /// # Errors
    /// If the URL is not `s3://…` or the client cannot be built.
    pub fn connect(url: &str) -> Result<Self, LibraryError> {
        let bad = |reason: String| LibraryError::Location {
            location: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("the object store must be an s3://bucket[/prefix] URL".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket named".into()));
        }
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket.to_owned())
            .build()
            .map_err(|e| bad(format!("cannot set up the S3 client: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the S3 client's runtime: {e}")))?;
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            url: url.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            store,
            runtime,
        })
    }

    fn path(&self, key: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}{key}", self.prefix))
    }

    fn err(&self, key: &str, what: &str, e: &object_store::Error) -> LibraryError {
        LibraryError::Store {
            location: format!("{}/{key}", self.url.trim_end_matches('/')),
            reason: format!("{what}: {e}"),
        }
    }
}

impl Store {
    /// A short description for messages ("/path/to/library" or "s3://bucket").
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Folder(p) => p.display().to_string(),
            Self::S3(s) => s.url.clone(),
        }
    }

    fn folder_path(root: &Path, key: &str) -> PathBuf {
        root.join(key)
    }

    /// Whether `key` exists.
    ///
    /// # Errors
    /// If the store cannot be asked.
    pub fn exists(&self, key: &str) -> Result<bool, LibraryError> {
        match self {
            Self::Folder(root) => Ok(Self::folder_path(root, key).is_file()),
            Self::S3(s) => match s.runtime.block_on(s.store.head(&s.path(key))) {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(s.err(key, "asking whether it exists", &e)),
            },
        }
    }

    /// Stores `bytes` under `key`, atomically: a reader sees the whole object or none.
    ///
    /// # Errors
    /// If it cannot be written.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), LibraryError> {
        match self {
            Self::Folder(root) => {
                let path = Self::folder_path(root, key);
                let io = |what: &str, source| LibraryError::Io {
                    path: path.clone(),
                    what: what.to_owned(),
                    source,
                };
                let dir = path.parent().unwrap_or(root);
                std::fs::create_dir_all(dir).map_err(|e| io("creating its folder", e))?;
                let tmp = dir.join(format!(
                    ".{}.{}.{:?}.partial",
                    path.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    std::process::id(),
                    std::thread::current().id()
                ));
                let result = (|| {
                    let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
                    f.write_all(bytes).map_err(|e| io("writing", e))?;
                    f.sync_all().map_err(|e| io("syncing", e))?;
                    std::fs::rename(&tmp, &path).map_err(|e| io("moving into place", e))
                })();
                if result.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                result
            }
            Self::S3(s) => s
                .runtime
                .block_on(
                    s.store
                        .put(&s.path(key), object_store::PutPayload::from(bytes.to_vec())),
                )
                .map(|_| ())
                .map_err(|e| s.err(key, "storing", &e)),
        }
    }

    /// The bytes under `key`, refusing more than `limit` bytes.
    ///
    /// # Errors
    /// If it is missing, larger than `limit`, or cannot be read.
    pub fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, LibraryError> {
        let too_large = |size: u64| LibraryError::Store {
            location: format!("{}/{key}", self.describe().trim_end_matches('/')),
            reason: format!("{size} bytes, more than the {limit} allowed"),
        };
        match self {
            Self::Folder(root) => {
                let path = Self::folder_path(root, key);
                let io = |what: &str, source| LibraryError::Io {
                    path: path.clone(),
                    what: what.to_owned(),
                    source,
                };
                let size = std::fs::metadata(&path)
                    .map_err(|e| io("reading", e))?
                    .len();
                if size > limit {
                    return Err(too_large(size));
                }
                std::fs::read(&path).map_err(|e| io("reading", e))
            }
            Self::S3(s) => s.runtime.block_on(async {
                let got = s
                    .store
                    .get(&s.path(key))
                    .await
                    .map_err(|e| s.err(key, "reading", &e))?;
                if got.meta.size > limit {
                    return Err(too_large(got.meta.size));
                }
                let bytes = got.bytes().await.map_err(|e| s.err(key, "reading", &e))?;
                Ok(bytes.to_vec())
            }),
        }
    }

    /// Removes `key` (nothing when it is already gone).
    ///
    /// # Errors
    /// If it cannot be removed.
    pub fn delete(&self, key: &str) -> Result<(), LibraryError> {
        match self {
            Self::Folder(root) => {
                let path = Self::folder_path(root, key);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LibraryError::Io {
                        path,
                        what: "removing".to_owned(),
                        source: e,
                    }),
                    _ => Ok(()),
                }
            }
            Self::S3(s) => match s.runtime.block_on(s.store.delete(&s.path(key))) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(s.err(key, "removing", &e)),
            },
        }
    }

    /// The names (without the prefix) of the objects under `prefix` (`objects/` or
    /// `manifests/`), sorted; private temporary files are not listed.
    ///
    /// # Errors
    /// If the store cannot be listed.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, LibraryError> {
        let mut names = match self {
            Self::Folder(root) => {
                let dir = Self::folder_path(root, prefix);
                match std::fs::read_dir(&dir) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(source) => {
                        return Err(LibraryError::Io {
                            path: dir,
                            what: "listing".to_owned(),
                            source,
                        })
                    }
                    Ok(entries) => entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.starts_with('.'))
                        .collect(),
                }
            }
            Self::S3(s) => {
                use futures::TryStreamExt;
                let base = s.path(prefix);
                let listed: Vec<object_store::ObjectMeta> = s
                    .runtime
                    .block_on(s.store.list(Some(&base)).try_collect())
                    .map_err(|e| s.err(prefix, "listing", &e))?;
                let base = format!("{}{prefix}", s.prefix);
                listed
                    .into_iter()
                    .filter_map(|m| m.location.as_ref().strip_prefix(&base).map(str::to_owned))
                    .filter(|n| !n.contains('/'))
                    .collect()
            }
        };
        names.sort();
        Ok(names)
    }
}
