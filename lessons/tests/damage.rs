//! Truncated files, flipped bits, garbage and empty files: clear errors or recovery, never a
//! panic.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use common::*;
use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::encoder::EncoderOptions;
use twinray_lessons::error::{DecodeError, LessonError};
use twinray_lessons::format::{self, decode_frame_header};
use twinray_lessons::player::Player;
use twinray_lessons::reader::{IndexOrigin, LessonReader};
use twinray_lessons::synthetic::{Rng, SyntheticInstructor};
use twinray_lessons::tools;

const MS: i64 = 1_000_000;

/// 12 s of synthetic instructor: ~12 chunks.
fn lesson_bytes() -> Vec<u8> {
    let mut instructor = SyntheticInstructor::new(2);
    let mut events = Vec::new();
    while instructor.time_ns() < 12_000 * MS {
        instructor.next_frame(&mut events);
    }
    encode(&events, EncoderOptions::default())
}

/// Everything a reader might do with a file; must never panic.
fn exercise(bytes: Vec<u8>) {
    if let Ok(mut reader) = LessonReader::from_bytes("<fuzz>", bytes) {
        for i in 0..reader.index().len() {
            let _ = reader.read_chunk(i, DecodeParts::ALL);
        }
        let mut p = Player::new(reader);
        for t in [-1, 0, 500 * MS, 3_000 * MS, 11_999 * MS, i64::MAX, i64::MIN] {
            let _ = p.state_at(t);
        }
    }
}

#[test]
fn a_zero_length_file_is_a_clear_error() {
    let dir = temp_dir("empty");
    let path = dir.join("empty.lesson");
    std::fs::write(&path, b"").unwrap();
    let err = LessonReader::open(&path).unwrap_err();
    assert!(matches!(err, LessonError::Empty { .. }));
    assert!(err.to_string().contains("empty.lesson"), "{err}");
    assert!(matches!(
        tools::verify(&path),
        Err(LessonError::Empty { .. })
    ));
    assert!(matches!(
        tools::recover(&path, dir.join("out")),
        Err(LessonError::Empty { .. })
    ));
}

#[test]
fn garbage_is_not_a_lesson() {
    let err = LessonReader::from_bytes("garbage.bin", b"PNG\x0d\x0a not a lesson at all".to_vec())
        .unwrap_err();
    assert!(
        matches!(
            err,
            LessonError::Header {
                source: DecodeError::BadMagic { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("garbage.bin"));
    let mut rng = Rng::new(1);
    for len in [1usize, 7, 8, 15, 16, 100, 5000] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        exercise(bytes);
    }
}

#[test]
fn every_truncation_opens_or_fails_cleanly_and_keeps_whole_chunks() {
    let bytes = lesson_bytes();
    let full = LessonReader::from_bytes("<full>", bytes.clone()).unwrap();
    let index = full.index().to_vec();
    let header_len = full.header().len;
    // Cut inside the header: a clear header error.
    for cut in [1, 8, header_len / 2, header_len - 1] {
        let err = LessonReader::from_bytes("cut.lesson", bytes[..cut].to_vec()).unwrap_err();
        assert!(
            matches!(err, LessonError::Header { .. }),
            "cut {cut}: {err}"
        );
    }
    // Cut anywhere after it: the chunks wholly before the cut are all there.
    let mut cut = header_len;
    while cut < bytes.len() {
        let reader = LessonReader::from_bytes("cut.lesson", bytes[..cut].to_vec()).unwrap();
        let whole = index
            .iter()
            .filter(|e| e.offset + e.frame_len <= cut as u64)
            .count();
        assert_eq!(reader.index().len(), whole, "cut at {cut}");
        assert!(matches!(reader.index_origin(), IndexOrigin::Scan { .. }));
        cut += 997;
    }
}

#[test]
fn flipped_bits_are_detected_and_cost_only_their_chunk() {
    let dir = temp_dir("flip");
    let bytes = lesson_bytes();
    let index = LessonReader::from_bytes("<full>", bytes.clone())
        .unwrap()
        .index()
        .to_vec();
    let mut rng = Rng::new(5);
    for round in 0..20 {
        let victim = &index[rng.below(index.len() as u64) as usize];
        let at = victim.offset + rng.below(victim.frame_len);
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 1 << rng.below(8);
        let path = dir.join(format!("flip{round}.lesson"));
        std::fs::write(&path, &damaged).unwrap();

        let v = tools::verify(&path).unwrap();
        assert!(!v.is_clean(), "flip at {at} not detected");
        assert!(v.intact_chunks >= index.len() - 2, "{v}");

        let fixed = dir.join(format!("fixed{round}.lesson"));
        let report = tools::recover(&path, &fixed).unwrap();
        assert!(!report.lost.is_empty());
        assert_eq!(report.chunks_kept, v.intact_chunks);
        let v2 = tools::verify(&fixed).unwrap();
        // The recovered file is clean except for the gap it reports.
        assert!(
            v2.problems.iter().all(|p| p.message.contains("missing")),
            "{v2}"
        );
        exercise(damaged);
    }
}

#[test]
fn a_chunk_claiming_gigabytes_is_rejected_before_allocating() {
    let bytes = lesson_bytes();
    let reader = LessonReader::from_bytes("<full>", bytes.clone()).unwrap();
    let first = reader.index()[0].clone();
    let at = first.offset as usize;
    let mut header = bytes[at..at + first.frame_len as usize].to_vec();
    // stored_len at offset 36 of the frame header: 3 GB, with the header checksum fixed up so
    // only the size check can catch it.
    header[36..40].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    let n = format::FRAME_FIXED_LEN + format::STREAM_SUMMARY_LEN * header[7] as usize;
    let crc = crc32c::crc32c(&header[..n]);
    header[n..n + 4].copy_from_slice(&crc.to_le_bytes());
    let err = decode_frame_header(&header).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooLarge {
                declared: 3_000_000_000,
                ..
            }
        ),
        "{err}"
    );
    let mut damaged = bytes;
    damaged[at..at + n + 4].copy_from_slice(&header[..n + 4]);
    // Through the footer: the chunk read fails with the size error.
    let mut r = LessonReader::from_bytes("big.lesson", damaged.clone()).unwrap();
    let err = twinray_lessons::error::full_message(&r.read_chunk(0, DecodeParts::ALL).unwrap_err());
    assert!(
        err.contains("big.lesson") && err.contains("3000000000"),
        "{err}"
    );
    // By scanning (no footer): the chunk is skipped as damage.
    let unfinished = damaged[..(reader.index().last().unwrap().offset
        + reader.index().last().unwrap().frame_len) as usize]
        .to_vec();
    let r = LessonReader::from_bytes("big.lesson", unfinished).unwrap();
    assert_eq!(r.index().len(), reader.index().len() - 1);
    assert!(
        r.damage()[0].reason.contains("damaged frame header"),
        "{:?}",
        r.damage()
    );
    exercise(damaged);
}

#[test]
fn a_damaged_footer_falls_back_to_a_scan() {
    let mut bytes = lesson_bytes();
    let n = bytes.len();
    bytes[n - 20] ^= 0xff; // inside the footer frame's payload checksum
    let reader = LessonReader::from_bytes("<f>", bytes.clone()).unwrap();
    let IndexOrigin::Scan { footer_problem } = reader.index_origin() else {
        panic!("footer should have been refused");
    };
    assert!(footer_problem.contains("footer"), "{footer_problem}");
    let full = LessonReader::from_bytes("<full>", lesson_bytes()).unwrap();
    assert_eq!(reader.index(), full.index());
}

#[test]
fn random_mutations_never_panic() {
    let bytes = lesson_bytes();
    let mut rng = Rng::new(11);
    for _ in 0..150 {
        let mut m = bytes.clone();
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(m.len() as u64) as usize;
                    m[i] = rng.next_u64() as u8;
                }
            }
            1 => m.truncate(rng.below(m.len() as u64) as usize),
            2 => {
                let i = rng.below(m.len() as u64) as usize;
                let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
                m.splice(i..i, junk);
            }
            _ => {
                let a = rng.below(m.len() as u64) as usize;
                let b = (a + rng.below(4096) as usize).min(m.len());
                m.drain(a..b);
            }
        }
        exercise(m);
    }
}

#[test]
fn recover_refuses_to_overwrite_its_input() {
    let dir = temp_dir("same");
    let path = dir.join("a.lesson");
    std::fs::write(&path, lesson_bytes()).unwrap();
    let err = tools::recover(&path, &path).unwrap_err();
    assert!(matches!(err, LessonError::InvalidArgument { .. }));
    assert!(tools::verify(&path).unwrap().is_clean());
}

#[test]
fn recover_never_replaces_an_existing_file() {
    let dir = temp_dir("kept");
    let path = dir.join("a.lesson");
    std::fs::write(&path, lesson_bytes()).unwrap();
    let kept = dir.join("kept.lesson");
    std::fs::write(&kept, b"someone's lesson").unwrap();
    let err = tools::recover(&path, &kept).unwrap_err();
    assert!(matches!(err, LessonError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&kept).unwrap(), b"someone's lesson");
    // A new name works, and leaves no partial file behind.
    let fresh = dir.join("fresh.lesson");
    tools::recover(&path, &fresh).unwrap();
    assert!(tools::verify(&fresh).unwrap().is_clean());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn the_fuzz_corpus_never_panics_and_the_fixture_in_it_reads() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/read_lesson");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        exercise(bytes);
        n += 1;
    }
    assert!(n >= 5, "corpus has {n} files");
    let fixture = std::fs::read(format!("{dir}/fixture-v1.lesson")).unwrap();
    assert_eq!(
        LessonReader::from_bytes("<c>", fixture)
            .unwrap()
            .index()
            .len(),
        3
    );
}

#[test]
fn a_damaged_image_costs_only_its_chunk_and_verify_names_the_board_that_shows_it() {
    let dir = temp_dir("image-damage");
    let mut events = boards_and_measurements(0);
    for i in 0..200i64 {
        events.push(twinray_lessons::event::Event::new(
            i * 10 * MS,
            twinray_lessons::event::Payload::Head(pose(i as f32)),
        ));
    }
    events.sort_by_key(|e| e.time_ns);
    let bytes = encode(&events, EncoderOptions::default());
    let clean = dir.join("clean.lesson");
    std::fs::write(&clean, &bytes).unwrap();
    assert!(tools::verify(&clean).unwrap().is_clean());

    let reader = LessonReader::from_bytes("<full>", bytes.clone()).unwrap();
    let images = twinray_lessons::event::StreamId::Images as u8;
    let victim = reader
        .index()
        .iter()
        .find(|e| e.stream(images).is_some())
        .unwrap()
        .clone();
    let mut damaged = bytes.clone();
    // A byte in the middle of the stored (compressed) payload.
    damaged[(victim.offset + victim.frame_len / 2) as usize] ^= 0x10;
    let path = dir.join("damaged.lesson");
    std::fs::write(&path, &damaged).unwrap();
    let report = tools::verify(&path).unwrap();
    assert_eq!(report.intact_chunks, reader.index().len() - 1, "{report}");
    let text = report.to_string();
    assert!(
        text.contains("board 3 shows image") && text.contains("no image record"),
        "{text}"
    );
    // The player shows the board without its image, and everything else as recorded.
    let mut p = Player::open(&path).unwrap();
    let s = p.state_at(60 * MS);
    let board = s.scene.boards.get(&3).unwrap();
    assert!(p.image(&board.image).is_none());
    assert_eq!(s.board_strokes(3).count(), 1);
    exercise(damaged);
}
