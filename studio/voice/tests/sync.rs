//! Ten simulated minutes of narration through a sound card clock that drifts (±100 ppm) and
//! timestamps that jitter: at replay, every lesson time plays the sound captured at that time
//! within 20 ms, also right after a seek.
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

mod common;

use std::time::{Duration, Instant};

use twinray_lessons::event::Event;
use twinray_voice::clock::LessonClock;
use twinray_voice::narration::NarrationEncoder;
use twinray_voice::playback::NarrationPlayer;
use twinray_voice::source::{SimulatedSource, VoiceSource};

/// The acceptance bound of the narration issue.
const MAX_SYNC_ERROR_S: f64 = 0.020;

/// Records `minutes` of `speech` (repeated) from a card at `rate_hz` running `drift_ppm` off,
/// in simulated time. Returns the events and the source (which knows the true capture times).
fn record(
    speech: Vec<f32>,
    rate_hz: u32,
    drift_ppm: f64,
    minutes: u64,
) -> (Vec<Event>, SimulatedSource) {
    let start = Instant::now();
    let clock = LessonClock::starting_at(start);
    let mut source = SimulatedSource::new(speech, rate_hz, start)
        .with_drift_ppm(drift_ppm)
        .with_jitter(Duration::from_millis(4))
        .repeating();
    let truth = source.clone();
    let mut pipeline = NarrationEncoder::new(rate_hz).unwrap();
    let mut events = Vec::new();
    let frames = minutes * 60 * u64::from(rate_hz);
    let mut taken = 0u64;
    while taken < frames {
        let buffer = source.next_buffer(Duration::ZERO).unwrap().unwrap();
        taken += buffer.samples.len() as u64;
        let t = clock.lesson_time_ns(buffer.captured_at);
        pipeline
            .push(&buffer, t, false, &mut |e| events.push(e))
            .unwrap();
    }
    pipeline.finish(&mut |e| events.push(e)).unwrap();
    (events, truth)
}

fn check(rate_hz: u32, drift_ppm: f64) {
    let dir = common::scratch(&format!("sync-{rate_hz}-{drift_ppm}"));
    let speech = common::speech(&dir, rate_hz);
    let (events, truth) = record(speech.clone(), rate_hz, drift_ppm, 10);
    let reader = common::lesson_of(events);
    let mut player = NarrationPlayer::new(reader).unwrap();
    assert!(player.has_voice());
    let ratio = f64::from(rate_hz) / 48_000.0;
    // The true capture time (s) of 48 kHz input sample `x`.
    let true_s = |x: f64| {
        truth.true_seconds(0) + (x * ratio) / (f64::from(rate_hz) * (1.0 + drift_ppm * 1e-6))
    };

    // Everywhere: each 100 ms of the ten minutes maps to the sample captured then.
    let mut worst: f64 = 0.0;
    for k in 1..5990 {
        let t_ns = k * 100_000_000i64;
        let x = player
            .sample_at(t_ns)
            .unwrap_or_else(|| panic!("no voice at {t_ns} ns"));
        let e = (true_s(x) - t_ns as f64 / 1e9).abs();
        if e > worst {
            println!("  t {t_ns}: error {:.3} ms", e * 1e3);
        }
        worst = worst.max(e);
    }
    println!(
        "{rate_hz} Hz, {drift_ppm:+} ppm: worst sync error {:.3} ms",
        worst * 1e3
    );
    assert!(worst <= MAX_SYNC_ERROR_S, "sync error {worst} s");

    // Right after a seek: the decoded sound at t is the speech captured at t. The speech
    // repeats, so its position in the signal is the true frame modulo its length.
    let mut seek_worst: f64 = 0.0;
    for &t_s in &[7.3, 123.45, 301.0, 599.2, 42.0] {
        let t_ns = (t_s * 1e9) as i64;
        let mut out = vec![0.0f32; 4800];
        player.render(t_ns, &mut out).unwrap();
        // Where the original (at the device rate) should be: the frame captured at t.
        let frame = (t_s * f64::from(rate_hz) * (1.0 + drift_ppm * 1e-6)).round() as i64;
        let reference: Vec<f32> = (0..speech.len() as i64 * 2)
            .map(|i| speech[((frame - 2400 + i) as usize) % speech.len()])
            .collect();
        // Compare at 48 kHz: resample the reference window by picking the nearest sample.
        let reference_48k: Vec<f32> = (0..14_400)
            .map(|j| reference[((j as f64) * ratio).round() as usize])
            .collect();
        // Lag of the rendered sound inside the reference window; 0 ms error = lag 2400·(48k/rate).
        let expected = (2400.0 / ratio).round() as i64;
        let (lag, peak) = common::best_lag(&out, &reference_48k, expected - 1920..=expected + 1920);
        let error_s = (lag - expected) as f64 / 48_000.0;
        seek_worst = seek_worst.max(error_s.abs());
        let energy: f32 = out.iter().map(|v| v * v).sum();
        if energy > 1.0 {
            assert!(peak > 0.6, "after a seek to {t_s} s: correlation {peak}");
        }
    }
    println!(
        "{rate_hz} Hz, {drift_ppm:+} ppm: worst error right after a seek {:.3} ms",
        seek_worst * 1e3
    );
    assert!(
        seek_worst <= MAX_SYNC_ERROR_S,
        "after a seek: {seek_worst} s"
    );
}

#[test]
fn ten_minutes_at_48k_on_a_fast_card_stay_in_sync() {
    check(48_000, 100.0);
}

#[test]
fn ten_minutes_at_44k1_on_a_slow_card_stay_in_sync() {
    check(44_100, -100.0);
}

/// Pausing cuts the paused sound out, as it cuts the paused time out of the lesson: the voice
/// resumes on a new segment, and the lesson time after the pause plays what was captured then.
#[test]
fn a_pause_cuts_the_voice_and_resumes_on_a_new_segment() {
    let start = Instant::now();
    let clock = LessonClock::starting_at(start);
    // A ramp, so a sample's value says when it was captured.
    let signal: Vec<f32> = (0..120_000).map(|i| i as f32 / 120_000.0).collect();
    let mut source = SimulatedSource::new(signal, 48_000, start);
    let mut pipeline = NarrationEncoder::new(48_000).unwrap();
    let mut events = Vec::new();
    while let Ok(Some(b)) = source.next_buffer(Duration::ZERO) {
        let true_ns = b.captured_at.duration_since(start).as_nanos() as i64;
        // Paused from 1.0 s to 1.5 s of wall time.
        if (1_000_000_000..1_500_000_000).contains(&true_ns) {
            clock.pause(start + Duration::from_millis(1000));
        } else if true_ns >= 1_500_000_000 {
            clock.resume(start + Duration::from_millis(1500));
        }
        let t = clock.lesson_time_ns(b.captured_at);
        pipeline
            .push(&b, t, false, &mut |e| events.push(e))
            .unwrap();
    }
    pipeline.finish(&mut |e| events.push(e)).unwrap();
    let reader = common::lesson_of(events);
    let player = NarrationPlayer::new(reader).unwrap();
    let index = player.index();
    assert!(
        (index.duration_s() - 2.0).abs() < 0.001,
        "{} s recorded",
        index.duration_s()
    );
    let segments = index.syncs.iter().filter(|s| s.starts_segment).count();
    assert_eq!(segments, 2, "{:?}", index.syncs);
    // Before the pause: lesson 0.5 s is sample 24 000.
    assert!((player.sample_at(500_000_000).unwrap() - 24_000.0).abs() < 2.0);
    // After it: lesson 1.2 s was captured at 1.7 s, 0.2 s into the second segment.
    let x = player.sample_at(1_200_000_000).unwrap();
    assert!((x - (48_000.0 + 9_600.0)).abs() < 2.0, "{x}");
}
