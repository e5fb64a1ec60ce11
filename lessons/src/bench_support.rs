//! The lesson benchmark, as a library function so that `cargo bench` (in the benches crate)
//! and the `lesson_bench` example print the same figures. It prints; it asserts nothing.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::chunk::{ChunkBuilder, DecodeParts};
use crate::encoder::{EncoderOptions, LessonEncoder};
use crate::error::LessonError;
use crate::event::{Event, Payload, StreamId, HAND_JOINT_COUNT};
use crate::format::{encode_frame, frame_kind, Compression, LessonHeader};
use crate::player::Player;
use crate::reader::LessonReader;
use crate::recorder::{Recorder, RecorderOptions};
use crate::synthetic::{HandNoise, Rng, SyntheticInstructor, FRAME_PERIOD_NS};

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Length of the generated lesson (the seek benchmark uses all of it, sizes the first
    /// hour).
    pub lesson_duration_ns: i64,
    /// Random `state_at` calls.
    pub seek_samples: usize,
    /// Frames recorded in real time (90 Hz) to time the producer's cost.
    pub producer_frames: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            lesson_duration_ns: 2 * 3600 * 1_000_000_000,
            seek_samples: 2000,
            producer_frames: 270,
        }
    }
}

/// Sizes of one stream.
#[derive(Debug, Clone)]
pub struct StreamSize {
    /// Stream name.
    pub name: &'static str,
    /// MB per hour before compression (quantised, delta-coded, varint-packed).
    pub encoded_mb_per_hour: f64,
    /// MB per hour compressing this stream's records alone, per chunk, at the file's zstd
    /// level (the streams share chunks in the file, so these add up to about the total).
    pub compressed_mb_per_hour: f64,
    /// MB per hour as raw f32 values plus an i64 time per sample (for comparison).
    pub raw_mb_per_hour: f64,
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub median: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Maximum.
    pub max: Duration,
}

impl Latency {
    /// Percentiles of a set of timings.
    #[must_use]
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| {
            // Index into a sorted sample list.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((samples.len().saturating_sub(1)) as f64 * q).round() as usize;
            samples.get(i).copied().unwrap_or_default()
        };
        Self {
            median: at(0.5),
            p99: at(0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "median {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            self.median.as_secs_f64() * 1e6,
            self.p99.as_secs_f64() * 1e6,
            self.max.as_secs_f64() * 1e6
        )
    }
}

/// The figures.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Per-stream sizes over the first hour.
    pub streams: Vec<StreamSize>,
    /// File bytes for the first hour (chunks whose events start in it), MB.
    pub total_mb_per_hour: f64,
    /// Raw-float equivalent, MB per hour.
    pub raw_mb_per_hour: f64,
    /// Total MB per hour with the pessimistic independent per-joint noise model (measured
    /// over ten simulated minutes).
    pub independent_noise_mb_per_hour: f64,
    /// Length of the generated lesson.
    pub lesson_duration_ns: i64,
    /// File size of the whole lesson.
    pub file_bytes: u64,
    /// Wall time to generate and record the whole lesson.
    pub record_time: Duration,
    /// Time to open the lesson from its footer.
    pub open_footer: Duration,
    /// Time to open it by scanning (footer removed).
    pub open_scan: Duration,
    /// `state_at` at random times.
    pub state_at_random: Latency,
    /// `state_at` stepping forward one 60 Hz frame at a time.
    pub scrub_forward: Latency,
    /// `state_at` stepping backward one 60 Hz frame at a time.
    pub scrub_backward: Latency,
    /// Cost of `Recorder::record` per display frame (head + 2 hands + extras), real time.
    pub producer_per_frame: Latency,
    /// Events dropped during the real-time producer run.
    pub producer_dropped: u64,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "synthetic instructor: head + 2 hands at 90 Hz, a stroke every ~5 s, a scene change every ~10 s")?;
        #[allow(clippy::cast_precision_loss)]
        let hours = self.lesson_duration_ns as f64 / 3.6e12;
        writeln!(
            f,
            "lesson: {hours:.2} h, {:.1} MB, recorded in {:.1} s",
            self.file_bytes as f64 / 1e6,
            self.record_time.as_secs_f64()
        )?;
        writeln!(f, "size over the first hour (MB/h):")?;
        writeln!(
            f,
            "  {:<12} {:>10} {:>12} {:>12}",
            "stream", "raw f32", "quantised", "compressed"
        )?;
        for s in &self.streams {
            writeln!(
                f,
                "  {:<12} {:>10.2} {:>12.2} {:>12.2}",
                s.name, s.raw_mb_per_hour, s.encoded_mb_per_hour, s.compressed_mb_per_hour
            )?;
        }
        writeln!(
            f,
            "  {:<12} {:>10.2} {:>12} {:>12.2}   (file bytes; aim < 40)",
            "total", self.raw_mb_per_hour, "", self.total_mb_per_hour
        )?;
        writeln!(
            f,
            "  total with independent per-joint noise (pessimistic): {:.2} MB/h",
            self.independent_noise_mb_per_hour
        )?;
        writeln!(
            f,
            "open: from footer {:.2} ms, by scan {:.1} ms",
            self.open_footer.as_secs_f64() * 1e3,
            self.open_scan.as_secs_f64() * 1e3
        )?;
        writeln!(
            f,
            "state_at, random times: {}   (aim p99 < 5 ms)",
            self.state_at_random
        )?;
        writeln!(f, "state_at, scrub forward: {}", self.scrub_forward)?;
        writeln!(f, "state_at, scrub backward: {}", self.scrub_backward)?;
        writeln!(
            f,
            "producer cost per frame: {}   (aim < 20 µs), {} dropped",
            self.producer_per_frame, self.producer_dropped
        )
    }
}

/// Removes `path` if it exists.
fn remove_if_present(path: &Path) -> Result<(), LessonError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(LessonError::io(path, "removing an earlier run's file", e))
        }
        _ => Ok(()),
    }
}

/// Runs the benchmark, writing its files into `dir` (`bench-2h.lesson`,
/// `bench-2h-unfinished.lesson`, `bench-live.lesson`; files of those names from an earlier
/// run are replaced).
///
/// # Errors
/// If recording or reading the files fails.
pub fn run(config: BenchConfig, dir: &Path) -> Result<BenchReport, LessonError> {
    let path = dir.join("bench-2h.lesson");
    let options = RecorderOptions {
        sync_each_chunk: false,
        channel_capacity: 1 << 14,
        ..RecorderOptions::default()
    };
    let header = LessonHeader::new("sha256:bench", 0);
    // The benchmark's own scratch files, left by an earlier run into the same `dir`:
    // recordings never replace a file, so clear them first.
    for name in [
        "bench-2h.lesson",
        "bench-2h-unfinished.lesson",
        "bench-live.lesson",
    ] {
        remove_if_present(&dir.join(name))?;
    }

    // 1. Record the whole lesson as fast as possible (back-pressure instead of dropping).
    let started = Instant::now();
    let recorder = Recorder::create(&path, &header, options)?;
    let mut instructor = SyntheticInstructor::new(7);
    let mut frame = Vec::new();
    while instructor.time_ns() < config.lesson_duration_ns {
        frame.clear();
        instructor.next_frame(&mut frame);
        for e in frame.drain(..) {
            recorder.record_blocking(e)?;
        }
    }
    let recorded = recorder.finish()?;
    let record_time = started.elapsed();

    // 2. Sizes over the first hour.
    let hour_ns = config.lesson_duration_ns.clamp(1, 3_600_000_000_000);
    #[allow(clippy::cast_precision_loss)]
    let hours = hour_ns as f64 / 3.6e12;
    let mut reader = LessonReader::open(&path)?;
    let mut total_bytes = 0u64;
    let mut encoded = [0u64; 9];
    let mut compressed = [0u64; 9];
    let mut raw = [0u64; 9];
    let level = EncoderOptions::default().zstd_level;
    for i in 0..reader.index().len() {
        let entry = reader.index()[i].clone();
        if entry.t_start_ns >= hour_ns {
            break;
        }
        total_bytes += entry.frame_len;
        for s in &entry.streams {
            if let Some(slot) = encoded.get_mut(usize::from(s.stream)) {
                *slot += u64::from(s.encoded_bytes);
            }
        }
        let chunk = reader.read_chunk(i, DecodeParts::ALL)?;
        let keyframe = chunk.keyframe.clone();
        let mut builders: Vec<ChunkBuilder> = (0..9).map(|_| ChunkBuilder::new(None)).collect();
        if keyframe.is_some() {
            builders[StreamId::Keyframe as usize] = ChunkBuilder::new(keyframe);
        }
        for e in chunk.into_events() {
            let s = e.stream() as usize;
            raw[s] += raw_size(&e);
            builders[s].push(e);
        }
        for (s, b) in builders.iter().enumerate() {
            let payload = if s == StreamId::Keyframe as usize {
                // A keyframe-only builder needs an event to have a time range.
                let mut b = b.clone();
                b.push(Event::new(
                    entry.t_start_ns,
                    Payload::Note(crate::event::Note {
                        text: String::new(),
                    }),
                ));
                b.encode()
            } else {
                b.encode()
            };
            if let Some(p) = payload {
                let frame = encode_frame(
                    frame_kind::CHUNK,
                    0,
                    0,
                    0,
                    0,
                    &[],
                    &p.bytes,
                    Compression::Zstd,
                    level,
                )
                .map_err(|e| LessonError::io(&path, "compressing for the benchmark", e))?;
                compressed[s] += frame.len() as u64;
            }
        }
    }
    let mb_h = |b: u64| {
        #[allow(clippy::cast_precision_loss)]
        let v = b as f64 / 1e6 / hours;
        v
    };
    let streams = StreamId::ALL
        .iter()
        .filter(|s| encoded[**s as usize] > 0)
        .map(|s| StreamSize {
            name: s.name(),
            encoded_mb_per_hour: mb_h(encoded[*s as usize]),
            compressed_mb_per_hour: mb_h(compressed[*s as usize]),
            raw_mb_per_hour: mb_h(raw[*s as usize]),
        })
        .collect();

    // 3. Opening.
    let t = Instant::now();
    let mut player = Player::open(&path)?;
    let open_footer = t.elapsed();
    let unfinished = dir.join("bench-2h-unfinished.lesson");
    let bytes = std::fs::read(&path).map_err(|e| LessonError::io(&path, "reading", e))?;
    let cut = usize::try_from(
        player
            .reader()
            .index()
            .last()
            .map_or(0, |e| e.offset + e.frame_len),
    )
    .unwrap_or(bytes.len());
    std::fs::write(&unfinished, bytes.get(..cut).unwrap_or_default())
        .map_err(|e| LessonError::io(&unfinished, "writing", e))?;
    let t = Instant::now();
    let scanned = Player::open(&unfinished)?;
    let open_scan = t.elapsed();
    drop(scanned);
    let _ = std::fs::remove_file(&unfinished);

    // 4. state_at at random times, then scrubbing.
    let (t0, t1) = player.time_range_ns().unwrap_or((0, 0));
    let mut rng = Rng::new(99);
    let span = u64::try_from(t1 - t0).unwrap_or(1).max(1);
    let mut random = Vec::with_capacity(config.seek_samples);
    for _ in 0..config.seek_samples {
        #[allow(clippy::cast_possible_wrap)]
        let at = t0 + rng.below(span) as i64;
        let t = Instant::now();
        let state = player.state_at(at);
        random.push(t.elapsed());
        std::hint::black_box(state);
    }
    let step = 1_000_000_000 / 60;
    let mid = t0 + (t1 - t0) / 3;
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    for i in 0..600 {
        let t = Instant::now();
        std::hint::black_box(player.state_at(mid + i * step));
        forward.push(t.elapsed());
    }
    for i in 0..600 {
        let t = Instant::now();
        std::hint::black_box(player.state_at(mid + (600 - i) * step + 7_000_000_000));
        backward.push(t.elapsed());
    }

    // 5. The producer's cost per frame, in real time with the default (syncing) recorder.
    let live = dir.join("bench-live.lesson");
    let recorder = Recorder::create(&live, &header, RecorderOptions::default())?;
    let mut instructor = SyntheticInstructor::new(11);
    let mut per_frame = Vec::with_capacity(config.producer_frames);
    let start = Instant::now();
    for i in 0..config.producer_frames {
        frame.clear();
        instructor.next_frame(&mut frame);
        let t = Instant::now();
        for e in frame.drain(..) {
            recorder.record(e);
        }
        per_frame.push(t.elapsed());
        let due =
            Duration::from_nanos(u64::try_from(FRAME_PERIOD_NS).unwrap_or(0) * (i as u64 + 1));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let producer_dropped = recorder.dropped_event_count();
    recorder.finish()?;
    let _ = std::fs::remove_file(&live);

    let raw_total: u64 = raw.iter().sum();
    let independent_noise_mb_per_hour = independent_noise_size()?;
    Ok(BenchReport {
        streams,
        total_mb_per_hour: mb_h(total_bytes),
        raw_mb_per_hour: mb_h(raw_total),
        independent_noise_mb_per_hour,
        lesson_duration_ns: config.lesson_duration_ns,
        file_bytes: recorded.bytes_written,
        record_time,
        open_footer,
        open_scan,
        state_at_random: Latency::of(random),
        scrub_forward: Latency::of(forward),
        scrub_backward: Latency::of(backward),
        producer_per_frame: Latency::of(per_frame),
        producer_dropped,
    })
}

/// MB per hour of ten minutes with [`HandNoise::IndependentPerJoint`], encoded in memory.
fn independent_noise_size() -> Result<f64, LessonError> {
    let minutes = 10;
    let (mut encoder, header) = LessonEncoder::new(
        &LessonHeader::new("sha256:bench", 0),
        EncoderOptions::default(),
    )
    .map_err(|e| LessonError::WriterStopped {
        path: "<memory>".into(),
        reason: crate::error::full_message(&e),
    })?;
    let mut bytes = header.len() as u64;
    let mut instructor = SyntheticInstructor::with_noise(5, HandNoise::IndependentPerJoint);
    let mut frame = Vec::new();
    let stopped = |e: crate::encoder::EncodeError| LessonError::WriterStopped {
        path: "<memory>".into(),
        reason: crate::error::full_message(&e),
    };
    while instructor.time_ns() < minutes * 60 * 1_000_000_000 {
        frame.clear();
        instructor.next_frame(&mut frame);
        for e in frame.drain(..) {
            if let Some(f) = encoder.push(e).map_err(stopped)? {
                bytes += f.len() as u64;
            }
        }
    }
    bytes += encoder.finish().map_err(stopped)?.len() as u64;
    #[allow(clippy::cast_precision_loss)]
    let mb_h = bytes as f64 / 1e6 * 60.0 / minutes as f64;
    Ok(mb_h)
}

/// Size of an event as raw f32 values plus an 8-byte time.
fn raw_size(e: &Event) -> u64 {
    8 + match &e.payload {
        Payload::Head(_) => 28,
        Payload::Hand(h) => h.joints.map_or(1, |_| HAND_JOINT_COUNT as u64 * 32 + 4),
        Payload::Controller(_) => 2 * 28 + 4 + 16,
        Payload::StrokePoint(_) => 4 + 12 + 4,
        _ => 32,
    }
}
