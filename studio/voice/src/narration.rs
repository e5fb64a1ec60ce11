//! Captured sound in, lesson events out: resampled to 48 kHz, cut into 20 ms packets, coded
//! with Opus, each packet and about one sync point a second timed on the lesson clock.
//! Sans-IO and deterministic: the capture thread ([`crate::capture`]), the voice-over import
//! and the tests all drive this one pipeline.

use twinray_lessons::event::{Event, Payload, VoiceFormat, VoicePacket, VoiceSync};

use crate::clock::CaptureFit;
use crate::codec::{OpusEncoder, PACKET_SAMPLES, SAMPLE_RATE_HZ};
use crate::error::VoiceError;
use crate::resample::StreamResampler;
use crate::source::CapturedBuffer;

/// A sync point about this often (input samples).
const SYNC_EVERY_SAMPLES: u64 = SAMPLE_RATE_HZ as u64;

/// A source may deliver at most this much more sound than time has passed (seconds) before
/// the excess is dropped: a device whose clock races (ALSA's `null` device delivers thousands
/// of times real time) must not flood the lesson.
const MAX_AHEAD_S: f64 = 0.5;

/// What the pipeline has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NarrationStats {
    /// Packets written.
    pub packets: u64,
    /// Codec bytes written.
    pub bytes: u64,
    /// Input samples recorded (48 kHz).
    pub recorded_samples: u64,
    /// Source frames dropped because the source delivered faster than real time.
    pub dropped_frames: u64,
    /// Sync points written.
    pub syncs: u64,
}

#[derive(Debug)]
struct Segment {
    /// 48 kHz index of the segment's first sample.
    first_index: u64,
    /// Lesson time of the segment's first buffer.
    start_ns: i64,
    /// Source frames taken in this segment.
    source_frames: u64,
    /// The next sync point is due at this index.
    next_sync: u64,
    /// Whether the segment's first sync point is written.
    synced: bool,
    resampler: Option<StreamResampler>,
}

/// The pipeline. See the module docs.
#[derive(Debug)]
pub struct NarrationEncoder {
    encoder: OpusEncoder,
    source_rate_hz: u32,
    fit: CaptureFit,
    /// 48 kHz samples not yet in a packet; the first has index `pending_index`.
    pending: Vec<f32>,
    pending_index: u64,
    /// Index one past the last recorded (not padding) sample.
    recorded_end: u64,
    segment: Option<Segment>,
    resampled: Vec<f32>,
    stats: NarrationStats,
}

impl NarrationEncoder {
    /// A pipeline for a source at `source_rate_hz`, starting at sample index 0.
    ///
    /// # Errors
    /// If the codec or the resampler cannot be created.
    pub fn new(source_rate_hz: u32) -> Result<Self, VoiceError> {
        if source_rate_hz == 0 {
            return Err(VoiceError::Invalid("a source at 0 Hz".into()));
        }
        Ok(Self {
            encoder: OpusEncoder::new()?,
            source_rate_hz,
            fit: CaptureFit::new(SAMPLE_RATE_HZ),
            pending: Vec::with_capacity(2 * PACKET_SAMPLES),
            pending_index: 0,
            recorded_end: 0,
            segment: None,
            resampled: Vec::new(),
            stats: NarrationStats::default(),
        })
    }

    /// The packets' format.
    #[must_use]
    pub fn format(&self) -> VoiceFormat {
        self.encoder.format()
    }

    /// What has been done so far.
    #[must_use]
    pub fn stats(&self) -> NarrationStats {
        self.stats
    }

    /// Takes one captured buffer. `lesson_time_ns` is the lesson time at which its first
    /// sample was captured, or `None` when the lesson clock is paused (the buffer is dropped
    /// and the current segment ends). `muted` records silence in its place, keeping time.
    ///
    /// # Errors
    /// If the codec or the resampler fails.
    pub fn push(
        &mut self,
        buffer: &CapturedBuffer,
        lesson_time_ns: Option<i64>,
        muted: bool,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), VoiceError> {
        let Some(t) = lesson_time_ns else {
            return self.end_segment(out);
        };
        if self.segment.is_none() {
            self.start_segment(t)?;
        }
        let rate = f64::from(self.source_rate_hz);
        let Some(seg) = self.segment.as_mut() else {
            return Ok(());
        };
        #[allow(clippy::cast_precision_loss)]
        let ahead_s = seg.source_frames as f64 / rate - (t - seg.start_ns) as f64 / 1e9;
        if ahead_s > MAX_AHEAD_S {
            self.stats.dropped_frames += buffer.samples.len() as u64;
            return Ok(());
        }
        // The 48 kHz index of this buffer's first sample, by counting.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let index = seg.first_index
            + (seg.source_frames as f64 * f64::from(SAMPLE_RATE_HZ) / rate).round() as u64;
        seg.source_frames += buffer.samples.len() as u64;
        self.fit.observe(index, t);
        if index >= seg.next_sync {
            if let Some(time) = self.fit.time_of(index) {
                out(Event::new(
                    time,
                    Payload::VoiceSync(VoiceSync {
                        sample_index: index,
                        starts_segment: !seg.synced,
                    }),
                ));
                seg.synced = true;
                seg.next_sync = index + SYNC_EVERY_SAMPLES;
                self.stats.syncs += 1;
            }
        }
        self.resampled.clear();
        let silence;
        let samples: &[f32] = if muted {
            silence = vec![0.0; buffer.samples.len()];
            &silence
        } else {
            &buffer.samples
        };
        match seg.resampler.as_mut() {
            Some(r) => r.push(samples, &mut self.resampled)?,
            None => self.resampled.extend_from_slice(samples),
        }
        let resampled = std::mem::take(&mut self.resampled);
        self.take_samples(&resampled, out)?;
        self.resampled = resampled;
        Ok(())
    }

    fn start_segment(&mut self, t: i64) -> Result<(), VoiceError> {
        let resampler = if self.source_rate_hz == SAMPLE_RATE_HZ {
            None
        } else {
            Some(StreamResampler::new(self.source_rate_hz)?)
        };
        self.fit.restart();
        let first_index = self.pending_index + self.pending.len() as u64;
        self.segment = Some(Segment {
            first_index,
            start_ns: t,
            source_frames: 0,
            next_sync: first_index,
            synced: false,
            resampler,
        });
        Ok(())
    }

    /// Appends recorded 48 kHz samples and writes every full packet.
    fn take_samples(
        &mut self,
        samples: &[f32],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), VoiceError> {
        self.pending.extend_from_slice(samples);
        self.recorded_end = self.pending_index + self.pending.len() as u64;
        self.stats.recorded_samples += samples.len() as u64;
        self.write_full_packets(out)
    }

    fn write_full_packets(&mut self, out: &mut dyn FnMut(Event)) -> Result<(), VoiceError> {
        while self.pending.len() >= PACKET_SAMPLES {
            let data = self.encoder.encode(&self.pending[..PACKET_SAMPLES])?;
            let index = self.pending_index;
            let valid = self
                .recorded_end
                .saturating_sub(index)
                .min(PACKET_SAMPLES as u64);
            // Packets are timed on the capture fit; before any observation (an import with
            // no clock) they follow the nominal rate from index 0.
            #[allow(clippy::cast_possible_wrap)]
            let time = self
                .fit
                .time_of(index)
                .unwrap_or((index as i64) * 1_000_000_000 / i64::from(SAMPLE_RATE_HZ));
            self.stats.packets += 1;
            self.stats.bytes += data.len() as u64;
            #[allow(clippy::cast_possible_truncation)]
            out(Event::new(
                time,
                Payload::Voice(VoicePacket {
                    format: self.encoder.format(),
                    sample_index: index,
                    sample_count: PACKET_SAMPLES as u16,
                    valid_samples: valid as u16,
                    data,
                }),
            ));
            self.pending.drain(..PACKET_SAMPLES);
            self.pending_index += PACKET_SAMPLES as u64;
        }
        Ok(())
    }

    /// Ends the current segment (a pause): the resampler's tail is written and the last
    /// partial packet padded with silence, so the next segment starts on a packet boundary.
    fn end_segment(&mut self, out: &mut dyn FnMut(Event)) -> Result<(), VoiceError> {
        let Some(mut seg) = self.segment.take() else {
            return Ok(());
        };
        if let Some(r) = seg.resampler.as_mut() {
            let mut tail = Vec::new();
            r.flush(&mut tail)?;
            self.take_samples(&tail, out)?;
        }
        if !self.pending.is_empty() {
            self.pending.resize(PACKET_SAMPLES, 0.0);
            self.write_full_packets(out)?;
        }
        Ok(())
    }

    /// Ends the recording: the segment is closed and the encoder flushed with silence until
    /// the decoder's output covers every recorded sample (its look-ahead included), so an
    /// export holds exactly the recorded number of samples.
    ///
    /// # Errors
    /// If the codec fails.
    pub fn finish(&mut self, out: &mut dyn FnMut(Event)) -> Result<NarrationStats, VoiceError> {
        self.end_segment(out)?;
        let needed = self.recorded_end + u64::from(self.encoder.format().pre_skip);
        while self.pending_index < needed && self.stats.packets > 0 {
            self.pending.resize(PACKET_SAMPLES, 0.0);
            self.write_full_packets(out)?;
        }
        Ok(self.stats)
    }
}
