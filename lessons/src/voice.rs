//! The narration inside a lesson at the format level: which input sample plays at which lesson
//! time, where the packets of a stretch of voice are, and which seconds of voice a damaged or
//! incomplete file lost. Decoding the codec is the voice crate's job; this module never looks
//! inside a packet.
//!
//! Time is placed by the sync records ([`VoiceSync`]), not by packet event times: the recorder
//! writes one about once a second from the capture timestamps, so a sound card whose clock runs
//! 100 ppm fast or slow is followed rather than accumulating 0.36 s of error an hour. Between
//! two sync points the mapping is linear; past the last one of a segment it continues at the
//! segment's measured rate, up to where the next segment starts.

use std::collections::BTreeMap;

use crate::chunk::DecodeParts;
use crate::error::LessonError;
use crate::event::{Payload, StreamId, VoiceFormat, VoicePacket, VoiceSync};
use crate::reader::LessonReader;

/// Segments shorter than this use the nominal sample rate rather than one measured over too
/// short a span to mean anything.
const MIN_RATE_SPAN_NS: i64 = 2_000_000_000;

/// A measured rate further than this from the nominal one is not believed (a clock jump, a
/// crafted file): the nominal rate is used instead.
const MAX_RATE_DEVIATION: f64 = 0.01;

/// One sync point: input sample `sample_index` was captured at `time_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    /// Lesson time.
    pub time_ns: i64,
    /// Input sample index.
    pub sample_index: u64,
    /// Whether the audio clock restarts here.
    pub starts_segment: bool,
}

impl SyncPoint {
    /// The point an event describes.
    #[must_use]
    pub fn new(time_ns: i64, sync: VoiceSync) -> Self {
        Self {
            time_ns,
            sample_index: sync.sample_index,
            starts_segment: sync.starts_segment,
        }
    }
}

/// A run of sync points on one continuous audio clock.
#[derive(Debug, Clone)]
struct Segment {
    points: Vec<SyncPoint>,
    /// Samples per nanosecond over the segment (measured, or nominal).
    rate_per_ns: f64,
    /// First sample of the next segment: this one never maps past it.
    end_sample: Option<u64>,
}

impl Segment {
    fn first(&self) -> SyncPoint {
        self.points[0]
    }

    fn sample_at(&self, time_ns: i64) -> f64 {
        let pts = &self.points;
        let i = pts.partition_point(|p| p.time_ns <= time_ns);
        let (a, b) = match i {
            0 => (pts[0], None),
            i if i >= pts.len() => (pts[pts.len() - 1], None),
            i => (pts[i - 1], Some(pts[i])),
        };
        #[allow(clippy::cast_precision_loss)]
        match b {
            Some(b) if b.time_ns > a.time_ns => {
                let f = time_ns.saturating_sub(a.time_ns) as f64
                    / b.time_ns.saturating_sub(a.time_ns) as f64;
                a.sample_index as f64 + f * (b.sample_index as f64 - a.sample_index as f64)
            }
            _ => {
                a.sample_index as f64 + time_ns.saturating_sub(a.time_ns) as f64 * self.rate_per_ns
            }
        }
    }

    fn time_at(&self, sample: f64) -> i64 {
        let pts = &self.points;
        #[allow(clippy::cast_precision_loss)]
        let i = pts.partition_point(|p| p.sample_index as f64 <= sample);
        let (a, b) = match i {
            0 => (pts[0], None),
            i if i >= pts.len() => (pts[pts.len() - 1], None),
            i => (pts[i - 1], Some(pts[i])),
        };
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        match b {
            Some(b) if b.sample_index > a.sample_index => {
                let f = (sample - a.sample_index as f64)
                    / (b.sample_index as f64 - a.sample_index as f64);
                // `as` saturates (and takes NaN to 0): a hostile sample lands at the ends.
                let dt = f * b.time_ns.saturating_sub(a.time_ns) as f64;
                a.time_ns.saturating_add(dt.round() as i64)
            }
            _ => {
                let dt = (sample - a.sample_index as f64) / self.rate_per_ns;
                a.time_ns.saturating_add(dt.round() as i64)
            }
        }
    }
}

/// Maps lesson time to input samples and back, from the sync points. See the module docs.
#[derive(Debug, Clone)]
pub struct SyncMap {
    segments: Vec<Segment>,
}

impl SyncMap {
    /// The map for these points (any order) of a stream at `sample_rate_hz`. Points that
    /// contradict the ones before them (time or sample going backwards) are left out.
    #[must_use]
    pub fn new(points: &[SyncPoint], sample_rate_hz: u32) -> Self {
        let nominal = f64::from(sample_rate_hz.max(1)) / 1e9;
        let mut sorted = points.to_vec();
        sorted.sort_by_key(|p| (p.sample_index, p.time_ns));
        let mut segments: Vec<Segment> = Vec::new();
        for p in sorted {
            match segments.last_mut() {
                Some(seg) if !p.starts_segment => {
                    let last = seg.points[seg.points.len() - 1];
                    if p.time_ns > last.time_ns && p.sample_index > last.sample_index {
                        seg.points.push(p);
                    }
                }
                Some(seg) if p.sample_index == seg.first().sample_index => {}
                _ => segments.push(Segment {
                    points: vec![p],
                    rate_per_ns: nominal,
                    end_sample: None,
                }),
            }
        }
        let starts: Vec<u64> = segments.iter().map(|s| s.first().sample_index).collect();
        for (i, seg) in segments.iter_mut().enumerate() {
            seg.end_sample = starts.get(i + 1).copied();
            let (a, b) = (seg.first(), seg.points[seg.points.len() - 1]);
            if b.time_ns.saturating_sub(a.time_ns) >= MIN_RATE_SPAN_NS {
                #[allow(clippy::cast_precision_loss)]
                let measured =
                    (b.sample_index - a.sample_index) as f64 / (b.time_ns - a.time_ns) as f64;
                if (measured / nominal - 1.0).abs() <= MAX_RATE_DEVIATION {
                    seg.rate_per_ns = measured;
                }
            }
        }
        Self { segments }
    }

    /// Whether there is no sync point at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The (fractional) input sample captured at lesson time `time_ns`, or `None` when no
    /// audio was being recorded then: before the first sample, or in a gap between segments
    /// (a pause, the time before a voice-over starts).
    #[must_use]
    pub fn sample_at(&self, time_ns: i64) -> Option<f64> {
        // The last segment starting at or before t, else the first one (t before it all).
        let i = self
            .segments
            .partition_point(|s| s.first().time_ns <= time_ns)
            .saturating_sub(1);
        let seg = self.segments.get(i)?;
        let x = seg.sample_at(time_ns);
        #[allow(clippy::cast_precision_loss)]
        let past_end = seg.end_sample.is_some_and(|end| x >= end as f64);
        (x >= 0.0 && !past_end).then_some(x)
    }

    /// The lesson time at which input sample `sample` was captured.
    #[must_use]
    pub fn time_at(&self, sample: f64) -> Option<i64> {
        #[allow(clippy::cast_precision_loss)]
        let i = self
            .segments
            .partition_point(|s| s.first().sample_index as f64 <= sample)
            .saturating_sub(1);
        self.segments.get(i).map(|s| s.time_at(sample))
    }
}

/// Where one chunk's voice packets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceChunk {
    /// Index position of the chunk.
    pub index_pos: usize,
    /// First input sample of its first packet.
    pub first_sample: u64,
    /// One past the last input sample of its last packet.
    pub end_sample: u64,
}

/// A stretch of voice that is missing, in lesson time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostVoice {
    /// First missing input sample.
    pub first_sample: u64,
    /// One past the last missing one.
    pub end_sample: u64,
    /// When the missing stretch starts, lesson time (from the sync points).
    pub start_ns: i64,
    /// When it ends.
    pub end_ns: i64,
}

/// Everything about a lesson's narration except the packets' bytes. See the module docs.
#[derive(Debug, Clone)]
pub struct VoiceIndex {
    /// The coding of the stream (`None` when the lesson has no voice).
    pub format: Option<VoiceFormat>,
    /// Sync points, in sample order.
    pub syncs: Vec<SyncPoint>,
    /// The chunks holding packets, in sample order.
    pub chunks: Vec<VoiceChunk>,
    /// Packets found.
    pub packet_count: u64,
    /// Bytes of codec data.
    pub data_bytes: u64,
    /// Recorded (non-padding) input samples, summed over the packets found.
    pub valid_samples: u64,
    /// One past the last recorded input sample (the stream's length).
    pub end_sample: u64,
    /// Stretches missing between packets that are present: lost chunks, dropped packets.
    pub lost: Vec<LostVoice>,
    /// Chunks whose voice could not be read (index position → why).
    pub unreadable: BTreeMap<usize, String>,
    /// The time map.
    pub map: SyncMap,
}

impl VoiceIndex {
    /// Reads the voice of every chunk that holds some (the index's stream summaries say
    /// which). Unreadable chunks are noted, not errors: their voice shows as lost.
    ///
    /// # Errors
    /// Never for damaged chunks; only if the index itself is unusable.
    pub fn build(reader: &mut LessonReader) -> Result<Self, LessonError> {
        let positions: Vec<usize> = reader
            .index()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.stream(StreamId::Audio as u8).is_some())
            .map(|(i, _)| i)
            .collect();
        let mut format = None;
        let mut syncs = Vec::new();
        let mut chunks = Vec::new();
        let mut unreadable = BTreeMap::new();
        let (mut packet_count, mut data_bytes, mut valid_samples, mut end_sample) = (0, 0, 0, 0);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for pos in positions {
            let chunk = match reader.read_chunk(pos, DecodeParts::VOICE) {
                Ok(c) => c,
                Err(e) => {
                    unreadable.insert(pos, crate::error::full_message(&e));
                    continue;
                }
            };
            for e in &chunk.events {
                if let Payload::VoiceSync(s) = e.payload {
                    syncs.push(SyncPoint::new(e.time_ns, s));
                }
            }
            let mut range: Option<(u64, u64)> = None;
            for (_, p) in &chunk.voice {
                format.get_or_insert(p.format);
                packet_count += 1;
                data_bytes += p.data.len() as u64;
                valid_samples += u64::from(p.valid_samples);
                if p.valid_samples > 0 {
                    end_sample = end_sample.max(p.valid_end());
                }
                ranges.push((p.sample_index, p.end()));
                range = Some(range.map_or((p.sample_index, p.end()), |(a, b)| {
                    (a.min(p.sample_index), b.max(p.end()))
                }));
            }
            if let Some((first_sample, end)) = range {
                chunks.push(VoiceChunk {
                    index_pos: pos,
                    first_sample,
                    end_sample: end,
                });
            }
        }
        chunks.sort_by_key(|c| c.first_sample);
        syncs.sort_by_key(|s| (s.sample_index, s.time_ns));
        let rate = format.map_or(48_000, |f| f.sample_rate_hz);
        let map = SyncMap::new(&syncs, rate);
        ranges.sort_unstable();
        let mut lost = Vec::new();
        let mut covered_to: Option<u64> = None;
        for (a, b) in ranges {
            if let Some(c) = covered_to {
                if a > c {
                    lost.push((c, a));
                }
            }
            covered_to = Some(covered_to.map_or(b, |c| c.max(b)));
        }
        let lost = lost
            .into_iter()
            .map(|(first_sample, end)| {
                #[allow(clippy::cast_precision_loss)]
                let at = |s: u64| map.time_at(s as f64).unwrap_or(0);
                LostVoice {
                    first_sample,
                    end_sample: end,
                    start_ns: at(first_sample),
                    end_ns: at(end),
                }
            })
            .collect();
        Ok(Self {
            format,
            syncs,
            chunks,
            packet_count,
            data_bytes,
            valid_samples,
            end_sample,
            lost,
            unreadable,
            map,
        })
    }

    /// Whether the lesson has narration.
    #[must_use]
    pub fn has_voice(&self) -> bool {
        self.packet_count > 0
    }

    /// Seconds of recorded voice.
    #[must_use]
    pub fn duration_s(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let samples = self.valid_samples as f64;
        samples / f64::from(self.format.map_or(48_000, |f| f.sample_rate_hz.max(1)))
    }

    /// Average codec bit rate over the recorded voice, bit/s.
    #[must_use]
    pub fn bit_rate_bps(&self) -> f64 {
        let d = self.duration_s();
        #[allow(clippy::cast_precision_loss)]
        let bits = self.data_bytes as f64 * 8.0;
        if d > 0.0 {
            bits / d
        } else {
            0.0
        }
    }

    /// The chunks holding input samples `from..to` (index positions, in sample order).
    #[must_use]
    pub fn chunks_for(&self, from: u64, to: u64) -> Vec<usize> {
        self.chunks
            .iter()
            .filter(|c| c.end_sample > from && c.first_sample < to)
            .map(|c| c.index_pos)
            .collect()
    }

    /// The packets of the chunk at index position `pos`, in sample order.
    ///
    /// # Errors
    /// If the chunk cannot be read.
    pub fn packets(reader: &mut LessonReader, pos: usize) -> Result<Vec<VoicePacket>, LessonError> {
        let chunk = reader.read_chunk(pos, DecodeParts::VOICE)?;
        let mut packets: Vec<VoicePacket> = chunk.voice.into_iter().map(|(_, p)| p).collect();
        packets.sort_by_key(|p| p.sample_index);
        Ok(packets)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_precision_loss)] // Tests may unwrap.
mod tests {
    use super::*;

    fn point(time_ns: i64, sample_index: u64, starts_segment: bool) -> SyncPoint {
        SyncPoint {
            time_ns,
            sample_index,
            starts_segment,
        }
    }

    #[test]
    fn interpolates_between_points_and_follows_the_measured_rate_after_the_last() {
        // A card 100 ppm fast: 48 004.8 samples per lesson second.
        let pts: Vec<SyncPoint> = (0..10)
            .map(|s| {
                point(
                    s * 1_000_000_000,
                    (s as f64 * 48_004.8).round() as u64,
                    s == 0,
                )
            })
            .collect();
        let map = SyncMap::new(&pts, 48_000);
        let x = map.sample_at(4_500_000_000).unwrap();
        assert!((x - 4.5 * 48_004.8).abs() < 1.0, "{x}");
        // 20 s: ten seconds past the last point, still on the measured rate (±1 sample),
        // where the nominal rate would be off by 48 samples.
        let x = map.sample_at(20_000_000_000).unwrap();
        assert!((x - 20.0 * 48_004.8).abs() < 1.0, "{x}");
        let t = map.time_at(20.0 * 48_004.8).unwrap();
        assert!((t - 20_000_000_000).abs() < 25_000, "{t}");
        assert!(map.sample_at(-1_000_000).is_none());
    }

    #[test]
    fn a_gap_between_segments_is_silence_not_extrapolation() {
        // 0–2 s recorded, paused, then 10 s resumes at sample 96 000.
        let pts = [
            point(0, 0, true),
            point(1_000_000_000, 48_000, false),
            point(10_000_000_000, 96_000, true),
            point(11_000_000_000, 144_000, false),
        ];
        let map = SyncMap::new(&pts, 48_000);
        assert!((map.sample_at(1_500_000_000).unwrap() - 72_000.0).abs() < 1e-6);
        assert!(map.sample_at(5_000_000_000).is_none(), "paused");
        assert!((map.sample_at(10_500_000_000).unwrap() - 120_000.0).abs() < 1e-6);
        assert_eq!(map.time_at(120_000.0), Some(10_500_000_000));
        assert_eq!(map.time_at(72_000.0), Some(1_500_000_000));
    }

    #[test]
    fn contradicting_points_are_left_out() {
        let pts = [
            point(0, 0, true),
            point(1_000_000_000, 48_000, false),
            point(500_000_000, 96_000, false), // time went backwards
            point(2_000_000_000, 96_000, false),
        ];
        let map = SyncMap::new(&pts, 48_000);
        assert!((map.sample_at(1_500_000_000).unwrap() - 72_000.0).abs() < 1e-6);
    }
}
