//! The narration commands as a user runs them: a voice-over added to the demo lesson
//! (`lesson import-audio`), shown by `lesson info`, checked by `lesson verify`, exported as
//! Ogg Opus that opus-tools decode to exactly the recorded samples, and muxed into
//! `replay --video` at the right lesson time.

mod common;

use common::{scratch, stderr, twinray};
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mono 16-bit samples of a WAV file, by ffmpeg (independent of twinray's reader).
fn pcm_of(path: &Path, rate: u32) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "1", "-ar", &rate.to_string(), "-"])
        .output()
        .expect("ffmpeg (make setup installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    out.stdout
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// Seconds to the first sample louder than −26 dBFS.
fn onset_s(samples: &[f32], rate: u32) -> f64 {
    let i = samples
        .iter()
        .position(|v| v.abs() > 0.05)
        .expect("some sound");
    i as f64 / f64::from(rate)
}

fn speech(dir: &Path) -> PathBuf {
    let wav = dir.join("voice.wav");
    let status = Command::new("espeak-ng")
        .args(["-s", "170", "-w"])
        .arg(&wav)
        .arg("Here the needle enters between the third and fourth lumbar spinous processes.")
        .status()
        .expect("espeak-ng (make setup installs it)");
    assert!(status.success());
    wav
}

#[test]
fn a_voice_over_is_added_shown_checked_exported_and_muxed_in_sync() {
    let dir = scratch("narration");
    std::fs::create_dir_all(&dir).expect("dir");
    let demo = dir.join("demo.lesson");
    let out = twinray(&["demo", "--out", s(&demo)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&demo).expect("demo");
    let voice = speech(&dir);
    let voice_pcm = pcm_of(&voice, 48_000);
    let voice_s = voice_pcm.len() as f64 / 48_000.0;

    // Import at 2 s.
    let narrated = dir.join("narrated.lesson");
    let out = twinray(&[
        "lesson",
        "import-audio",
        s(&demo),
        "--audio",
        s(&voice),
        "--at",
        "2.0",
        "--out",
        s(&narrated),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("of narration from 2.000 s"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read(&demo).expect("demo"),
        before,
        "the original is untouched"
    );
    // Never over an existing file; never twice.
    let again = twinray(&[
        "lesson",
        "import-audio",
        s(&demo),
        "--audio",
        s(&voice),
        "--out",
        s(&narrated),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    let twice = twinray(&[
        "lesson",
        "import-audio",
        s(&narrated),
        "--audio",
        s(&voice),
        "--out",
        s(&dir.join("twice.lesson")),
    ]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        stderr(&twice).contains("already has narration"),
        "{}",
        stderr(&twice)
    );
    let not_wav = twinray(&[
        "lesson",
        "import-audio",
        s(&demo),
        "--audio",
        s(&demo),
        "--out",
        s(&dir.join("x.lesson")),
    ]);
    assert_eq!(not_wav.status.code(), Some(2));
    assert!(
        stderr(&not_wav).contains("not a WAV file"),
        "{}",
        stderr(&not_wav)
    );

    // info: duration and bit rate.
    let info = twinray(&["lesson", "info", s(&narrated)]);
    assert!(info.status.success(), "{}", stderr(&info));
    let text = stdout(&info);
    let line = text
        .lines()
        .find(|l| l.starts_with("voice:"))
        .expect("a voice line");
    let seconds: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("voice seconds");
    assert!((seconds - voice_s).abs() < 0.06, "{line} vs {voice_s} s");
    assert!(
        line.contains("Opus 48 kHz mono") && line.contains("kbit/s"),
        "{line}"
    );
    assert!(text.contains("format:      version 1.3"), "{text}");

    // verify decodes every packet.
    let verify = twinray(&["lesson", "verify", s(&narrated)]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("every packet decodes"),
        "{}",
        stdout(&verify)
    );

    // export-audio: an Ogg Opus file opus-tools accept, exactly as long as recorded.
    let opus = dir.join("narration.opus");
    let out = twinray(&["lesson", "export-audio", s(&narrated), "--out", s(&opus)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let samples: u64 = stdout(&out)
        .split('(')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the sample count");
    assert_eq!(samples, voice_pcm.len() as u64, "{}", stdout(&out));
    let opusinfo = Command::new("opusinfo")
        .arg(&opus)
        .output()
        .expect("opusinfo");
    assert!(opusinfo.status.success(), "{}", stdout(&opusinfo));
    let decoded = dir.join("decoded.wav");
    let status = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000"])
        .arg(&opus)
        .arg(&decoded)
        .status()
        .expect("opusdec");
    assert!(status.success());
    assert_eq!(
        pcm_of(&decoded, 48_000).len() as u64,
        samples,
        "opusdec returns the recorded samples"
    );
    let refused = twinray(&["lesson", "export-audio", s(&narrated), "--out", s(&opus)]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "an existing .opus is never replaced"
    );

    // replay --video: an audio track whose speech starts 2 s into the lesson.
    let video = dir.join("narrated.mp4");
    let out = twinray(&[
        "replay",
        s(&narrated),
        "--video",
        s(&video),
        "--fps",
        "0.4",
        "--size",
        "48x33",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let audio = pcm_of(&video, 48_000);
    assert!(
        audio.len() as f64 / 48_000.0 > 50.0,
        "audio covers the video"
    );
    let shift = onset_s(&audio, 48_000) - onset_s(&voice_pcm, 48_000);
    assert!(
        (shift - 2.0).abs() < 0.02,
        "speech starts {shift} s into the video, not 2.0 s"
    );
}
