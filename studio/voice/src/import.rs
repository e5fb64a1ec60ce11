//! A voice-over for a lesson recorded without one: a WAV file, coded like live narration and
//! placed at a lesson time, written with every original event into a new lesson file. The
//! original is never touched.

use std::path::{Path, PathBuf};

use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::event::Event;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_lessons::voice::VoiceIndex;

use crate::error::VoiceError;
use crate::narration::{NarrationEncoder, NarrationStats};
use crate::source::CapturedBuffer;
use crate::wav::WavReader;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The new lesson.
    pub path: PathBuf,
    /// The narration written.
    pub narration: NarrationStats,
    /// Original events copied.
    pub events_copied: u64,
    /// Original chunks that could not be read (their events are missing from the copy).
    pub chunks_skipped: usize,
}

/// Writes `out`: the lesson at `lesson` with the WAV file `audio` as its narration, starting
/// at lesson time `at_ns`.
///
/// # Errors
/// If `out` exists or is the original, if the lesson already has narration, if the audio is
/// not a readable WAV file, or on any read or write failure.
pub fn import_voice_over(
    lesson: &Path,
    audio: &Path,
    at_ns: i64,
    out: &Path,
) -> Result<ImportReport, VoiceError> {
    if same_file(lesson, out) {
        return Err(VoiceError::Invalid(format!(
            "{} is the lesson itself: import-audio writes a new lesson and never changes the original",
            out.display()
        )));
    }
    let mut reader = LessonReader::open(lesson)?;
    if VoiceIndex::build(&mut reader)?.has_voice() {
        return Err(VoiceError::Invalid(format!(
            "{} already has narration; import-audio adds a voice-over to a lesson recorded without one",
            lesson.display()
        )));
    }
    let mut wav = WavReader::open(audio)?;
    let rate = wav.sample_rate_hz();

    // The voice first (it is small: about 11 MB an hour), then merged into the events.
    let mut voice: Vec<Event> = Vec::new();
    let mut pipeline = NarrationEncoder::new(rate)?;
    let start = std::time::Instant::now();
    let mut frames = 0u64;
    loop {
        let block = wav.next_block()?;
        if block.is_empty() {
            break;
        }
        #[allow(clippy::cast_possible_wrap)]
        let t = at_ns + (frames as i64).saturating_mul(1_000_000_000) / i64::from(rate);
        frames += block.len() as u64;
        let buffer = CapturedBuffer {
            samples: block,
            captured_at: start,
        };
        pipeline.push(&buffer, Some(t), false, &mut |e| voice.push(e))?;
    }
    let narration = pipeline.finish(&mut |e| voice.push(e))?;
    voice.sort_by_key(|e| e.time_ns);

    let header = reader.header().lesson.clone();
    let recorder = Recorder::create(
        out,
        &header,
        RecorderOptions {
            sync_each_chunk: false,
            ..RecorderOptions::default()
        },
    )?;
    let mut pending = voice.into_iter().peekable();
    let mut events_copied = 0u64;
    let mut chunks_skipped = 0usize;
    for i in 0..reader.index().len() {
        let Ok(chunk) = reader.read_chunk(i, DecodeParts::ALL) else {
            chunks_skipped += 1;
            continue;
        };
        for e in chunk.into_events() {
            while let Some(v) = pending.next_if(|v| v.time_ns <= e.time_ns) {
                recorder.record_blocking(v)?;
            }
            recorder.record_blocking(e)?;
            events_copied += 1;
        }
    }
    for v in pending {
        recorder.record_blocking(v)?;
    }
    let report = recorder.finish()?;
    Ok(ImportReport {
        path: report.path,
        narration,
        events_copied,
        chunks_skipped,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
