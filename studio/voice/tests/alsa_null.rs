//! The real capture and playback code (cpal on ALSA) on ALSA's `null` device, which every
//! Linux machine has: a child process with an `.asoundrc` that makes `null` the default
//! records a lesson through the microphone path and opens the speakers, without a panic.
//! (`null` delivers silence far faster than real time; the recorder must not flood.)
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use twinray_lessons::format::LessonHeader;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_lessons::tools;
use twinray_lessons::voice::VoiceIndex;
use twinray_voice::capture::VoiceCapture;
use twinray_voice::clock::LessonClock;
use twinray_voice::device::{MicrophoneSource, OutputSink};

const ENV: &str = "TWINRAY_VOICE_NULL_CHILD_LESSON";

#[test]
#[ignore = "child process of the_real_device_path_records_on_alsa_null"]
fn alsa_null_child() {
    let Ok(path) = std::env::var(ENV) else {
        return;
    };
    let recorder = Recorder::create(
        &path,
        &LessonHeader::new("sha256:null", 0),
        RecorderOptions::default(),
    )
    .unwrap();
    let mic = MicrophoneSource::open(None).unwrap();
    let clock = LessonClock::starting_at(Instant::now());
    let handle = recorder.handle();
    let capture = VoiceCapture::start(
        Box::new(mic),
        clock,
        Box::new(move |e| {
            handle.record(e);
        }),
    )
    .unwrap();
    let speaker = OutputSink::open(Box::new(|out: &mut [f32], _latency| out.fill(0.0))).unwrap();
    speaker.set_volume(0.5);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(capture.problem().is_none(), "{:?}", capture.problem());
    let stats = capture.stop().unwrap();
    drop(speaker);
    let report = recorder.finish().unwrap();
    println!(
        "null device: {stats:?}, {} dropped events",
        report.dropped_event_count
    );
}

#[test]
fn the_real_device_path_records_on_alsa_null() {
    let dir = common::scratch("alsa-null");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".asoundrc"), "pcm.!default {\n    type null\n}\n").unwrap();
    let lesson = dir.join("null.lesson");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["alsa_null_child", "--exact", "--ignored", "--nocapture"])
        .env(ENV, &lesson)
        .env("HOME", &home)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
    let verify = tools::verify(&lesson).unwrap();
    assert!(verify.is_clean(), "{verify}");
    // 1.5 s of silence from a device that delivers it far faster than real time: the voice
    // is bounded by real time (at most MAX_AHEAD beyond it), not by the device's speed.
    let mut reader = twinray_lessons::reader::LessonReader::open(&lesson).unwrap();
    let index = VoiceIndex::build(&mut reader).unwrap();
    assert!(index.has_voice(), "{text}");
    let seconds = index.duration_s();
    println!("{text}\nrecorded {seconds:.2} s of voice");
    assert!(seconds > 0.5 && seconds < 3.0, "{seconds} s");
}
