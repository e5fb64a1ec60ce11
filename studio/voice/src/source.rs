//! Where captured sound comes from: the [`VoiceSource`] trait, a microphone through cpal
//! ([`crate::device`]), and a simulated source that feeds a recorded signal through a sound
//! card clock with drift and timestamp jitter, for tests and benchmarks on machines without
//! a sound card.

use std::time::{Duration, Instant};

use crate::error::VoiceError;

/// A stretch of captured sound.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedBuffer {
    /// Mono samples, nominally in −1..1, at the source's rate.
    pub samples: Vec<f32>,
    /// When the first sample was captured, as the device reports it (jitter included).
    pub captured_at: Instant,
}

/// A source of captured sound.
pub trait VoiceSource: Send {
    /// What to call it in the studio ("default: HDA Intel PCH", "simulated").
    fn name(&self) -> &str;
    /// The rate the source delivers, hertz (the recorder resamples to 48 kHz).
    fn sample_rate_hz(&self) -> u32;
    /// The next buffer, waiting up to `timeout` for it: `Ok(None)` when none came in time.
    ///
    /// # Errors
    /// [`VoiceError::SourceEnded`] when the source has no more sound (a file played out, a
    /// device unplugged).
    fn next_buffer(&mut self, timeout: Duration) -> Result<Option<CapturedBuffer>, VoiceError>;
}

/// A recorded signal played through a simulated sound card: its clock runs `drift_ppm`
/// fast (negative: slow) against the lesson clock, and each buffer's timestamp is off by up
/// to `jitter` either way, as real capture timestamps are.
#[derive(Debug, Clone)]
pub struct SimulatedSource {
    signal: Vec<f32>,
    rate_hz: u32,
    drift_ppm: f64,
    jitter: Duration,
    buffer_frames: usize,
    start: Instant,
    position: usize,
    real_time: bool,
    repeat: bool,
    rng: u64,
}

impl SimulatedSource {
    /// `signal` at nominally `rate_hz`, whose first sample is captured at `start`, delivered
    /// in 10 ms buffers as fast as asked for (simulated time).
    #[must_use]
    pub fn new(signal: Vec<f32>, rate_hz: u32, start: Instant) -> Self {
        Self {
            signal,
            rate_hz: rate_hz.max(1),
            drift_ppm: 0.0,
            jitter: Duration::ZERO,
            buffer_frames: (rate_hz / 100).max(1) as usize,
            start,
            position: 0,
            real_time: false,
            repeat: false,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The card's clock runs this many parts per million fast (negative: slow).
    #[must_use]
    pub fn with_drift_ppm(mut self, drift_ppm: f64) -> Self {
        self.drift_ppm = drift_ppm;
        self
    }

    /// Timestamps are off by up to this, uniformly either way.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Deliver each buffer only once it has been "captured" (sleeping until then), as a
    /// device does; without this the source runs as fast as it is read.
    #[must_use]
    pub fn in_real_time(mut self) -> Self {
        self.real_time = true;
        self
    }

    /// Start again from the beginning when the signal ends, forever.
    #[must_use]
    pub fn repeating(mut self) -> Self {
        self.repeat = true;
        self
    }

    /// When sample `frame` is truly captured.
    #[must_use]
    pub fn true_capture_time(&self, frame: u64) -> Instant {
        self.start + Duration::from_secs_f64(self.true_seconds(frame))
    }

    /// Seconds from the start to the true capture of sample `frame`.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn true_seconds(&self, frame: u64) -> f64 {
        frame as f64 / (f64::from(self.rate_hz) * (1.0 + self.drift_ppm * 1e-6))
    }

    fn next_noise(&mut self) -> f64 {
        self.rng = self
            .rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        unit * 2.0 - 1.0
    }
}

impl VoiceSource for SimulatedSource {
    fn name(&self) -> &str {
        "simulated"
    }

    fn sample_rate_hz(&self) -> u32 {
        self.rate_hz
    }

    fn next_buffer(&mut self, timeout: Duration) -> Result<Option<CapturedBuffer>, VoiceError> {
        let len = self.signal.len();
        if len == 0 {
            return Err(VoiceError::SourceEnded(
                "the simulated signal is empty".into(),
            ));
        }
        let frame = self.position as u64;
        let offset = self.position % len;
        if offset == 0 && self.position > 0 && !self.repeat {
            return Err(VoiceError::SourceEnded(
                "the simulated signal played out".into(),
            ));
        }
        let n = self.buffer_frames.min(len - offset);
        let captured = self.true_capture_time(frame);
        if self.real_time {
            // The buffer is delivered when its last sample has been captured.
            let ready = self.true_capture_time(frame + n as u64);
            let wait = ready.saturating_duration_since(Instant::now());
            if wait > timeout {
                std::thread::sleep(timeout);
                return Ok(None);
            }
            std::thread::sleep(wait);
        }
        let jitter = self.jitter.as_secs_f64() * self.next_noise();
        let captured_at = if jitter >= 0.0 {
            captured + Duration::from_secs_f64(jitter)
        } else {
            captured
                .checked_sub(Duration::from_secs_f64(-jitter))
                .unwrap_or(captured)
        };
        self.position += n;
        Ok(Some(CapturedBuffer {
            samples: self.signal[offset..offset + n].to_vec(),
            captured_at,
        }))
    }
}
