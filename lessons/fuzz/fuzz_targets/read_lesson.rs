//! Feeds arbitrary bytes to everything that reads lesson files: open (footer or scan), read
//! and decode every chunk, replay at a few instants, and the sans-IO decoders directly. Any
//! panic, overflow or runaway allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twinray_lessons::chunk::{decode_payload, DecodeParts};
use twinray_lessons::format::{decode_file_header, decode_frame_header, decode_index, scan};
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;

fuzz_target!(|data: &[u8]| {
    let _ = decode_file_header(data);
    let _ = decode_frame_header(data);
    let _ = decode_index(data);
    let _ = decode_payload(data, 0, DecodeParts::ALL);
    let _ = scan(data, 0);
    if let Ok(mut reader) = LessonReader::from_bytes("<fuzz>", data.to_vec()) {
        for i in 0..reader.index().len().min(64) {
            let _ = reader.read_chunk(i, DecodeParts::ALL);
        }
        let range = reader.time_range_ns();
        let mut player = Player::new(reader);
        if let Some((a, b)) = range {
            for t in [a, a / 2 + b / 2, b, i64::MIN, i64::MAX] {
                let _ = player.state_at(t);
            }
        }
    }
});
