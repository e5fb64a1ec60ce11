//! Error types.
//!
//! Two layers, mirroring the crate's split between pure codecs and file handling:
//! [`DecodeError`] comes from the sans-IO codecs and carries offsets relative to the buffer it
//! was given; [`LessonError`] comes from file-level code and adds which file and which absolute
//! byte offset, so a message names the file and the problem without the caller adding context.

use std::path::PathBuf;

/// A failure to decode bytes that were handed to a pure (sans-IO) decoder.
///
/// Offsets are relative to the start of the buffer given to the decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The data ended in the middle of a value.
    #[error("data ends at byte {offset} in the middle of {what}")]
    Truncated {
        /// Where the missing value starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A magic number did not match.
    #[error("bad magic at byte {offset}: expected {expected:?}, found {found:?}")]
    BadMagic {
        /// Where the magic was expected.
        offset: usize,
        /// The magic this format uses.
        expected: &'static [u8],
        /// What was found instead.
        found: Vec<u8>,
    },
    /// The file was written by a newer, incompatible format version.
    #[error(
        "format version {found} is not supported (this build reads versions up to {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Highest version this build reads.
        supported: u16,
    },
    /// An unknown compression method.
    #[error("unknown compression method {0}")]
    UnknownCompression(u8),
    /// A CRC32C did not match.
    #[error("checksum mismatch in {what}: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Which checksum.
        what: &'static str,
        /// The checksum stored in the data.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// A declared size is larger than this format allows; refused before allocating.
    #[error("{what} declares {declared} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What declared the size.
        what: &'static str,
        /// Declared size.
        declared: u64,
        /// The limit.
        limit: u64,
    },
    /// A variable-length integer ran over 64 bits.
    #[error("varint at byte {offset} is longer than 64 bits")]
    VarintOverflow {
        /// Where the varint starts.
        offset: usize,
    },
    /// A field holds a value that cannot be valid.
    #[error("invalid {what} at byte {offset}")]
    Invalid {
        /// Where the field starts.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// A time lies outside the range it must be in: the format's session-time limit
    /// ([`crate::format::MAX_TIME_NS`]) or, for an event, its chunk's range.
    #[error("{what} {time_ns} ns is outside {min_ns} to {max_ns} ns")]
    TimeOutOfRange {
        /// Which time.
        what: &'static str,
        /// The time found.
        time_ns: i64,
        /// The earliest time allowed there.
        min_ns: i64,
        /// The latest time allowed there.
        max_ns: i64,
    },
    /// The zstd stream could not be decompressed, or its size differs from the declared one.
    #[error("zstd decompression failed: {0}")]
    Decompress(String),
}

/// An error from file-level lesson code: which file, which offset, what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    /// An I/O operation on the lesson file failed.
    #[error("{path}: {action}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("opening", "writing chunk 12", ...).
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: the file is empty (0 bytes); it is not a lesson")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The header at the start of the file is unreadable.
    #[error("{path}: bad lesson header")]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A chunk or the footer could not be decoded.
    #[error("{path}: at byte {offset}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Absolute offset of the frame that failed.
        offset: u64,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// The recorder's writer thread has stopped (after an I/O error, or because it panicked).
    #[error("{path}: the recorder's writer thread stopped: {reason}")]
    WriterStopped {
        /// The file being recorded.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The header metadata could not be serialised.
    #[error("{path}: header metadata")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A recording was asked to write to a file that already exists. Recordings never replace
    /// a file: it may be an earlier lesson.
    #[error(
        "{path}: the file already exists; recordings never replace an existing file \
         (it may be an earlier lesson): choose another name or remove it"
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// [`crate::recorder::Recorder::create_unique`] found the name and every numbered
    /// alternative taken.
    #[error(
        "{path}: the file and {tried} numbered alternatives ({first} ... {last}) all exist; \
         recordings never replace an existing file: choose another name or folder"
    )]
    NoFreeName {
        /// The name asked for.
        path: PathBuf,
        /// How many numbered names were tried besides `path`.
        tried: u32,
        /// The first numbered name tried.
        first: PathBuf,
        /// The last numbered name tried.
        last: PathBuf,
    },
    /// A caller passed an unusable argument.
    #[error("{path}: {reason}")]
    InvalidArgument {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// An error and all its causes on one line ("a: b: c"), for places that keep errors as text
/// (the player's problem list, tool reports). `LessonError`'s own message leaves the cause
/// to `source()`, so that `anyhow`'s `{:#}` does not print it twice.
#[must_use]
pub fn full_message(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl LessonError {
    pub(crate) fn io(
        path: &std::path::Path,
        action: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            action: action.into(),
            source,
        }
    }
}
