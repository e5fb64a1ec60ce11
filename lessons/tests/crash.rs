//! A recording process is killed with SIGKILL mid-lesson; everything older than the last
//! second is recovered.
//!
//! The test re-runs its own binary as the child (`crash_child_records_until_killed`, which
//! only does something when `TWINRAY_CRASH_CHILD_FILE` is set).
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::event::{Event, Payload, Pose};
use twinray_lessons::reader::LessonReader;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_lessons::tools;

const ENV: &str = "TWINRAY_CRASH_CHILD_FILE";
const PERIOD_NS: i64 = 5_000_000;

/// The pose the child records at sample `i`, so the parent can check content, not just counts.
fn sample(i: i64) -> Pose {
    Pose {
        position_mm: glam::Vec3::new(i as f32, 1600.0, -(i as f32) * 0.5),
        orientation: glam::Quat::IDENTITY,
    }
}

#[test]
#[ignore = "child process of sigkill_mid_lesson_loses_at_most_the_last_second"]
fn crash_child_records_until_killed() {
    let Ok(path) = std::env::var(ENV) else {
        return;
    };
    let recorder = Recorder::create(&path, &common::header(), RecorderOptions::default()).unwrap();
    let start = Instant::now();
    for i in 0.. {
        // Real time: sample i is due at i × 5 ms.
        let due = Duration::from_nanos((i * PERIOD_NS) as u64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        assert!(recorder.record(Event::new(i * PERIOD_NS, Payload::Head(sample(i)))));
        if i % 20 == 0 {
            // Tell the parent how far we got (session time of the last recorded sample).
            println!("recorded {}", i * PERIOD_NS);
        }
    }
}

#[test]
fn sigkill_mid_lesson_loses_at_most_the_last_second() {
    let dir = common::temp_dir("crash");
    let path = dir.join("crashed.lesson");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_records_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_recorded_ns = 0i64;
    while last_recorded_ns < 3_500_000_000 {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(t) = line.strip_prefix("recorded ") {
            last_recorded_ns = t.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let fixed = dir.join("fixed.lesson");
    let report = tools::recover(&path, &fixed).unwrap();
    assert!(!report.input_had_footer);
    assert!(tools::verify(&fixed).unwrap().is_clean());

    let mut reader = LessonReader::open(&fixed).unwrap();
    let mut times = Vec::new();
    for i in 0..reader.index().len() {
        for (t, pose) in reader.read_chunk(i, DecodeParts::ALL).unwrap().head {
            let k = t / PERIOD_NS;
            assert!(
                (pose.position_mm - sample(k).position_mm).length() < 0.1,
                "sample {k}"
            );
            times.push(t);
        }
    }
    // No gaps: every sample from the start up to the last recovered one.
    for (k, t) in times.iter().enumerate() {
        assert_eq!(*t, k as i64 * PERIOD_NS, "sample {k} missing");
    }
    // A chunk closes at most every second (plus the writer's scheduling slack), so all but
    // the last second before the kill is on disk.
    let recovered_until = *times.last().unwrap();
    assert!(
        recovered_until >= last_recorded_ns - 1_250_000_000,
        "recovered up to {recovered_until} ns, killed after {last_recorded_ns} ns"
    );
}
