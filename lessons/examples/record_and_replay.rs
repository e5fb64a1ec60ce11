//! Records ten seconds of a synthetic instructor, then replays a few instants and prints
//! `lesson info`.
//!
//! `cargo run -p twinray-lessons --example record_and_replay`

use twinray_lessons::format::LessonHeader;
use twinray_lessons::player::Player;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_lessons::synthetic::SyntheticInstructor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("twinray-example.lesson");
    // Recordings never replace a file, so remove this example's file from an earlier run.
    // (A front end would use `Recorder::create_unique` and say where the lesson went.)
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let recorder = Recorder::create(
        &path,
        &LessonHeader::new("sha256:example", 0),
        RecorderOptions::default(),
    )?;
    let mut instructor = SyntheticInstructor::new(1);
    let mut frame = Vec::new();
    while instructor.time_ns() < 10_000_000_000 {
        frame.clear();
        instructor.next_frame(&mut frame);
        for event in frame.drain(..) {
            recorder.record_blocking(event)?;
        }
    }
    let report = recorder.finish()?;
    println!(
        "recorded {} events in {} chunks, {} bytes",
        report.event_count, report.chunk_count, report.bytes_written
    );

    let mut player = Player::open(&path)?;
    for t_s in [0.5, 3.0, 7.25] {
        // Seconds to nanoseconds for display instants.
        #[allow(clippy::cast_possible_truncation)]
        let state = player.state_at((t_s * 1e9) as i64);
        println!(
            "t = {t_s:>5} s: head {:?}, {} strokes, chapter {:?}",
            state.head.map(|h| h.position_mm),
            state.strokes.len(),
            state.chapter
        );
    }
    print!("{}", twinray_lessons::tools::info(&path)?);
    Ok(())
}
