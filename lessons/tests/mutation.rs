//! A seeded, bounded stand-in for the fuzz target (`lessons/fuzz`, which needs nightly): the
//! committed fixtures, mutated deterministically, through everything that reads lessons.
//!
//! Blind byte mutations mostly stop at a checksum, so half the cases are structure-aware:
//! they change a frame header field, a chunk's uncompressed payload or the footer index, and
//! then re-encode the frame with correct checksums, so the decoders behind the checksums see
//! hostile values. A panic saves the mutated file and names it, to be kept as a regression
//! fixture (`tests/fixtures/regressions/`, replayed by the last test here).
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::format::{
    decode_file_header, decode_frame_header, decode_frame_payload, encode_frame, scan,
    ScannedFrame, FRAME_FIXED_LEN,
};
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::synthetic::Rng;
use twinray_lessons::tools;

const FIXTURES: [&str; 4] = [
    "tests/fixtures/v1.lesson",
    "tests/fixtures/v1-unfinished.lesson",
    "tests/fixtures/v1.1-voice.lesson",
    // Label maps (1.2) and boards, board strokes and measurements (1.3): their record types,
    // scene-change tags, image blobs and the keyframe's list of strokes on boards.
    "tests/fixtures/v1.3-boards.lesson",
];
const REGRESSIONS: &str = "tests/fixtures/regressions";
/// Mutated files per fixture; about a second per thousand in a debug build.
const CASES_PER_FIXTURE: usize = 1500;

/// Cases per fixture: `TWINRAY_FUZZ_CASES` (`make fuzz`) or [`CASES_PER_FIXTURE`].
fn cases_per_fixture() -> usize {
    std::env::var("TWINRAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES_PER_FIXTURE)
}
const MS: i64 = 1_000_000;

/// Everything a front end or the `lesson` tools do with a file. Errors are fine; panics are
/// not, and the time range must stay ordered.
fn exercise(path: &Path, bytes: &[u8]) {
    if let Ok(mut reader) = LessonReader::from_bytes(path, bytes.to_vec()) {
        for i in 0..reader.index().len().min(16) {
            let _ = reader.read_chunk(i, DecodeParts::ALL);
            let _ = reader.read_chunk(i, DecodeParts::EVENTS);
        }
        // The narration's index and time map, at hostile instants too.
        if let Ok(index) = twinray_lessons::voice::VoiceIndex::build(&mut reader) {
            for t in [i64::MIN, -1, 0, 1500 * MS, i64::MAX] {
                if let Some(x) = index.map.sample_at(t) {
                    let _ = index.map.time_at(x);
                }
            }
            let _ = index.duration_s();
            let _ = index.bit_rate_bps();
            let _ = index.chunks_for(0, u64::MAX);
        }
    }
    if let Ok(mut player) = Player::open(path) {
        let range = player.time_range_ns();
        let mut instants = vec![i64::MIN, -1, 0, 1000 * MS, 2000 * MS, 2700 * MS, i64::MAX];
        if let Some((a, b)) = range {
            assert!(a <= b, "range {a} to {b}");
            instants.extend([a, b, a + (b - a) / 2]);
        }
        for t in instants {
            let state = player.state_at(t);
            // Boards: their images (hostile sizes and hashes included) and where they are.
            for (id, board) in &state.scene.boards {
                if let Some(image) = player.image(&board.image) {
                    let _ = image.pixels();
                    let m = board.patient_from_board(image.natural_size_mm());
                    assert!(m.is_finite(), "board {id}: {m:?}");
                }
                let _ = state.board_strokes(*id).count();
            }
            if let Some(hash) = state.scene.label_map {
                if let Some(map) = player.label_map(&hash) {
                    let _ = map.voxels();
                }
            }
        }
    }
    if let Ok(info) = tools::info(path) {
        let _ = info.to_string();
        let _ = info.duration_ns();
    }
    if let Ok(report) = tools::verify(path) {
        let _ = report.to_string();
    }
    let _ = tools::dump(path, &mut std::io::sink());
}

fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// Blind damage: flipped bits, overwritten, inserted and deleted bytes, truncation.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + below(rng, 4) {
        if data.is_empty() {
            return;
        }
        let at = below(rng, data.len());
        match below(rng, 7) {
            0 => data[at] ^= 1 << below(rng, 8),
            1 => data[at] = rng.next_u64() as u8,
            2 => data[at] = [0x00, 0x7f, 0x80, 0xff][below(rng, 4)],
            3 => data.insert(at, rng.next_u64() as u8),
            4 => {
                data.remove(at);
            }
            5 => data.truncate(at),
            _ => {
                // Copy a run of bytes over another place (duplicated frame parts).
                let len = below(rng, 64).min(data.len() - at);
                let to = below(rng, data.len() - len + 1);
                let run = data[at..at + len].to_vec();
                data[to..to + len].copy_from_slice(&run);
            }
        }
    }
}

/// An extreme or off-by-one value for an integer field.
fn hostile_u64(rng: &mut Rng, old: u64) -> u64 {
    match below(rng, 6) {
        0 => 0,
        1 => u64::MAX,
        2 => i64::MAX as u64,
        3 => i64::MIN as u64,
        4 => old.wrapping_add(rng.next_u64() % 3).wrapping_sub(1),
        _ => rng.next_u64(),
    }
}

/// Mutates one intact frame behind its checksums and re-encodes it: a header field, its
/// uncompressed payload (chunk records, or the footer's index), or both.
fn mutate_frame(rng: &mut Rng, data: &mut Vec<u8>, frames: &[ScannedFrame]) {
    if frames.is_empty() {
        return;
    }
    let frame = &frames[below(rng, frames.len())];
    let start = frame.offset as usize;
    let end = start + frame.header.frame_len() as usize;
    let Some(bytes) = data.get(start..end) else {
        return;
    };
    let Ok(mut header) = decode_frame_header(bytes) else {
        return;
    };
    let Ok(mut payload) = decode_frame_payload(&header, &bytes[header.header_len()..]) else {
        return;
    };
    for _ in 0..1 + below(rng, 3) {
        match below(rng, 9) {
            0 => header.seq = hostile_u64(rng, header.seq),
            1 => header.t_start_ns = hostile_u64(rng, header.t_start_ns as u64) as i64,
            2 => header.t_end_ns = hostile_u64(rng, header.t_end_ns as u64) as i64,
            3 => header.flags ^= 1,
            4 if !header.streams.is_empty() => {
                let i = below(rng, header.streams.len());
                let s = &mut header.streams[i];
                match below(rng, 3) {
                    0 => s.t_min_ns = hostile_u64(rng, s.t_min_ns as u64) as i64,
                    1 => s.t_max_ns = hostile_u64(rng, s.t_max_ns as u64) as i64,
                    _ => s.stream = rng.next_u64() as u8,
                }
            }
            5 => {
                // Field values inside the payload: varints, times, counts, lengths.
                if !payload.is_empty() {
                    let at = below(rng, payload.len());
                    payload[at] = match below(rng, 3) {
                        0 => payload[at] ^ (1 << below(rng, 8)),
                        1 => 0xff,
                        _ => rng.next_u64() as u8,
                    };
                }
            }
            6 => {
                // A run of 0xff: an overlong varint or a huge count.
                let at = below(rng, payload.len() + 1);
                for _ in 0..1 + below(rng, 10) {
                    payload.insert(at, 0xff);
                }
            }
            7 => payload.truncate(below(rng, payload.len() + 1)),
            _ => {
                // A big zigzag varint (an extreme time offset or delta) spliced in.
                let at = below(rng, payload.len() + 1);
                let mut v = rng.next_u64() | (1 << 62);
                let mut varint = Vec::new();
                while v >= 0x80 {
                    varint.push((v as u8) | 0x80);
                    v >>= 7;
                }
                varint.push(v as u8);
                payload.splice(at..at, varint);
            }
        }
    }
    let Ok(frame) = encode_frame(
        header.kind,
        header.flags,
        header.seq,
        header.t_start_ns,
        header.t_end_ns,
        &header.streams,
        &payload,
        header.compression,
        3,
    ) else {
        return;
    };
    data.splice(start..end, frame);
}

/// Runs one case; on a panic saves the file and says where, and how to keep it.
fn run_case(name: &str, case: usize, bytes: &[u8], scratch: &Path) -> Result<(), String> {
    let path = scratch.join("case.lesson");
    std::fs::write(&path, bytes).unwrap();
    catch_unwind(AssertUnwindSafe(|| exercise(&path, bytes))).map_err(|panic| {
        let stem: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let kept = std::env::temp_dir().join(format!("twinray-lesson-crash-{stem}-{case}.lesson"));
        std::fs::write(&kept, bytes).unwrap();
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!(
            "{name}, case {case} panicked: {message}; the file is kept at {} (copy it into \
             {REGRESSIONS}/ once fixed)",
            kept.display()
        )
    })
}

#[test]
fn seeded_mutations_of_the_fixtures_never_panic() {
    let scratch = common::temp_dir("mutation");
    for (f, fixture) in FIXTURES.iter().enumerate() {
        let original = std::fs::read(fixture).unwrap();
        let header_len = decode_file_header(&original).unwrap().len;
        let scanned = scan(&original[header_len..], header_len as u64);
        let mut frames = scanned.chunks.clone();
        frames.extend(scanned.footer.iter().map(|(frame, _)| frame.clone()));
        assert!(frames.len() >= 2, "{fixture}: the fixture has frames");
        let mut rng = Rng::new(0x7e55_0000 + f as u64);
        for case in 0..cases_per_fixture() {
            let mut bytes = original.clone();
            match case % 4 {
                0 => mutate_bytes(&mut rng, &mut bytes),
                1 => mutate_frame(&mut rng, &mut bytes, &frames),
                2 => {
                    mutate_frame(&mut rng, &mut bytes, &frames);
                    mutate_frame(&mut rng, &mut bytes, &frames);
                }
                _ => {
                    mutate_frame(&mut rng, &mut bytes, &frames);
                    mutate_bytes(&mut rng, &mut bytes);
                }
            }
            if let Err(failure) = run_case(fixture, case, &bytes, &scratch) {
                panic!("{failure}");
            }
        }
    }
    // The fixed frame length is what the structure-aware cases rely on not changing.
    assert_eq!(FRAME_FIXED_LEN, 40);
}

#[test]
fn kept_regression_files_never_panic() {
    let scratch = common::temp_dir("mutation-regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(REGRESSIONS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{REGRESSIONS} holds the files earlier crashes were found with"
    );
    let failures: Vec<String> = files
        .iter()
        .enumerate()
        .filter_map(|(i, file)| {
            let bytes = std::fs::read(file).unwrap();
            run_case(&file.display().to_string(), i, &bytes, &scratch).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
