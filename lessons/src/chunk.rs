//! The chunk payload codec (sans-IO): events in, bytes out, and back.
//!
//! A chunk payload (before zstd) is a sequence of records, each `type: u8`, `len: varint`,
//! `body: [u8; len]`. A reader skips a record whose type it does not know, which is how newer
//! writers add record types without breaking older readers.
//!
//! High-rate streams (head, hands, controllers) are stored as one *block* record per stream
//! (per hand) per chunk, laid out in columns: all times, then each coordinate of each joint
//! over all samples. Columns of small deltas are what zstd compresses best. Every chunk is
//! decodable on its own: deltas restart at each chunk, so a lost chunk loses only itself.

use std::collections::HashMap;

use glam::{Vec2, Vec3};

use crate::error::DecodeError;
use crate::event::{
    AudioPacket, Brush, Chapter, ClipPlane, ControllerSample, ControllerState, CropBox, Event,
    Gesture, GestureKind, HandJoint, HandJoints, HandSample, Handedness, ImageBlob, ImageHash,
    LabelMapBlob, Measurement, Note, Payload, PixelFormat, PixelSpacing, Pose, SceneChange, Space,
    StreamId, StrokeBegin, StrokePoint, StrokeStyle, TransferPoint, Viewpoint, VoiceFormat,
    VoicePacket, VoiceSync, HAND_JOINT_COUNT, MAX_BOARD_TITLE_BYTES, MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE, WRIST_JOINT,
};
use crate::format::{check_time, MAX_TIME_NS};
use crate::quant::{
    dequantise_position, dequantise_quat, dequantise_quat_smallest3, dequantise_scalar,
    dequantise_unit, quantise_position, quantise_quat, quantise_quat_smallest3, quantise_scalar,
    quantise_unit, ANALOG_SCALE, HAND_POSITION_STEP_MM, HAND_QUAT_SCALE, POSE_POSITION_STEP_MM,
    POSE_QUAT_SCALE, PRESSURE_SCALE, RADIUS_STEP_MM, STROKE_POSITION_STEP_MM,
};
use crate::state::{Keyframe, KeyframeStroke};
use crate::wire::{ByteReader, ByteWriter};

/// Record types inside a chunk payload. Stable forever: new types get new numbers.
pub(crate) mod record {
    pub const KEYFRAME: u8 = 0x01;
    pub const HEAD_BLOCK: u8 = 0x10;
    pub const HAND_BLOCK: u8 = 0x11;
    pub const CONTROLLER_BLOCK: u8 = 0x12;
    pub const GESTURE: u8 = 0x20;
    pub const STROKE_BEGIN: u8 = 0x30;
    pub const STROKE_POINTS: u8 = 0x31;
    pub const STROKE_END: u8 = 0x32;
    pub const STROKE_ERASE: u8 = 0x33;
    pub const STROKE_UNDO: u8 = 0x34;
    /// 1.3: a stroke begin in a space without a 1.0 code (a board).
    pub const STROKE_BEGIN_1_3: u8 = 0x35;
    pub const SCENE: u8 = 0x40;
    pub const LABEL_MAP: u8 = 0x41;
    /// 1.3: a board image.
    pub const IMAGE: u8 = 0x42;
    pub const CHAPTER: u8 = 0x50;
    pub const VIEWPOINT: u8 = 0x51;
    pub const NOTE: u8 = 0x52;
    /// 1.3: a viewpoint in a space without a 1.0 code (a board).
    pub const VIEWPOINT_1_3: u8 = 0x53;
    pub const AUDIO: u8 = 0x60;
    pub const VOICE_BLOCK: u8 = 0x61;
    pub const VOICE_SYNC: u8 = 0x62;
}

/// The most input samples one voice packet may cover: 120 ms at 48 kHz, Opus's longest.
pub const MAX_VOICE_PACKET_SAMPLES: u16 = 5760;

/// Sample indices stay below this (2⁴⁸, about 185 years at 48 kHz), so index arithmetic
/// never overflows.
pub const MAX_VOICE_SAMPLE_INDEX: u64 = 1 << 48;

/// Highest voice sample rate a reader accepts.
const MAX_VOICE_SAMPLE_RATE_HZ: u32 = 384_000;

/// Hand joints in the order their columns are written: the wrist first, because every other
/// joint is predicted from the wrist's motion.
const HAND_JOINT_ORDER: [usize; HAND_JOINT_COUNT] = {
    let mut order = [0usize; HAND_JOINT_COUNT];
    order[0] = WRIST_JOINT;
    let mut i = 1;
    let mut j = 0;
    while j < HAND_JOINT_COUNT {
        if j != WRIST_JOINT {
            order[i] = j;
            i += 1;
        }
        j += 1;
    }
    order
};

/// Varints per active hand sample (3 position + 4 orientation + 1 radius per joint); each
/// takes at least one byte, which bounds allocation by the bytes actually present.
const HAND_VALUES_PER_SAMPLE: usize = HAND_JOINT_COUNT * 8;

/// Varints per active controller sample.
const CONTROLLER_VALUES_PER_SAMPLE: usize = 2 * 7 + 5;

/// Per-stream statistics of one chunk, stored in the chunk's frame header and in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamSummary {
    /// Stream code ([`StreamId`] as u8; kept raw so unknown streams survive a recover).
    pub stream: u8,
    /// Number of events (samples) of this stream in the chunk.
    pub event_count: u32,
    /// Earliest event time.
    pub t_min_ns: i64,
    /// Latest event time.
    pub t_max_ns: i64,
    /// Bytes of this stream's records before compression.
    pub encoded_bytes: u32,
}

impl StreamSummary {
    /// The stream, if this build knows it.
    #[must_use]
    pub fn stream_id(&self) -> Option<StreamId> {
        StreamId::from_code(self.stream)
    }
}

/// Discrete (non-sampled) items of a chunk in arrival order; stroke points are grouped per
/// stroke at the position of that stroke's first point in the chunk.
#[derive(Debug, Clone)]
enum Discrete {
    Event(Event),
    Points {
        stroke_id: u32,
        points: Vec<(i64, Vec3, f32)>,
    },
}

type Samples<T> = Vec<(i64, Option<T>)>;

/// Collects the events of one chunk and encodes them (sans-IO).
#[derive(Debug, Clone, Default)]
pub struct ChunkBuilder {
    keyframe: Option<Keyframe>,
    head: Vec<(i64, Pose)>,
    hands: [Samples<HandJoints>; 2],
    controllers: [Samples<ControllerState>; 2],
    voice: Vec<(i64, VoicePacket)>,
    discrete: Vec<Discrete>,
    open_points: HashMap<u32, usize>,
    t_range: Option<(i64, i64)>,
    event_count: usize,
}

/// An encoded chunk payload and what is in it.
#[derive(Debug, Clone)]
pub struct EncodedPayload {
    /// The uncompressed payload bytes.
    pub bytes: Vec<u8>,
    /// Earliest event time (the base all record times are relative to).
    pub t_start_ns: i64,
    /// Latest event time.
    pub t_end_ns: i64,
    /// Per-stream statistics.
    pub streams: Vec<StreamSummary>,
    /// Whether the payload starts with a keyframe.
    pub keyframe: bool,
    /// Where the voice blocks start (they come last; `bytes.len()` without voice). The frame
    /// compresses the parts before and after as two zstd frames: coded speech does not
    /// compress and would spoil the entropy tables of the motion columns sharing its block,
    /// and a reader that needs no voice decompresses the first part only.
    pub voice_start: usize,
}

impl ChunkBuilder {
    /// An empty chunk; `keyframe` is the state at its start if it is a keyframe chunk.
    #[must_use]
    pub fn new(keyframe: Option<Keyframe>) -> Self {
        Self {
            keyframe,
            ..Self::default()
        }
    }

    /// Number of events pushed.
    #[must_use]
    pub fn event_count(&self) -> usize {
        self.event_count
    }

    /// Whether nothing has been pushed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.event_count == 0
    }

    /// Earliest and latest event times so far.
    #[must_use]
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.t_range
    }

    /// Adds one event.
    pub fn push(&mut self, event: Event) {
        let t = event.time_ns;
        self.t_range = Some(match self.t_range {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
        self.event_count += 1;
        match event.payload {
            Payload::Head(pose) => self.head.push((t, pose)),
            Payload::Hand(sample) => self.hands[sample.hand.index()].push((t, sample.joints)),
            Payload::Controller(c) => self.controllers[c.hand.index()].push((t, c.state)),
            Payload::Voice(packet) => self.voice.push((t, packet)),
            Payload::StrokePoint(p) => {
                if let Some(&i) = self.open_points.get(&p.stroke_id) {
                    if let Some(Discrete::Points { points, .. }) = self.discrete.get_mut(i) {
                        points.push((t, p.position_mm, p.pressure));
                    }
                } else {
                    self.open_points.insert(p.stroke_id, self.discrete.len());
                    self.discrete.push(Discrete::Points {
                        stroke_id: p.stroke_id,
                        points: vec![(t, p.position_mm, p.pressure)],
                    });
                }
            }
            payload => self.discrete.push(Discrete::Event(Event::new(t, payload))),
        }
    }

    /// Encodes the chunk payload (uncompressed). `None` for an empty chunk.
    #[must_use]
    pub fn encode(&self) -> Option<EncodedPayload> {
        let (t0, t1) = self.t_range?;
        let mut out = ByteWriter::new();
        let mut stats: Vec<StreamSummary> = Vec::new();
        let mut note = |stream: StreamId, count: usize, t_min: i64, t_max: i64, bytes: usize| {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
            if let Some(s) = stats.iter_mut().find(|s| s.stream == stream as u8) {
                s.event_count = s.event_count.saturating_add(count);
                s.t_min_ns = s.t_min_ns.min(t_min);
                s.t_max_ns = s.t_max_ns.max(t_max);
                s.encoded_bytes = s.encoded_bytes.saturating_add(bytes);
            } else {
                stats.push(StreamSummary {
                    stream: stream as u8,
                    event_count: count,
                    t_min_ns: t_min,
                    t_max_ns: t_max,
                    encoded_bytes: bytes,
                });
            }
        };
        let put = |out: &mut ByteWriter, ty: u8, body: &[u8]| {
            let before = out.len();
            out.record(ty, body);
            out.len() - before
        };

        if let Some(kf) = &self.keyframe {
            let n = put(&mut out, record::KEYFRAME, &encode_keyframe(kf));
            note(StreamId::Keyframe, 1, t0, t0, n);
        }
        if let (Some(first), Some(last)) = (self.head.first(), self.head.last()) {
            let n = put(
                &mut out,
                record::HEAD_BLOCK,
                &encode_head_block(&self.head, t0),
            );
            note(StreamId::Head, self.head.len(), first.0, last.0, n);
        }
        for hand in Handedness::BOTH {
            let samples = &self.hands[hand.index()];
            if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                let body = encode_hand_block(hand, samples, t0);
                let n = put(&mut out, record::HAND_BLOCK, &body);
                note(StreamId::Hands, samples.len(), first.0, last.0, n);
            }
        }
        for hand in Handedness::BOTH {
            let samples = &self.controllers[hand.index()];
            if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                let body = encode_controller_block(hand, samples, t0);
                let n = put(&mut out, record::CONTROLLER_BLOCK, &body);
                note(StreamId::Controllers, samples.len(), first.0, last.0, n);
            }
        }
        for item in &self.discrete {
            match item {
                Discrete::Event(e) => {
                    let (ty, body) = encode_discrete(e, t0);
                    let n = put(&mut out, ty, &body);
                    note(e.stream(), 1, e.time_ns, e.time_ns, n);
                }
                Discrete::Points { stroke_id, points } => {
                    let body = encode_stroke_points(*stroke_id, points, t0);
                    let n = put(&mut out, record::STROKE_POINTS, &body);
                    let t_min = points.iter().map(|p| p.0).min().unwrap_or(t0);
                    let t_max = points.iter().map(|p| p.0).max().unwrap_or(t0);
                    note(StreamId::Strokes, points.len(), t_min, t_max, n);
                }
            }
        }
        // Voice last: the frame compresses it separately (see `EncodedPayload::voice_start`).
        let voice_start = out.len();
        // Consecutive packets of one format share a block.
        for block in self.voice.chunk_by(|a, b| a.1.format == b.1.format) {
            if let (Some(first), Some(last)) = (block.first(), block.last()) {
                let n = put(
                    &mut out,
                    record::VOICE_BLOCK,
                    &encode_voice_block(block, t0),
                );
                let t_min = block.iter().map(|p| p.0).min().unwrap_or(first.0);
                let t_max = block.iter().map(|p| p.0).max().unwrap_or(last.0);
                note(StreamId::Audio, block.len(), t_min, t_max, n);
            }
        }
        stats.sort_by_key(|s| s.stream);
        Some(EncodedPayload {
            voice_start,
            bytes: out.into_inner(),
            t_start_ns: t0,
            t_end_ns: t1,
            streams: stats,
            keyframe: self.keyframe.is_some(),
        })
    }
}

/// Which parts of a chunk to decode. Skipping the sampled blocks makes replaying scene and
/// stroke events over several chunks cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeParts {
    /// Decode head, hand and controller blocks.
    pub samples: bool,
    /// Decode voice blocks.
    pub voice: bool,
}

impl DecodeParts {
    /// Everything.
    pub const ALL: Self = Self {
        samples: true,
        voice: true,
    };
    /// Keyframe and discrete events only (voice sync points included: they are small).
    pub const EVENTS: Self = Self {
        samples: false,
        voice: false,
    };
    /// Discrete events and the voice packets: what narration playback reads.
    pub const VOICE: Self = Self {
        samples: false,
        voice: true,
    };
}

/// A decoded chunk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedChunk {
    /// The keyframe at the chunk's start, if it is a keyframe chunk.
    pub keyframe: Option<Keyframe>,
    /// Head samples, in time order.
    pub head: Vec<(i64, Pose)>,
    /// Hand samples per hand (left, right); `None` joints when not tracked.
    pub hands: [Vec<(i64, Option<HandJoints>)>; 2],
    /// Controller samples per hand.
    pub controllers: [Vec<(i64, Option<ControllerState>)>; 2],
    /// Voice packets, in the order recorded (sample order).
    pub voice: Vec<(i64, VoicePacket)>,
    /// Every other event (gestures, strokes including points, scene, marks, audio), sorted
    /// by time (stable, so same-time events keep their recorded order).
    pub events: Vec<Event>,
    /// Records of types this build does not know, skipped.
    pub unknown_records: u32,
}

impl DecodedChunk {
    /// Checks that every decoded event time lies in the chunk's claimed range
    /// `t_start_ns..=t_end_ns` (from its frame header or index entry), and that the
    /// keyframe's stroke begin times are within ±[`crate::format::MAX_TIME_NS`].
    ///
    /// [`decode_payload`] decodes any time a record holds; file-level readers call this so
    /// that an event outside its chunk (crafted, or a broken writer) makes the chunk damaged
    /// instead of reaching the player's arithmetic.
    ///
    /// # Errors
    /// [`DecodeError::TimeOutOfRange`] for the first time out of range.
    pub fn check_times(&self, t_start_ns: i64, t_end_ns: i64) -> Result<(), DecodeError> {
        let check = |what, t| check_time(what, t, t_start_ns, t_end_ns);
        for (t, _) in &self.head {
            check("head sample time", *t)?;
        }
        for (t, _) in self.hands.iter().flatten() {
            check("hand sample time", *t)?;
        }
        for (t, _) in self.controllers.iter().flatten() {
            check("controller sample time", *t)?;
        }
        for (t, _) in &self.voice {
            check("voice packet time", *t)?;
        }
        for e in &self.events {
            check("event time", e.time_ns)?;
        }
        if let Some(kf) = &self.keyframe {
            for s in kf.strokes.values() {
                check_time(
                    "keyframe stroke begin time",
                    s.begin_time_ns,
                    -MAX_TIME_NS,
                    MAX_TIME_NS,
                )?;
            }
        }
        Ok(())
    }

    /// All events, sampled ones included, sorted by time.
    #[must_use]
    pub fn into_events(self) -> Vec<Event> {
        let mut all = self.events;
        all.extend(
            self.voice
                .into_iter()
                .map(|(t, p)| Event::new(t, Payload::Voice(p))),
        );
        all.extend(
            self.head
                .into_iter()
                .map(|(t, p)| Event::new(t, Payload::Head(p))),
        );
        for hand in Handedness::BOTH {
            for (t, joints) in &self.hands[hand.index()] {
                all.push(Event::new(
                    *t,
                    Payload::Hand(Box::new(HandSample {
                        hand,
                        joints: *joints,
                    })),
                ));
            }
            for (t, state) in &self.controllers[hand.index()] {
                all.push(Event::new(
                    *t,
                    Payload::Controller(ControllerSample {
                        hand,
                        state: *state,
                    }),
                ));
            }
        }
        all.sort_by_key(|e| e.time_ns);
        all
    }
}

/// Decodes a chunk payload (uncompressed). `t_start_ns` is the chunk's base time from its
/// frame header.
///
/// # Errors
/// A [`DecodeError`] if a record is truncated or malformed. Unknown record types are skipped
/// and counted, not errors.
pub fn decode_payload(
    payload: &[u8],
    t_start_ns: i64,
    parts: DecodeParts,
) -> Result<DecodedChunk, DecodeError> {
    let mut r = ByteReader::new(payload);
    let mut chunk = DecodedChunk::default();
    while !r.is_empty() {
        let ty = r.u8("record type")?;
        let body_start = r.pos();
        let body = r.blob("record body")?;
        let mut b = ByteReader::new(body);
        let located = |e: DecodeError| offset_error(e, body_start);
        match ty {
            record::KEYFRAME => chunk.keyframe = Some(decode_keyframe(&mut b).map_err(located)?),
            record::HEAD_BLOCK if parts.samples => {
                chunk.head = decode_head_block(&mut b, t_start_ns).map_err(located)?;
            }
            record::HAND_BLOCK if parts.samples => {
                let (hand, samples) = decode_hand_block(&mut b, t_start_ns).map_err(located)?;
                chunk.hands[hand.index()] = samples;
            }
            record::CONTROLLER_BLOCK if parts.samples => {
                let (hand, samples) =
                    decode_controller_block(&mut b, t_start_ns).map_err(located)?;
                chunk.controllers[hand.index()] = samples;
            }
            record::VOICE_BLOCK if parts.voice => {
                decode_voice_block(&mut b, t_start_ns, &mut chunk.voice).map_err(located)?;
            }
            record::HEAD_BLOCK
            | record::HAND_BLOCK
            | record::CONTROLLER_BLOCK
            | record::VOICE_BLOCK => {}
            record::STROKE_POINTS => {
                decode_stroke_points(&mut b, t_start_ns, &mut chunk.events).map_err(located)?;
            }
            _ => match decode_discrete(ty, &mut b, t_start_ns).map_err(located)? {
                Some(e) => chunk.events.push(e),
                None => chunk.unknown_records += 1,
            },
        }
    }
    chunk.events.sort_by_key(|e| e.time_ns);
    Ok(chunk)
}

/// Shifts an error's offset from record-relative to payload-relative.
fn offset_error(e: DecodeError, base: usize) -> DecodeError {
    match e {
        DecodeError::Truncated { offset, what } => DecodeError::Truncated {
            offset: offset + base,
            what,
        },
        DecodeError::Invalid { offset, what } => DecodeError::Invalid {
            offset: offset + base,
            what,
        },
        DecodeError::VarintOverflow { offset } => DecodeError::VarintOverflow {
            offset: offset + base,
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Small values

fn write_pose_exact(w: &mut ByteWriter, p: &Pose) {
    for v in p.position_mm.to_array() {
        w.f32_le(v);
    }
    for v in p.orientation.to_array() {
        w.f32_le(v);
    }
}

fn read_pose_exact(r: &mut ByteReader) -> Result<Pose, DecodeError> {
    let mut a = [0f32; 7];
    for v in &mut a {
        *v = r.f32_le("pose")?;
    }
    Ok(Pose {
        position_mm: Vec3::new(a[0], a[1], a[2]),
        orientation: glam::Quat::from_xyzw(a[3], a[4], a[5], a[6]),
    })
}

fn write_vec3(w: &mut ByteWriter, v: Vec3) {
    for c in v.to_array() {
        w.f32_le(c);
    }
}

fn read_vec3(r: &mut ByteReader, what: &'static str) -> Result<Vec3, DecodeError> {
    Ok(Vec3::new(r.f32_le(what)?, r.f32_le(what)?, r.f32_le(what)?))
}

fn hand_code(h: Handedness) -> u8 {
    match h {
        Handedness::Left => 0,
        Handedness::Right => 1,
    }
}

fn read_hand(r: &mut ByteReader) -> Result<Handedness, DecodeError> {
    let offset = r.pos();
    match r.u8("hand")? {
        0 => Ok(Handedness::Left),
        1 => Ok(Handedness::Right),
        _ => Err(DecodeError::Invalid {
            offset,
            what: "hand",
        }),
    }
}

/// The space's code in records of 1.0 types; `None` for a board (1.3). A 1.2 reader calls a
/// space code it does not know invalid (and the chunk damaged), so a board space goes into
/// records of 1.3 types only, which older readers skip.
fn legacy_space_code(s: Space) -> Option<u8> {
    match s {
        Space::Stage => Some(SPACE_STAGE),
        Space::Patient => Some(SPACE_PATIENT),
        Space::Board(_) => None,
    }
}

const SPACE_STAGE: u8 = 0;
const SPACE_PATIENT: u8 = 1;
const SPACE_BOARD: u8 = 2;

/// The 1.3 space coding: the code, then for a board its id (varint).
fn write_space(w: &mut ByteWriter, s: Space) {
    match s {
        Space::Stage => w.u8(SPACE_STAGE),
        Space::Patient => w.u8(SPACE_PATIENT),
        Space::Board(id) => {
            w.u8(SPACE_BOARD);
            w.varint(u64::from(id));
        }
    }
}

/// Reads the 1.3 space coding; `None` for a space code this build does not know (a newer
/// writer's), whose fields cannot be read: the caller skips what holds it.
fn read_space_1_3(r: &mut ByteReader) -> Result<Option<Space>, DecodeError> {
    Ok(match r.u8("space")? {
        SPACE_STAGE => Some(Space::Stage),
        SPACE_PATIENT => Some(Space::Patient),
        SPACE_BOARD => Some(Space::Board(r.varint_u32("board id")?)),
        _ => None,
    })
}

/// Reads a 1.0 space code (stroke begin `0x30`, viewpoint `0x51`, keyframe stroke list).
fn read_space(r: &mut ByteReader) -> Result<Space, DecodeError> {
    let offset = r.pos();
    match r.u8("space")? {
        0 => Ok(Space::Stage),
        1 => Ok(Space::Patient),
        _ => Err(DecodeError::Invalid {
            offset,
            what: "space",
        }),
    }
}

fn read_bool(r: &mut ByteReader, what: &'static str) -> Result<bool, DecodeError> {
    let offset = r.pos();
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid { offset, what }),
    }
}

fn gesture_code(k: GestureKind) -> u8 {
    match k {
        GestureKind::Pinch => 0,
        GestureKind::Grab => 1,
        GestureKind::Point => 2,
        GestureKind::Release => 3,
        GestureKind::Other(c) => c,
    }
}

fn gesture_from_code(c: u8) -> GestureKind {
    match c {
        0 => GestureKind::Pinch,
        1 => GestureKind::Grab,
        2 => GestureKind::Point,
        3 => GestureKind::Release,
        c => GestureKind::Other(c),
    }
}

fn brush_code(b: Brush) -> u8 {
    match b {
        Brush::Pen => 0,
        Brush::Marker => 1,
        Brush::Highlighter => 2,
        Brush::Other(c) => c,
    }
}

fn brush_from_code(c: u8) -> Brush {
    match c {
        0 => Brush::Pen,
        1 => Brush::Marker,
        2 => Brush::Highlighter,
        c => Brush::Other(c),
    }
}

/// Writes a stroke begin and returns the record type that holds it: [`record::STROKE_BEGIN`]
/// with a 1.0 space code, or [`record::STROKE_BEGIN_1_3`] with the 1.3 space coding for a
/// board (same layout otherwise).
fn write_stroke_begin(w: &mut ByteWriter, b: &StrokeBegin) -> u8 {
    w.varint(u64::from(b.stroke_id));
    let ty = if let Some(code) = legacy_space_code(b.space) {
        w.u8(code);
        record::STROKE_BEGIN
    } else {
        write_space(w, b.space);
        record::STROKE_BEGIN_1_3
    };
    w.bytes(&b.style.colour_rgba);
    w.f32_le(b.style.width_mm);
    w.u8(brush_code(b.style.brush));
    ty
}

/// Reads a stroke begin of record type `ty` (its space coding); `None` for a space this
/// build does not know.
fn read_stroke_begin(r: &mut ByteReader, ty: u8) -> Result<Option<StrokeBegin>, DecodeError> {
    let stroke_id = r.varint_u32("stroke id")?;
    let space = if ty == record::STROKE_BEGIN_1_3 {
        match read_space_1_3(r)? {
            Some(space) => space,
            None => return Ok(None),
        }
    } else {
        read_space(r)?
    };
    let c = r.take(4, "stroke colour")?;
    let colour_rgba = [c[0], c[1], c[2], c[3]];
    let width_mm = r.f32_le("stroke width")?;
    let brush = brush_from_code(r.u8("brush")?);
    Ok(Some(StrokeBegin {
        stroke_id,
        space,
        style: StrokeStyle {
            colour_rgba,
            width_mm,
            brush,
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// Scene changes and keyframes

mod scene_tag {
    pub const PRESET: u8 = 1;
    pub const TRANSFER_CURVE: u8 = 2;
    pub const WINDOW_LEVEL: u8 = 3;
    pub const LABEL_VISIBILITY: u8 = 4;
    pub const LABEL_COLOUR: u8 = 5;
    pub const LABEL_OPACITY: u8 = 6;
    pub const CLIP_PLANE: u8 = 7;
    pub const CROP_BOX: u8 = 8;
    pub const TWIN_POSE: u8 = 9;
    pub const MPR_SLICES: u8 = 10;
    pub const TWIN_SCALE: u8 = 11;
    pub const LABEL_MAP: u8 = 12;
    pub const BOARD_SHOW: u8 = 13;
    pub const BOARD_POSE: u8 = 14;
    pub const BOARD_HIDE: u8 = 15;
    pub const MEASUREMENT_SHOW: u8 = 16;
    pub const MEASUREMENT_HIDE: u8 = 17;
}

/// Measurement kind codes (1.3). 0 is never a kind: an [`Measurement::Other`] that holds a
/// known code is written as 0, so that no writer can emit a known kind without its fields.
mod measurement_kind {
    pub const OTHER: u8 = 0;
    pub const DISTANCE: u8 = 1;
    pub const ANGLE: u8 = 2;
    pub const COBB: u8 = 3;
    pub const TRAJECTORY: u8 = 4;
    pub const LABEL_STATS: u8 = 5;
    pub const KNOWN: [u8; 5] = [DISTANCE, ANGLE, COBB, TRAJECTORY, LABEL_STATS];
}

/// A board title cut to [`MAX_BOARD_TITLE_BYTES`] at a character boundary.
fn bounded_title(title: &str) -> &str {
    let mut end = title.len().min(MAX_BOARD_TITLE_BYTES);
    while !title.is_char_boundary(end) {
        end -= 1;
    }
    &title[..end]
}

fn write_measurement(w: &mut ByteWriter, m: &Measurement) {
    use measurement_kind as k;
    let points = |w: &mut ByteWriter, kind: u8, space: Space, points: &[Vec3]| {
        w.u8(kind);
        write_space(w, space);
        for p in points {
            write_vec3(w, *p);
        }
    };
    match m {
        Measurement::Distance { space, a_mm, b_mm } => {
            points(w, k::DISTANCE, *space, &[*a_mm, *b_mm]);
        }
        Measurement::Angle {
            space,
            a_mm,
            vertex_mm,
            b_mm,
        } => points(w, k::ANGLE, *space, &[*a_mm, *vertex_mm, *b_mm]),
        Measurement::Cobb {
            space,
            line1_mm,
            line2_mm,
        } => points(
            w,
            k::COBB,
            *space,
            &[line1_mm[0], line1_mm[1], line2_mm[0], line2_mm[1]],
        ),
        Measurement::Trajectory {
            space,
            entry_mm,
            target_mm,
        } => points(w, k::TRAJECTORY, *space, &[*entry_mm, *target_mm]),
        Measurement::LabelStats { label_id } => {
            w.u8(k::LABEL_STATS);
            w.varint(u64::from(*label_id));
        }
        Measurement::Other(code) => w.u8(if k::KNOWN.contains(code) {
            k::OTHER
        } else {
            *code
        }),
    }
}

/// `None` for a measurement in a space this build does not know (the scene change is skipped);
/// a kind it does not know is [`Measurement::Other`], its fields unread (the measurement is
/// the last field of its scene change, so nothing after it is lost).
fn read_measurement(r: &mut ByteReader) -> Result<Option<Measurement>, DecodeError> {
    use measurement_kind as k;
    let kind = r.u8("measurement kind")?;
    if kind == k::LABEL_STATS {
        let offset = r.pos();
        let label_id =
            u16::try_from(r.varint("measured label")?).map_err(|_| DecodeError::Invalid {
                offset,
                what: "measured label",
            })?;
        return Ok(Some(Measurement::LabelStats { label_id }));
    }
    if !k::KNOWN.contains(&kind) {
        return Ok(Some(Measurement::Other(kind)));
    }
    let Some(space) = read_space_1_3(r)? else {
        return Ok(None);
    };
    let mut p = || read_vec3(r, "measurement point");
    Ok(Some(match kind {
        k::DISTANCE => Measurement::Distance {
            space,
            a_mm: p()?,
            b_mm: p()?,
        },
        k::ANGLE => Measurement::Angle {
            space,
            a_mm: p()?,
            vertex_mm: p()?,
            b_mm: p()?,
        },
        k::COBB => Measurement::Cobb {
            space,
            line1_mm: [p()?, p()?],
            line2_mm: [p()?, p()?],
        },
        _ => Measurement::Trajectory {
            space,
            entry_mm: p()?,
            target_mm: p()?,
        },
    }))
}

fn write_scene_change(w: &mut ByteWriter, c: &SceneChange) {
    match c {
        SceneChange::Preset { name } => {
            w.u8(scene_tag::PRESET);
            w.string(name);
        }
        SceneChange::TransferCurve { points } => {
            w.u8(scene_tag::TRANSFER_CURVE);
            w.varint(points.len() as u64);
            for p in points {
                w.f32_le(p.density_hu);
                for v in p.rgba {
                    w.f32_le(v);
                }
            }
        }
        SceneChange::WindowLevel {
            centre_hu,
            width_hu,
        } => {
            w.u8(scene_tag::WINDOW_LEVEL);
            w.f32_le(*centre_hu);
            w.f32_le(*width_hu);
        }
        SceneChange::LabelVisibility { label, visible } => {
            w.u8(scene_tag::LABEL_VISIBILITY);
            w.varint(u64::from(*label));
            w.u8(u8::from(*visible));
        }
        SceneChange::LabelColour { label, colour_rgb } => {
            w.u8(scene_tag::LABEL_COLOUR);
            w.varint(u64::from(*label));
            w.bytes(colour_rgb);
        }
        SceneChange::LabelOpacity { label, opacity } => {
            w.u8(scene_tag::LABEL_OPACITY);
            w.varint(u64::from(*label));
            w.f32_le(*opacity);
        }
        SceneChange::ClipPlane { plane } => {
            w.u8(scene_tag::CLIP_PLANE);
            w.u8(u8::from(plane.is_some()));
            if let Some(p) = plane {
                write_vec3(w, p.normal);
                w.f32_le(p.distance_mm);
            }
        }
        SceneChange::CropBox { crop } => {
            w.u8(scene_tag::CROP_BOX);
            w.u8(u8::from(crop.is_some()));
            if let Some(b) = crop {
                write_vec3(w, b.min_mm);
                write_vec3(w, b.max_mm);
            }
        }
        SceneChange::TwinPose { stage_from_patient } => {
            w.u8(scene_tag::TWIN_POSE);
            write_pose_exact(w, stage_from_patient);
        }
        SceneChange::MprSlices { slices_mm } => {
            w.u8(scene_tag::MPR_SLICES);
            write_vec3(w, *slices_mm);
        }
        SceneChange::TwinScale { scale } => {
            w.u8(scene_tag::TWIN_SCALE);
            w.f32_le(*scale);
        }
        SceneChange::LabelMap { hash } => {
            w.u8(scene_tag::LABEL_MAP);
            w.u8(u8::from(hash.is_some()));
            if let Some(h) = hash {
                w.bytes(h);
            }
        }
        SceneChange::BoardShow {
            board_id,
            image,
            title,
            pose,
            width_mm,
        } => {
            w.u8(scene_tag::BOARD_SHOW);
            w.varint(u64::from(*board_id));
            w.bytes(&image.0);
            w.string(bounded_title(title));
            write_pose_exact(w, pose);
            w.f32_le(*width_mm);
        }
        SceneChange::BoardPose {
            board_id,
            pose,
            width_mm,
        } => {
            w.u8(scene_tag::BOARD_POSE);
            w.varint(u64::from(*board_id));
            write_pose_exact(w, pose);
            w.f32_le(*width_mm);
        }
        SceneChange::BoardHide { board_id } => {
            w.u8(scene_tag::BOARD_HIDE);
            w.varint(u64::from(*board_id));
        }
        SceneChange::MeasurementShow { id, measurement } => {
            w.u8(scene_tag::MEASUREMENT_SHOW);
            w.varint(u64::from(*id));
            write_measurement(w, measurement);
        }
        SceneChange::MeasurementHide { id } => {
            w.u8(scene_tag::MEASUREMENT_HIDE);
            w.varint(u64::from(*id));
        }
    }
}

/// `None` for a scene change tag this build does not know.
fn read_scene_change(r: &mut ByteReader) -> Result<Option<SceneChange>, DecodeError> {
    let tag = r.u8("scene change tag")?;
    Ok(Some(match tag {
        scene_tag::PRESET => SceneChange::Preset {
            name: r.string("preset name")?,
        },
        scene_tag::TRANSFER_CURVE => {
            let n = r.count(20, "transfer curve points")?;
            let mut points = Vec::with_capacity(n);
            for _ in 0..n {
                let density_hu = r.f32_le("transfer point")?;
                let mut rgba = [0f32; 4];
                for v in &mut rgba {
                    *v = r.f32_le("transfer point")?;
                }
                points.push(TransferPoint { density_hu, rgba });
            }
            SceneChange::TransferCurve { points }
        }
        scene_tag::WINDOW_LEVEL => SceneChange::WindowLevel {
            centre_hu: r.f32_le("window centre")?,
            width_hu: r.f32_le("window width")?,
        },
        scene_tag::LABEL_VISIBILITY => SceneChange::LabelVisibility {
            label: r.varint_u32("label")?,
            visible: read_bool(r, "label visibility")?,
        },
        scene_tag::LABEL_COLOUR => {
            let label = r.varint_u32("label")?;
            let c = r.take(3, "label colour")?;
            SceneChange::LabelColour {
                label,
                colour_rgb: [c[0], c[1], c[2]],
            }
        }
        scene_tag::LABEL_OPACITY => SceneChange::LabelOpacity {
            label: r.varint_u32("label")?,
            opacity: r.f32_le("label opacity")?,
        },
        scene_tag::CLIP_PLANE => SceneChange::ClipPlane {
            plane: if read_bool(r, "clip plane flag")? {
                Some(ClipPlane {
                    normal: read_vec3(r, "clip plane")?,
                    distance_mm: r.f32_le("clip plane")?,
                })
            } else {
                None
            },
        },
        scene_tag::CROP_BOX => SceneChange::CropBox {
            crop: if read_bool(r, "crop box flag")? {
                Some(CropBox {
                    min_mm: read_vec3(r, "crop box")?,
                    max_mm: read_vec3(r, "crop box")?,
                })
            } else {
                None
            },
        },
        scene_tag::TWIN_POSE => SceneChange::TwinPose {
            stage_from_patient: read_pose_exact(r)?,
        },
        scene_tag::MPR_SLICES => SceneChange::MprSlices {
            slices_mm: read_vec3(r, "MPR slices")?,
        },
        scene_tag::TWIN_SCALE => SceneChange::TwinScale {
            scale: r.f32_le("twin scale")?,
        },
        scene_tag::LABEL_MAP => SceneChange::LabelMap {
            hash: if read_bool(r, "label map flag")? {
                Some(read_hash(r, "label map hash")?)
            } else {
                None
            },
        },
        scene_tag::BOARD_SHOW => {
            let board_id = r.varint_u32("board id")?;
            let image = ImageHash(read_hash(r, "board image hash")?);
            let offset = r.pos();
            let title = r.string("board title")?;
            if title.len() > MAX_BOARD_TITLE_BYTES {
                return Err(DecodeError::Invalid {
                    offset,
                    what: "board title",
                });
            }
            SceneChange::BoardShow {
                board_id,
                image,
                title,
                pose: read_pose_exact(r)?,
                width_mm: r.f32_le("board width")?,
            }
        }
        scene_tag::BOARD_POSE => SceneChange::BoardPose {
            board_id: r.varint_u32("board id")?,
            pose: read_pose_exact(r)?,
            width_mm: r.f32_le("board width")?,
        },
        scene_tag::BOARD_HIDE => SceneChange::BoardHide {
            board_id: r.varint_u32("board id")?,
        },
        scene_tag::MEASUREMENT_SHOW => {
            let id = r.varint_u32("measurement id")?;
            match read_measurement(r)? {
                Some(measurement) => SceneChange::MeasurementShow { id, measurement },
                None => return Ok(None),
            }
        }
        scene_tag::MEASUREMENT_HIDE => SceneChange::MeasurementHide {
            id: r.varint_u32("measurement id")?,
        },
        _ => return Ok(None),
    }))
}

fn encode_keyframe(kf: &Keyframe) -> Vec<u8> {
    let mut w = ByteWriter::new();
    match &kf.chapter {
        Some(title) => {
            w.u8(1);
            w.string(title);
        }
        None => w.u8(0),
    }
    let changes = kf.scene.to_changes();
    w.varint(changes.len() as u64);
    for c in &changes {
        let mut cw = ByteWriter::new();
        write_scene_change(&mut cw, c);
        w.blob(&cw.buf);
    }
    // Strokes in a space with a 1.0 code go in the list every reader knows; strokes on
    // boards (1.3) in a list appended after it, which older readers never reach (they stop
    // reading the keyframe after their list), so that they do not call the keyframe damaged.
    let mut legacy = Vec::new();
    let mut boards = Vec::new();
    for s in kf.strokes.values() {
        let mut sw = ByteWriter::new();
        let ty = write_stroke_begin(&mut sw, &s.begin);
        sw.i64_le(s.begin_time_ns);
        sw.varint(s.first_chunk_seq);
        sw.u8(u8::from(s.ended));
        if ty == record::STROKE_BEGIN {
            legacy.push(sw.buf);
        } else {
            boards.push(sw.buf);
        }
    }
    w.varint(legacy.len() as u64);
    for body in &legacy {
        w.blob(body);
    }
    // The 1.3 list only when there is one: keyframes without boards stay as 1.2 wrote them.
    if !boards.is_empty() {
        w.varint(boards.len() as u64);
        for body in &boards {
            w.blob(body);
        }
    }
    w.into_inner()
}

fn decode_keyframe(r: &mut ByteReader) -> Result<Keyframe, DecodeError> {
    let mut kf = Keyframe::default();
    if read_bool(r, "chapter flag")? {
        kf.chapter = Some(r.string("chapter title")?);
    }
    let n = r.count(1, "keyframe scene changes")?;
    for _ in 0..n {
        let body = r.blob("keyframe scene change")?;
        // Entries are length-prefixed so an unknown change is skipped on its own.
        if let Some(c) = read_scene_change(&mut ByteReader::new(body))? {
            kf.scene.apply(&c);
        }
    }
    // The 1.0 stroke list, then (1.3, only when present) the strokes on boards.
    for ty in [record::STROKE_BEGIN, record::STROKE_BEGIN_1_3] {
        if ty == record::STROKE_BEGIN_1_3 && r.is_empty() {
            break;
        }
        let n = r.count(1, "keyframe strokes")?;
        for _ in 0..n {
            let body = r.blob("keyframe stroke")?;
            let mut s = ByteReader::new(body);
            // A stroke in a space this build does not know is skipped on its own.
            let Some(begin) = read_stroke_begin(&mut s, ty)? else {
                continue;
            };
            let begin_time_ns = s.i64_le("stroke begin time")?;
            let first_chunk_seq = s.varint("stroke first chunk")?;
            let ended = read_bool(&mut s, "stroke ended")?;
            kf.strokes.insert(
                begin.stroke_id,
                KeyframeStroke {
                    begin,
                    begin_time_ns,
                    first_chunk_seq,
                    ended,
                },
            );
        }
    }
    Ok(kf)
}

// ---------------------------------------------------------------------------------------------
// Discrete events

fn encode_discrete(e: &Event, t0: i64) -> (u8, Vec<u8>) {
    let mut w = ByteWriter::new();
    w.svarint(e.time_ns.wrapping_sub(t0));
    let ty = match &e.payload {
        Payload::Gesture(g) => {
            w.u8(hand_code(g.hand));
            w.u8(gesture_code(g.kind));
            write_pose_exact(&mut w, &g.pose);
            record::GESTURE
        }
        Payload::StrokeBegin(b) => write_stroke_begin(&mut w, b),
        Payload::StrokeEnd { stroke_id } => {
            w.varint(u64::from(*stroke_id));
            record::STROKE_END
        }
        Payload::StrokeErase { stroke_ids } => {
            w.varint(stroke_ids.len() as u64);
            for id in stroke_ids {
                w.varint(u64::from(*id));
            }
            record::STROKE_ERASE
        }
        Payload::StrokeUndo { stroke_id } => {
            w.varint(u64::from(*stroke_id));
            record::STROKE_UNDO
        }
        Payload::Scene(c) => {
            write_scene_change(&mut w, c);
            record::SCENE
        }
        Payload::Chapter(c) => {
            w.string(&c.title);
            record::CHAPTER
        }
        Payload::Viewpoint(v) => {
            w.string(&v.name);
            let ty = if let Some(code) = legacy_space_code(v.space) {
                w.u8(code);
                record::VIEWPOINT
            } else {
                write_space(&mut w, v.space);
                record::VIEWPOINT_1_3
            };
            write_pose_exact(&mut w, &v.pose);
            ty
        }
        Payload::Note(n) => {
            w.string(&n.text);
            record::NOTE
        }
        Payload::Audio(a) => {
            w.u8(a.codec);
            w.varint(u64::from(a.sample_rate_hz));
            w.u8(a.channel_count);
            w.blob(&a.data);
            record::AUDIO
        }
        Payload::VoiceSync(sync) => {
            w.varint(sync.sample_index);
            w.u8(u8::from(sync.starts_segment));
            record::VOICE_SYNC
        }
        Payload::LabelMap(map) => {
            w.bytes(&map.hash);
            for d in map.dims {
                w.varint(u64::from(d));
            }
            // The voxels' coding: 1 = u16 little-endian ids in one zstd frame.
            w.u8(LABEL_MAP_U16_ZSTD);
            w.blob(&map.zstd);
            record::LABEL_MAP
        }
        Payload::Image(image) => {
            w.bytes(&image.hash.0);
            w.varint(u64::from(image.width));
            w.varint(u64::from(image.height));
            w.u8(image.format.code());
            match image.spacing {
                PixelSpacing::Unknown => w.u8(0),
                PixelSpacing::Known {
                    row_mm,
                    col_mm,
                    at_detector,
                } => {
                    w.u8(1);
                    w.f32_le(row_mm);
                    w.f32_le(col_mm);
                    w.u8(u8::from(at_detector));
                }
            }
            // The pixels' coding: 1 = one zstd frame.
            w.u8(IMAGE_ZSTD);
            w.blob(&image.zstd);
            record::IMAGE
        }
        // Sampled streams and points never reach here (ChunkBuilder::push routes them); the
        // arm exists so the match is total without a panic.
        Payload::Head(_)
        | Payload::Hand(_)
        | Payload::Controller(_)
        | Payload::StrokePoint(_)
        | Payload::Voice(_) => 0xff,
    };
    (ty, w.into_inner())
}

/// `None` for a record type this build does not know.
fn decode_discrete(ty: u8, r: &mut ByteReader, t0: i64) -> Result<Option<Event>, DecodeError> {
    let time_ns = t0.wrapping_add(r.svarint("event time")?);
    let payload = match ty {
        record::GESTURE => Payload::Gesture(Gesture {
            hand: read_hand(r)?,
            kind: gesture_from_code(r.u8("gesture kind")?),
            pose: read_pose_exact(r)?,
        }),
        record::STROKE_BEGIN | record::STROKE_BEGIN_1_3 => match read_stroke_begin(r, ty)? {
            Some(begin) => Payload::StrokeBegin(begin),
            None => return Ok(None),
        },
        record::STROKE_END => Payload::StrokeEnd {
            stroke_id: r.varint_u32("stroke id")?,
        },
        record::STROKE_ERASE => {
            let n = r.count(1, "erased strokes")?;
            let mut stroke_ids = Vec::with_capacity(n);
            for _ in 0..n {
                stroke_ids.push(r.varint_u32("stroke id")?);
            }
            Payload::StrokeErase { stroke_ids }
        }
        record::STROKE_UNDO => Payload::StrokeUndo {
            stroke_id: r.varint_u32("stroke id")?,
        },
        record::SCENE => match read_scene_change(r)? {
            Some(c) => Payload::Scene(c),
            None => return Ok(None),
        },
        record::CHAPTER => Payload::Chapter(Chapter {
            title: r.string("chapter title")?,
        }),
        record::VIEWPOINT => Payload::Viewpoint(Viewpoint {
            name: r.string("viewpoint name")?,
            space: read_space(r)?,
            pose: read_pose_exact(r)?,
        }),
        record::VIEWPOINT_1_3 => {
            let name = r.string("viewpoint name")?;
            let Some(space) = read_space_1_3(r)? else {
                return Ok(None);
            };
            Payload::Viewpoint(Viewpoint {
                name,
                space,
                pose: read_pose_exact(r)?,
            })
        }
        record::NOTE => Payload::Note(Note {
            text: r.string("note")?,
        }),
        record::AUDIO => Payload::Audio(AudioPacket {
            codec: r.u8("audio codec")?,
            sample_rate_hz: r.varint_u32("audio sample rate")?,
            channel_count: r.u8("audio channels")?,
            data: r.blob("audio data")?.to_vec(),
        }),
        record::VOICE_SYNC => Payload::VoiceSync(VoiceSync {
            sample_index: read_sample_index(r, "voice sync sample index")?,
            starts_segment: read_bool(r, "voice sync segment flag")?,
        }),
        record::LABEL_MAP => {
            let hash = read_hash(r, "label map hash")?;
            let dims = [
                r.varint_u32("label map size")?,
                r.varint_u32("label map size")?,
                r.varint_u32("label map size")?,
            ];
            let offset = r.pos();
            if LabelMapBlob::voxel_count(dims).is_err() {
                return Err(DecodeError::Invalid {
                    offset,
                    what: "label map size",
                });
            }
            // Another voxel coding (a newer writer's) is skipped like an unknown record.
            if r.u8("label map coding")? != LABEL_MAP_U16_ZSTD {
                return Ok(None);
            }
            Payload::LabelMap(Box::new(LabelMapBlob {
                hash,
                dims,
                zstd: r.blob("label map voxels")?.to_vec(),
            }))
        }
        record::IMAGE => match read_image(r)? {
            Some(image) => Payload::Image(Box::new(image)),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(Event::new(time_ns, payload)))
}

/// Label-map record voxel coding: `u16` little-endian ids compressed as one zstd frame.
const LABEL_MAP_U16_ZSTD: u8 = 1;

/// Image record pixel coding: the pixels compressed as one zstd frame.
const IMAGE_ZSTD: u8 = 1;

/// The body of an image record after its time; `None` for a pixel format, spacing or coding
/// a newer writer added (skipped like an unknown record). The size and spacing are checked
/// here, before the pixels are touched; the pixels stay compressed.
fn read_image(r: &mut ByteReader) -> Result<Option<ImageBlob>, DecodeError> {
    let hash = ImageHash(read_hash(r, "image hash")?);
    let offset = r.pos();
    let width = r.varint_u32("image size")?;
    let height = r.varint_u32("image size")?;
    if width == 0
        || height == 0
        || width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(DecodeError::Invalid {
            offset,
            what: "image size",
        });
    }
    let Some(format) = PixelFormat::from_code(r.u8("image pixel format")?) else {
        return Ok(None);
    };
    let offset = r.pos();
    let spacing = match r.u8("image pixel spacing")? {
        0 => PixelSpacing::Unknown,
        1 => PixelSpacing::Known {
            row_mm: r.f32_le("image pixel spacing")?,
            col_mm: r.f32_le("image pixel spacing")?,
            at_detector: read_bool(r, "image pixel spacing")?,
        },
        _ => return Ok(None),
    };
    if !spacing.is_valid() {
        return Err(DecodeError::Invalid {
            offset,
            what: "image pixel spacing",
        });
    }
    if r.u8("image coding")? != IMAGE_ZSTD {
        return Ok(None);
    }
    Ok(Some(ImageBlob {
        hash,
        width,
        height,
        format,
        spacing,
        zstd: r.blob("image pixels")?.to_vec(),
    }))
}

fn read_hash(r: &mut ByteReader, what: &'static str) -> Result<[u8; 32], DecodeError> {
    let b = r.take(32, what)?;
    let mut h = [0u8; 32];
    h.copy_from_slice(b);
    Ok(h)
}

/// A sample index, refused past [`MAX_VOICE_SAMPLE_INDEX`].
fn read_sample_index(r: &mut ByteReader, what: &'static str) -> Result<u64, DecodeError> {
    let v = r.varint(what)?;
    if v >= MAX_VOICE_SAMPLE_INDEX {
        return Err(DecodeError::TooLarge {
            what,
            declared: v,
            limit: MAX_VOICE_SAMPLE_INDEX - 1,
        });
    }
    Ok(v)
}

/// Voice packets of one format: the format once, then columns (times, sample indices as
/// second differences, packet and valid lengths as differences, byte lengths), then the
/// packets' bytes back to back. The constant columns cost almost nothing after zstd, so the
/// stream is close to the bare Opus bit rate.
fn encode_voice_block(packets: &[(i64, VoicePacket)], t0: i64) -> Vec<u8> {
    let mut w = ByteWriter::new();
    let format = packets.first().map(|p| p.1.format).unwrap_or(VoiceFormat {
        codec: 0,
        sample_rate_hz: 0,
        channel_count: 0,
        pre_skip: 0,
    });
    w.u8(format.codec);
    w.varint(u64::from(format.sample_rate_hz));
    w.u8(format.channel_count);
    w.varint(u64::from(format.pre_skip));
    w.varint(packets.len() as u64);
    w.delta2_column(packets.iter().map(|p| p.0.wrapping_sub(t0)));
    #[allow(clippy::cast_possible_wrap)] // Indices are below 2^48 (checked on reading).
    w.delta2_column(packets.iter().map(|p| p.1.sample_index as i64));
    w.delta_column(packets.iter().map(|p| i64::from(p.1.sample_count)));
    w.delta_column(packets.iter().map(|p| i64::from(p.1.valid_samples)));
    for (_, p) in packets {
        w.varint(p.data.len() as u64);
    }
    for (_, p) in packets {
        w.bytes(&p.data);
    }
    w.into_inner()
}

fn decode_voice_block(
    r: &mut ByteReader,
    t0: i64,
    out: &mut Vec<(i64, VoicePacket)>,
) -> Result<(), DecodeError> {
    let codec = r.u8("voice codec")?;
    let sample_rate_hz = r.varint_u32("voice sample rate")?;
    if sample_rate_hz == 0 || sample_rate_hz > MAX_VOICE_SAMPLE_RATE_HZ {
        return Err(DecodeError::Invalid {
            offset: r.pos(),
            what: "voice sample rate",
        });
    }
    let channel_count = r.u8("voice channels")?;
    let pre_skip =
        u16::try_from(r.varint("voice pre-skip")?).map_err(|_| DecodeError::Invalid {
            offset: r.pos(),
            what: "voice pre-skip",
        })?;
    let format = VoiceFormat {
        codec,
        sample_rate_hz,
        channel_count,
        pre_skip,
    };
    // Four one-byte column entries and a length per packet at the least.
    let n = r.count(5, "voice packets")?;
    let times = r.delta2_column(n, "voice packet times")?;
    let indices = r.delta2_column(n, "voice sample indices")?;
    let counts = r.delta_column(n, "voice packet lengths in samples")?;
    let valid = r.delta_column(n, "voice valid samples")?;
    let mut lengths = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let len = r.count(1, "voice packet bytes")?;
        total = total.saturating_add(len);
        lengths.push(len);
    }
    if total > r.remaining() {
        return Err(DecodeError::TooLarge {
            what: "voice packet bytes",
            declared: total as u64,
            limit: r.remaining() as u64,
        });
    }
    out.reserve(n);
    for i in 0..n {
        let invalid = |what| DecodeError::Invalid {
            offset: r.pos(),
            what,
        };
        let sample_index = u64::try_from(indices[i])
            .ok()
            .filter(|&v| v < MAX_VOICE_SAMPLE_INDEX)
            .ok_or_else(|| invalid("voice sample index"))?;
        let sample_count = u16::try_from(counts[i])
            .ok()
            .filter(|&c| c > 0 && c <= MAX_VOICE_PACKET_SAMPLES)
            .ok_or_else(|| invalid("voice packet length in samples"))?;
        let valid_samples = u16::try_from(valid[i])
            .ok()
            .filter(|&v| v <= sample_count)
            .ok_or_else(|| invalid("voice valid samples"))?;
        let data = r.take(lengths[i], "voice packet")?.to_vec();
        out.push((
            t0.wrapping_add(times[i]),
            VoicePacket {
                format,
                sample_index,
                sample_count,
                valid_samples,
                data,
            },
        ));
    }
    Ok(())
}

fn encode_stroke_points(stroke_id: u32, points: &[(i64, Vec3, f32)], t0: i64) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.varint(u64::from(stroke_id));
    w.varint(points.len() as u64);
    w.delta2_column(points.iter().map(|p| p.0.wrapping_sub(t0)));
    let q: Vec<[i32; 3]> = points
        .iter()
        .map(|p| quantise_position(p.1, STROKE_POSITION_STEP_MM))
        .collect();
    for c in 0..3 {
        w.delta_column(q.iter().map(|v| i64::from(v[c])));
    }
    w.delta_column(
        points
            .iter()
            .map(|p| i64::from(quantise_unit(p.2, PRESSURE_SCALE, 0.0, 1.0))),
    );
    w.into_inner()
}

fn decode_stroke_points(
    r: &mut ByteReader,
    t0: i64,
    out: &mut Vec<Event>,
) -> Result<(), DecodeError> {
    let stroke_id = r.varint_u32("stroke id")?;
    let n = r.count(5, "stroke points")?;
    let times = r.delta2_column(n, "stroke point times")?;
    let x = r.delta_column(n, "stroke points")?;
    let y = r.delta_column(n, "stroke points")?;
    let z = r.delta_column(n, "stroke points")?;
    let pressure = r.delta_column(n, "stroke pressure")?;
    out.reserve(n);
    for i in 0..n {
        out.push(Event::new(
            t0.wrapping_add(times[i]),
            Payload::StrokePoint(StrokePoint {
                stroke_id,
                position_mm: dequantise_position([x[i], y[i], z[i]], STROKE_POSITION_STEP_MM),
                pressure: dequantise_unit(pressure[i], PRESSURE_SCALE, 0.0, 1.0),
            }),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sampled blocks

/// Quantised pose columns of a sequence of poses: 3 position + 4 orientation, each one
/// column over time; the orientation sign follows the previous sample.
fn quantised_poses(poses: impl Iterator<Item = Pose>, step_mm: f32, scale: f32) -> Vec<[i32; 7]> {
    let mut prev_q: Option<[i32; 4]> = None;
    poses
        .map(|p| {
            let pos = quantise_position(p.position_mm, step_mm);
            let q = quantise_quat(p.orientation, scale, prev_q);
            prev_q = Some(q);
            [pos[0], pos[1], pos[2], q[0], q[1], q[2], q[3]]
        })
        .collect()
}

fn write_pose_columns(w: &mut ByteWriter, q: &[[i32; 7]]) {
    for c in 0..7 {
        w.delta_column(q.iter().map(|v| i64::from(v[c])));
    }
}

fn read_pose_columns(r: &mut ByteReader, n: usize, step_mm: f32) -> Result<Vec<Pose>, DecodeError> {
    let mut cols: Vec<Vec<i64>> = Vec::with_capacity(7);
    for _ in 0..7 {
        cols.push(r.delta_column(n, "pose column")?);
    }
    Ok((0..n)
        .map(|i| Pose {
            position_mm: dequantise_position([cols[0][i], cols[1][i], cols[2][i]], step_mm),
            orientation: dequantise_quat([cols[3][i], cols[4][i], cols[5][i], cols[6][i]]),
        })
        .collect())
}

fn encode_head_block(samples: &[(i64, Pose)], t0: i64) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.varint(samples.len() as u64);
    w.delta2_column(samples.iter().map(|s| s.0.wrapping_sub(t0)));
    let q = quantised_poses(
        samples.iter().map(|s| s.1),
        POSE_POSITION_STEP_MM,
        POSE_QUAT_SCALE,
    );
    write_pose_columns(&mut w, &q);
    w.into_inner()
}

fn decode_head_block(r: &mut ByteReader, t0: i64) -> Result<Vec<(i64, Pose)>, DecodeError> {
    let n = r.count(8, "head samples")?;
    let times = r.delta2_column(n, "head times")?;
    let poses = read_pose_columns(r, n, POSE_POSITION_STEP_MM)?;
    Ok(times
        .into_iter()
        .map(|t| t0.wrapping_add(t))
        .zip(poses)
        .collect())
}

/// Writes the "is present" flags of a sample sequence, one byte each.
fn write_active(w: &mut ByteWriter, active: impl Iterator<Item = bool>) {
    for a in active {
        w.u8(u8::from(a));
    }
}

fn read_active(r: &mut ByteReader, n: usize) -> Result<Vec<bool>, DecodeError> {
    let mut out = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        out.push(read_bool(r, "sample tracked flag")?);
    }
    Ok(out)
}

fn check_values_fit(
    r: &ByteReader,
    samples: usize,
    per_sample: usize,
    what: &'static str,
) -> Result<(), DecodeError> {
    let needed = samples.saturating_mul(per_sample) as u64;
    let limit = r.remaining() as u64;
    if needed > limit {
        return Err(DecodeError::TooLarge {
            what,
            declared: needed,
            limit,
        });
    }
    Ok(())
}

fn encode_hand_block(hand: Handedness, samples: &[(i64, Option<HandJoints>)], t0: i64) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.u8(hand_code(hand));
    w.varint(samples.len() as u64);
    w.delta2_column(samples.iter().map(|s| s.0.wrapping_sub(t0)));
    write_active(&mut w, samples.iter().map(|s| s.1.is_some()));
    let active: Vec<&HandJoints> = samples.iter().filter_map(|s| s.1.as_ref()).collect();

    let mut prev_mask = 0u32;
    for a in &active {
        w.varint(u64::from(a.tracked_mask ^ prev_mask));
        prev_mask = a.tracked_mask;
    }

    // Quantise everything first: [sample][joint] → 3 position, 4 orientation, radius.
    let m = active.len();
    let mut pos = vec![[[0i64; 3]; HAND_JOINT_COUNT]; m];
    let mut rot = vec![[[0i64; 3]; HAND_JOINT_COUNT]; m];
    let mut rot_index = vec![[0u8; HAND_JOINT_COUNT]; m];
    let mut prev_index: [Option<u8>; HAND_JOINT_COUNT] = [None; HAND_JOINT_COUNT];
    for (i, a) in active.iter().enumerate() {
        for j in 0..HAND_JOINT_COUNT {
            let joint = &a.joints[j];
            let p = quantise_position(joint.pose.position_mm, HAND_POSITION_STEP_MM);
            pos[i][j] = p.map(i64::from);
            let (index, q) =
                quantise_quat_smallest3(joint.pose.orientation, HAND_QUAT_SCALE, prev_index[j]);
            prev_index[j] = Some(index);
            rot_index[i][j] = index;
            rot[i][j] = q.map(i64::from);
        }
    }
    // Positions: the wrist is delta-coded over time; every other joint is predicted as
    // "where it was, moved as its parent moved" (see `hand_position_prediction`), so a
    // hand translating rigidly costs almost nothing.
    for &j in &HAND_JOINT_ORDER {
        for c in 0..3 {
            for i in 0..m {
                let actual = pos[i][j][c];
                w.svarint(actual.wrapping_sub(hand_position_prediction(&pos, i, j, c)));
            }
        }
    }
    for &j in &HAND_JOINT_ORDER {
        for index in &rot_index {
            w.u8(index[j]);
        }
        for c in 0..3 {
            w.delta_column(rot.iter().map(|r| r[j][c]));
        }
    }
    for &j in &HAND_JOINT_ORDER {
        w.delta_column(
            active
                .iter()
                .map(|a| i64::from(quantise_scalar(a.joints[j].radius_mm, RADIUS_STEP_MM))),
        );
    }
    w.into_inner()
}

/// Kinematic parent of each joint in the `XR_EXT_hand_tracking` set: the palm and each
/// finger's metacarpal hang off the wrist, every other joint off the previous one in its
/// finger. Parents come before children in [`HAND_JOINT_ORDER`].
const HAND_JOINT_PARENT: [usize; HAND_JOINT_COUNT] = [
    WRIST_JOINT,
    WRIST_JOINT, // palm, wrist (the wrist's own entry is unused)
    WRIST_JOINT,
    2,
    3,
    4, // thumb
    WRIST_JOINT,
    6,
    7,
    8,
    9, // index
    WRIST_JOINT,
    11,
    12,
    13,
    14, // middle
    WRIST_JOINT,
    16,
    17,
    18,
    19, // ring
    WRIST_JOINT,
    21,
    22,
    23,
    24, // little
];

/// The predicted quantised position of joint `j`, component `c`, at active sample `i`, from
/// values already decoded (earlier samples, and the joint's parent at sample `i`): "where it
/// was, moved as its parent moved". The wrist is predicted from its previous position; in a
/// chunk's first sample each joint is predicted at its parent.
fn hand_position_prediction(
    pos: &[[[i64; 3]; HAND_JOINT_COUNT]],
    i: usize,
    j: usize,
    c: usize,
) -> i64 {
    let parent = HAND_JOINT_PARENT[j];
    match (i, j == WRIST_JOINT) {
        (0, true) => 0,
        (0, false) => pos[0][parent][c],
        (_, true) => pos[i - 1][WRIST_JOINT][c],
        (_, false) => pos[i - 1][j][c]
            .wrapping_add(pos[i][parent][c])
            .wrapping_sub(pos[i - 1][parent][c]),
    }
}

fn decode_hand_block(
    r: &mut ByteReader,
    t0: i64,
) -> Result<(Handedness, Samples<HandJoints>), DecodeError> {
    let hand = read_hand(r)?;
    let n = r.count(2, "hand samples")?;
    let times = r.delta2_column(n, "hand times")?;
    let active = read_active(r, n)?;
    let m = active.iter().filter(|a| **a).count();
    check_values_fit(r, m, HAND_VALUES_PER_SAMPLE + 1, "hand joint values")?;

    let mut masks = Vec::with_capacity(m);
    let mut prev_mask = 0u32;
    for _ in 0..m {
        prev_mask ^= r.varint_u32("tracked mask")?;
        masks.push(prev_mask);
    }
    let mut pos = vec![[[0i64; 3]; HAND_JOINT_COUNT]; m];
    for &j in &HAND_JOINT_ORDER {
        for c in 0..3 {
            for i in 0..m {
                let residual = r.svarint("hand joint position")?;
                pos[i][j][c] = hand_position_prediction(&pos, i, j, c).wrapping_add(residual);
            }
        }
    }
    let mut rot = vec![[[0i64; 3]; HAND_JOINT_COUNT]; m];
    let mut rot_index = vec![[0u8; HAND_JOINT_COUNT]; m];
    for &j in &HAND_JOINT_ORDER {
        for index in &mut rot_index {
            let offset = r.pos();
            index[j] = r.u8("hand joint orientation index")?;
            if index[j] > 3 {
                return Err(DecodeError::Invalid {
                    offset,
                    what: "hand joint orientation index",
                });
            }
        }
        for c in 0..3 {
            let col = r.delta_column(m, "hand joint orientation")?;
            for (slot, v) in rot.iter_mut().zip(col) {
                slot[j][c] = v;
            }
        }
    }
    let mut radius = vec![[0i64; HAND_JOINT_COUNT]; m];
    for &j in &HAND_JOINT_ORDER {
        let col = r.delta_column(m, "hand joint radius")?;
        for (i, v) in col.into_iter().enumerate() {
            radius[i][j] = v;
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut k = 0usize;
    for (t, is_active) in times.into_iter().zip(active) {
        let joints = if is_active {
            let mut hj = HandJoints {
                tracked_mask: masks[k],
                ..HandJoints::default()
            };
            for (j, joint) in hj.joints.iter_mut().enumerate() {
                *joint = HandJoint {
                    pose: Pose {
                        position_mm: dequantise_position(pos[k][j], HAND_POSITION_STEP_MM),
                        orientation: dequantise_quat_smallest3(
                            rot_index[k][j],
                            rot[k][j],
                            HAND_QUAT_SCALE,
                        ),
                    },
                    radius_mm: dequantise_scalar(radius[k][j], RADIUS_STEP_MM),
                };
            }
            k += 1;
            Some(hj)
        } else {
            None
        };
        out.push((t0.wrapping_add(t), joints));
    }
    Ok((hand, out))
}

fn encode_controller_block(
    hand: Handedness,
    samples: &[(i64, Option<ControllerState>)],
    t0: i64,
) -> Vec<u8> {
    let mut w = ByteWriter::new();
    w.u8(hand_code(hand));
    w.varint(samples.len() as u64);
    w.delta2_column(samples.iter().map(|s| s.0.wrapping_sub(t0)));
    write_active(&mut w, samples.iter().map(|s| s.1.is_some()));
    let active: Vec<&ControllerState> = samples.iter().filter_map(|s| s.1.as_ref()).collect();
    let grip = quantised_poses(
        active.iter().map(|a| a.grip),
        POSE_POSITION_STEP_MM,
        POSE_QUAT_SCALE,
    );
    let aim = quantised_poses(
        active.iter().map(|a| a.aim),
        POSE_POSITION_STEP_MM,
        POSE_QUAT_SCALE,
    );
    write_pose_columns(&mut w, &grip);
    write_pose_columns(&mut w, &aim);
    w.delta_column(active.iter().map(|a| i64::from(a.buttons)));
    let analog = |v: f32, lo: f32| i64::from(quantise_unit(v, ANALOG_SCALE, lo, 1.0));
    w.delta_column(active.iter().map(|a| analog(a.trigger, 0.0)));
    w.delta_column(active.iter().map(|a| analog(a.squeeze, 0.0)));
    w.delta_column(active.iter().map(|a| analog(a.thumbstick.x, -1.0)));
    w.delta_column(active.iter().map(|a| analog(a.thumbstick.y, -1.0)));
    w.into_inner()
}

fn decode_controller_block(
    r: &mut ByteReader,
    t0: i64,
) -> Result<(Handedness, Samples<ControllerState>), DecodeError> {
    let hand = read_hand(r)?;
    let n = r.count(2, "controller samples")?;
    let times = r.delta2_column(n, "controller times")?;
    let active = read_active(r, n)?;
    let m = active.iter().filter(|a| **a).count();
    check_values_fit(r, m, CONTROLLER_VALUES_PER_SAMPLE, "controller values")?;
    let grip = read_pose_columns(r, m, POSE_POSITION_STEP_MM)?;
    let aim = read_pose_columns(r, m, POSE_POSITION_STEP_MM)?;
    let buttons = r.delta_column(m, "controller buttons")?;
    let trigger = r.delta_column(m, "controller trigger")?;
    let squeeze = r.delta_column(m, "controller squeeze")?;
    let stick_x = r.delta_column(m, "controller thumbstick")?;
    let stick_y = r.delta_column(m, "controller thumbstick")?;
    let mut out = Vec::with_capacity(n);
    let mut k = 0usize;
    for (t, is_active) in times.into_iter().zip(active) {
        let state = if is_active {
            let s = ControllerState {
                grip: grip[k],
                aim: aim[k],
                // Buttons are a u32 bit mask; hostile values are truncated, not trusted.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                buttons: buttons[k] as u32,
                trigger: dequantise_unit(trigger[k], ANALOG_SCALE, 0.0, 1.0),
                squeeze: dequantise_unit(squeeze[k], ANALOG_SCALE, 0.0, 1.0),
                thumbstick: Vec2::new(
                    dequantise_unit(stick_x[k], ANALOG_SCALE, -1.0, 1.0),
                    dequantise_unit(stick_y[k], ANALOG_SCALE, -1.0, 1.0),
                ),
            };
            k += 1;
            Some(s)
        } else {
            None
        };
        out.push((t0.wrapping_add(t), state));
    }
    Ok((hand, out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap.
mod tests {
    use super::*;

    fn begin(stroke_id: u32, space: Space) -> StrokeBegin {
        StrokeBegin {
            stroke_id,
            space,
            style: StrokeStyle {
                colour_rgba: [1, 2, 3, 4],
                width_mm: 2.0,
                brush: Brush::Pen,
            },
        }
    }

    /// A keyframe as a 1.2 reader reads it (its `decode_keyframe`, which this one extends):
    /// the scene-change tags it meets, the strokes of its list (with the 1.0 space codes,
    /// refusing any other), and the bytes it never reaches.
    fn keyframe_as_1_2_reads_it(
        body: &[u8],
    ) -> Result<(Vec<u8>, Vec<StrokeBegin>, usize), DecodeError> {
        let mut r = ByteReader::new(body);
        if read_bool(&mut r, "chapter flag")? {
            r.string("chapter title")?;
        }
        let mut tags = Vec::new();
        for _ in 0..r.count(1, "keyframe scene changes")? {
            tags.push(r.blob("keyframe scene change")?[0]);
        }
        let mut strokes = Vec::new();
        for _ in 0..r.count(1, "keyframe strokes")? {
            let mut s = ByteReader::new(r.blob("keyframe stroke")?);
            let stroke_id = s.varint_u32("stroke id")?;
            let space = read_space(&mut s)?;
            strokes.push(StrokeBegin {
                stroke_id,
                space,
                ..begin(0, space)
            });
        }
        Ok((tags, strokes, r.remaining()))
    }

    #[test]
    fn a_1_2_reader_reads_a_1_3_keyframe_without_what_1_3_added() {
        let mut kf = Keyframe::default();
        let events = [
            Payload::StrokeBegin(begin(1, Space::Patient)),
            Payload::StrokeBegin(begin(2, Space::Board(7))),
            Payload::Scene(SceneChange::Preset {
                name: "CT bone".to_owned(),
            }),
            Payload::Scene(SceneChange::BoardShow {
                board_id: 7,
                image: ImageHash([3; 32]),
                title: "Chest PA".to_owned(),
                pose: Pose::IDENTITY,
                width_mm: 350.0,
            }),
            Payload::Scene(SceneChange::MeasurementShow {
                id: 1,
                measurement: Measurement::LabelStats { label_id: 4 },
            }),
        ];
        for (t, p) in (0..).zip(events) {
            kf.apply(&Event::new(t, p), 0);
        }
        let body = encode_keyframe(&kf);
        // 1.2 knows tags up to 12 and skips the rest; its stroke list holds the patient stroke
        // only (a board's space code there would make it call the chunk damaged), and it
        // stops before the list of strokes on boards.
        let (tags, strokes, unread) = keyframe_as_1_2_reads_it(&body).unwrap();
        assert_eq!(tags, [scene_tag::PRESET, 13, 16]);
        assert_eq!(strokes, [begin(1, Space::Patient)]);
        assert!(unread > 0);
        // This build reads it all back.
        assert_eq!(decode_keyframe(&mut ByteReader::new(&body)).unwrap(), kf);

        // Without boards, a keyframe is laid out exactly as 1.2 laid it out.
        kf.strokes.remove(&2);
        let body = encode_keyframe(&kf);
        assert_eq!(keyframe_as_1_2_reads_it(&body).unwrap().2, 0);
    }

    #[test]
    fn board_spaces_go_into_record_types_older_readers_skip() {
        let mut b = ChunkBuilder::new(None);
        let viewpoint = |space| {
            Payload::Viewpoint(Viewpoint {
                name: "v".to_owned(),
                space,
                pose: Pose::IDENTITY,
            })
        };
        for (t, p) in (0..).zip([
            Payload::StrokeBegin(begin(1, Space::Stage)),
            Payload::StrokeBegin(begin(2, Space::Board(1))),
            viewpoint(Space::Patient),
            viewpoint(Space::Board(1)),
        ]) {
            b.push(Event::new(t, p));
        }
        let bytes = b.encode().unwrap().bytes;
        let mut r = ByteReader::new(&bytes);
        let mut types = Vec::new();
        while !r.is_empty() {
            types.push(r.u8("type").unwrap());
            r.blob("body").unwrap();
        }
        assert_eq!(
            types,
            [
                record::STROKE_BEGIN,
                record::STROKE_BEGIN_1_3,
                record::VIEWPOINT,
                record::VIEWPOINT_1_3
            ]
        );
        let chunk = decode_payload(&bytes, 0, DecodeParts::ALL).unwrap();
        assert_eq!(chunk.events.len(), 4);
        assert_eq!(chunk.unknown_records, 0);
    }
}
