//! `twinray demo` and `twinray replay` as a user runs them: the README's lesson commands,
//! damaged lessons, files that are not lessons, the wrong case, and a missing ffmpeg.

mod common;

use common::{png_size, repo, scratch, stderr, twinray};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `twinray demo --out …`, once per test binary.
fn demo_lesson() -> &'static PathBuf {
    static LESSON: OnceLock<PathBuf> = OnceLock::new();
    LESSON.get_or_init(|| {
        let path = scratch("demo.lesson");
        let out = twinray(&["demo", "--out", s(&path)]);
        assert!(out.status.success(), "demo failed: {}", stderr(&out));
        assert!(stderr(&out).contains("sha256:"), "{}", stderr(&out));
        path
    })
}

#[test]
fn the_demo_lesson_replays_at_an_instant_and_follows_the_instructor() {
    let lesson = demo_lesson();
    let verify = twinray(&["lesson", "verify", s(lesson)]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // The header carries the demo's content hash and nothing else about the case.
    let info = twinray(&["lesson", "info", s(lesson)]);
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(info.contains(twinray_scene::DEMO_CASE_REF), "{info}");
    assert!(info.contains("Spinous processes"), "{info}");

    // Recording again over it is refused and leaves it as it was; --replace says to.
    let copy = scratch("demo-again.lesson");
    std::fs::copy(lesson, &copy).expect("copy");
    let before = std::fs::read(&copy).expect("read");
    let again = twinray(&["demo", "--out", s(&copy)]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("never replace") && stderr(&again).contains(s(&copy)),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&copy).expect("read"), before);
    let replaced = twinray(&["demo", "--replace", "--out", s(&copy)]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));

    let png = scratch("frame.png");
    let out = twinray(&[
        "replay",
        s(lesson),
        "--at",
        "22",
        "--azimuth",
        "180",
        "--elevation",
        "20",
        "--size",
        "96x64",
        "--out",
        s(&png),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&png), (96, 64));
    let err = stderr(&out);
    assert!(
        err.contains("Spinous processes") && err.contains("stroke segments"),
        "{err}"
    );
    // At 22 s the pen is drawing over the L3 spinous process: its name is shown.
    assert!(err.contains("pointing at vertebrae_L"), "{err}");
    assert!(!err.contains("warning"), "{err}");

    let out = twinray(&[
        "replay",
        s(lesson),
        "--at",
        "22",
        "--follow-instructor",
        "--size",
        "64x64",
        "--out",
        s(&png),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("through the instructor's eyes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn frames_cover_the_whole_lesson_with_progress() {
    // A short lesson: the demo truncated after 3 s would be damaged, so render the whole demo
    // at a low rate instead (50 s at 0.2 fps = 11 frames of 32x32).
    let dir = scratch("frames");
    let out = twinray(&[
        "replay",
        s(demo_lesson()),
        "--frames",
        s(&dir),
        "--fps",
        "0.2",
        "--size",
        "32x32",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let count = std::fs::read_dir(&dir).expect("frames dir").count();
    assert_eq!(count, 11);
    assert!(dir.join("frame_00010.png").is_file());
    assert!(stderr(&out).contains("frame 11/11"), "{}", stderr(&out));

    // Again into the same folder: refused, and the frames there are left as they were.
    let before = std::fs::read(dir.join("frame_00004.png")).expect("a frame");
    let again = twinray(&[
        "replay",
        s(demo_lesson()),
        "--frames",
        s(&dir),
        "--fps",
        "0.1",
        "--size",
        "16x16",
    ]);
    assert!(!again.status.success());
    let err = stderr(&again);
    assert!(
        err.contains("already holds 11 frame_*.png") && err.contains(s(&dir)),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join("frame_00004.png")).expect("a frame"),
        before
    );
}

/// `ffprobe`'s answer for the first video stream: `key=value` lines.
fn probe(video: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames,avg_frame_rate:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(video)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_video_holds_every_frame_of_the_lesson() {
    // The demo lesson (50 s) at 0.4 fps: 21 frames of 48x34 (an odd height, padded to 34).
    let video = scratch("lesson.mp4");
    let out = twinray(&[
        "replay",
        s(demo_lesson()),
        "--video",
        s(&video),
        "--fps",
        "0.4",
        "--size",
        "48x33",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = probe(&video);
    for expected in [
        "codec_name=h264",
        "width=48",
        "height=34",
        "nb_read_frames=21",
        "avg_frame_rate=2/5",
    ] {
        assert!(
            info.lines().any(|l| l == expected),
            "{expected} in:\n{info}"
        );
    }
    let duration: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .expect("a duration");
    // 21 frames of 2.5 s each.
    assert!((duration - 52.5).abs() < 0.01, "duration {duration} s");
    // The frames went to a private temporary folder that is gone afterwards.
    assert!(
        stderr(&out).contains(&format!("wrote {}", video.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_video_without_ffmpeg_is_a_clear_error() {
    let empty = scratch("empty-path");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_twinray"))
        .env("PATH", &empty)
        .args(["replay", s(demo_lesson()), "--video", s(&scratch("x.mp4"))])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ffmpeg") && stderr(&out).contains("--frames"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_damaged_lesson_replays_what_is_readable_and_says_what_is_not() {
    let bytes = std::fs::read(demo_lesson()).expect("read lesson");
    // Cut the end off (no footer: an unfinished recording) and scramble a stretch in the
    // middle (a damaged chunk).
    let mut damaged = bytes[..bytes.len() * 3 / 4].to_vec();
    let mid = damaged.len() / 3;
    for b in &mut damaged[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let path = scratch("damaged.lesson");
    std::fs::write(&path, &damaged).expect("write");
    let png = scratch("damaged.png");
    let out = twinray(&[
        "replay",
        s(&path),
        "--at",
        "5",
        "--size",
        "48x48",
        "--out",
        s(&png),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&png), (48, 48));
    let err = stderr(&out);
    assert!(err.contains("no usable footer"), "{err}");
    assert!(
        err.contains("unreadable") && err.contains("lost events from"),
        "{err}"
    );
    assert!(err.contains("damaged.lesson"), "{err}");

    // The lessons crate's fixture of an unfinished recording, on a case of its own: replayed
    // on the demo case only when asked to.
    let fixture = repo().join("lessons/tests/fixtures/v1-unfinished.lesson");
    let ct = repo().join("data/demo/example_ct.nii.gz");
    let out = twinray(&["replay", s(&fixture), "--out", s(&png)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sha256:fixture-case-v1") && stderr(&out).contains("--ct"),
        "{}",
        stderr(&out)
    );
    let out = twinray(&[
        "replay",
        s(&fixture),
        "--ct",
        s(&ct),
        "--force-case",
        "--at",
        "1",
        "--size",
        "48x48",
        "--out",
        s(&png),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no usable footer"), "{err}");
    assert!(err.contains("sha256:fixture-case-v1"), "{err}");
}

#[test]
fn not_a_lesson_and_the_wrong_case_are_clear_errors() {
    let text = scratch("notes.lesson");
    std::fs::write(&text, "these are my notes, not a lesson").expect("write");
    let out = twinray(&["replay", s(&text), "--out", s(&scratch("n.png"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("notes.lesson") && err.contains("bad lesson header"),
        "{err}"
    );

    // The demo lesson on the demo CT without its labels: another case.
    let ct = repo().join("data/demo/example_ct.nii.gz");
    let out = twinray(&[
        "replay",
        s(demo_lesson()),
        "--ct",
        s(&ct),
        "--out",
        s(&scratch("w.png")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(twinray_scene::DEMO_CASE_REF)
            && err.contains("example_ct.nii.gz")
            && err.contains("not the same volume"),
        "{err}"
    );
}

#[test]
fn labels_a_segmentation_stored_in_the_lesson_replace_the_case_labels_from_their_time_on() {
    use twinray_lessons::event::{Event, LabelMapBlob, Note, Payload};
    use twinray_lessons::format::LessonHeader;
    use twinray_lessons::recorder::{Recorder, RecorderOptions};

    // A lesson on the demo case whose segmentation, at 1 s, found nothing: from then on the
    // replay shows no labels.
    let case = twinray_scene::Case::demo().expect("demo case");
    let dims = case
        .ct
        .geometry()
        .dims
        .map(|n| u32::try_from(n).expect("dims"));
    let empty = vec![0u16; case.ct.voxels().len()];
    let blob = LabelMapBlob::encode(dims, &empty).expect("map");
    let lesson = scratch("label-map.lesson");
    let _ = std::fs::remove_file(&lesson);
    let header = LessonHeader::new(twinray_scene::DEMO_CASE_REF, 0);
    let recorder =
        Recorder::create(&lesson, &header, RecorderOptions::default()).expect("recorder");
    let note = |text: &str| {
        Payload::Note(Note {
            text: text.to_owned(),
        })
    };
    recorder.record(Event::new(0, note("start")));
    for event in blob.into_events(1_000_000_000) {
        recorder.record(event);
    }
    recorder.record(Event::new(2_000_000_000, note("end")));
    recorder.finish().expect("finish");

    let frame_at = |at: &str| {
        let png = scratch(&format!("label-map-{at}.png"));
        let out = twinray(&[
            "replay",
            s(&lesson),
            "--at",
            at,
            "--size",
            "64x64",
            "--out",
            s(&png),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        std::fs::read(&png).expect("frame")
    };
    let before = frame_at("0.5");
    let after = frame_at("1.5");
    assert_ne!(before, after, "the stored map changes what is shown");
    assert_eq!(
        frame_at("0.9"),
        before,
        "before its time the case's labels show"
    );
}

#[test]
fn the_demo_lessons_last_chapter_shows_a_board_and_measurements_with_their_values() {
    let lesson = demo_lesson();
    let png = scratch("teaching-tools.png");
    let at = |t: &str| {
        let out = twinray(&[
            "replay",
            s(lesson),
            "--at",
            t,
            "--size",
            "64x48",
            "--out",
            s(&png),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        stderr(&out)
    };
    let before = at("44");
    assert!(
        !before.contains("board") && !before.contains("measurements"),
        "{before}"
    );
    let after = at("49");
    assert!(after.contains("1 board"), "{after}");
    // The lumbar curve between L1 and L5 of the demo case, and the midline needle.
    assert!(after.contains("Cobb "), "{after}");
    assert!(after.contains("needle "), "{after}");
}
