//! File-level byte layout (sans-IO): header, chunk frames, footer index, trailer, and a
//! scanner that finds every intact frame in a damaged file. See `FORMAT.md` for the layout.
//!
//! Everything here works on byte slices; opening and writing files lives in `reader`,
//! `recorder` and `tools`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chunk::StreamSummary;
use crate::error::DecodeError;
use crate::wire::{crc, ByteReader, ByteWriter};

/// First 8 bytes of every lesson file.
pub const FILE_MAGIC: &[u8; 8] = b"TWLESSON";
/// The format version this build writes. A reader refuses a larger one.
pub const FORMAT_VERSION: u16 = 1;
/// The minor version this build writes, in the header byte format 1.0 reserved (and
/// wrote as 0). Minor steps only add what older readers skip: 1.1 adds the narration
/// (voice blocks and sync records), so a 1.0 reader opens a 1.1 lesson and skips its voice;
/// 1.2 adds the twin's scale and label maps (a scene-change tag each, a record type), which
/// a 1.1 reader skips, replaying a life-size twin on the case's own labels; 1.3 adds image
/// boards, strokes on boards and measurements (record types `0x35`, `0x42`, `0x53`,
/// scene-change tags 13–17 and a list appended to keyframes), which a 1.2 reader skips,
/// replaying the lesson without them.
pub const FORMAT_MINOR_VERSION: u8 = 3;
/// Bytes of the fixed part of the file header (magic, version, compression, reserved, length).
pub const FILE_HEADER_FIXED_LEN: usize = 16;
/// Largest metadata block a reader accepts.
pub const MAX_METADATA_LEN: u32 = 1 << 20;

/// Every time in a lesson lies within ±this of session time 0 (100 days): times are
/// session-relative, so anything further out is damage, not a lesson. The bound keeps every
/// time exact as an `f64` and any sum or difference of two times far from overflowing `i64`.
/// Recorders refuse events outside it; readers treat a chunk whose times leave it as damaged.
pub const MAX_TIME_NS: i64 = 100 * 24 * 3600 * 1_000_000_000;

/// Checks that `t` is within `min..=max`.
pub(crate) fn check_time(
    what: &'static str,
    t: i64,
    min_ns: i64,
    max_ns: i64,
) -> Result<(), DecodeError> {
    if (min_ns..=max_ns).contains(&t) {
        Ok(())
    } else {
        Err(DecodeError::TimeOutOfRange {
            what,
            time_ns: t,
            min_ns,
            max_ns,
        })
    }
}

/// Checks the times a chunk's frame header (or index entry) claims: its start within
/// ±[`MAX_TIME_NS`], its end between its start and the limit, and every stream's times
/// within the chunk's range.
pub(crate) fn check_chunk_times(
    t_start_ns: i64,
    t_end_ns: i64,
    streams: &[StreamSummary],
) -> Result<(), DecodeError> {
    check_time("chunk start time", t_start_ns, -MAX_TIME_NS, MAX_TIME_NS)?;
    check_time("chunk end time", t_end_ns, t_start_ns, MAX_TIME_NS)?;
    for s in streams {
        // Not t_min <= t_max: writers before this check noted a stream's first and last
        // sample, which are out of order when the producer's times were.
        check_time("stream start time", s.t_min_ns, t_start_ns, t_end_ns)?;
        check_time("stream end time", s.t_max_ns, t_start_ns, t_end_ns)?;
    }
    Ok(())
}

/// First 4 bytes of every frame (chunk or footer); also what the scanner resynchronises on.
pub const FRAME_MAGIC: &[u8; 4] = b"TWCK";
/// Bytes of the fixed part of a frame header.
pub const FRAME_FIXED_LEN: usize = 40;
/// Bytes per stream summary in a frame header.
pub const STREAM_SUMMARY_LEN: usize = 25;
/// Largest stored (compressed) payload a reader accepts; a frame claiming more is rejected
/// before anything is allocated. A one-second chunk is normally tens of kilobytes.
pub const MAX_STORED_LEN: u32 = 16 << 20;
/// Largest uncompressed payload a reader accepts.
pub const MAX_UNCOMPRESSED_LEN: u32 = 64 << 20;

/// Last 8 bytes of a finished lesson file, after the footer offset.
pub const TRAILER_MAGIC: &[u8; 8] = b"TWLSNEND";
/// Bytes of the trailer: footer offset (u64) and [`TRAILER_MAGIC`].
pub const TRAILER_LEN: usize = 16;

/// Frame kinds. Readers skip kinds they do not know.
pub mod frame_kind {
    /// A chunk of events.
    pub const CHUNK: u8 = 1;
    /// The footer index.
    pub const FOOTER: u8 = 2;
}

/// Frame flag: the chunk starts with a keyframe.
pub const FLAG_KEYFRAME: u8 = 1;

/// How a payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Stored as is.
    None,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Code in the file.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd => 1,
        }
    }

    /// From the code in the file.
    ///
    /// # Errors
    /// [`DecodeError::UnknownCompression`] for an unknown code.
    pub fn from_code(code: u8) -> Result<Self, DecodeError> {
        match code {
            0 => Ok(Self::None),
            1 => Ok(Self::Zstd),
            c => Err(DecodeError::UnknownCompression(c)),
        }
    }
}

/// The lesson's recording metadata, stored as JSON in the file header so fields can be added
/// without a format version bump (readers ignore fields they do not know).
///
/// Nothing here may identify the patient: `case_ref` is a content hash of the volume and
/// labels, and `metadata` is for de-identified facts (course, instructor's display name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonHeader {
    /// Content hash of the case's volume and labels, supplied by the caller.
    pub case_ref: String,
    /// Wall-clock time (Unix epoch, nanoseconds) at session time 0.
    pub wall_clock_anchor_unix_ns: i64,
    /// Writing software and version.
    #[serde(default)]
    pub recorder: String,
    /// Lesson title.
    #[serde(default)]
    pub title: Option<String>,
    /// Further de-identified key/value metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl LessonHeader {
    /// A header for `case_ref`, anchored at `wall_clock_anchor_unix_ns`.
    #[must_use]
    pub fn new(case_ref: impl Into<String>, wall_clock_anchor_unix_ns: i64) -> Self {
        Self {
            case_ref: case_ref.into(),
            wall_clock_anchor_unix_ns,
            recorder: concat!("twinray-lessons ", env!("CARGO_PKG_VERSION")).to_owned(),
            title: None,
            metadata: BTreeMap::new(),
        }
    }
}

/// The decoded file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version of the file.
    pub format_version: u16,
    /// Minor version (0 for files written before 1.1; readers accept any).
    pub format_minor_version: u8,
    /// Compression the writer used for chunks (each frame also says its own).
    pub compression: Compression,
    /// Metadata.
    pub lesson: LessonHeader,
    /// Total header length in bytes; the first frame starts here.
    pub len: usize,
}

/// Encodes the file header.
///
/// # Errors
/// If the metadata cannot be serialised or is larger than [`MAX_METADATA_LEN`].
pub fn encode_file_header(
    lesson: &LessonHeader,
    compression: Compression,
) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(lesson)?;
    if json.len() > MAX_METADATA_LEN as usize {
        return Err(serde::ser::Error::custom(format!(
            "metadata is {} bytes, more than the limit of {MAX_METADATA_LEN}",
            json.len()
        )));
    }
    let mut w = ByteWriter::new();
    w.bytes(FILE_MAGIC);
    w.u16_le(FORMAT_VERSION);
    w.u8(compression.code());
    w.u8(FORMAT_MINOR_VERSION);
    w.u32_le(u32::try_from(json.len()).unwrap_or(u32::MAX));
    w.bytes(&json);
    let c = crc(&w.buf);
    w.u32_le(c);
    Ok(w.into_inner())
}

/// Decodes the file header from the start of `data`.
///
/// # Errors
/// A [`DecodeError`] naming what is wrong: not a lesson (magic), a newer version, a bad
/// checksum, truncation.
pub fn decode_file_header(data: &[u8]) -> Result<FileHeader, DecodeError> {
    let mut r = ByteReader::new(data);
    let magic = r.take(FILE_MAGIC.len().min(data.len()), "file magic")?;
    if magic != FILE_MAGIC {
        return Err(DecodeError::BadMagic {
            offset: 0,
            expected: FILE_MAGIC,
            found: magic.to_vec(),
        });
    }
    let format_version = r.u16_le("format version")?;
    if format_version == 0 || format_version > FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: format_version,
            supported: FORMAT_VERSION,
        });
    }
    let compression = Compression::from_code(r.u8("compression")?)?;
    let format_minor_version = r.u8("minor version")?;
    let meta_len = r.u32_le("metadata length")?;
    if meta_len > MAX_METADATA_LEN {
        return Err(DecodeError::TooLarge {
            what: "header metadata",
            declared: u64::from(meta_len),
            limit: u64::from(MAX_METADATA_LEN),
        });
    }
    let meta_offset = r.pos();
    let json = r.take(meta_len as usize, "header metadata")?;
    let crc_end = r.pos();
    let stored = r.u32_le("header checksum")?;
    let computed = crc(&data[..crc_end]);
    if stored != computed {
        return Err(DecodeError::Checksum {
            what: "file header",
            stored,
            computed,
        });
    }
    let lesson: LessonHeader = serde_json::from_slice(json).map_err(|_| DecodeError::Invalid {
        offset: meta_offset,
        what: "header metadata JSON",
    })?;
    Ok(FileHeader {
        format_version,
        format_minor_version,
        compression,
        lesson,
        len: r.pos(),
    })
}

/// The header of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHeader {
    /// [`frame_kind`].
    pub kind: u8,
    /// Flags ([`FLAG_KEYFRAME`]).
    pub flags: u8,
    /// Payload compression.
    pub compression: Compression,
    /// Chunk sequence number (0, 1, 2, ... in writing order); for the footer, the chunk count.
    pub seq: u64,
    /// Earliest event time in the chunk (the base for record times).
    pub t_start_ns: i64,
    /// Latest event time in the chunk.
    pub t_end_ns: i64,
    /// Payload size after decompression.
    pub uncompressed_len: u32,
    /// Payload size as stored.
    pub stored_len: u32,
    /// Per-stream statistics.
    pub streams: Vec<StreamSummary>,
}

impl FrameHeader {
    /// Bytes of the header including its checksum.
    #[must_use]
    pub fn header_len(&self) -> usize {
        FRAME_FIXED_LEN + STREAM_SUMMARY_LEN * self.streams.len() + 4
    }

    /// Bytes of the whole frame: header, payload, payload checksum.
    #[must_use]
    pub fn frame_len(&self) -> u64 {
        self.header_len() as u64 + u64::from(self.stored_len) + 4
    }

    /// Whether the chunk starts with a keyframe.
    #[must_use]
    pub fn is_keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }

    /// Checks the times a chunk frame claims (see `check_chunk_times`).
    pub(crate) fn check_times(&self) -> Result<(), DecodeError> {
        check_chunk_times(self.t_start_ns, self.t_end_ns, &self.streams)
    }
}

/// Longest possible frame header (255 stream summaries).
pub const MAX_FRAME_HEADER_LEN: usize = FRAME_FIXED_LEN + STREAM_SUMMARY_LEN * 255 + 4;

/// Builds a complete frame from an uncompressed payload.
///
/// # Errors
/// If zstd fails, or the payload is larger than the format's limits.
#[allow(clippy::too_many_arguments)]
pub fn encode_frame(
    kind: u8,
    flags: u8,
    seq: u64,
    t_start_ns: i64,
    t_end_ns: i64,
    streams: &[StreamSummary],
    payload: &[u8],
    compression: Compression,
    zstd_level: i32,
) -> std::io::Result<Vec<u8>> {
    encode_frame_parts(
        kind,
        flags,
        seq,
        t_start_ns,
        t_end_ns,
        streams,
        &[payload],
        compression,
        zstd_level,
    )
}

/// Builds a frame whose payload is `parts` back to back, each compressed as its own zstd
/// frame (empty parts are left out). A zstd decoder reads concatenated frames as one stream,
/// so every reader sees the same payload; [`decode_frame_payload_first_part`] can stop after
/// the first.
///
/// # Errors
/// If zstd fails, or the payload is larger than the format's limits.
#[allow(clippy::too_many_arguments)]
pub fn encode_frame_parts(
    kind: u8,
    flags: u8,
    seq: u64,
    t_start_ns: i64,
    t_end_ns: i64,
    streams: &[StreamSummary],
    parts: &[&[u8]],
    compression: Compression,
    zstd_level: i32,
) -> std::io::Result<Vec<u8>> {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let too_large = |what: &str, n: usize| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} of {n} bytes is over the format limit"),
        )
    };
    if payload_len > MAX_UNCOMPRESSED_LEN as usize {
        return Err(too_large("chunk payload", payload_len));
    }
    let mut stored = Vec::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        match compression {
            Compression::None => stored.extend_from_slice(part),
            Compression::Zstd => stored.extend(zstd::bulk::compress(part, zstd_level)?),
        }
    }
    if stored.is_empty() && compression == Compression::Zstd {
        stored = zstd::bulk::compress(&[], zstd_level)?;
    }
    if stored.len() > MAX_STORED_LEN as usize {
        return Err(too_large("compressed chunk", stored.len()));
    }
    let stream_count =
        u8::try_from(streams.len()).map_err(|_| too_large("stream table", streams.len()))?;
    let mut w = ByteWriter::new();
    w.bytes(FRAME_MAGIC);
    w.u8(kind);
    w.u8(flags);
    w.u8(compression.code());
    w.u8(stream_count);
    w.u64_le(seq);
    w.i64_le(t_start_ns);
    w.i64_le(t_end_ns);
    w.u32_le(u32::try_from(payload_len).unwrap_or(u32::MAX));
    w.u32_le(u32::try_from(stored.len()).unwrap_or(u32::MAX));
    for s in streams {
        w.u8(s.stream);
        w.u32_le(s.event_count);
        w.i64_le(s.t_min_ns);
        w.i64_le(s.t_max_ns);
        w.u32_le(s.encoded_bytes);
    }
    let c = crc(&w.buf);
    w.u32_le(c);
    w.bytes(&stored);
    w.u32_le(crc(&stored));
    Ok(w.into_inner())
}

/// Decodes a frame header from the start of `data` and checks its checksum and declared
/// sizes (before anything is allocated for the payload).
///
/// # Errors
/// A [`DecodeError`]; `Truncated` if `data` ends inside the header.
pub fn decode_frame_header(data: &[u8]) -> Result<FrameHeader, DecodeError> {
    let mut r = ByteReader::new(data);
    let magic = r.take(FRAME_MAGIC.len(), "frame magic")?;
    if magic != FRAME_MAGIC {
        return Err(DecodeError::BadMagic {
            offset: 0,
            expected: FRAME_MAGIC,
            found: magic.to_vec(),
        });
    }
    let kind = r.u8("frame kind")?;
    let flags = r.u8("frame flags")?;
    let compression_code = r.u8("frame compression")?;
    let stream_count = r.u8("stream count")?;
    let seq = r.u64_le("chunk sequence")?;
    let t_start_ns = r.i64_le("chunk start time")?;
    let t_end_ns = r.i64_le("chunk end time")?;
    let uncompressed_len = r.u32_le("uncompressed length")?;
    let stored_len = r.u32_le("stored length")?;
    let mut streams = Vec::with_capacity(usize::from(stream_count));
    for _ in 0..stream_count {
        streams.push(StreamSummary {
            stream: r.u8("stream id")?,
            event_count: r.u32_le("stream event count")?,
            t_min_ns: r.i64_le("stream start time")?,
            t_max_ns: r.i64_le("stream end time")?,
            encoded_bytes: r.u32_le("stream bytes")?,
        });
    }
    let crc_end = r.pos();
    let stored = r.u32_le("frame header checksum")?;
    let computed = crc(&data[..crc_end]);
    if stored != computed {
        return Err(DecodeError::Checksum {
            what: "frame header",
            stored,
            computed,
        });
    }
    // Checked only after the checksum, so that random bytes are reported as damage rather
    // than as a confusing size complaint.
    let compression = Compression::from_code(compression_code)?;
    if stored_len > MAX_STORED_LEN {
        return Err(DecodeError::TooLarge {
            what: "frame stored payload",
            declared: u64::from(stored_len),
            limit: u64::from(MAX_STORED_LEN),
        });
    }
    if uncompressed_len > MAX_UNCOMPRESSED_LEN {
        return Err(DecodeError::TooLarge {
            what: "frame uncompressed payload",
            declared: u64::from(uncompressed_len),
            limit: u64::from(MAX_UNCOMPRESSED_LEN),
        });
    }
    Ok(FrameHeader {
        kind,
        flags,
        compression,
        seq,
        t_start_ns,
        t_end_ns,
        uncompressed_len,
        stored_len,
        streams,
    })
}

/// Checks and decompresses a frame's payload. `body` is what follows the frame header: the
/// stored payload and its checksum (extra bytes after them are ignored).
///
/// # Errors
/// Truncation, a checksum mismatch, or a zstd failure / size mismatch.
pub fn decode_frame_payload(header: &FrameHeader, body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let stored = checked_stored_payload(header, body)?;
    let out = match header.compression {
        Compression::None => stored.to_vec(),
        Compression::Zstd => {
            // The capacity is the declared size, already checked against the limit: zstd
            // fails rather than grows past it.
            zstd::bulk::decompress(stored, header.uncompressed_len as usize)
                .map_err(|e| DecodeError::Decompress(e.to_string()))?
        }
    };
    if out.len() != header.uncompressed_len as usize {
        return Err(DecodeError::Decompress(format!(
            "payload decompressed to {} bytes, the header declares {}",
            out.len(),
            header.uncompressed_len
        )));
    }
    Ok(out)
}

/// Like [`decode_frame_payload`], but decompresses only the first zstd frame of a payload
/// written in parts ([`encode_frame_parts`]): everything but the voice, for readers that do
/// not play it. A payload of one part (every 1.0 file) is decoded whole.
///
/// # Errors
/// As [`decode_frame_payload`].
pub fn decode_frame_payload_first_part(
    header: &FrameHeader,
    body: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let stored_len = header.stored_len as usize;
    let stored = body.get(..stored_len);
    let first = match (header.compression, stored) {
        (Compression::Zstd, Some(stored)) => {
            zstd::zstd_safe::find_frame_compressed_size(stored).unwrap_or(stored_len)
        }
        _ => stored_len,
    };
    if first >= stored_len {
        return decode_frame_payload(header, body);
    }
    let stored = checked_stored_payload(header, body)?;
    zstd::bulk::decompress(&stored[..first], header.uncompressed_len as usize)
        .map_err(|e| DecodeError::Decompress(e.to_string()))
}

/// The stored payload of a frame after its checksum is checked: both decoders start here.
fn checked_stored_payload<'a>(
    header: &FrameHeader,
    body: &'a [u8],
) -> Result<&'a [u8], DecodeError> {
    let mut r = ByteReader::new(body);
    let stored = r.take(header.stored_len as usize, "frame payload")?;
    let stored_crc = r.u32_le("frame payload checksum")?;
    let computed = crc(stored);
    if stored_crc != computed {
        return Err(DecodeError::Checksum {
            what: "frame payload",
            stored: stored_crc,
            computed,
        });
    }
    Ok(stored)
}

/// One entry of the chunk index: where a chunk is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkIndexEntry {
    /// Chunk sequence number.
    pub seq: u64,
    /// Absolute byte offset of the frame.
    pub offset: u64,
    /// Frame length in bytes.
    pub frame_len: u64,
    /// Whether it starts with a keyframe.
    pub keyframe: bool,
    /// Earliest event time.
    pub t_start_ns: i64,
    /// Latest event time.
    pub t_end_ns: i64,
    /// Per-stream statistics.
    pub streams: Vec<StreamSummary>,
}

impl ChunkIndexEntry {
    /// The index entry for a frame at `offset`.
    #[must_use]
    pub fn from_frame(offset: u64, h: &FrameHeader) -> Self {
        Self {
            seq: h.seq,
            offset,
            frame_len: h.frame_len(),
            keyframe: h.is_keyframe(),
            t_start_ns: h.t_start_ns,
            t_end_ns: h.t_end_ns,
            streams: h.streams.clone(),
        }
    }

    /// Checks the times the entry claims (see `check_chunk_times`).
    pub(crate) fn check_times(&self) -> Result<(), DecodeError> {
        check_chunk_times(self.t_start_ns, self.t_end_ns, &self.streams)
    }

    /// The summary of `stream` in this chunk, if it has events of it.
    #[must_use]
    pub fn stream(&self, stream: u8) -> Option<&StreamSummary> {
        self.streams.iter().find(|s| s.stream == stream)
    }
}

/// Encodes the footer index payload (before compression): entries delta-coded, so a two-hour
/// index stays around a hundred kilobytes.
#[must_use]
pub fn encode_index(entries: &[ChunkIndexEntry]) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.varint(entries.len() as u64);
    let (mut prev_seq, mut prev_offset, mut prev_t) = (0u64, 0u64, 0i64);
    for e in entries {
        w.varint(e.seq.wrapping_sub(prev_seq));
        w.varint(e.offset.wrapping_sub(prev_offset));
        w.varint(e.frame_len);
        w.u8(u8::from(e.keyframe));
        w.svarint(e.t_start_ns.wrapping_sub(prev_t));
        w.svarint(e.t_end_ns.wrapping_sub(e.t_start_ns));
        w.varint(e.streams.len() as u64);
        for s in &e.streams {
            w.u8(s.stream);
            w.varint(u64::from(s.event_count));
            w.svarint(s.t_min_ns.wrapping_sub(e.t_start_ns));
            w.svarint(s.t_max_ns.wrapping_sub(s.t_min_ns));
            w.varint(u64::from(s.encoded_bytes));
        }
        (prev_seq, prev_offset, prev_t) = (e.seq, e.offset, e.t_start_ns);
    }
    w.into_inner()
}

/// Decodes a footer index payload.
///
/// # Errors
/// A [`DecodeError`] if it is truncated or malformed.
pub fn decode_index(data: &[u8]) -> Result<Vec<ChunkIndexEntry>, DecodeError> {
    let mut r = ByteReader::new(data);
    let n = r.count(7, "index entries")?;
    let mut out = Vec::with_capacity(n);
    let (mut seq, mut offset, mut t) = (0u64, 0u64, 0i64);
    for _ in 0..n {
        seq = seq.wrapping_add(r.varint("index seq")?);
        offset = offset.wrapping_add(r.varint("index offset")?);
        let frame_len = r.varint("index frame length")?;
        let keyframe = r.u8("index flags")? != 0;
        t = t.wrapping_add(r.svarint("index start time")?);
        let t_end_ns = t.wrapping_add(r.svarint("index end time")?);
        let k = r.count(5, "index streams")?;
        let mut streams = Vec::with_capacity(k);
        for _ in 0..k {
            let stream = r.u8("index stream id")?;
            let event_count = r.varint_u32("index stream count")?;
            let t_min_ns = t.wrapping_add(r.svarint("index stream start")?);
            let t_max_ns = t_min_ns.wrapping_add(r.svarint("index stream end")?);
            let encoded_bytes = r.varint_u32("index stream bytes")?;
            streams.push(StreamSummary {
                stream,
                event_count,
                t_min_ns,
                t_max_ns,
                encoded_bytes,
            });
        }
        out.push(ChunkIndexEntry {
            seq,
            offset,
            frame_len,
            keyframe,
            t_start_ns: t,
            t_end_ns,
            streams,
        });
    }
    Ok(out)
}

/// Encodes the trailer that points at the footer frame.
#[must_use]
pub fn encode_trailer(footer_offset: u64) -> [u8; TRAILER_LEN] {
    let mut out = [0u8; TRAILER_LEN];
    out[..8].copy_from_slice(&footer_offset.to_le_bytes());
    out[8..].copy_from_slice(TRAILER_MAGIC);
    out
}

/// Reads the footer offset from the last [`TRAILER_LEN`] bytes of a file, if they are a
/// trailer.
#[must_use]
pub fn decode_trailer(last_bytes: &[u8]) -> Option<u64> {
    let tail = last_bytes.get(last_bytes.len().checked_sub(TRAILER_LEN)?..)?;
    if &tail[8..] != TRAILER_MAGIC {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&tail[..8]);
    Some(u64::from_le_bytes(b))
}

/// A frame found by [`scan`], with its payload checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFrame {
    /// Absolute offset of the frame.
    pub offset: u64,
    /// Its header.
    pub header: FrameHeader,
}

/// A run of bytes the scanner could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRegion {
    /// Absolute offset of the first unusable byte.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
    /// What was wrong there.
    pub reason: String,
    /// If the region is a frame whose header was intact: its header (chunk seq, times).
    pub frame: Option<FrameHeader>,
}

/// What a scan of the frame area found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Intact chunk frames (header and payload checksums good), in file order.
    pub chunks: Vec<ScannedFrame>,
    /// The intact footer frame and its payload, if one was found.
    pub footer: Option<(ScannedFrame, Vec<u8>)>,
    /// Intact frames of kinds this build does not know (skipped).
    pub unknown_frames: Vec<ScannedFrame>,
    /// Unusable byte ranges.
    pub damaged: Vec<DamagedRegion>,
    /// Offset of a valid trailer, if the file ends with one.
    pub trailer_offset: Option<u64>,
}

/// Scans `data` (the bytes of a file from `base_offset` on, normally everything after the
/// header) for frames, checking each header and payload checksum. Damage is skipped by
/// searching for the next frame magic, so one bad chunk costs only itself.
#[must_use]
pub fn scan(data: &[u8], base_offset: u64) -> ScanResult {
    let mut result = ScanResult::default();
    let mut pos = 0usize;
    let mut garbage_start: Option<(usize, String)> = None;
    let flush_garbage =
        |result: &mut ScanResult, garbage: &mut Option<(usize, String)>, end: usize| {
            if let Some((start, reason)) = garbage.take() {
                result.damaged.push(DamagedRegion {
                    offset: base_offset + start as u64,
                    len: (end - start) as u64,
                    reason,
                    frame: None,
                });
            }
        };
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() == TRAILER_LEN && decode_trailer(rest).is_some() {
            flush_garbage(&mut result, &mut garbage_start, pos);
            result.trailer_offset = Some(base_offset + pos as u64);
            break;
        }
        if rest.starts_with(FRAME_MAGIC) {
            match decode_frame_header(rest) {
                Ok(header) => {
                    flush_garbage(&mut result, &mut garbage_start, pos);
                    let frame_len = usize::try_from(header.frame_len()).unwrap_or(usize::MAX);
                    let offset = base_offset + pos as u64;
                    if frame_len > rest.len() {
                        result.damaged.push(DamagedRegion {
                            offset,
                            len: rest.len() as u64,
                            reason: format!(
                                "frame (chunk {}) truncated: {} of {} bytes present",
                                header.seq,
                                rest.len(),
                                frame_len
                            ),
                            frame: Some(header),
                        });
                        pos = data.len();
                        break;
                    }
                    match decode_frame_payload(&header, &rest[header.header_len()..frame_len]) {
                        Ok(payload) => {
                            let frame = ScannedFrame { offset, header };
                            match frame.header.kind {
                                // Intact bytes but impossible times (crafted, or a broken
                                // writer): its events cannot be placed in the lesson.
                                frame_kind::CHUNK => match frame.header.check_times() {
                                    Ok(()) => result.chunks.push(frame),
                                    Err(e) => result.damaged.push(DamagedRegion {
                                        offset,
                                        len: frame_len as u64,
                                        reason: format!("frame (chunk {}): {e}", frame.header.seq),
                                        frame: Some(frame.header),
                                    }),
                                },
                                frame_kind::FOOTER => result.footer = Some((frame, payload)),
                                _ => result.unknown_frames.push(frame),
                            }
                        }
                        Err(e) => result.damaged.push(DamagedRegion {
                            offset,
                            len: frame_len as u64,
                            reason: format!("frame (chunk {}): {e}", header.seq),
                            frame: Some(header),
                        }),
                    }
                    pos += frame_len;
                    continue;
                }
                Err(e) => {
                    if garbage_start.is_none() {
                        garbage_start = Some((pos, format!("damaged frame header: {e}")));
                    }
                }
            }
        } else if garbage_start.is_none() {
            garbage_start = Some((pos, "bytes that are not a frame".to_owned()));
        }
        // Resynchronise on the next frame magic.
        pos += 1;
        pos = match find(&data[pos..], FRAME_MAGIC) {
            Some(i) => pos + i,
            None => {
                // No further frame; a trailer may still end the file.
                let trailer_pos = data.len().saturating_sub(TRAILER_LEN).max(pos);
                if decode_trailer(&data[trailer_pos..]).is_some() && trailer_pos >= pos {
                    trailer_pos
                } else {
                    data.len()
                }
            }
        };
    }
    flush_garbage(&mut result, &mut garbage_start, pos.min(data.len()));
    result
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
