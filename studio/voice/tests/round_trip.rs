//! Record → lesson → `.opus` export → an independent decoder (opus-tools' `opusdec`) →
//! the recorded speech: the same sound at the same place, exactly as many samples.
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use twinray_lessons::voice::VoiceIndex;
use twinray_voice::clock::LessonClock;
use twinray_voice::narration::NarrationEncoder;
use twinray_voice::ogg_export::export_ogg_opus;
use twinray_voice::source::{SimulatedSource, VoiceSource};
use twinray_voice::wav::WavReader;

#[test]
fn exported_opus_decodes_to_the_recorded_speech_at_the_recorded_place() {
    let dir = common::scratch("round-trip");
    let speech = common::speech(&dir, 48_000);
    let start = Instant::now();
    let clock = LessonClock::starting_at(start);
    let mut source = SimulatedSource::new(speech.clone(), 48_000, start);
    let mut pipeline = NarrationEncoder::new(48_000).unwrap();
    let mut events = Vec::new();
    while let Ok(Some(buffer)) = source.next_buffer(Duration::ZERO) {
        let t = clock.lesson_time_ns(buffer.captured_at);
        pipeline
            .push(&buffer, t, false, &mut |e| events.push(e))
            .unwrap();
    }
    let stats = pipeline.finish(&mut |e| events.push(e)).unwrap();
    assert_eq!(stats.recorded_samples, speech.len() as u64);
    let mut reader = common::lesson_of(events);
    let index = VoiceIndex::build(&mut reader).unwrap();
    assert_eq!(index.end_sample, speech.len() as u64);
    let opus = dir.join("narration.opus");
    let mut file = std::fs::File::create(&opus).unwrap();
    let export = export_ogg_opus(&mut reader, &index, &mut file).unwrap();
    drop(file);
    assert_eq!(export.samples, speech.len() as u64);
    assert_eq!(export.lost_packets, 0);

    let info = Command::new("opusinfo")
        .arg(&opus)
        .output()
        .expect("opusinfo (make setup installs opus-tools)");
    let text =
        String::from_utf8_lossy(&info.stdout).to_string() + &String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success(), "{text}");
    assert!(
        !text.to_lowercase().contains("warning"),
        "opusinfo warns:\n{text}"
    );
    assert!(text.contains("Pre-skip: 312"), "{text}");

    let decoded = dir.join("decoded.wav");
    let status = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000"])
        .arg(&opus)
        .arg(&decoded)
        .status()
        .expect("opusdec (make setup installs opus-tools)");
    assert!(status.success());
    let mut wav = WavReader::open(&decoded).unwrap();
    assert_eq!(
        wav.duration_frames(),
        speech.len() as u64,
        "opusdec returns exactly the recorded samples"
    );
    let mut out = Vec::new();
    loop {
        let b = wav.next_block().unwrap();
        if b.is_empty() {
            break;
        }
        out.extend(b);
    }
    // The same sound at the same place: the peak of the cross-correlation at lag 0, within one
    // 20 ms packet.
    let (lag, peak) = common::best_lag(&speech, &out, -960..=960);
    println!("round trip: peak correlation {peak:.3} at lag {lag} samples");
    assert!(lag.abs() <= 960, "lag {lag}");
    assert!(peak >= 0.9, "correlation {peak}");
}
