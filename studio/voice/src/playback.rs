//! The narration of a lesson as sound at any lesson time: the sync map says which input
//! sample belongs to the time, the packets around it are decoded (from at least 80 ms before
//! a jump, so the decoder has settled), and playing on continues from where the last call
//! ended as long as that stays within 5 ms of where the clock says it should be.

use std::collections::VecDeque;

use twinray_lessons::event::VoicePacket;
use twinray_lessons::reader::LessonReader;
use twinray_lessons::voice::VoiceIndex;

use crate::codec::{OpusDecoder, MAX_DECODED_SAMPLES, PACKET_SAMPLES, SAMPLE_RATE_HZ};
use crate::error::VoiceError;

/// Decoding after a jump starts at least this many samples early (80 ms).
pub const PREROLL_SAMPLES: u64 = SAMPLE_RATE_HZ as u64 * 80 / 1000;

/// Continuous playback may drift this far from the clock's position before it jumps (5 ms):
/// far below what a listener notices as lip-sync error, far above the clocks' drift per call.
pub const MAX_DRIFT_SAMPLES: i64 = SAMPLE_RATE_HZ as i64 * 5 / 1000;

/// Plays a lesson's narration. See the module docs.
pub struct NarrationPlayer {
    reader: LessonReader,
    index: VoiceIndex,
    pre_skip: i64,
    decoder: Option<OpusDecoder>,
    /// Decoded sound; `decoded[0]` is input sample `decoded_start`.
    decoded: VecDeque<f32>,
    decoded_start: i64,
    /// Packets loaded and not yet decoded, in sample order.
    queue: VecDeque<VoicePacket>,
    /// Position in `index.chunks` of the next chunk to load.
    next_chunk: usize,
    /// Sample index the next decoded packet should start at.
    expected: Option<u64>,
    /// Input sample the next continuous call continues from.
    cursor: Option<i64>,
    scratch: Vec<f32>,
    /// Packets that failed to decode (their input sample ranges).
    undecodable: Vec<(u64, u64)>,
}

impl std::fmt::Debug for NarrationPlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NarrationPlayer")
            .field("packets", &self.index.packet_count)
            .finish_non_exhaustive()
    }
}

impl NarrationPlayer {
    /// Reads the lesson's voice index (every chunk holding voice is read once).
    ///
    /// # Errors
    /// If the lesson cannot be read at all.
    pub fn new(mut reader: LessonReader) -> Result<Self, VoiceError> {
        let index = VoiceIndex::build(&mut reader)?;
        let pre_skip = i64::from(index.format.map_or(0, |f| f.pre_skip));
        Ok(Self {
            reader,
            index,
            pre_skip,
            decoder: None,
            decoded: VecDeque::new(),
            decoded_start: 0,
            queue: VecDeque::new(),
            next_chunk: 0,
            expected: None,
            cursor: None,
            scratch: vec![0.0; MAX_DECODED_SAMPLES],
            undecodable: Vec::new(),
        })
    }

    /// The voice index (duration, syncs, lost stretches).
    #[must_use]
    pub fn index(&self) -> &VoiceIndex {
        &self.index
    }

    /// Whether the lesson has narration.
    #[must_use]
    pub fn has_voice(&self) -> bool {
        self.index.has_voice()
    }

    /// Input sample ranges of packets that would not decode (so far).
    #[must_use]
    pub fn undecodable(&self) -> &[(u64, u64)] {
        &self.undecodable
    }

    /// The input sample the narration plays at lesson time `t_ns`, if any.
    #[must_use]
    pub fn sample_at(&self, t_ns: i64) -> Option<f64> {
        self.index.map.sample_at(t_ns)
    }

    /// Fills `out` with the narration from lesson time `t_ns` on, at 48 kHz and 1× speed:
    /// silence where there is none. Returns the input sample `out[0]` holds, if any.
    ///
    /// # Errors
    /// If the lesson file cannot be read; undecodable packets play as silence and are noted.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    pub fn render(&mut self, t_ns: i64, out: &mut [f32]) -> Result<Option<i64>, VoiceError> {
        out.fill(0.0);
        let Some(x) = self.index.map.sample_at(t_ns) else {
            self.cursor = None;
            return Ok(None);
        };
        let target = x.round() as i64;
        let start = match self.cursor {
            Some(c) if (c - target).abs() <= MAX_DRIFT_SAMPLES => c,
            _ => {
                self.seek(target)?;
                target
            }
        };
        let end = start + out.len() as i64;
        self.decode_until(end)?;
        // Copy what is decoded of start..end.
        for (i, o) in out.iter_mut().enumerate() {
            let k = start + i as i64 - self.decoded_start;
            if k >= 0 {
                if let Some(v) = self.decoded.get(k as usize) {
                    *o = *v;
                }
            }
        }
        // Keep nothing before `end`.
        let drop = (end - self.decoded_start).clamp(0, self.decoded.len() as i64) as usize;
        self.decoded.drain(..drop);
        self.decoded_start += drop as i64;
        // Past the recorded end there is nothing to continue.
        let stream_end = self.index.end_sample as i64;
        for (i, o) in out.iter_mut().enumerate() {
            if start + i as i64 >= stream_end || start + (i as i64) < 0 {
                *o = 0.0;
            }
        }
        self.cursor = Some(end);
        Ok(Some(start))
    }

    /// Restarts decoding so that input sample `target` comes out settled.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
    fn seek(&mut self, target: i64) -> Result<(), VoiceError> {
        self.decoder = Some(OpusDecoder::new()?);
        self.decoded.clear();
        self.queue.clear();
        // The packet whose output holds the target, minus the pre-roll.
        let from = (target + self.pre_skip).max(0) as u64;
        let from = from.saturating_sub(PREROLL_SAMPLES);
        self.next_chunk = self.index.chunks.partition_point(|c| c.end_sample <= from);
        self.load_next_chunk()?;
        while self.queue.front().is_some_and(|p| p.end() <= from) {
            self.queue.pop_front();
            if self.queue.is_empty() {
                self.load_next_chunk()?;
            }
        }
        let first = self.queue.front().map_or(from, |p| p.sample_index);
        self.expected = Some(first);
        self.decoded_start = first as i64 - self.pre_skip;
        Ok(())
    }

    /// Loads the next chunk's packets; `false` at the end.
    fn load_next_chunk(&mut self) -> Result<bool, VoiceError> {
        loop {
            let Some(chunk) = self.index.chunks.get(self.next_chunk).copied() else {
                return Ok(false);
            };
            self.next_chunk += 1;
            match VoiceIndex::packets(&mut self.reader, chunk.index_pos) {
                Ok(packets) => {
                    self.queue.extend(packets);
                    return Ok(true);
                }
                // The index was built from this chunk a moment ago; if it now fails, its
                // voice is lost like a damaged chunk's and playback goes on.
                Err(_) => self
                    .undecodable
                    .push((chunk.first_sample, chunk.end_sample)),
            }
        }
    }

    /// Decodes packets until input sample `end` is decoded or the stream ends.
    #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
    fn decode_until(&mut self, end: i64) -> Result<(), VoiceError> {
        while self.decoded_start + (self.decoded.len() as i64) < end {
            if self.queue.is_empty() && !self.load_next_chunk()? {
                return Ok(());
            }
            let Some(packet) = self.queue.pop_front() else {
                continue;
            };
            let expected = self.expected.unwrap_or(packet.sample_index);
            if packet.end() <= expected {
                continue; // a duplicate or an overlap: already played
            }
            if packet.sample_index > expected {
                // Lost packets: silence in their place.
                let gap = (packet.sample_index - expected) as usize;
                self.decoded.extend(std::iter::repeat_n(0.0, gap));
            }
            let decoder = match self.decoder.as_mut() {
                Some(d) => d,
                None => self.decoder.insert(OpusDecoder::new()?),
            };
            let count = usize::from(packet.sample_count).min(PACKET_SAMPLES * 6);
            match decoder.decode(&packet.data, &mut self.scratch) {
                Ok(n) => {
                    let n = n.min(count);
                    self.decoded.extend(&self.scratch[..n]);
                    self.decoded.extend(std::iter::repeat_n(0.0, count - n));
                }
                Err(_) => {
                    self.undecodable.push((packet.sample_index, packet.end()));
                    self.decoded.extend(std::iter::repeat_n(0.0, count));
                }
            }
            self.expected = Some(packet.end());
        }
        Ok(())
    }
}

/// What a full decode of a lesson's narration found.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceCheck {
    /// Seconds of recorded voice.
    pub duration_s: f64,
    /// Stretches of voice missing or undecodable, as lesson times in nanoseconds, merged and
    /// in time order.
    pub lost_ns: Vec<(i64, i64)>,
}

impl VoiceCheck {
    /// The lost stretches in words ("voice lost: 12.0–13.0 s, 40.5–41.0 s"), or `None`.
    #[must_use]
    pub fn describe_lost(&self) -> Option<String> {
        describe_lost(&self.lost_ns)
    }
}

/// Stretches of lost voice (lesson-time nanoseconds) in words: "voice lost: 12.0–13.0 s,
/// 40.5–41.0 s"; `None` when there are none. The one wording of `lesson verify` and the studio.
#[must_use]
pub fn describe_lost(lost_ns: &[(i64, i64)]) -> Option<String> {
    if lost_ns.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let parts: Vec<String> = lost_ns
        .iter()
        .map(|(a, b)| format!("{:.1}–{:.1} s", *a as f64 / 1e9, *b as f64 / 1e9))
        .collect();
    Some(format!("voice lost: {}", parts.join(", ")))
}

/// Decodes the whole narration once and reports what is missing or undecodable, in lesson
/// time. `None` when the lesson has no voice.
///
/// # Errors
/// If the lesson cannot be read at all.
#[allow(clippy::cast_precision_loss)]
pub fn check_voice(reader: LessonReader) -> Result<Option<VoiceCheck>, VoiceError> {
    let mut player = NarrationPlayer::new(reader)?;
    if !player.has_voice() {
        return Ok(None);
    }
    player.seek(0)?;
    #[allow(clippy::cast_possible_wrap)]
    let end = player.index.end_sample as i64;
    let mut at = 0i64;
    let step = 48_000i64;
    while at < end {
        player.decode_until(at + step)?;
        let keep = (at + step - player.decoded_start).clamp(0, player.decoded.len() as i64);
        #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
        player.decoded.drain(..keep as usize);
        player.decoded_start += keep;
        at += step;
    }
    let map = &player.index.map;
    let to_time = |s: u64| map.time_at(s as f64).unwrap_or(0);
    let mut lost: Vec<(i64, i64)> = player
        .index
        .lost
        .iter()
        .map(|l| (l.start_ns, l.end_ns))
        .chain(
            player
                .undecodable
                .iter()
                .map(|&(a, b)| (to_time(a), to_time(b))),
        )
        .collect();
    lost.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (a, b) in lost {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    Ok(Some(VoiceCheck {
        duration_s: player.index.duration_s(),
        lost_ns: merged,
    }))
}
