//! Decoded times are untrusted: crafted files with valid checksums but times near `i64::MIN`
//! and `i64::MAX`, chunk headers that claim absurd ranges, events outside their chunk's range
//! and extreme sequence numbers. Opening, replaying, `info` and `verify` must not panic (the
//! tests run with debug assertions, so an overflow panics), and the readable time range must
//! stay within the format's limit.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use common::*;
use twinray_lessons::chunk::{ChunkBuilder, DecodeParts};
use twinray_lessons::encoder::{encode_footer, EncoderOptions};
use twinray_lessons::event::*;
use twinray_lessons::format::{
    decode_frame_header, encode_file_header, encode_frame, encode_trailer, frame_kind,
    ChunkIndexEntry, Compression, MAX_TIME_NS,
};
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::tools;

const MS: i64 = 1_000_000;

/// One chunk to craft: its sequence number, its events, and optionally the time range its
/// frame header claims instead of the true one.
struct Crafted {
    seq: u64,
    events: Vec<Event>,
    claim: Option<(i64, i64)>,
    /// Leave out the per-stream summaries, so that only the event times contradict `claim`.
    no_summaries: bool,
}

fn chunk(seq: u64, events: Vec<Event>) -> Crafted {
    Crafted {
        seq,
        events,
        claim: None,
        no_summaries: false,
    }
}

fn head(t: i64, x: f32) -> Event {
    let mut p = pose(0.0);
    p.position_mm.x = x;
    Event::new(t, Payload::Head(p))
}

/// A lesson file with valid checksums everywhere, built from the crate's own encoders, with
/// whatever times and sequence numbers the chunks say; with a footer index if `footer`.
fn craft(chunks: &[Crafted], footer: bool) -> Vec<u8> {
    let (bytes, index) = craft_chunks(chunks);
    if footer {
        with_footer(bytes, &index)
    } else {
        bytes
    }
}

/// The header and chunk frames, and the index that describes them.
fn craft_chunks(chunks: &[Crafted]) -> (Vec<u8>, Vec<ChunkIndexEntry>) {
    let mut bytes = encode_file_header(&header(), Compression::Zstd).unwrap();
    let mut index = Vec::new();
    for c in chunks {
        let mut builder = ChunkBuilder::new(None);
        for e in &c.events {
            builder.push(e.clone());
        }
        let payload = builder.encode().unwrap();
        let (t_start, t_end) = c.claim.unwrap_or((payload.t_start_ns, payload.t_end_ns));
        let frame = encode_frame(
            frame_kind::CHUNK,
            0,
            c.seq,
            t_start,
            t_end,
            if c.no_summaries {
                &[]
            } else {
                &payload.streams
            },
            &payload.bytes,
            Compression::Zstd,
            3,
        )
        .unwrap();
        let header = decode_frame_header(&frame).unwrap();
        index.push(ChunkIndexEntry::from_frame(bytes.len() as u64, &header));
        bytes.extend(frame);
    }
    (bytes, index)
}

/// Appends a footer holding `index` (whatever it says) and the trailer.
fn with_footer(mut bytes: Vec<u8>, index: &[ChunkIndexEntry]) -> Vec<u8> {
    let footer_offset = bytes.len() as u64;
    bytes.extend(encode_footer(index, EncoderOptions::default()).unwrap());
    bytes.extend(encode_trailer(footer_offset));
    bytes
}

fn in_bounds(t: i64) -> bool {
    (-MAX_TIME_NS..=MAX_TIME_NS).contains(&t)
}

/// Everything a front end does with a lesson; none of it may panic, and every time range
/// handed out must be ordered and within the format's limit.
fn exercise(name: &str, bytes: &[u8]) -> (Option<(i64, i64)>, tools::VerifyReport) {
    let dir = temp_dir(&format!("hostile-{name}"));
    let path = dir.join(format!("{name}.lesson"));
    std::fs::write(&path, bytes).unwrap();

    let mut reader = LessonReader::open(&path).unwrap();
    for i in 0..reader.index().len() {
        let _ = reader.read_chunk(i, DecodeParts::ALL);
        let _ = reader.read_chunk(i, DecodeParts::EVENTS);
    }
    let mut player = Player::open(&path).unwrap();
    let range = player.time_range_ns();
    if let Some((a, b)) = range {
        assert!(
            a <= b && in_bounds(a) && in_bounds(b),
            "{name}: range {a} to {b}"
        );
    }
    let mut instants = vec![
        i64::MIN,
        i64::MIN + 1,
        -MAX_TIME_NS - 1,
        -1,
        0,
        1,
        500 * MS,
        MAX_TIME_NS + 1,
        i64::MAX - 1,
        i64::MAX,
    ];
    if let Some((a, b)) = range {
        instants.extend([a, b, a + (b - a) / 2]);
    }
    for t in instants {
        let state = player.state_at(t);
        for s in &state.strokes {
            assert!(
                in_bounds(s.begin_time_ns),
                "{name}: stroke at {}",
                s.begin_time_ns
            );
            for p in &s.points {
                assert!(in_bounds(p.time_ns), "{name}: point at {}", p.time_ns);
            }
        }
    }

    let info = tools::info(&path).unwrap();
    if let Some((a, b)) = info.time_range_ns {
        assert!(
            a <= b && in_bounds(a) && in_bounds(b),
            "{name}: info range {a} to {b}"
        );
    }
    assert!(info.duration_ns() >= 0);
    for s in &info.streams {
        assert!(
            s.t_min_ns <= s.t_max_ns && in_bounds(s.t_min_ns) && in_bounds(s.t_max_ns),
            "{name}: stream {} from {} to {}",
            s.name,
            s.t_min_ns,
            s.t_max_ns
        );
    }
    let _ = info.to_string();
    let verified = tools::verify(&path).unwrap();
    let _ = verified.to_string();
    let mut out = Vec::new();
    let _ = tools::dump(&path, &mut out);
    let _ = tools::recover(&path, dir.join("recovered.lesson"));
    (range, verified)
}

#[test]
fn samples_at_the_ends_of_i64_do_not_overflow_the_interpolation() {
    // One chunk whose head samples sit at both ends of the i64 range: its header is
    // consistent with its events, so only the arithmetic on them is under test.
    let file = craft(
        &[chunk(
            0,
            vec![head(i64::MIN + 1, 0.0), head(i64::MAX - 1, 1.0)],
        )],
        true,
    );
    let (range, verified) = exercise("extreme-samples", &file);
    assert_eq!(
        range, None,
        "a chunk outside the session-time limit is damage"
    );
    assert!(!verified.is_clean(), "{verified}");

    // The same across a chunk boundary, with and without a footer.
    for footer in [true, false] {
        let file = craft(
            &[
                chunk(0, vec![head(i64::MIN + 1, 0.0)]),
                chunk(1, vec![head(i64::MAX - 1, 1.0)]),
            ],
            footer,
        );
        exercise("extreme-neighbours", &file);
    }
}

#[test]
fn a_chunk_claiming_an_absurd_end_does_not_stretch_the_lesson() {
    let events: Vec<Event> = (0..50).map(|i| head(i * 20 * MS, i as f32)).collect();
    for claim in [
        (0, i64::MAX),
        (i64::MIN, 980 * MS),
        (0, MAX_TIME_NS + 1),
        // Inverted.
        (980 * MS, 0),
        // Narrower than the events it holds.
        (0, 10 * MS),
    ] {
        for footer in [true, false] {
            let liar = Crafted {
                seq: 1,
                events: events
                    .iter()
                    .map(|e| Event::new(e.time_ns + 1000 * MS, e.payload.clone()))
                    .collect(),
                claim: Some(claim),
                no_summaries: false,
            };
            let file = craft(&[chunk(0, events.clone()), liar], footer);
            let name = format!("claim-{}-{}-{footer}", claim.0, claim.1);
            let (range, verified) = exercise(&name, &file);
            // The honest chunk's range is all that is left.
            assert_eq!(range, Some((0, 980 * MS)), "{name}");
            assert!(!verified.is_clean(), "{name}: {verified}");
            let mut player =
                Player::new(LessonReader::from_bytes(name.as_str(), file.clone()).unwrap());
            assert!(player.state_at(500 * MS).head.is_some(), "{name}");
        }
    }
}

#[test]
fn extreme_sequence_numbers_do_not_overflow_the_gap_check() {
    let events = |t0: i64| (0..5).map(|i| head(t0 + i * 20 * MS, 0.0)).collect();
    for footer in [true, false] {
        let file = craft(
            &[chunk(0, events(0)), chunk(u64::MAX, events(1000 * MS))],
            footer,
        );
        let (_, verified) = exercise("max-seq", &file);
        assert!(!verified.is_clean(), "{verified}");
    }
}

#[test]
fn strokes_and_marks_at_extreme_times_do_not_panic() {
    let style = StrokeStyle {
        colour_rgba: [1, 2, 3, 4],
        width_mm: 1.0,
        brush: Brush::Pen,
    };
    let begin = StrokeBegin {
        stroke_id: 1,
        space: Space::Patient,
        style,
    };
    let point = |t: i64| {
        Event::new(
            t,
            Payload::StrokePoint(StrokePoint {
                stroke_id: 1,
                position_mm: glam::Vec3::ZERO,
                pressure: 1.0,
            }),
        )
    };
    for (a, b) in [(i64::MIN, i64::MAX), (0, i64::MAX), (i64::MIN, 0)] {
        let file = craft(
            &[
                chunk(
                    0,
                    vec![
                        Event::new(a, Payload::StrokeBegin(begin)),
                        point(a),
                        Event::new(
                            a,
                            Payload::Chapter(Chapter {
                                title: "t".to_owned(),
                            }),
                        ),
                    ],
                ),
                chunk(
                    1,
                    vec![point(b), Event::new(b, Payload::StrokeEnd { stroke_id: 1 })],
                ),
            ],
            true,
        );
        exercise("extreme-strokes", &file);
    }
}

#[test]
fn state_at_the_ends_of_i64_does_not_overflow_against_real_samples() {
    // An honest lesson (before session time 0, as a recording started early can be): asking
    // for i64::MAX or i64::MIN must not overflow against its sample times.
    for t0 in [-900 * MS, 0, 3_600_000 * MS] {
        let events: Vec<Event> = (0..20).map(|i| head(t0 + i * 10 * MS, i as f32)).collect();
        let file = encode(&events, EncoderOptions::default());
        exercise("honest-far", &file);
        let mut player = Player::new(LessonReader::from_bytes("honest", file).unwrap());
        assert!(player.state_at(i64::MAX).head.is_none());
        assert!(player.state_at(i64::MIN).head.is_none());
        assert!(player.state_at(t0 + 15 * MS).head.is_some());
    }
}

#[test]
fn events_outside_their_chunks_claimed_range_make_it_damaged() {
    let events = |t0: i64| -> Vec<Event> { (0..50).map(|i| head(t0 + i * 20 * MS, 0.0)).collect() };
    for footer in [true, false] {
        // Chunk 1's header says 1000 ms to 1010 ms; its samples run to 1980 ms.
        let liar = Crafted {
            seq: 1,
            events: events(1000 * MS),
            claim: Some((1000 * MS, 1010 * MS)),
            no_summaries: true,
        };
        let file = craft(
            &[chunk(0, events(0)), liar, chunk(2, events(2000 * MS))],
            footer,
        );
        let (range, verified) = exercise("outside-claim", &file);
        assert_eq!(range, Some((0, 2980 * MS)));
        let problem = verified
            .problems
            .iter()
            .find(|p| p.message.contains("chunk 1 "))
            .unwrap_or_else(|| panic!("{verified}"));
        assert!(problem.message.contains("outside"), "{problem}");
        assert_eq!(verified.intact_chunks, 2, "{verified}");

        let mut player = Player::new(LessonReader::from_bytes("liar", file).unwrap());
        assert!(player.state_at(500 * MS).head.is_some());
        assert!(
            player.state_at(1500 * MS).head.is_none(),
            "chunk 1 is damaged"
        );
        assert!(player.state_at(2500 * MS).head.is_some());
        let problems = player.problems();
        assert_eq!(problems.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(problems[&1].contains("outside"), "{problems:?}");
    }
}

#[test]
fn a_footer_whose_times_differ_from_the_chunk_headers_is_not_trusted() {
    let events = |t0: i64| -> Vec<Event> {
        (0..50)
            .map(|i| head(t0 + i * 20 * MS, (t0 / MS) as f32))
            .collect()
    };
    let (bytes, mut index) = craft_chunks(&[chunk(0, events(0)), chunk(1, events(1000 * MS))]);
    // The footer moves chunk 1 five seconds later (consistently, streams included): the
    // player would decode its samples from the wrong base time.
    let shift = 5000 * MS;
    index[1].t_start_ns += shift;
    index[1].t_end_ns += shift;
    for s in &mut index[1].streams {
        s.t_min_ns += shift;
        s.t_max_ns += shift;
    }
    let file = with_footer(bytes, &index);
    let (range, verified) = exercise("shifted-footer", &file);
    assert!(!verified.is_clean(), "{verified}");
    let mut player = Player::new(LessonReader::from_bytes("shifted", file).unwrap());
    // Chunk 1 is either read at its own header's times or not at all; never at +5 s.
    if let Some(head) = player.state_at(6500 * MS).head {
        panic!("chunk 1 replayed at the footer's shifted times: {head:?}, range {range:?}");
    }
}

#[test]
fn the_recorder_refuses_times_outside_the_limit_so_its_files_stay_clean() {
    let dir = temp_dir("hostile-recorder");
    let path = dir.join("a.lesson");
    let recorder = twinray_lessons::recorder::Recorder::create(
        &path,
        &header(),
        twinray_lessons::recorder::RecorderOptions::default(),
    )
    .unwrap();
    for t in [
        0,
        10 * MS,
        i64::MAX,
        MAX_TIME_NS + 1,
        -MAX_TIME_NS - 1,
        i64::MIN,
        20 * MS,
    ] {
        recorder.record_blocking(head(t, 0.0)).unwrap();
    }
    recorder.record_blocking(head(MAX_TIME_NS, 0.0)).unwrap();
    let report = recorder.finish().unwrap();
    let verified = tools::verify(&path).unwrap();
    assert!(verified.is_clean(), "{verified}");
    assert_eq!(verified.event_count, 4);
    assert_eq!(report.event_count, 8);
    assert_eq!(report.out_of_range_event_count, 4);
    let reader = LessonReader::open(&path).unwrap();
    assert_eq!(reader.time_range_ns(), Some((0, MAX_TIME_NS)));
}
