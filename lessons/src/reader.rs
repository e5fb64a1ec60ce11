//! Opening lesson files: the header, the chunk index (from the footer, or rebuilt by scanning
//! when the footer is missing or damaged) and random access to chunks.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::chunk::{decode_payload, DecodeParts, DecodedChunk};
use crate::encoder::check_entry;
use crate::error::{DecodeError, LessonError};
use crate::format::{
    decode_file_header, decode_frame_header, decode_frame_payload, decode_frame_payload_first_part,
    decode_index, decode_trailer, frame_kind, scan, ChunkIndexEntry, DamagedRegion, FileHeader,
    ScanResult, FILE_HEADER_FIXED_LEN, MAX_FRAME_HEADER_LEN, MAX_METADATA_LEN, MAX_STORED_LEN,
    TRAILER_LEN,
};

/// Where the bytes come from.
#[derive(Debug)]
enum Source {
    File { file: File, len: u64 },
    Memory(Vec<u8>),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Self::File { len, .. } => *len,
            Self::Memory(d) => d.len() as u64,
        }
    }

    /// Reads `len` bytes at `offset`; the caller has checked the range against `len()`.
    fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        match self {
            Self::File { file, .. } => {
                file.seek(SeekFrom::Start(offset))?;
                let mut buf = vec![0u8; len];
                file.read_exact(&mut buf)?;
                Ok(buf)
            }
            Self::Memory(d) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                d.get(start..start.saturating_add(len))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
            }
        }
    }
}

/// How the chunk index was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOrigin {
    /// From the footer written at finish.
    Footer,
    /// Rebuilt by scanning; the reason the footer was not used.
    Scan {
        /// Why the footer could not be used.
        footer_problem: String,
    },
}

/// An open lesson file.
#[derive(Debug)]
pub struct LessonReader {
    path: PathBuf,
    source: Source,
    header: FileHeader,
    index: Vec<ChunkIndexEntry>,
    origin: IndexOrigin,
    damage: Vec<DamagedRegion>,
}

impl LessonReader {
    /// Opens a lesson file.
    ///
    /// # Errors
    /// If the file cannot be read, is empty, or its header is not a valid lesson header.
    /// Damaged or missing chunks and a missing footer are not errors: the index is rebuilt
    /// and the damage is listed by [`Self::damage`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LessonError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| LessonError::io(path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| LessonError::io(path, "reading metadata", e))?
            .len();
        Self::from_source(path.to_path_buf(), Source::File { file, len })
    }

    /// Opens a lesson held in memory; `name` is used in error messages.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn from_bytes(name: impl Into<PathBuf>, data: Vec<u8>) -> Result<Self, LessonError> {
        Self::from_source(name.into(), Source::Memory(data))
    }

    fn from_source(path: PathBuf, mut source: Source) -> Result<Self, LessonError> {
        let len = source.len();
        if len == 0 {
            return Err(LessonError::Empty { path });
        }
        let header = read_header(&path, &mut source)?;
        let mut reader = Self {
            path,
            source,
            header,
            index: Vec::new(),
            origin: IndexOrigin::Footer,
            damage: Vec::new(),
        };
        match reader.read_footer() {
            Ok(index) => reader.index = index,
            Err(problem) => {
                let scanned = reader.scan()?;
                reader.index = index_from_scan(&scanned);
                reader.damage = scanned.damaged;
                reader.origin = IndexOrigin::Scan {
                    footer_problem: problem,
                };
            }
        }
        Ok(reader)
    }

    /// A second reader of the same lesson, for another thread (the narration plays beside
    /// the motion): a file is opened again (it has its own read position), bytes in memory are
    /// copied. The index is not rebuilt.
    ///
    /// # Errors
    /// If the file cannot be opened again.
    pub fn try_clone(&self) -> Result<Self, LessonError> {
        let source = match &self.source {
            Source::File { len, .. } => Source::File {
                file: File::open(&self.path)
                    .map_err(|e| LessonError::io(&self.path, "opening again", e))?,
                len: *len,
            },
            Source::Memory(d) => Source::Memory(d.clone()),
        };
        Ok(Self {
            path: self.path.clone(),
            source,
            header: self.header.clone(),
            index: self.index.clone(),
            origin: self.origin.clone(),
            damage: self.damage.clone(),
        })
    }

    /// The file (or the name given to [`Self::from_bytes`]).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file header.
    #[must_use]
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The chunk index, in sequence (= time) order.
    #[must_use]
    pub fn index(&self) -> &[ChunkIndexEntry] {
        &self.index
    }

    /// Whether the index came from the footer or a scan.
    #[must_use]
    pub fn index_origin(&self) -> &IndexOrigin {
        &self.origin
    }

    /// Damage found while scanning (empty when the footer was used: chunks are then checked
    /// as they are read).
    #[must_use]
    pub fn damage(&self) -> &[DamagedRegion] {
        &self.damage
    }

    /// File size in bytes.
    #[must_use]
    pub fn file_len(&self) -> u64 {
        self.source.len()
    }

    /// Earliest and latest event time over the chunks of the index; `None` without chunks.
    ///
    /// What it guarantees, whatever the file holds: `start <= end`, and both lie within
    /// ±[`crate::format::MAX_TIME_NS`] (100 days) of session time 0, so `end - start` and
    /// midpoints cannot overflow and every time converts to `f64` exactly. A chunk whose header
    /// claims times outside that limit, an end before its start, or stream times outside
    /// its own range never enters the index (it is damage: [`Self::damage`], `verify`), and
    /// a chunk whose events lie outside its claimed range fails to read like any damaged
    /// chunk, so every event a player shows lies inside this range. It is the range the
    /// chunks claim: a crafted file can still claim up to the limit.
    #[must_use]
    pub fn time_range_ns(&self) -> Option<(i64, i64)> {
        let start = self.index.iter().map(|e| e.t_start_ns).min()?;
        let end = self.index.iter().map(|e| e.t_end_ns).max()?;
        Some((start, end))
    }

    /// Reads, checks and decompresses the payload of chunk `i` (an index position).
    ///
    /// # Errors
    /// If the read fails or the frame is damaged.
    pub fn read_chunk_payload(&mut self, i: usize) -> Result<Vec<u8>, LessonError> {
        self.read_payload(i, true)
    }

    /// Reads chunk `i`'s payload: all of it, or (`whole` false) only the part before the
    /// voice when the frame was written in parts (see `format::encode_frame_parts`).
    fn read_payload(&mut self, i: usize, whole: bool) -> Result<Vec<u8>, LessonError> {
        let Some(entry) = self.index.get(i) else {
            return Err(LessonError::InvalidArgument {
                path: self.path.clone(),
                reason: format!("no chunk at index position {i}"),
            });
        };
        let (offset, frame_len, seq) = (entry.offset, entry.frame_len, entry.seq);
        let decode_err = |source| LessonError::Decode {
            path: self.path.clone(),
            offset,
            source,
        };
        let len = usize::try_from(frame_len).map_err(|_| {
            decode_err(DecodeError::Invalid {
                offset: 0,
                what: "frame length",
            })
        })?;
        let bytes = self.source.read_at(offset, len).map_err(|e| {
            LessonError::io(
                &self.path,
                format!("reading chunk {seq} at byte {offset}"),
                e,
            )
        })?;
        let header = decode_frame_header(&bytes).map_err(decode_err)?;
        check_entry(entry, &header).map_err(decode_err)?;
        let body = bytes.get(header.header_len()..).unwrap_or_default();
        if whole {
            decode_frame_payload(&header, body).map_err(decode_err)
        } else {
            decode_frame_payload_first_part(&header, body).map_err(decode_err)
        }
    }

    /// Reads and decodes chunk `i` (an index position).
    ///
    /// # Errors
    /// If the read fails or the chunk is damaged.
    pub fn read_chunk(
        &mut self,
        i: usize,
        parts: DecodeParts,
    ) -> Result<DecodedChunk, LessonError> {
        let payload = self.read_payload(i, parts.voice)?;
        let (t_start, t_end, offset) = self
            .index
            .get(i)
            .map_or((0, 0, 0), |e| (e.t_start_ns, e.t_end_ns, e.offset));
        decode_payload(&payload, t_start, parts)
            .and_then(|chunk| chunk.check_times(t_start, t_end).map(|()| chunk))
            .map_err(|source| LessonError::Decode {
                path: self.path.clone(),
                offset,
                source,
            })
    }

    /// Reads every byte after the header and scans it.
    pub(crate) fn scan(&mut self) -> Result<ScanResult, LessonError> {
        let start = self.header.len as u64;
        let len = usize::try_from(self.source.len().saturating_sub(start)).unwrap_or(usize::MAX);
        let data = self
            .source
            .read_at(start, len)
            .map_err(|e| LessonError::io(&self.path, "reading for a scan", e))?;
        Ok(scan(&data, start))
    }

    /// The index from the footer, or why it cannot be used.
    fn read_footer(&mut self) -> Result<Vec<ChunkIndexEntry>, String> {
        let len = self.source.len();
        let header_end = self.header.len as u64;
        if len < header_end + TRAILER_LEN as u64 {
            return Err("no footer (the file ends too early)".to_owned());
        }
        let io = |e: std::io::Error| format!("reading the footer: {e}");
        let tail = self
            .source
            .read_at(len - TRAILER_LEN as u64, TRAILER_LEN)
            .map_err(io)?;
        let footer_offset = decode_trailer(&tail).ok_or_else(|| {
            "no footer (the recording was not finished, or the end is damaged)".to_owned()
        })?;
        let footer_end = len - TRAILER_LEN as u64;
        if footer_offset < header_end || footer_offset >= footer_end {
            return Err(format!("footer offset {footer_offset} is outside the file"));
        }
        let frame_len = usize::try_from(footer_end - footer_offset).unwrap_or(usize::MAX);
        if frame_len > MAX_FRAME_HEADER_LEN + MAX_STORED_LEN as usize + 4 {
            return Err(format!("footer claims {frame_len} bytes, over the limit"));
        }
        let bytes = self.source.read_at(footer_offset, frame_len).map_err(io)?;
        let problem = |e: DecodeError| format!("footer at byte {footer_offset}: {e}");
        let header = decode_frame_header(&bytes).map_err(problem)?;
        if header.kind != frame_kind::FOOTER || header.frame_len() != frame_len as u64 {
            return Err(format!(
                "footer at byte {footer_offset} is not a footer frame"
            ));
        }
        let payload = decode_frame_payload(
            &header,
            bytes.get(header.header_len()..).unwrap_or_default(),
        )
        .map_err(problem)?;
        let index = decode_index(&payload).map_err(problem)?;
        validate_index(&index, header_end, footer_offset)?;
        Ok(index)
    }
}

fn read_header(path: &Path, source: &mut Source) -> Result<FileHeader, LessonError> {
    let len = source.len();
    let io = |e| LessonError::io(path, "reading the header", e);
    let header_err = |source| LessonError::Header {
        path: path.to_path_buf(),
        source,
    };
    let first = usize::try_from(len.min(64 << 10)).unwrap_or(64 << 10);
    let bytes = source.read_at(0, first).map_err(io)?;
    match decode_file_header(&bytes) {
        Err(DecodeError::Truncated { .. }) if len > first as u64 => {
            let max = FILE_HEADER_FIXED_LEN + MAX_METADATA_LEN as usize + 4;
            let n = usize::try_from(len.min(max as u64)).unwrap_or(max);
            let bytes = source.read_at(0, n).map_err(io)?;
            decode_file_header(&bytes).map_err(header_err)
        }
        other => other.map_err(header_err),
    }
}

/// Entries must be in sequence order, inside the frame area, not overlapping, no larger
/// than the format allows, and claim possible times; a footer that breaks this is ignored
/// and the file scanned.
fn validate_index(index: &[ChunkIndexEntry], start: u64, end: u64) -> Result<(), String> {
    let max_frame = (MAX_FRAME_HEADER_LEN + MAX_STORED_LEN as usize + 4) as u64;
    let mut pos = start;
    let mut prev_seq: Option<u64> = None;
    for e in index {
        let frame_end = e.offset.checked_add(e.frame_len);
        let ok = e.offset >= pos
            && frame_end.is_some_and(|fe| fe <= end)
            && e.frame_len <= max_frame
            && prev_seq.is_none_or(|p| e.seq > p);
        if !ok {
            return Err(format!(
                "footer index entry for chunk {} is inconsistent",
                e.seq
            ));
        }
        e.check_times()
            .map_err(|err| format!("footer index entry for chunk {}: {err}", e.seq))?;
        pos = frame_end.unwrap_or(end);
        prev_seq = Some(e.seq);
    }
    Ok(())
}

/// The index implied by a scan: intact chunks by sequence number (first copy of a duplicate).
pub(crate) fn index_from_scan(scanned: &ScanResult) -> Vec<ChunkIndexEntry> {
    let mut index: Vec<ChunkIndexEntry> = scanned
        .chunks
        .iter()
        .map(|f| ChunkIndexEntry::from_frame(f.offset, &f.header))
        .collect();
    index.sort_by_key(|e| e.seq);
    index.dedup_by_key(|e| e.seq);
    index
}
