//! Every event type survives encoding and decoding; unknown records are skipped.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

mod common;

use common::*;
use twinray_lessons::chunk::{decode_payload, ChunkBuilder, DecodeParts};
use twinray_lessons::encoder::EncoderOptions;
use twinray_lessons::error::{DecodeError, LessonError};
use twinray_lessons::event::*;
use twinray_lessons::format::{decode_file_header, Compression, FORMAT_VERSION};
use twinray_lessons::reader::{IndexOrigin, LessonReader};
use twinray_lessons::recorder::{Recorder, RecorderOptions};

fn read_all_events(bytes: Vec<u8>) -> Vec<Event> {
    let mut reader = LessonReader::from_bytes("<memory>", bytes).unwrap();
    assert_eq!(*reader.index_origin(), IndexOrigin::Footer);
    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        events.extend(
            reader
                .read_chunk(i, DecodeParts::ALL)
                .unwrap()
                .into_events(),
        );
    }
    events
}

#[test]
fn every_event_type_round_trips_through_a_file() {
    let events = one_of_everything();
    for compression in [Compression::Zstd, Compression::None] {
        let options = EncoderOptions {
            compression,
            ..EncoderOptions::default()
        };
        let decoded = read_all_events(encode(&events, options));
        assert_eq!(decoded.len(), events.len());
        for (e, d) in events.iter().zip(&decoded) {
            assert_event_close(e, d);
        }
    }
}

#[test]
fn events_round_trip_across_many_chunks_and_keyframes() {
    // 30 s at 90 Hz of head, hands and controllers, plus a stroke: many chunks, several
    // keyframes, deltas restarting in every chunk.
    let mut events = Vec::new();
    for i in 0..2700i64 {
        let t = i * 11_111_111;
        let s = i as f32;
        events.push(Event::new(t, Payload::Head(pose(s))));
        events.push(Event::new(
            t + 1,
            Payload::Hand(Box::new(HandSample {
                hand: Handedness::Right,
                joints: (i % 50 != 0).then(|| hand_joints(s)),
            })),
        ));
        events.push(Event::new(
            t + 2,
            Payload::Controller(ControllerSample {
                hand: Handedness::Left,
                state: Some(controller(s)),
            }),
        ));
    }
    events.sort_by_key(|e| e.time_ns);
    let bytes = encode(&events, EncoderOptions::default());
    let reader = LessonReader::from_bytes("<memory>", bytes.clone()).unwrap();
    assert!(
        reader.index().len() >= 29,
        "{} chunks",
        reader.index().len()
    );
    assert!(reader.index().iter().filter(|e| e.keyframe).count() >= 10);
    let decoded = read_all_events(bytes);
    assert_eq!(decoded.len(), events.len());
    for (e, d) in events.iter().zip(&decoded) {
        assert_event_close(e, d);
    }
}

#[test]
fn recorder_writes_a_finished_file_with_every_event() {
    let dir = temp_dir("recorder-finish");
    let path = dir.join("a.lesson");
    let events = one_of_everything();
    let recorder = Recorder::create(&path, &header(), RecorderOptions::default()).unwrap();
    for e in &events {
        assert!(recorder.record(e.clone()));
    }
    let report = recorder.finish().unwrap();
    assert_eq!(report.event_count, events.len() as u64);
    assert_eq!(report.dropped_event_count, 0);
    assert_eq!(
        report.bytes_written,
        std::fs::metadata(&path).unwrap().len()
    );

    let reader = LessonReader::open(&path).unwrap();
    assert_eq!(reader.header().lesson, header());
    assert_eq!(reader.header().format_version, FORMAT_VERSION);
    assert_eq!(*reader.index_origin(), IndexOrigin::Footer);
    let decoded = read_all_events(std::fs::read(&path).unwrap());
    for (e, d) in events.iter().zip(&decoded) {
        assert_event_close(e, d);
    }
    let v = twinray_lessons::tools::verify(&path).unwrap();
    assert!(v.is_clean(), "{v}");
    assert_eq!(v.event_count, events.len() as u64);
}

#[test]
fn recorder_drops_and_counts_when_the_channel_is_full() {
    let dir = temp_dir("recorder-full");
    let path = dir.join("a.lesson");
    let options = RecorderOptions {
        channel_capacity: 1,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::create(&path, &header(), options).unwrap();
    let mut refused = 0u64;
    // The writer cannot keep up with a tight loop through a one-slot channel.
    for i in 0..20_000i64 {
        if !recorder.record(Event::new(i, Payload::Head(pose(1.0)))) {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "expected some drops through a one-slot channel"
    );
    assert_eq!(recorder.dropped_event_count(), refused);
    let report = recorder.finish().unwrap();
    assert_eq!(report.dropped_event_count, refused);
    assert_eq!(report.event_count + refused, 20_000);
}

#[test]
fn dropping_a_recorder_without_finish_leaves_a_recoverable_file() {
    let dir = temp_dir("recorder-drop");
    let path = dir.join("a.lesson");
    let events = one_of_everything();
    {
        let recorder = Recorder::create(&path, &header(), RecorderOptions::default()).unwrap();
        for e in &events {
            recorder.record(e.clone());
        }
    }
    let reader = LessonReader::open(&path).unwrap();
    assert!(matches!(reader.index_origin(), IndexOrigin::Scan { .. }));
    let decoded = read_all_events_scanned(&path);
    assert_eq!(decoded.len(), events.len());
    let v = twinray_lessons::tools::verify(&path).unwrap();
    assert!(!v.is_clean(), "an unfinished file has no footer");
    let fixed = dir.join("fixed.lesson");
    let r = twinray_lessons::tools::recover(&path, &fixed).unwrap();
    assert!(r.lost.is_empty(), "{r}");
    assert!(twinray_lessons::tools::verify(&fixed).unwrap().is_clean());
}

fn read_all_events_scanned(path: &std::path::Path) -> Vec<Event> {
    let mut reader = LessonReader::open(path).unwrap();
    let mut events = Vec::new();
    for i in 0..reader.index().len() {
        events.extend(
            reader
                .read_chunk(i, DecodeParts::ALL)
                .unwrap()
                .into_events(),
        );
    }
    events
}

#[test]
fn unknown_record_types_are_skipped_not_fatal() {
    let mut b = ChunkBuilder::new(None);
    b.push(Event::new(
        5,
        Payload::Note(Note {
            text: "before".into(),
        }),
    ));
    b.push(Event::new(
        9,
        Payload::Note(Note {
            text: "after".into(),
        }),
    ));
    let mut payload = b.encode().unwrap().bytes;
    // A future record type 0xEE with a 3-byte body, inserted between the two notes.
    let first_len = 2 + payload[1] as usize;
    let tail = payload.split_off(first_len);
    payload.extend([0xEE, 3, 1, 2, 3]);
    // And a scene record with a future scene-change tag (0x7F).
    payload.extend([0x40, 2, 0, 0x7F]);
    payload.extend(tail);
    let chunk = decode_payload(&payload, 0, DecodeParts::ALL).unwrap();
    assert_eq!(chunk.unknown_records, 2);
    let texts: Vec<_> = chunk
        .events
        .iter()
        .map(|e| match &e.payload {
            Payload::Note(n) => n.text.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(texts, ["before", "after"]);
}

#[test]
fn a_newer_format_version_is_refused_with_a_clear_error() {
    let mut bytes = encode(&one_of_everything(), EncoderOptions::default());
    bytes[8] = 99; // version, little-endian u16 at offset 8
    assert!(matches!(
        decode_file_header(&bytes),
        Err(DecodeError::UnsupportedVersion { found: 99, .. })
    ));
    let err = LessonReader::from_bytes("new.lesson", bytes).unwrap_err();
    assert!(matches!(err, LessonError::Header { .. }));
    let msg = twinray_lessons::error::full_message(&err);
    assert!(
        msg.contains("new.lesson") && msg.contains("version 99"),
        "{msg}"
    );
}

#[test]
fn dump_writes_the_header_and_one_json_line_per_event() {
    let dir = temp_dir("dump");
    let path = dir.join("a.lesson");
    std::fs::write(
        &path,
        encode(&one_of_everything(), EncoderOptions::default()),
    )
    .unwrap();
    let mut out = Vec::new();
    let report = twinray_lessons::tools::dump(&path, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(report.event_count as usize, one_of_everything().len());
    assert_eq!(lines.len(), one_of_everything().len() + 1);
    assert_eq!(lines[0]["header"]["case_ref"], "sha256:0123456789abcdef");
    assert_eq!(lines[1]["stream"], "head");
    assert_eq!(lines[1]["time_ns"], 7_000_000);
    let note = lines
        .iter()
        .find(|l| l["stream"] == "marks" && l.get("note").is_some())
        .unwrap();
    assert_eq!(note["note"]["text"], "note the aneurysm");
}

#[test]
fn info_lists_streams_and_chapters() {
    let dir = temp_dir("info");
    let path = dir.join("a.lesson");
    std::fs::write(
        &path,
        encode(&one_of_everything(), EncoderOptions::default()),
    )
    .unwrap();
    let info = twinray_lessons::tools::info(&path).unwrap();
    assert!(info.has_footer);
    assert_eq!(info.header.case_ref, "sha256:0123456789abcdef");
    assert_eq!(info.chapters.len(), 1);
    assert_eq!(info.chapters[0].title, "Introduction — Übersicht");
    let strokes = info.streams.iter().find(|s| s.name == "strokes").unwrap();
    assert_eq!(strokes.event_count, 6);
    let hands = info.streams.iter().find(|s| s.name == "hands").unwrap();
    assert_eq!(hands.event_count, 2);
    assert_eq!(info.duration_ns(), 31 * 7_000_000);
    // Two voice packets: 960 + 500 recorded samples.
    let voice = info.voice.as_ref().unwrap();
    assert_eq!(voice.packet_count, 2);
    assert!((voice.duration_s - 1460.0 / 48_000.0).abs() < 1e-9);
    assert!(info.to_string().contains("voice:"), "{info}");
    let text = info.to_string();
    assert!(
        text.contains("Introduction") && text.contains("hands"),
        "{text}"
    );
}

#[test]
fn recording_never_replaces_an_existing_file() {
    let dir = temp_dir("recorder-exists");
    let path = dir.join("studio.lesson");
    let earlier = b"the instructor's earlier lesson".to_vec();
    std::fs::write(&path, &earlier).unwrap();
    let result = Recorder::create(&path, &header(), RecorderOptions::default());
    let err = result.expect_err("recording over an existing file must fail");
    assert!(
        matches!(&err, LessonError::Exists { path: p } if *p == path),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("studio.lesson"), "{message}");
    assert!(message.contains("never replace"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), earlier);

    // Also a finished lesson: recording again to its name leaves it whole.
    let lesson = dir.join("finished.lesson");
    let recorder = Recorder::create(&lesson, &header(), RecorderOptions::default()).unwrap();
    for e in one_of_everything() {
        recorder.record_blocking(e).unwrap();
    }
    recorder.finish().unwrap();
    let bytes = std::fs::read(&lesson).unwrap();
    assert!(matches!(
        Recorder::create(&lesson, &header(), RecorderOptions::default()),
        Err(LessonError::Exists { .. })
    ));
    assert_eq!(std::fs::read(&lesson).unwrap(), bytes);
    assert!(twinray_lessons::tools::verify(&lesson).unwrap().is_clean());
}

#[test]
fn create_unique_numbers_the_name_and_keeps_the_extension() {
    let dir = temp_dir("recorder-unique");
    let asked = dir.join("studio.lesson");
    let mut recorded = Vec::new();
    for (i, expected) in ["studio.lesson", "studio-2.lesson", "studio-3.lesson"]
        .iter()
        .enumerate()
    {
        let recorder =
            Recorder::create_unique(&asked, &header(), RecorderOptions::default()).unwrap();
        assert_eq!(recorder.path(), dir.join(expected));
        recorder
            .record_blocking(Event::new(i as i64, Payload::Head(pose(i as f32))))
            .unwrap();
        let report = recorder.finish().unwrap();
        assert_eq!(report.path, dir.join(expected));
        recorded.push(report.path);
    }
    // Each is its own finished lesson with its own event; none was overwritten.
    for (i, path) in recorded.iter().enumerate() {
        assert!(twinray_lessons::tools::verify(path).unwrap().is_clean());
        let mut reader = LessonReader::open(path).unwrap();
        let head = reader.read_chunk(0, DecodeParts::ALL).unwrap().head;
        assert_eq!(head.len(), 1);
        assert_eq!(head[0].0, i as i64, "{}", path.display());
    }
    // A gap is filled, and a name without an extension gets a bare number.
    std::fs::remove_file(dir.join("studio-2.lesson")).unwrap();
    let r = Recorder::create_unique(&asked, &header(), RecorderOptions::default()).unwrap();
    assert_eq!(r.path(), dir.join("studio-2.lesson"));
    r.finish().unwrap();
    let bare = dir.join("take");
    std::fs::write(&bare, b"x").unwrap();
    let r = Recorder::create_unique(&bare, &header(), RecorderOptions::default()).unwrap();
    assert_eq!(r.path(), dir.join("take-2"));
    r.finish().unwrap();
    assert_eq!(std::fs::read(&bare).unwrap(), b"x");
}

/// Voice is compressed apart from the motion (a second zstd frame in the chunk): a whole-payload
/// read (what a 1.0 reader does) sees every record, and a read without voice decompresses only
/// the first part and still has every other event. (Every full read in these tests is the 1.0
/// reader's path, so they show it reads two-part payloads.)
#[test]
fn voice_rides_in_its_own_zstd_frame_and_both_reads_agree() {
    let bytes = encode(&one_of_everything(), EncoderOptions::default());
    let mut reader = LessonReader::from_bytes("parts.lesson", bytes).unwrap();
    let whole = reader.read_chunk(0, DecodeParts::ALL).unwrap();
    let without = reader.read_chunk(0, DecodeParts::EVENTS).unwrap();
    assert_eq!(whole.voice.len(), 2);
    assert!(without.voice.is_empty());
    assert_eq!(whole.events, without.events);
}

// ---- 1.2: label maps ----------------------------------------------------------------------

fn label_map(dims: [u32; 3], seed: u16) -> LabelMapBlob {
    let n = dims.iter().product::<u32>() as u16;
    let voxels: Vec<u16> = (0..n).map(|i| (i / 3 + seed) % 7).collect();
    LabelMapBlob::encode(dims, &voxels).unwrap()
}

#[test]
fn a_label_map_is_stored_once_in_a_chunk_of_its_own() {
    let a = label_map([8, 8, 4], 0);
    let b = label_map([8, 8, 4], 1);
    assert_ne!(a.hash, b.hash);
    let mut events = Vec::new();
    for t in 0..30 {
        events.push(Event::new(t * 10_000_000, Payload::Head(Pose::IDENTITY)));
    }
    events.extend(a.clone().into_events(55_000_000));
    events.extend(b.clone().into_events(105_000_000));
    events.extend(a.clone().into_events(205_000_000));
    events.sort_by_key(|e| e.time_ns);
    let bytes = encode(&events, EncoderOptions::default());
    let mut reader = LessonReader::from_bytes("<memory>", bytes).unwrap();
    let mut maps = Vec::new();
    for i in 0..reader.index().len() {
        let chunk = reader.read_chunk(i, DecodeParts::ALL).unwrap();
        let here: Vec<_> = chunk
            .events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::LabelMap(m) => Some(m.hash),
                _ => None,
            })
            .collect();
        if !here.is_empty() {
            // Nothing else rides with a map, and the index says the chunk holds one.
            assert_eq!(here.len(), 1);
            assert!(chunk.head.is_empty() && chunk.events.len() == 1);
            assert!(reader.index()[i]
                .stream(StreamId::LabelMaps as u8)
                .is_some());
        }
        maps.extend(here);
    }
    assert_eq!(maps, [a.hash, b.hash], "each map once, in recording order");
}

#[test]
fn hostile_label_maps_are_errors_not_allocations_or_panics() {
    // A record declaring 2^40 voxels is refused before anything is read.
    let mut b = ChunkBuilder::new(None);
    b.push(Event::new(
        0,
        Payload::LabelMap(Box::new(label_map([2, 2, 2], 0))),
    ));
    let mut payload = b.encode().unwrap().bytes;
    // Record: type, length, time (1 byte), hash (32), dims (3 one-byte varints) …
    let dims_at = 2 + 1 + 32;
    assert_eq!(&payload[dims_at..dims_at + 3], &[2, 2, 2]);
    let mut huge = payload.clone();
    huge.splice(
        dims_at..dims_at + 3,
        [0x80, 0x80, 0x40, 0x80, 0x80, 0x40, 1],
    );
    huge[1] += 4;
    let err = decode_payload(&huge, 0, DecodeParts::ALL).unwrap_err();
    assert!(err.to_string().contains("label map size"), "{err}");

    // Voxels that do not decompress, are short, or do not have their hash: typed errors.
    let mut blob = label_map([4, 4, 4], 2);
    let good = blob.voxels().unwrap();
    assert_eq!(good.len(), 64);
    blob.hash[0] ^= 1;
    assert_eq!(blob.voxels(), Err(LabelMapError::HashMismatch));
    let mut garbage = label_map([4, 4, 4], 2);
    garbage.zstd = vec![1, 2, 3, 4, 5];
    assert!(matches!(
        garbage.voxels(),
        Err(LabelMapError::Decompress(_))
    ));
    // Claiming a 640³ grid over 64 voxels' bytes: reads what is there, and says so.
    let mut short = label_map([4, 4, 4], 2);
    short.dims = [640, 640, 640];
    assert!(matches!(
        short.voxels(),
        Err(LabelMapError::WrongLength { found: 64, .. })
    ));
    short.dims = [650, 650, 650];
    assert!(matches!(short.voxels(), Err(LabelMapError::BadSize { .. })));
    assert!(LabelMapBlob::encode([2, 2, 2], &[0; 7]).is_err());

    // A map whose coding a newer writer added is skipped like an unknown record.
    let coding_at = dims_at + 3;
    payload[coding_at] = 9;
    let chunk = decode_payload(&payload, 0, DecodeParts::ALL).unwrap();
    assert_eq!((chunk.events.len(), chunk.unknown_records), (0, 1));
}

// ---- 1.3: image boards, strokes on boards, measurements -----------------------------------

#[test]
fn boards_strokes_on_boards_and_measurements_round_trip_through_a_file() {
    let mut events = boards_and_measurements(0);
    // The same image shown again later is stored once.
    let again = board_image(40, 30, 7).into_events(
        900_000_000,
        4,
        "Pelvis AP, again".to_owned(),
        board_pose(9.0),
        200.0,
    );
    events.extend(again.clone());
    for compression in [Compression::Zstd, Compression::None] {
        let options = EncoderOptions {
            compression,
            ..EncoderOptions::default()
        };
        let bytes = encode(&events, options);
        let mut reader = LessonReader::from_bytes("<memory>", bytes.clone()).unwrap();
        assert_eq!(reader.header().format_minor_version, 3);
        for i in 0..reader.index().len() {
            let chunk = reader.read_chunk(i, DecodeParts::ALL).unwrap();
            assert_eq!(chunk.unknown_records, 0);
            if chunk
                .events
                .iter()
                .any(|e| matches!(e.payload, Payload::Image(_)))
            {
                // An image rides alone, and the index says where the images are.
                assert_eq!(chunk.events.len(), 1);
                assert!(reader.index()[i].stream(StreamId::Images as u8).is_some());
            }
        }
        let decoded = read_all_events(bytes);
        let mut expected = events.clone();
        expected.retain(|e| e != &again[0]);
        assert_eq!(decoded.len(), expected.len());
        for (e, d) in expected.iter().zip(&decoded) {
            assert_event_close(e, d);
        }
    }
}

#[test]
fn keyframes_carry_boards_board_strokes_and_measurements() {
    use twinray_lessons::state::Keyframe;
    let mut kf = Keyframe::default();
    for e in boards_and_measurements(0) {
        // Up to the measurements, before anything is hidden again.
        if matches!(
            e.payload,
            Payload::Scene(SceneChange::MeasurementHide { .. } | SceneChange::BoardHide { .. })
        ) {
            break;
        }
        kf.apply(&e, 2);
    }
    kf.apply(
        &Event::new(
            1,
            Payload::StrokeBegin(StrokeBegin {
                stroke_id: 2,
                space: Space::Patient,
                style: StrokeStyle {
                    colour_rgba: [1, 2, 3, 4],
                    width_mm: 1.0,
                    brush: Brush::Highlighter,
                },
            }),
        ),
        1,
    );
    assert_eq!(kf.scene.boards.len(), 1);
    assert_eq!(kf.scene.boards[&3].width_mm, 450.0, "the last pose is kept");
    assert_eq!(kf.scene.measurements.len(), 6);
    assert_eq!(kf.strokes[&40].begin.space, Space::Board(3));
    let mut b = ChunkBuilder::new(Some(kf.clone()));
    b.push(Event::new(5, Payload::Head(Pose::IDENTITY)));
    let payload = b.encode().unwrap();
    let chunk = decode_payload(&payload.bytes, payload.t_start_ns, DecodeParts::ALL).unwrap();
    assert_eq!(chunk.keyframe, Some(kf));
}

#[test]
fn a_measurement_other_holding_a_known_kind_is_written_as_unknown() {
    // Otherwise a writer could emit kind 1 (distance) without its points: a damaged chunk.
    let mut b = ChunkBuilder::new(None);
    b.push(Event::new(
        0,
        Payload::Scene(SceneChange::MeasurementShow {
            id: 9,
            measurement: Measurement::Other(1),
        }),
    ));
    let chunk = decode_payload(&b.encode().unwrap().bytes, 0, DecodeParts::ALL).unwrap();
    assert_eq!(
        chunk.events[0].payload,
        Payload::Scene(SceneChange::MeasurementShow {
            id: 9,
            measurement: Measurement::Other(0),
        })
    );
}

#[test]
fn a_long_board_title_is_cut_at_a_character_boundary() {
    let title = "Ü".repeat(200); // 400 bytes
    let mut b = ChunkBuilder::new(None);
    b.push(Event::new(
        0,
        Payload::Scene(SceneChange::BoardShow {
            board_id: 1,
            image: ImageHash([5; 32]),
            title: title.clone(),
            pose: Pose::IDENTITY,
            width_mm: 100.0,
        }),
    ));
    let chunk = decode_payload(&b.encode().unwrap().bytes, 0, DecodeParts::ALL).unwrap();
    let Payload::Scene(SceneChange::BoardShow { title: cut, .. }) = &chunk.events[0].payload else {
        panic!("{:?}", chunk.events);
    };
    assert_eq!(cut.len(), MAX_BOARD_TITLE_BYTES);
    assert!(title.starts_with(cut.as_str()));
}

/// The payload of a chunk holding only `event`.
fn lone_record(event: Event) -> Vec<u8> {
    let mut b = ChunkBuilder::new(None);
    b.push(event);
    b.encode().unwrap().bytes
}

/// A record's type and body, from a payload holding that one record.
fn split_record(payload: &[u8]) -> (u8, Vec<u8>) {
    let mut at = 1;
    while payload[at] & 0x80 != 0 {
        at += 1;
    }
    (payload[0], payload[at + 1..].to_vec())
}

/// A payload of one record.
fn make_record(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![ty];
    let mut n = body.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(body);
    out
}

#[test]
fn hostile_images_are_errors_not_allocations_or_panics() {
    let image = board_image(16, 8, 1);
    let (ty, body) = split_record(&lone_record(Event::new(
        0,
        Payload::Image(Box::new(image.clone())),
    )));
    assert_eq!(ty, 0x42);
    // Body: time (1), hash (32), width and height (one-byte varints) …
    let dims_at = 1 + 32;
    assert_eq!(&body[dims_at..dims_at + 2], &[16, 8]);
    let with = |at: usize, len: usize, bytes: &[u8]| {
        let mut b = body.clone();
        b.splice(at..at + len, bytes.iter().copied());
        make_record(ty, &b)
    };

    // Declared sizes past the limits are refused while decoding, before the pixels.
    for dims in [
        vec![0x80, 0x80, 0x80, 0x80, 0x0f, 8], // 2^32 - 1 wide: not a u32 side we take
        vec![0x81, 0x40, 8],                   // 8193 wide
        vec![0x80, 0x40, 0x80, 0x40],          // 8192 × 8192 = 2^26: at the limit, fine
        vec![0x80, 0x40, 0x81, 0x40],          // 8192 × 8193
        vec![0, 8],                            // empty
    ] {
        let hostile = with(dims_at, 2, &dims);
        let result = decode_payload(&hostile, 0, DecodeParts::ALL);
        if dims == [0x80, 0x40, 0x80, 0x40] {
            // The record is accepted; its pixels are what fails, without allocating 64 MiB.
            let chunk = result.unwrap();
            let Payload::Image(big) = &chunk.events[0].payload else {
                panic!()
            };
            assert_eq!((big.width, big.height), (8192, 8192));
            assert!(matches!(
                big.pixels(),
                Err(ImageError::WrongLength { found: 128, .. })
            ));
        } else {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("image size"), "{dims:?}: {err}");
        }
    }

    // A stored image whose fields were damaged: typed errors, memory bounded by what is there.
    assert_eq!(image.pixels().unwrap().len(), 128);
    let mut bad_hash = image.clone();
    bad_hash.hash.0[31] ^= 0x40;
    assert_eq!(bad_hash.pixels(), Err(ImageError::HashMismatch));
    let mut other_spacing = image.clone();
    other_spacing.spacing = PixelSpacing::Unknown;
    assert_eq!(other_spacing.pixels(), Err(ImageError::HashMismatch));
    let mut garbage = image.clone();
    garbage.zstd = vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3];
    assert!(matches!(garbage.pixels(), Err(ImageError::Decompress(_))));
    let mut rgba = image.clone();
    rgba.format = PixelFormat::Rgba8; // 4 × the bytes it holds
    assert!(matches!(
        rgba.pixels(),
        Err(ImageError::WrongLength {
            expected: 512,
            found: 128,
            ..
        })
    ));
    let mut huge = image.clone();
    (huge.width, huge.height) = (8192, 8193);
    assert!(matches!(huge.pixels(), Err(ImageError::BadSize { .. })));
    let mut nan = image.clone();
    nan.spacing = PixelSpacing::Known {
        row_mm: f32::NAN,
        col_mm: 0.1,
        at_detector: false,
    };
    assert_eq!(nan.pixels(), Err(ImageError::BadSpacing));

    // A bomb: a few bytes that inflate far past the declared size stop one byte past it.
    let bomb = zstd::bulk::compress(&vec![0u8; 1 << 24], 3).unwrap();
    assert!(bomb.len() < 4096);
    let mut inflating = image.clone();
    inflating.zstd = bomb;
    assert!(matches!(
        inflating.pixels(),
        Err(ImageError::WrongLength { found: 129, .. })
    ));

    // Encoding refuses what a lesson could not hold, so the loader can downsample.
    assert!(matches!(
        ImageBlob::encode(16, 8, PixelFormat::Grey8, PixelSpacing::Unknown, &[0; 127]),
        Err(ImageError::WrongLength { .. })
    ));
    assert!(matches!(
        ImageBlob::encode(
            8193,
            1,
            PixelFormat::Grey8,
            PixelSpacing::Unknown,
            &[0; 8193]
        ),
        Err(ImageError::BadSize { .. })
    ));
    let zero = PixelSpacing::Known {
        row_mm: 0.0,
        col_mm: 0.1,
        at_detector: false,
    };
    assert_eq!(
        ImageBlob::encode(1, 1, PixelFormat::Grey8, zero, &[0]),
        Err(ImageError::BadSpacing)
    );
    let mut rng = twinray_lessons::synthetic::Rng::new(3);
    let noise: Vec<u8> = (0..4096 * 3300).map(|_| rng.next_u64() as u8).collect();
    assert!(matches!(
        ImageBlob::encode(
            4096,
            3300,
            PixelFormat::Grey8,
            PixelSpacing::Unknown,
            &noise
        ),
        Err(ImageError::TooLarge { .. })
    ));

    // A pixel format, spacing kind or coding a newer writer added: skipped like an unknown
    // record. A known spacing that is no size is damage.
    let format_at = dims_at + 2;
    let spacing_at = format_at + 1;
    let coding_at = spacing_at + 1 + 4 + 4 + 1;
    for (at, value) in [(format_at, 9), (spacing_at, 7), (coding_at, 2)] {
        let newer = with(at, 1, &[value]);
        let chunk = decode_payload(&newer, 0, DecodeParts::ALL).unwrap();
        assert_eq!((chunk.events.len(), chunk.unknown_records), (0, 1), "{at}");
    }
    // The row spacing's sign bit.
    let negative = with(spacing_at + 4, 1, &[body[spacing_at + 4] | 0x80]);
    let err = decode_payload(&negative, 0, DecodeParts::ALL).unwrap_err();
    assert!(err.to_string().contains("pixel spacing"), "{err}");
}

#[test]
fn unknown_spaces_and_measurement_kinds_from_newer_writers_are_skipped() {
    // A measurement of a kind this build does not know is kept as a note (`Other`); one in a
    // space it does not know is skipped, as is a stroke or viewpoint on such a space.
    let show = |kind: u8, space: u8| {
        // Scene record: type, length, time 0, tag 16, id 5, kind, space, 2 points.
        let mut body = vec![0, 16, 5, kind, space];
        body.extend([0u8; 24]);
        let mut p = vec![0x40, body.len() as u8];
        p.extend(body);
        decode_payload(&p, 0, DecodeParts::ALL).unwrap()
    };
    let chunk = show(77, 1);
    assert_eq!(
        chunk.events[0].payload,
        Payload::Scene(SceneChange::MeasurementShow {
            id: 5,
            measurement: Measurement::Other(77),
        })
    );
    let chunk = show(1, 1);
    assert!(matches!(
        chunk.events[0].payload,
        Payload::Scene(SceneChange::MeasurementShow {
            measurement: Measurement::Distance {
                space: Space::Patient,
                ..
            },
            ..
        })
    ));
    let chunk = show(1, 9);
    assert_eq!((chunk.events.len(), chunk.unknown_records), (0, 1));

    let mut on_board = lone_record(Event::new(
        0,
        Payload::StrokeBegin(StrokeBegin {
            stroke_id: 1,
            space: Space::Board(2),
            style: StrokeStyle {
                colour_rgba: [0; 4],
                width_mm: 1.0,
                brush: Brush::Pen,
            },
        }),
    ));
    // Type 0x35, length, time, id, space 2, board 2.
    assert_eq!(&on_board[..6], &[0x35, 13, 0, 1, 2, 2]);
    on_board[4] = 9;
    let chunk = decode_payload(&on_board, 0, DecodeParts::ALL).unwrap();
    assert_eq!((chunk.events.len(), chunk.unknown_records), (0, 1));
}
