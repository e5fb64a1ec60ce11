//! Narration benchmark: what voice adds to a lesson (MB per hour), the recorder's producer
//! cost per display frame while the voice thread runs beside it, seeking in a two-hour lesson
//! with narration, and Opus encode and decode cost per packet. The same synthetic instructor as
//! the lessons bench (head + two hands at 90 Hz, strokes, scene changes) is recorded with and
//! without narration in the same run, so "voice adds" is a difference of two measurements.
//! The narration is espeak-ng speech (setup installs it) repeated with 1.5 s pauses between
//! sentences. Prints figures; asserts nothing.
//!
//! `cargo bench --workspace --profile dev --bench voice [-- --quick]` (`--quick`: 20 minutes
//! instead of two hours).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use twinray_lessons::bench_support::Latency;
use twinray_lessons::event::{Event, Payload, StreamId};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_lessons::synthetic::{Rng, SyntheticInstructor, FRAME_PERIOD_NS};
use twinray_voice::capture::VoiceCapture;
use twinray_voice::clock::LessonClock;
use twinray_voice::codec::{OpusDecoder, MAX_DECODED_SAMPLES};
use twinray_voice::narration::NarrationEncoder;
use twinray_voice::playback::NarrationPlayer;
use twinray_voice::source::{CapturedBuffer, SimulatedSource};
use twinray_voice::wav::WavReader;

const HOUR_NS: i64 = 3_600_000_000_000;

fn speech(dir: &Path) -> Result<Vec<f32>> {
    let raw = dir.join("speech.wav");
    let wav = dir.join("speech-48k.wav");
    let text = "The needle passes between the spinous processes of the third and fourth lumbar \
                vertebrae. Keep to the midline and aim slightly towards the head. When the \
                resistance gives, you are through the ligamentum flavum.";
    let ok = Command::new("espeak-ng")
        .args(["-s", "160", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .context("espeak-ng (make setup installs it)")?
        .success()
        && Command::new("sox")
            .arg(&raw)
            .args(["-r", "48000"])
            .arg(&wav)
            .status()
            .context("sox (make setup installs it)")?
            .success();
    if !ok {
        bail!("espeak-ng or sox failed");
    }
    let mut reader = WavReader::open(&wav)?;
    let mut all = Vec::new();
    loop {
        let b = reader.next_block()?;
        if b.is_empty() {
            break;
        }
        all.extend(b);
    }
    // A pause after each sentence.
    all.extend(std::iter::repeat_n(0.0, 72_000));
    Ok(all)
}

/// The narration of `duration_ns`, as lesson events; also the encode time per packet.
fn narration(speech: &[f32], duration_ns: i64) -> Result<(Vec<Event>, Duration)> {
    let mut pipeline = NarrationEncoder::new(48_000)?;
    let mut events = Vec::new();
    let start = Instant::now();
    let total = usize::try_from(duration_ns / 1_000_000_000 * 48_000).unwrap_or(0);
    let mut done = 0usize;
    while done < total {
        let n = 480.min(total - done);
        let samples: Vec<f32> = (done..done + n).map(|i| speech[i % speech.len()]).collect();
        #[allow(clippy::cast_possible_wrap)]
        let t = done as i64 * 1_000_000_000 / 48_000;
        pipeline.push(
            &CapturedBuffer {
                samples,
                captured_at: start,
            },
            Some(t),
            false,
            &mut |e| events.push(e),
        )?;
        done += n;
    }
    pipeline.finish(&mut |e| events.push(e))?;
    let per_packet = start.elapsed() / u32::try_from(pipeline.stats().packets.max(1)).unwrap_or(1);
    Ok((events, per_packet))
}

/// Records the synthetic instructor for `duration_ns`, with `voice` merged in by time.
fn record(path: &Path, duration_ns: i64, voice: &[Event]) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let options = RecorderOptions {
        sync_each_chunk: false,
        channel_capacity: 1 << 14,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::create(path, &LessonHeader::new("sha256:bench", 0), options)?;
    let mut instructor = SyntheticInstructor::new(7);
    let mut frame = Vec::new();
    let mut voice = voice.iter().peekable();
    while instructor.time_ns() < duration_ns {
        frame.clear();
        instructor.next_frame(&mut frame);
        let until = instructor.time_ns();
        while let Some(v) = voice.next_if(|v| v.time_ns < until) {
            recorder.record_blocking(v.clone())?;
        }
        for e in frame.drain(..) {
            recorder.record_blocking(e)?;
        }
    }
    for v in voice {
        recorder.record_blocking(v.clone())?;
    }
    recorder.finish()?;
    Ok(())
}

/// File bytes of the chunks starting in the first hour (or the whole span, if shorter),
/// per hour; and the audio stream's share.
fn mb_per_hour(path: &Path, duration_ns: i64) -> Result<(f64, f64)> {
    let reader = LessonReader::open(path)?;
    let span = duration_ns.min(HOUR_NS);
    let (mut total, mut audio) = (0u64, 0u64);
    for e in reader.index().iter().filter(|e| e.t_start_ns < span) {
        total += e.frame_len;
        audio += e
            .stream(StreamId::Audio as u8)
            .map_or(0, |s| u64::from(s.encoded_bytes));
    }
    #[allow(clippy::cast_precision_loss)]
    let hours = span as f64 / HOUR_NS as f64;
    #[allow(clippy::cast_precision_loss)]
    Ok((total as f64 / 1e6 / hours, audio as f64 / 1e6 / hours))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let duration_ns = if quick { HOUR_NS / 3 } else { 2 * HOUR_NS };
    let dir = std::env::temp_dir().join(format!("twinray-voice-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let speech = speech(&dir)?;

    let (voice, encode_per_packet) = narration(&speech, duration_ns)?;
    let packets: Vec<&twinray_lessons::event::VoicePacket> = voice
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Voice(p) => Some(p),
            _ => None,
        })
        .collect();
    let mut decoder = OpusDecoder::new()?;
    let mut out = vec![0.0f32; MAX_DECODED_SAMPLES];
    let sample: Vec<_> = packets.iter().take(3000).collect();
    let t = Instant::now();
    for p in &sample {
        decoder.decode(&p.data, &mut out)?;
    }
    let decode_per_packet = t.elapsed() / u32::try_from(sample.len().max(1)).unwrap_or(1);
    #[allow(clippy::cast_precision_loss)]
    let kbps = packets.iter().map(|p| p.data.len()).sum::<usize>() as f64 * 8.0
        / (packets.len() as f64 * 0.02)
        / 1000.0;

    let with = dir.join("with-voice.lesson");
    let without = dir.join("without-voice.lesson");
    let t = Instant::now();
    record(&with, duration_ns, &voice)?;
    let record_time = t.elapsed();
    record(&without, duration_ns.min(HOUR_NS), &[])?;
    let (total_with, audio) = mb_per_hour(&with, duration_ns)?;
    let (total_without, _) = mb_per_hour(&without, duration_ns.min(HOUR_NS))?;

    // Seeking in the long lesson with voice: the motion state, and the narration after a jump.
    let mut player = Player::open(&with)?;
    let (t0, t1) = player.time_range_ns().unwrap_or((0, 0));
    let mut rng = Rng::new(99);
    let span = u64::try_from(t1 - t0).unwrap_or(1).max(1);
    let mut seeks = Vec::new();
    let mut narration_seeks = Vec::new();
    let t = Instant::now();
    let mut narrator = NarrationPlayer::new(LessonReader::open(&with)?)?;
    let narration_open = t.elapsed();
    let mut buffer = vec![0.0f32; 480];
    for _ in 0..300 {
        #[allow(clippy::cast_possible_wrap)]
        let at = t0 + rng.below(span) as i64;
        let t = Instant::now();
        std::hint::black_box(player.state_at(at));
        seeks.push(t.elapsed());
        let t = Instant::now();
        narrator.render(at, &mut buffer)?;
        narration_seeks.push(t.elapsed());
    }

    // The producer's cost per frame with the voice thread capturing in real time beside it.
    let live = dir.join("live.lesson");
    let _ = std::fs::remove_file(&live);
    let recorder = Recorder::create(
        &live,
        &LessonHeader::new("sha256:bench", 0),
        RecorderOptions::default(),
    )?;
    let start = Instant::now();
    let clock = LessonClock::starting_at(start);
    let handle = recorder.handle();
    let capture = VoiceCapture::start(
        Box::new(
            SimulatedSource::new(speech.clone(), 48_000, start)
                .in_real_time()
                .repeating(),
        ),
        clock,
        Box::new(move |e| {
            handle.record(e);
        }),
    )?;
    let mut instructor = SyntheticInstructor::new(11);
    let mut frame = Vec::new();
    let mut per_frame = Vec::new();
    for i in 0..540u64 {
        frame.clear();
        instructor.next_frame(&mut frame);
        let t = Instant::now();
        for e in frame.drain(..) {
            recorder.record(e);
        }
        per_frame.push(t.elapsed());
        let due = Duration::from_nanos(u64::try_from(FRAME_PERIOD_NS).unwrap_or(0) * (i + 1));
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let stats = capture.stop()?;
    let dropped = recorder.dropped_event_count();
    recorder.finish()?;

    #[allow(clippy::cast_precision_loss)]
    let hours = duration_ns as f64 / HOUR_NS as f64;
    println!("narration: espeak-ng speech with 1.5 s pauses, Opus 48 kHz mono, 20 ms packets, {kbps:.1} kbit/s average");
    println!(
        "lesson: synthetic instructor + narration, {hours:.2} h, recorded in {:.1} s",
        record_time.as_secs_f64()
    );
    println!("size over the first hour: {total_with:.2} MB/h with voice, {total_without:.2} MB/h without (same instructor, this run)");
    println!(
        "voice adds {:.2} MB/h (audio stream records {audio:.2} MB/h; aim <= 11)",
        total_with - total_without
    );
    println!(
        "Opus per 20 ms packet: encode {:.1} µs (with the 48 kHz pipeline), decode {:.1} µs",
        encode_per_packet.as_secs_f64() * 1e6,
        decode_per_packet.as_secs_f64() * 1e6
    );
    println!(
        "state_at, random times, lesson with voice: {}   (aim p99 < 5 ms)",
        Latency::of(seeks)
    );
    println!(
        "narration open (voice index of the whole lesson): {:.1} ms",
        narration_open.as_secs_f64() * 1e3
    );
    println!(
        "narration after a jump (10 ms of sound, decoded from 80 ms before): {}",
        Latency::of(narration_seeks)
    );
    println!("producer cost per frame with the voice thread running: {}   (aim < 20 µs), {dropped} dropped; voice thread: {} packets", Latency::of(per_frame), stats.packets);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
