//! The `lesson` tools as library functions (so the command line stays thin): `info`,
//! `verify`, `recover` and `dump`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chunk::{decode_payload, DecodeParts};
use crate::encoder::{encode_footer, EncoderOptions};
use crate::error::LessonError;
use crate::event::{ImageHash, Payload, PixelFormat, PixelSpacing, SceneChange, StreamId};
use crate::format::{
    decode_file_header, decode_index, encode_trailer, DamagedRegion, FileHeader, LessonHeader,
    ScanResult,
};
use crate::reader::{index_from_scan, IndexOrigin, LessonReader};

/// Per-stream totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    /// Stream code.
    pub stream: u8,
    /// Stream name ("head", ...; "stream-N" for one this build does not know).
    pub name: String,
    /// Events (samples).
    pub event_count: u64,
    /// Bytes of its records before compression.
    pub encoded_bytes: u64,
    /// Earliest event time.
    pub t_min_ns: i64,
    /// Latest event time.
    pub t_max_ns: i64,
}

/// A chapter mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChapterInfo {
    /// When it starts.
    pub time_ns: i64,
    /// Its title.
    pub title: String,
}

/// What `lesson info` shows.
#[derive(Debug, Clone, Serialize)]
pub struct LessonInfo {
    /// The file.
    pub path: PathBuf,
    /// File size.
    pub file_bytes: u64,
    /// Format version.
    pub format_version: u16,
    /// Minor version.
    pub format_minor_version: u8,
    /// Header metadata.
    pub header: LessonHeader,
    /// Whether the index came from the footer.
    pub has_footer: bool,
    /// Chunks.
    pub chunk_count: usize,
    /// Keyframe chunks.
    pub keyframe_count: usize,
    /// First and last event time.
    pub time_range_ns: Option<(i64, i64)>,
    /// Per-stream totals.
    pub streams: Vec<StreamInfo>,
    /// Chapters in time order.
    pub chapters: Vec<ChapterInfo>,
    /// Damage found (only when the index had to be rebuilt by scanning).
    pub damage: Vec<String>,
    /// The narration, when the lesson has one.
    pub voice: Option<VoiceInfo>,
    /// Image boards shown during the lesson (distinct board ids; 1.3).
    pub boards_shown: usize,
    /// Measurements shown during the lesson (distinct ids; 1.3).
    pub measurements_shown: usize,
}

/// What `lesson info` says about the narration.
#[derive(Debug, Clone, Serialize)]
pub struct VoiceInfo {
    /// Codec name.
    pub codec: String,
    /// Sample rate, hertz.
    pub sample_rate_hz: u32,
    /// Channels.
    pub channel_count: u8,
    /// Seconds of recorded voice.
    pub duration_s: f64,
    /// Average bit rate of the codec data, bit/s.
    pub bit_rate_bps: f64,
    /// Packets.
    pub packet_count: u64,
    /// Sync points.
    pub sync_count: usize,
    /// Stretches of voice missing, as `(start, end)` lesson times in nanoseconds.
    pub lost_ns: Vec<(i64, i64)>,
}

impl VoiceInfo {
    fn of(index: &crate::voice::VoiceIndex) -> Option<Self> {
        let format = index.format.filter(|_| index.has_voice())?;
        Some(Self {
            codec: if format.codec == crate::event::VoiceFormat::OPUS {
                "Opus".to_owned()
            } else {
                format!("codec {}", format.codec)
            },
            sample_rate_hz: format.sample_rate_hz,
            channel_count: format.channel_count,
            duration_s: index.duration_s(),
            bit_rate_bps: index.bit_rate_bps(),
            packet_count: index.packet_count,
            sync_count: index.syncs.len(),
            lost_ns: index.lost.iter().map(|l| (l.start_ns, l.end_ns)).collect(),
        })
    }
}

impl LessonInfo {
    /// Duration from the first to the last event.
    #[must_use]
    pub fn duration_ns(&self) -> i64 {
        self.time_range_ns.map_or(0, |(a, b)| b.saturating_sub(a))
    }
}

/// Nanoseconds as `h:mm:ss.mmm`.
#[must_use]
pub fn format_time_ns(t: i64) -> String {
    let sign = if t < 0 { "-" } else { "" };
    let t = t.unsigned_abs();
    let ms = t / 1_000_000;
    format!(
        "{sign}{}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

impl fmt::Display for LessonInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:        {}", self.path.display())?;
        writeln!(f, "size:        {} bytes", self.file_bytes)?;
        writeln!(
            f,
            "format:      version {}.{}",
            self.format_version, self.format_minor_version
        )?;
        writeln!(f, "case:        {}", self.header.case_ref)?;
        if let Some(title) = &self.header.title {
            writeln!(f, "title:       {title}")?;
        }
        writeln!(f, "recorder:    {}", self.header.recorder)?;
        writeln!(f, "duration:    {}", format_time_ns(self.duration_ns()))?;
        writeln!(
            f,
            "chunks:      {} ({} keyframes), index from {}",
            self.chunk_count,
            self.keyframe_count,
            if self.has_footer {
                "footer"
            } else {
                "scan (no usable footer)"
            }
        )?;
        writeln!(f, "streams:")?;
        for s in &self.streams {
            writeln!(
                f,
                "  {:<12} {:>10} events {:>12} bytes before compression",
                s.name, s.event_count, s.encoded_bytes
            )?;
        }
        if !self.chapters.is_empty() {
            writeln!(f, "chapters:")?;
            for c in &self.chapters {
                writeln!(f, "  {}  {}", format_time_ns(c.time_ns), c.title)?;
            }
        }
        match &self.voice {
            Some(v) => {
                writeln!(
                    f,
                    "voice:       {:.1} s, {} {} kHz {}, {:.1} kbit/s, {} packets, {} sync points",
                    v.duration_s,
                    v.codec,
                    f64::from(v.sample_rate_hz) / 1000.0,
                    if v.channel_count == 1 {
                        "mono".to_owned()
                    } else {
                        format!("{} channels", v.channel_count)
                    },
                    v.bit_rate_bps / 1000.0,
                    v.packet_count,
                    v.sync_count
                )?;
                for (a, b) in &v.lost_ns {
                    writeln!(
                        f,
                        "voice lost:  {} to {}",
                        format_time_ns(*a),
                        format_time_ns(*b)
                    )?;
                }
            }
            None => writeln!(f, "voice:       none")?,
        }
        if self.boards_shown > 0 || self.measurements_shown > 0 {
            writeln!(
                f,
                "boards:      {} shown, {} measurements",
                self.boards_shown, self.measurements_shown
            )?;
        }
        for d in &self.damage {
            writeln!(f, "damage:      {d}")?;
        }
        Ok(())
    }
}

/// Summarises a lesson file.
///
/// # Errors
/// If the file cannot be opened or its header is invalid.
pub fn info(path: impl AsRef<Path>) -> Result<LessonInfo, LessonError> {
    let mut reader = LessonReader::open(path)?;
    let mut streams: BTreeMap<u8, StreamInfo> = BTreeMap::new();
    for e in reader.index() {
        for s in &e.streams {
            let entry = streams.entry(s.stream).or_insert_with(|| StreamInfo {
                stream: s.stream,
                name: stream_name(s.stream),
                event_count: 0,
                encoded_bytes: 0,
                t_min_ns: s.t_min_ns,
                t_max_ns: s.t_max_ns,
            });
            entry.event_count += u64::from(s.event_count);
            entry.encoded_bytes += u64::from(s.encoded_bytes);
            entry.t_min_ns = entry.t_min_ns.min(s.t_min_ns);
            entry.t_max_ns = entry.t_max_ns.max(s.t_max_ns);
        }
    }
    // Chapters, boards and measurements: only the chunks whose index says they hold marks or
    // scene changes are decoded.
    let mut chapters = Vec::new();
    let mut boards = std::collections::BTreeSet::new();
    let mut measurements = std::collections::BTreeSet::new();
    let mut damage: Vec<String> = reader.damage().iter().map(describe_damage).collect();
    let marks: Vec<usize> = reader
        .index()
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.stream(StreamId::Marks as u8).is_some() || e.stream(StreamId::Scene as u8).is_some()
        })
        .map(|(i, _)| i)
        .collect();
    for i in marks {
        match reader.read_chunk(i, DecodeParts::EVENTS) {
            Ok(chunk) => {
                for e in chunk.events {
                    match e.payload {
                        Payload::Chapter(c) => chapters.push(ChapterInfo {
                            time_ns: e.time_ns,
                            title: c.title,
                        }),
                        Payload::Scene(SceneChange::BoardShow { board_id, .. }) => {
                            boards.insert(board_id);
                        }
                        Payload::Scene(SceneChange::MeasurementShow { id, .. }) => {
                            measurements.insert(id);
                        }
                        _ => {}
                    }
                }
            }
            Err(e) => damage.push(crate::error::full_message(&e)),
        }
    }
    let voice = VoiceInfo::of(&crate::voice::VoiceIndex::build(&mut reader)?);
    Ok(LessonInfo {
        path: reader.path().to_path_buf(),
        file_bytes: reader.file_len(),
        format_version: reader.header().format_version,
        format_minor_version: reader.header().format_minor_version,
        header: reader.header().lesson.clone(),
        has_footer: *reader.index_origin() == IndexOrigin::Footer,
        chunk_count: reader.index().len(),
        keyframe_count: reader.index().iter().filter(|e| e.keyframe).count(),
        time_range_ns: reader.time_range_ns(),
        streams: streams.into_values().collect(),
        chapters,
        damage,
        voice,
        boards_shown: boards.len(),
        measurements_shown: measurements.len(),
    })
}

fn stream_name(code: u8) -> String {
    StreamId::from_code(code).map_or_else(|| format!("stream-{code}"), |s| s.name().to_owned())
}

fn describe_damage(d: &DamagedRegion) -> String {
    let when = d.frame.as_ref().map_or(String::new(), |h| {
        format!(
            ", events {} to {}",
            format_time_ns(h.t_start_ns),
            format_time_ns(h.t_end_ns)
        )
    });
    format!("{} bytes at byte {}: {}{when}", d.len, d.offset, d.reason)
}

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Absolute byte offset, where known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "at byte {o}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// What `lesson verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The file.
    pub path: PathBuf,
    /// Intact chunks (both checksums good and the payload decodes).
    pub intact_chunks: usize,
    /// Events in intact chunks.
    pub event_count: u64,
    /// Whether a footer index was found and matches the chunks.
    pub footer_ok: bool,
    /// Records of unknown types skipped (not a problem: written by a newer version).
    pub unknown_records: u64,
    /// Everything wrong, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problems: every chunk intact, no gaps, a footer that matches.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_clean() { "clean" } else { "DAMAGED" };
        writeln!(
            f,
            "{}: {verdict}: {} intact chunks, {} events, footer {}",
            self.path.display(),
            self.intact_chunks,
            self.event_count,
            if self.footer_ok {
                "ok"
            } else {
                "missing or wrong"
            }
        )?;
        if self.unknown_records > 0 {
            writeln!(
                f,
                "  {} records of unknown types skipped (written by a newer version)",
                self.unknown_records
            )?;
        }
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Reads a whole file into memory, with the error naming it.
fn read_all(path: &Path) -> Result<Vec<u8>, LessonError> {
    let data = std::fs::read(path).map_err(|e| LessonError::io(path, "reading", e))?;
    if data.is_empty() {
        return Err(LessonError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

struct Examined {
    header: FileHeader,
    scanned: ScanResult,
    /// Index positions (in `index_from_scan` order) of chunks whose payload decodes.
    good: Vec<crate::format::ChunkIndexEntry>,
    problems: Vec<Problem>,
    event_count: u64,
    unknown_records: u64,
}

/// Checks every frame of `data`.
fn examine(path: &Path, data: &[u8]) -> Result<Examined, LessonError> {
    let header = decode_file_header(data).map_err(|source| LessonError::Header {
        path: path.to_path_buf(),
        source,
    })?;
    let body = data.get(header.len..).unwrap_or_default();
    let scanned = crate::format::scan(body, header.len as u64);
    let mut problems: Vec<Problem> = scanned
        .damaged
        .iter()
        .map(|d| Problem {
            offset: Some(d.offset),
            message: describe_damage(d),
        })
        .collect();
    let mut good = Vec::new();
    let (mut event_count, mut unknown_records) = (0u64, 0u64);
    // Board images stored, and where each image is first shown (1.3).
    let mut images = std::collections::HashSet::new();
    let mut shown: Vec<(ImageHash, u32, i64, u64)> = Vec::new();
    for entry in index_from_scan(&scanned) {
        let payload = usize::try_from(entry.offset)
            .ok()
            .and_then(|o| data.get(o..))
            .ok_or(crate::error::DecodeError::Truncated {
                offset: 0,
                what: "frame",
            })
            .and_then(crate::format::decode_frame_header)
            .and_then(|h| {
                let start = usize::try_from(entry.offset).unwrap_or(usize::MAX) + h.header_len();
                crate::format::decode_frame_payload(&h, data.get(start..).unwrap_or_default())
            })
            .and_then(|p| decode_payload(&p, entry.t_start_ns, DecodeParts::ALL))
            .and_then(|chunk| {
                chunk
                    .check_times(entry.t_start_ns, entry.t_end_ns)
                    .map(|()| chunk)
            });
        match payload {
            Ok(chunk) => {
                unknown_records += u64::from(chunk.unknown_records);
                let mut show = |board_id: u32, image: ImageHash, time_ns: i64| {
                    if !shown.iter().any(|s| s.0 == image) {
                        shown.push((image, board_id, time_ns, entry.offset));
                    }
                };
                if let Some(kf) = &chunk.keyframe {
                    for (&id, b) in &kf.scene.boards {
                        show(id, b.image, entry.t_start_ns);
                    }
                }
                for e in &chunk.events {
                    match &e.payload {
                        Payload::Image(image) => {
                            images.insert(image.hash);
                        }
                        Payload::Scene(SceneChange::BoardShow {
                            board_id, image, ..
                        }) => show(*board_id, *image, e.time_ns),
                        _ => {}
                    }
                }
                event_count += chunk.into_events().len() as u64;
                good.push(entry);
            }
            Err(e) => problems.push(Problem {
                offset: Some(entry.offset),
                message: format!("chunk {} does not decode: {e}", entry.seq),
            }),
        }
    }
    for (image, board_id, time_ns, offset) in shown {
        if !images.contains(&image) {
            problems.push(Problem {
                offset: Some(offset),
                message: format!(
                    "board {board_id} shows image {image} at {}, but no image record in the \
                     lesson holds it",
                    format_time_ns(time_ns)
                ),
            });
        }
    }
    // Sequence gaps: chunks that are gone without a trace (cut out, or inside garbage).
    let mut expected = 0u64;
    for e in &good {
        if e.seq > expected {
            problems.push(Problem {
                offset: Some(e.offset),
                message: format!("chunks {expected} to {} are missing", e.seq - 1),
            });
        }
        // Sequence numbers come from the file: u64::MAX must not overflow.
        expected = e.seq.saturating_add(1);
    }
    problems.sort_by_key(|p| p.offset);
    Ok(Examined {
        header,
        scanned,
        good,
        problems,
        event_count,
        unknown_records,
    })
}

/// Checks every chunk of a lesson file: checksums, decoding, sequence gaps and the footer.
///
/// # Errors
/// Only if the file cannot be read or is not a lesson at all (empty, bad header); damage
/// inside a lesson is reported in the [`VerifyReport`].
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, LessonError> {
    let path = path.as_ref();
    let data = read_all(path)?;
    let mut ex = examine(path, &data)?;
    let footer_ok = match (&ex.scanned.footer, ex.scanned.trailer_offset) {
        (Some((frame, payload)), Some(_)) => match decode_index(payload) {
            Ok(index) if index == ex.good => true,
            Ok(_) => {
                ex.problems.push(Problem {
                    offset: Some(frame.offset),
                    message: "the footer index does not match the chunks in the file".to_owned(),
                });
                false
            }
            Err(e) => {
                ex.problems.push(Problem {
                    offset: Some(frame.offset),
                    message: format!("footer index does not decode: {e}"),
                });
                false
            }
        },
        _ => {
            ex.problems.push(Problem {
                offset: None,
                message: "no footer: the recording was not finished (run `lesson recover`)"
                    .to_owned(),
            });
            false
        }
    };
    Ok(VerifyReport {
        path: path.to_path_buf(),
        intact_chunks: ex.good.len(),
        event_count: ex.event_count,
        footer_ok,
        unknown_records: ex.unknown_records,
        problems: ex.problems,
    })
}

/// What `lesson recover` did.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverReport {
    /// The damaged input.
    pub input: PathBuf,
    /// The rebuilt file.
    pub output: PathBuf,
    /// Chunks copied.
    pub chunks_kept: usize,
    /// Events in them.
    pub events_kept: u64,
    /// Time range of the kept events.
    pub kept_time_range_ns: Option<(i64, i64)>,
    /// Whether the input had a usable footer (a finished recording).
    pub input_had_footer: bool,
    /// What was lost, in file order.
    pub lost: Vec<Problem>,
}

impl fmt::Display for RecoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} -> {}: kept {} chunks, {} events{}",
            self.input.display(),
            self.output.display(),
            self.chunks_kept,
            self.events_kept,
            self.kept_time_range_ns
                .map_or(String::new(), |(a, b)| format!(
                    " ({} to {})",
                    format_time_ns(a),
                    format_time_ns(b)
                ))
        )?;
        if self.lost.is_empty() {
            writeln!(f, "nothing was lost")?;
        } else {
            writeln!(f, "lost:")?;
            for p in &self.lost {
                writeln!(f, "  {p}")?;
            }
        }
        Ok(())
    }
}

/// Rebuilds a crashed, truncated or damaged lesson into a new file: the original header,
/// every intact chunk (copied byte for byte, so keyframe references stay valid), and a new
/// footer index. The output is written to a temporary name and put in place when complete,
/// never over an existing file (a lesson someone kept there is not replaced).
///
/// # Errors
/// If the input cannot be read or has no valid header, if `output` is the input or already
/// exists, or if writing fails.
pub fn recover(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
) -> Result<RecoverReport, LessonError> {
    let (input, output) = (input.as_ref(), output.as_ref());
    let same = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => input == output,
    };
    if same {
        return Err(LessonError::InvalidArgument {
            path: output.to_path_buf(),
            reason: "the output must be a different file from the input".to_owned(),
        });
    }
    if output.symlink_metadata().is_ok() {
        return Err(LessonError::Exists {
            path: output.to_path_buf(),
        });
    }
    let data = read_all(input)?;
    let ex = examine(input, &data)?;
    let mut bytes: Vec<u8> = data.get(..ex.header.len).unwrap_or_default().to_vec();
    let mut index = Vec::with_capacity(ex.good.len());
    for e in &ex.good {
        let frame = usize::try_from(e.offset)
            .ok()
            .zip(usize::try_from(e.frame_len).ok())
            .and_then(|(o, n)| data.get(o..o.checked_add(n)?));
        if let Some(frame) = frame {
            let mut moved = e.clone();
            moved.offset = bytes.len() as u64;
            bytes.extend_from_slice(frame);
            index.push(moved);
        }
    }
    let footer_offset = bytes.len() as u64;
    let footer = encode_footer(&index, EncoderOptions::default())
        .map_err(|e| LessonError::io(output, "encoding the footer", e))?;
    bytes.extend_from_slice(&footer);
    bytes.extend_from_slice(&encode_trailer(footer_offset));

    let mut partial = output.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        // A hard link fails when the output appeared meanwhile, where a rename would replace it.
        let linked = std::fs::hard_link(&partial, output);
        std::fs::remove_file(&partial)?;
        linked
    };
    write().map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists && output.symlink_metadata().is_ok() {
            LessonError::Exists {
                path: output.to_path_buf(),
            }
        } else {
            LessonError::io(output, "writing the recovered lesson", e)
        }
    })?;

    let lost = ex
        .problems
        .into_iter()
        .filter(|p| !p.message.starts_with("no footer"))
        .collect();
    Ok(RecoverReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        chunks_kept: index.len(),
        events_kept: ex.event_count,
        kept_time_range_ns: index
            .iter()
            .map(|e| e.t_start_ns)
            .min()
            .zip(index.iter().map(|e| e.t_end_ns).max()),
        input_had_footer: ex.scanned.footer.is_some() && ex.scanned.trailer_offset.is_some(),
        lost,
    })
}

/// What `lesson dump` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DumpReport {
    /// Events written.
    pub event_count: u64,
    /// Chunks that could not be read (skipped), with the reason.
    pub damaged_chunks: Vec<String>,
}

#[derive(Serialize)]
struct DumpLine<'a> {
    time_ns: i64,
    stream: &'static str,
    #[serde(flatten)]
    payload: DumpPayload<'a>,
}

/// An event as `dump` prints it: as recorded, except that a board image is summarised (its
/// compressed pixels would be megabytes of numbers).
#[derive(Serialize)]
#[serde(untagged)]
enum DumpPayload<'a> {
    Event(&'a Payload),
    Image { image: ImageSummary },
}

#[derive(Serialize)]
struct ImageSummary {
    hash: ImageHash,
    width: u32,
    height: u32,
    format: PixelFormat,
    spacing: PixelSpacing,
    compressed_bytes: usize,
}

impl<'a> DumpPayload<'a> {
    fn of(payload: &'a Payload) -> Self {
        match payload {
            Payload::Image(image) => Self::Image {
                image: ImageSummary {
                    hash: image.hash,
                    width: image.width,
                    height: image.height,
                    format: image.format,
                    spacing: image.spacing,
                    compressed_bytes: image.zstd.len(),
                },
            },
            other => Self::Event(other),
        }
    }
}

/// Writes a lesson as JSON lines: first `{"header": ...}`, then one event per line in time
/// order (`{"time_ns": ..., "stream": "head", "head": {...}}`). Damaged chunks are skipped
/// and listed in the report.
///
/// # Errors
/// If the file cannot be opened, or writing to `out` fails (a broken pipe included: the
/// caller decides whether that is an error).
pub fn dump(path: impl AsRef<Path>, out: &mut dyn Write) -> Result<DumpReport, LessonError> {
    let mut reader = LessonReader::open(path)?;
    let out_err = |e: std::io::Error| LessonError::io(Path::new("<output>"), "writing", e);
    let header = serde_json::json!({
        "header": reader.header().lesson,
        "format_version": reader.header().format_version,
    });
    writeln!(out, "{header}").map_err(out_err)?;
    let mut report = DumpReport {
        damaged_chunks: reader.damage().iter().map(describe_damage).collect(),
        ..DumpReport::default()
    };
    for i in 0..reader.index().len() {
        match reader.read_chunk(i, DecodeParts::ALL) {
            Ok(chunk) => {
                for e in chunk.into_events() {
                    let line = DumpLine {
                        time_ns: e.time_ns,
                        stream: e.stream().name(),
                        payload: DumpPayload::of(&e.payload),
                    };
                    serde_json::to_writer(&mut *out, &line)
                        .map_err(|e| out_err(std::io::Error::from(e)))?;
                    out.write_all(b"\n").map_err(out_err)?;
                    report.event_count += 1;
                }
            }
            Err(e) => report.damaged_chunks.push(crate::error::full_message(&e)),
        }
    }
    out.flush().map_err(out_err)?;
    Ok(report)
}
