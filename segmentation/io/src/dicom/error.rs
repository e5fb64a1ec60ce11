//! One error type for everything the DICOM reader can refuse, each naming the file and, where one
//! is to blame, the tag — so a user can find the bad file in a PACS export of thousands.

use std::path::PathBuf;

/// Why a DICOM file, series or folder could not be read.
///
/// Messages never contain patient-identifying values: they name files, tags and technical values
/// (dimensions, transfer syntaxes, positions) only.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The file or folder could not be read from disk.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file does not start with the DICOM Part 10 preamble and `DICM` magic.
    #[error("{path}: not a DICOM file (no 'DICM' magic after the 128-byte preamble)")]
    NotDicom {
        /// The file.
        path: PathBuf,
    },
    /// The file starts like DICOM but its data set cannot be parsed (truncated or corrupted).
    #[error("{path}: truncated or corrupted DICOM data set: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        message: String,
    },
    /// A tag the reader needs is absent or empty.
    #[error("{path}: missing {tag}")]
    MissingTag {
        /// The file.
        path: PathBuf,
        /// Keyword and number of the tag, e.g. `ImagePositionPatient (0020,0032)`.
        tag: String,
    },
    /// A tag holds a value the reader cannot use.
    #[error("{path}: {tag} has an unusable value: {detail}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// Keyword and number of the tag.
        tag: String,
        /// What is wrong with it (no patient data).
        detail: String,
    },
    /// The file describes an image but carries no Pixel Data (7FE0,0010).
    #[error("{path}: missing pixel data (PixelData (7FE0,0010))")]
    MissingPixelData {
        /// The file.
        path: PathBuf,
    },
    /// The pixel data is encoded in a transfer syntax this build cannot decode.
    #[error("{path}: unsupported transfer syntax {name} ({uid}) in TransferSyntaxUID (0002,0010)")]
    UnsupportedTransferSyntax {
        /// The file.
        path: PathBuf,
        /// The transfer syntax UID.
        uid: String,
        /// Its name, or "unknown".
        name: String,
    },
    /// The codec failed on this file's pixel data (truncated or corrupted stream).
    #[error("{path}: cannot decode PixelData (7FE0,0010), frame {frame}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Frame index within the file (0 for single-frame files).
        frame: u32,
        /// What the decoder reported.
        message: String,
    },
    /// RLE Lossless pixel data whose header or segments are damaged, found by checking them
    /// before decoding (dicom-rs's RLE decoder panics or allocates without bound on some).
    #[error("{path}: the RLE-compressed pixel data of frame {frame} is damaged ({detail}); the image cannot be decoded: export the series again from the scanner or PACS")]
    CorruptRle {
        /// The file.
        path: PathBuf,
        /// Frame index within the file (0 for single-frame files).
        frame: u32,
        /// What is wrong with the RLE header or segment, in bytes and counts.
        detail: String,
    },
    /// A slice does not match the rest of its series.
    #[error("{path}: inconsistent dimensions within the series: {tag} is {found}, other slices have {expected}")]
    InconsistentDimensions {
        /// The odd file.
        path: PathBuf,
        /// Keyword and number of the tag that differs.
        tag: String,
        /// The series' value.
        expected: String,
        /// This file's value.
        found: String,
    },
    /// Two slices of one series lie at the same position (repeated acquisition, or mixed series
    /// that share a SeriesInstanceUID).
    #[error("{first} and {second} lie at the same position along the slice normal ({position_mm:.3} mm): the series holds overlapping acquisitions")]
    DuplicateSlicePosition {
        /// One file.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
        /// Their position along the slice normal.
        position_mm: f64,
    },
    /// The series would need resampling and the caller asked for refusal instead.
    #[error("series {series}: {reason}; refusing as asked (allow resampling to load it onto a regular grid)")]
    NeedsResampling {
        /// Series description for the message (number and index).
        series: String,
        /// Tilt angle or spacing irregularity, in words.
        reason: String,
    },
    /// The volume would exceed the reader's allocation bound.
    #[error("{path}: {what} ({count}) exceeds the limit of {limit}")]
    TooLarge {
        /// The file (or folder) that asks for it.
        path: PathBuf,
        /// What is being counted.
        what: String,
        /// Requested count.
        count: u64,
        /// The bound.
        limit: u64,
    },
    /// No loadable image series under the folder.
    #[error("{dir}: no DICOM image series found ({skipped} files skipped; run `twinray info` to see why)")]
    NoSeries {
        /// The folder scanned.
        dir: PathBuf,
        /// How many files were skipped.
        skipped: usize,
    },
    /// The requested series number is not in the folder.
    #[error("{dir}: no series with number {requested}; available: {available}")]
    SeriesNotFound {
        /// The folder scanned.
        dir: PathBuf,
        /// The number asked for.
        requested: i64,
        /// The series numbers found.
        available: String,
    },
    /// A DICOM SEG object that cannot be imported.
    #[error("{path}: {detail}")]
    Segmentation {
        /// The SEG file.
        path: PathBuf,
        /// What is wrong, naming tags.
        detail: String,
    },
    /// The assembled grid is degenerate.
    #[error("{path}: {source}")]
    Volume {
        /// The first file of the series.
        path: PathBuf,
        /// The grid error.
        source: twinray_volume::VolumeError,
    },
}
