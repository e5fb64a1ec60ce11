//! A lesson whose voice is damaged replays its motion and says which seconds of voice were
//! lost: a chunk destroyed on disk, and packets that are not Opus.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

mod common;

use std::time::{Duration, Instant};

use twinray_lessons::event::{Event, Payload, Pose};
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;
use twinray_voice::clock::LessonClock;
use twinray_voice::narration::NarrationEncoder;
use twinray_voice::playback::check_voice;
use twinray_voice::source::{SimulatedSource, VoiceSource};

/// Ten seconds of narration and of head motion (a pose that encodes its own time).
fn narrated_lesson(dir: &std::path::Path) -> Vec<Event> {
    let speech = common::speech(dir, 48_000);
    let start = Instant::now();
    let clock = LessonClock::starting_at(start);
    let mut source = SimulatedSource::new(speech, 48_000, start).repeating();
    let mut pipeline = NarrationEncoder::new(48_000).unwrap();
    let mut events = Vec::new();
    let mut frames = 0;
    while frames < 480_000 {
        let b = source.next_buffer(Duration::ZERO).unwrap().unwrap();
        frames += b.samples.len();
        let t = clock.lesson_time_ns(b.captured_at);
        pipeline
            .push(&b, t, false, &mut |e| events.push(e))
            .unwrap();
    }
    pipeline.finish(&mut |e| events.push(e)).unwrap();
    for i in 0..900i64 {
        let mut pose = Pose::IDENTITY;
        pose.position_mm.x = i as f32;
        events.push(Event::new(i * 11_111_111, Payload::Head(pose)));
    }
    events
}

#[test]
fn a_destroyed_chunk_loses_its_second_of_voice_and_the_rest_plays() {
    let dir = common::scratch("damage-chunk");
    let mut bytes = common::lesson_bytes(narrated_lesson(&dir));
    let reader = LessonReader::from_bytes("original.lesson", bytes.clone()).unwrap();
    let entry = reader.index()[5].clone();
    // The middle of chunk 5's payload overwritten.
    let mid = usize::try_from(entry.offset + entry.frame_len / 2).unwrap();
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5A;
    }
    let path = dir.join("damaged.lesson");
    std::fs::write(&path, &bytes).unwrap();

    let check = check_voice(LessonReader::open(&path).unwrap())
        .unwrap()
        .unwrap();
    let said = check.describe_lost().expect("the loss is reported");
    println!("{said}");
    assert_eq!(check.lost_ns.len(), 1, "{said}");
    let (a, b) = check.lost_ns[0];
    // The lost stretch is chunk 5's time, give or take a packet.
    assert!(
        (a - entry.t_start_ns).abs() < 60_000_000,
        "{said} vs chunk {entry:?}"
    );
    assert!(
        (b - entry.t_end_ns).abs() < 60_000_000,
        "{said} vs chunk {entry:?}"
    );
    // Motion outside the damaged chunk replays.
    let mut player = Player::open(&path).unwrap();
    let state = player.state_at(8_000_000_000);
    let head = state.head.expect("the head at 8 s");
    assert!((head.position_mm.x - 720.0).abs() < 1.0, "{head:?}");
}

#[test]
fn packets_that_are_not_opus_are_reported_as_lost_seconds() {
    let dir = common::scratch("damage-packets");
    let mut events = narrated_lesson(&dir);
    // Packets covering 4.0–4.5 s become garbage (a TOC with zero frames is invalid Opus).
    for e in &mut events {
        if let Payload::Voice(p) = &mut e.payload {
            if (192_000..216_000).contains(&p.sample_index) {
                p.data = vec![0xFF, 0x00];
            }
        }
    }
    let path = dir.join("garbled.lesson");
    write_lesson(&path, events);
    let check = check_voice(LessonReader::open(&path).unwrap())
        .unwrap()
        .unwrap();
    let said = check.describe_lost().expect("reported");
    println!("{said}");
    assert_eq!(check.lost_ns.len(), 1, "{said}");
    let (a, b) = check.lost_ns[0];
    assert!(
        (a as f64 / 1e9 - 4.0).abs() < 0.03 && (b as f64 / 1e9 - 4.5).abs() < 0.03,
        "{said}"
    );
    assert!(said.contains("4.0–4.5 s"), "{said}");
    // The motion is whole.
    let mut player = Player::open(&path).unwrap();
    assert!(player.state_at(4_200_000_000).head.is_some());
}

fn write_lesson(path: &std::path::Path, events: Vec<Event>) {
    std::fs::write(path, common::lesson_bytes(events)).unwrap();
}
