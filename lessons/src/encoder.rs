//! The sans-IO lesson encoder: events in, file bytes out.
//!
//! [`LessonEncoder`] decides where chunks end and which chunks carry keyframes, tracks the
//! state keyframes need, and returns each closed chunk as a complete frame for the caller to
//! write. The recorder's writer thread is a thin I/O loop around it; tests use it directly.

use crate::chunk::ChunkBuilder;
use crate::error::DecodeError;
use crate::event::{Event, Payload};
use crate::format::{
    encode_file_header, encode_frame, encode_frame_parts, encode_index, encode_trailer, frame_kind,
    ChunkIndexEntry, Compression, FrameHeader, LessonHeader, FLAG_KEYFRAME, MAX_TIME_NS,
};
use crate::state::Keyframe;

/// Tuning of chunking, keyframes and compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// A chunk closes when an event arrives this long after the chunk's first event. The
    /// recorder also closes chunks by wall-clock time, so a crash loses at most this much.
    pub chunk_max_duration_ns: i64,
    /// A chunk opened this long after the last keyframe starts with a keyframe.
    pub keyframe_interval_ns: i64,
    /// A chunk also closes after this many events (bounds memory and chunk size).
    pub chunk_max_events: usize,
    /// Compression of chunk payloads.
    pub compression: Compression,
    /// zstd level (low levels are fast enough to run every second without noticing).
    pub zstd_level: i32,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            chunk_max_duration_ns: 1_000_000_000,
            keyframe_interval_ns: 2_000_000_000,
            chunk_max_events: 65_536,
            compression: Compression::Zstd,
            zstd_level: 3,
        }
    }
}

/// Largest single event the encoder accepts (an audio packet, a note). Bigger ones are
/// refused, so that one event can never make a chunk unreadable by the format's limits.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Largest compressed label map the encoder accepts (1.2). A map gets a chunk of its own, so
/// this plus the chunk's keyframe stays under the format's 16 MiB stored frame.
pub const MAX_LABEL_MAP_BYTES: usize = 12 << 20;

/// Largest compressed board image the encoder accepts (1.3), for the same reason: an image
/// gets a chunk of its own. [`crate::event::ImageBlob::encode`] refuses a larger one already,
/// so the loader can downsample instead of the recorder dropping it.
pub const MAX_IMAGE_BYTES: usize = 12 << 20;

/// Why the encoder refused something.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Compression failed or a chunk exceeded the format's limits.
    #[error("encoding chunk {seq}")]
    Chunk {
        /// The chunk.
        seq: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The header metadata could not be encoded.
    #[error("header metadata")]
    Header(#[from] serde_json::Error),
}

/// Encodes a lesson incrementally; see the module docs.
#[derive(Debug)]
pub struct LessonEncoder {
    options: EncoderOptions,
    /// The state the next keyframe will store, updated by every pushed event.
    keyframe: Keyframe,
    open: Option<ChunkBuilder>,
    open_seq: u64,
    open_first_ns: i64,
    next_seq: u64,
    last_keyframe_ns: Option<i64>,
    offset: u64,
    index: Vec<ChunkIndexEntry>,
    oversized_events: u64,
    out_of_range_events: u64,
    /// The open chunk holds a label map or an image: it gets no other event.
    open_holds_blob: bool,
    /// Label maps already in the file: each is stored once, however often it is shown.
    label_maps: std::collections::HashSet<crate::event::LabelMapHash>,
    /// Board images already in the file (1.3): each is stored once.
    images: std::collections::HashSet<crate::event::ImageHash>,
}

/// A large blob (label map, board image) stored once per lesson, by its hash.
#[derive(Clone, Copy)]
enum Blob {
    LabelMap(crate::event::LabelMapHash),
    Image(crate::event::ImageHash),
}

impl LessonEncoder {
    /// A new encoder and the file header bytes to write first.
    ///
    /// # Errors
    /// If the header metadata cannot be encoded.
    pub fn new(
        header: &LessonHeader,
        options: EncoderOptions,
    ) -> Result<(Self, Vec<u8>), EncodeError> {
        let bytes = encode_file_header(header, options.compression)?;
        let enc = Self {
            options,
            keyframe: Keyframe::default(),
            open: None,
            open_seq: 0,
            open_first_ns: 0,
            next_seq: 0,
            last_keyframe_ns: None,
            offset: bytes.len() as u64,
            index: Vec::new(),
            oversized_events: 0,
            out_of_range_events: 0,
            open_holds_blob: false,
            label_maps: std::collections::HashSet::new(),
            images: std::collections::HashSet::new(),
        };
        Ok((enc, bytes))
    }

    /// Whether a chunk is open (has events not yet returned as a frame).
    #[must_use]
    pub fn has_open_chunk(&self) -> bool {
        self.open.is_some()
    }

    /// The index of the chunks returned so far.
    #[must_use]
    pub fn index(&self) -> &[ChunkIndexEntry] {
        &self.index
    }

    /// Bytes returned so far (header and frames).
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Events refused for being larger than [`MAX_EVENT_BYTES`].
    #[must_use]
    pub fn oversized_events(&self) -> u64 {
        self.oversized_events
    }

    /// Events refused for a time outside ±[`MAX_TIME_NS`] (readers would call their chunk
    /// damaged).
    #[must_use]
    pub fn out_of_range_events(&self) -> u64 {
        self.out_of_range_events
    }

    /// Adds an event. Returns the frame of the previous chunk if this event closed it.
    ///
    /// Events larger than [`MAX_EVENT_BYTES`] or timed outside ±[`MAX_TIME_NS`] are refused
    /// and counted ([`Self::oversized_events`], [`Self::out_of_range_events`]), so that no
    /// event can make a chunk unreadable.
    ///
    /// # Errors
    /// If encoding the closed chunk fails.
    pub fn push(&mut self, event: Event) -> Result<Option<Vec<u8>>, EncodeError> {
        let blob = match &event.payload {
            Payload::LabelMap(map) => Some(Blob::LabelMap(map.hash)),
            Payload::Image(image) => Some(Blob::Image(image.hash)),
            _ => None,
        };
        let limit = match blob {
            Some(Blob::LabelMap(_)) => MAX_LABEL_MAP_BYTES,
            Some(Blob::Image(_)) => MAX_IMAGE_BYTES,
            None => MAX_EVENT_BYTES,
        };
        if approx_size(&event) > limit {
            self.oversized_events += 1;
            return Ok(None);
        }
        if !(-MAX_TIME_NS..=MAX_TIME_NS).contains(&event.time_ns) {
            self.out_of_range_events += 1;
            return Ok(None);
        }
        let new = match blob {
            Some(Blob::LabelMap(hash)) => self.label_maps.insert(hash),
            Some(Blob::Image(hash)) => self.images.insert(hash),
            None => true,
        };
        if !new {
            // Stored already; the scene change that shows it again is enough.
            return Ok(None);
        }
        let mut closed = None;
        if let Some(open) = &self.open {
            let too_long = event.time_ns.saturating_sub(self.open_first_ns)
                >= self.options.chunk_max_duration_ns;
            // A label map or an image (megabytes) gets a chunk of its own, so that no chunk can
            // pass the format's frame limit and scrubbing through motion never decompresses
            // one.
            let alone = blob.is_some() || self.open_holds_blob;
            if too_long || alone || open.event_count() >= self.options.chunk_max_events {
                closed = self.close_chunk()?;
            }
        }
        if self.open.is_none() {
            let keyframe_due = self.last_keyframe_ns.is_none_or(|k| {
                event.time_ns.saturating_sub(k) >= self.options.keyframe_interval_ns
            });
            let keyframe = if keyframe_due {
                self.last_keyframe_ns = Some(event.time_ns);
                Some(self.keyframe.clone())
            } else {
                None
            };
            self.open = Some(ChunkBuilder::new(keyframe));
            self.open_holds_blob = blob.is_some();
            self.open_seq = self.next_seq;
            self.next_seq += 1;
            self.open_first_ns = event.time_ns;
        }
        self.keyframe.apply(&event, self.open_seq);
        if let Some(open) = &mut self.open {
            open.push(event);
        }
        Ok(closed)
    }

    /// Closes the open chunk, if any, and returns its frame.
    ///
    /// # Errors
    /// If compression fails or the chunk exceeds the format's limits.
    pub fn close_chunk(&mut self) -> Result<Option<Vec<u8>>, EncodeError> {
        let Some(builder) = self.open.take() else {
            return Ok(None);
        };
        let Some(payload) = builder.encode() else {
            return Ok(None);
        };
        let seq = self.open_seq;
        let flags = if payload.keyframe { FLAG_KEYFRAME } else { 0 };
        let (motion, voice) = payload
            .bytes
            .split_at(payload.voice_start.min(payload.bytes.len()));
        let frame = encode_frame_parts(
            frame_kind::CHUNK,
            flags,
            seq,
            payload.t_start_ns,
            payload.t_end_ns,
            &payload.streams,
            &[motion, voice],
            self.options.compression,
            self.options.zstd_level,
        )
        .map_err(|source| EncodeError::Chunk { seq, source })?;
        self.index.push(ChunkIndexEntry {
            seq,
            offset: self.offset,
            frame_len: frame.len() as u64,
            keyframe: payload.keyframe,
            t_start_ns: payload.t_start_ns,
            t_end_ns: payload.t_end_ns,
            streams: payload.streams,
        });
        self.offset += frame.len() as u64;
        Ok(Some(frame))
    }

    /// Closes the open chunk and returns the remaining bytes: that chunk, the footer index
    /// and the trailer. Nothing may be pushed after this.
    ///
    /// # Errors
    /// If encoding fails.
    pub fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        let before = self.offset;
        let mut out = self.close_chunk()?.unwrap_or_default();
        let footer_offset = self.offset;
        out.extend(encode_footer(&self.index, self.options).map_err(|source| {
            EncodeError::Chunk {
                seq: self.next_seq,
                source,
            }
        })?);
        out.extend(encode_trailer(footer_offset));
        self.offset += out.len() as u64 - (footer_offset - before);
        Ok(out)
    }
}

/// Encodes the footer frame for `index` (without the trailer).
///
/// # Errors
/// If compression fails.
pub fn encode_footer(
    index: &[ChunkIndexEntry],
    options: EncoderOptions,
) -> std::io::Result<Vec<u8>> {
    let t_start = index.iter().map(|e| e.t_start_ns).min().unwrap_or(0);
    let t_end = index.iter().map(|e| e.t_end_ns).max().unwrap_or(0);
    encode_frame(
        frame_kind::FOOTER,
        0,
        index.len() as u64,
        t_start,
        t_end,
        &[],
        &encode_index(index),
        options.compression,
        options.zstd_level,
    )
}

fn approx_size(event: &Event) -> usize {
    match &event.payload {
        Payload::Audio(a) => a.data.len(),
        Payload::Voice(v) => v.data.len() + 8,
        Payload::Note(n) => n.text.len(),
        Payload::Chapter(c) => c.title.len(),
        Payload::Viewpoint(v) => v.name.len(),
        Payload::Scene(crate::event::SceneChange::TransferCurve { points }) => points.len() * 20,
        Payload::Scene(crate::event::SceneChange::Preset { name }) => name.len(),
        Payload::StrokeErase { stroke_ids } => stroke_ids.len() * 5,
        Payload::LabelMap(map) => map.zstd.len() + 64,
        Payload::Image(image) => image.zstd.len() + 64,
        Payload::Scene(crate::event::SceneChange::BoardShow { title, .. }) => title.len() + 64,
        _ => 64,
    }
}

/// Checks that a decoded frame header is what an index entry promised (times included: the
/// player places chunks by the index's times, and decodes them from the header's).
pub(crate) fn check_entry(
    entry: &ChunkIndexEntry,
    header: &FrameHeader,
) -> Result<(), DecodeError> {
    if header.seq != entry.seq
        || header.frame_len() != entry.frame_len
        || header.kind != frame_kind::CHUNK
        || header.is_keyframe() != entry.keyframe
        || header.t_start_ns != entry.t_start_ns
        || header.t_end_ns != entry.t_end_ns
        || header.streams != entry.streams
    {
        return Err(DecodeError::Invalid {
            offset: 0,
            what: "frame that does not match its index entry",
        });
    }
    Ok(())
}
