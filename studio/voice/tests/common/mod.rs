//! Shared by the narration tests: speech made in the test run, scratch folders, lessons in
//! memory.
#![allow(dead_code, clippy::unwrap_used)] // Not every test uses every helper; tests may unwrap.

use std::path::{Path, PathBuf};
use std::process::Command;

use twinray_lessons::encoder::{EncoderOptions, LessonEncoder};
use twinray_lessons::event::Event;
use twinray_lessons::format::LessonHeader;
use twinray_lessons::reader::LessonReader;
use twinray_voice::wav::WavReader;

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twinray-voice-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Speech spoken by espeak-ng and resampled by sox to `rate_hz` (both installed by
/// `make setup`): a real voice's spectrum and pauses, made here rather than shipped.
pub fn speech(dir: &Path, rate_hz: u32) -> Vec<f32> {
    let raw = dir.join("speech-espeak.wav");
    let text = "The needle passes between the spinous processes of the third and fourth \
                lumbar vertebrae. Keep to the midline, and aim slightly cephalad. \
                Loss of resistance tells you the ligamentum flavum is behind you.";
    let status = Command::new("espeak-ng")
        .args(["-s", "160", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng (make setup installs it)");
    assert!(status.success());
    let out = dir.join(format!("speech-{rate_hz}.wav"));
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", &rate_hz.to_string()])
        .arg(&out)
        .status()
        .expect("sox (make setup installs it)");
    assert!(status.success());
    let mut reader = WavReader::open(&out).unwrap();
    assert_eq!(reader.sample_rate_hz(), rate_hz);
    let mut all = Vec::new();
    loop {
        let block = reader.next_block().unwrap();
        if block.is_empty() {
            break;
        }
        all.extend(block);
    }
    all
}

/// Encodes `events` (any order) into the bytes of a lesson file.
pub fn lesson_bytes(mut events: Vec<Event>) -> Vec<u8> {
    events.sort_by_key(|e| e.time_ns);
    let (mut encoder, mut bytes) = LessonEncoder::new(
        &LessonHeader::new("sha256:voice-test", 0),
        EncoderOptions::default(),
    )
    .unwrap();
    for e in events {
        if let Some(frame) = encoder.push(e).unwrap() {
            bytes.extend(frame);
        }
    }
    bytes.extend(encoder.finish().unwrap());
    bytes
}

/// Encodes `events` (any order) into a lesson and opens it from memory.
pub fn lesson_of(events: Vec<Event>) -> LessonReader {
    LessonReader::from_bytes("voice-test.lesson", lesson_bytes(events)).unwrap()
}

/// Normalised cross-correlation of `a` against `b` shifted by `lag` (b[i + lag] vs a[i]).
pub fn correlation(a: &[f32], b: &[f32], lag: i64) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in a.iter().enumerate() {
        let j = i as i64 + lag;
        if j < 0 || j as usize >= b.len() {
            continue;
        }
        let y = b[j as usize];
        ab += f64::from(x) * f64::from(y);
        aa += f64::from(x) * f64::from(x);
        bb += f64::from(y) * f64::from(y);
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// The lag in `lags` with the highest correlation, and that correlation.
pub fn best_lag(a: &[f32], b: &[f32], lags: std::ops::RangeInclusive<i64>) -> (i64, f64) {
    lags.map(|l| (l, correlation(a, b, l)))
        .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best })
}
