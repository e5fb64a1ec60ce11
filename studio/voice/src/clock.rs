//! The two clocks of a recording: the lesson clock (session time with paused stretches cut
//! out, shared by the thread that pauses and the thread that captures) and the estimate of
//! when each input sample was captured on it, from which the sync records are written.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The lesson clock of a recording: time since it started, paused stretches cut out. Cloned
/// handles share one clock, so the studio pauses it and the voice thread reads it.
#[derive(Debug, Clone)]
pub struct LessonClock {
    state: Arc<Mutex<ClockState>>,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    origin: Instant,
    paused_at: Option<Instant>,
    paused_total: Duration,
}

impl LessonClock {
    /// A clock at lesson time 0 at `origin`, running.
    #[must_use]
    pub fn starting_at(origin: Instant) -> Self {
        Self {
            state: Arc::new(Mutex::new(ClockState {
                origin,
                paused_at: None,
                paused_total: Duration::ZERO,
            })),
        }
    }

    fn state(&self) -> ClockState {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lesson time at instant `at` (negative before the start: sound captured just before
    /// Record was pressed), or `None` when the clock was paused then. Instants before the
    /// latest pause are answered as if running.
    #[must_use]
    pub fn lesson_time_ns(&self, at: Instant) -> Option<i64> {
        let s = self.state();
        if s.paused_at.is_some_and(|p| at >= p) {
            return None;
        }
        let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let since = match at.checked_duration_since(s.origin) {
            Some(d) => ns(d),
            None => -ns(s.origin.duration_since(at)),
        };
        Some(since - ns(s.paused_total))
    }

    /// Pauses at `at` (nothing if already paused).
    pub fn pause(&self, at: Instant) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.paused_at.get_or_insert(at);
    }

    /// Resumes at `at` (nothing if running).
    pub fn resume(&self, at: Instant) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = s.paused_at.take() {
            s.paused_total += at.saturating_duration_since(p);
        }
    }

    /// Whether paused.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.state().paused_at.is_some()
    }
}

/// How much capture history the fit uses. Long enough to average callback jitter (a few ms)
/// down to well under a millisecond, short enough to follow a clock whose rate wanders.
const FIT_WINDOW_SAMPLES: u64 = 10 * 48_000;

/// Below this span of history the slope is not fitted (too little to tell drift from jitter):
/// the nominal rate is used and only the offset fitted.
const MIN_SLOPE_SPAN_SAMPLES: f64 = 2.0 * 48_000.0;

/// Estimates the lesson time at which each input sample was captured, from noisy
/// `(sample index, capture time)` observations (one per capture buffer): a least-squares line
/// over the last ten seconds. Restart it where the audio clock restarts (a resume).
#[derive(Debug, Clone)]
pub struct CaptureFit {
    rate_hz: f64,
    observations: VecDeque<(u64, i64)>,
}

impl CaptureFit {
    /// A fit for a stream of `rate_hz` samples per second.
    #[must_use]
    pub fn new(rate_hz: u32) -> Self {
        Self {
            rate_hz: f64::from(rate_hz.max(1)),
            observations: VecDeque::new(),
        }
    }

    /// Forgets the history (the audio clock restarts).
    pub fn restart(&mut self) {
        self.observations.clear();
    }

    /// Input sample `sample_index` was captured at lesson time `time_ns` (as the device said).
    pub fn observe(&mut self, sample_index: u64, time_ns: i64) {
        if self
            .observations
            .back()
            .is_some_and(|&(s, _)| sample_index <= s)
        {
            return;
        }
        self.observations.push_back((sample_index, time_ns));
        while self
            .observations
            .front()
            .is_some_and(|&(s, _)| sample_index - s > FIT_WINDOW_SAMPLES)
        {
            self.observations.pop_front();
        }
    }

    /// The fitted lesson time of input sample `sample_index`; `None` before any observation.
    #[must_use]
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    pub fn time_of(&self, sample_index: u64) -> Option<i64> {
        let &(s0, t0) = self.observations.front()?;
        // Centred on the first observation, so the sums stay small and exact enough.
        let n = self.observations.len() as f64;
        let (mut sx, mut sy) = (0.0, 0.0);
        for &(s, t) in &self.observations {
            sx += (s - s0) as f64;
            sy += (t - t0) as f64;
        }
        let (mx, my) = (sx / n, sy / n);
        let nominal_ns_per_sample = 1e9 / self.rate_hz;
        let span = self.observations.back().map_or(0, |&(s, _)| s - s0) as f64;
        let slope = if span >= MIN_SLOPE_SPAN_SAMPLES {
            let (mut sxx, mut sxy) = (0.0, 0.0);
            for &(s, t) in &self.observations {
                let dx = (s - s0) as f64 - mx;
                sxx += dx * dx;
                sxy += dx * ((t - t0) as f64 - my);
            }
            let fitted = sxy / sxx;
            // A fitted rate more than 1 % off is not a sound card's drift: do not believe it.
            if (fitted / nominal_ns_per_sample - 1.0).abs() < 0.01 {
                fitted
            } else {
                nominal_ns_per_sample
            }
        } else {
            nominal_ns_per_sample
        };
        let x = sample_index as f64 - s0 as f64 - mx;
        Some(t0 + (my + slope * x).round() as i64)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_follows_drift_and_averages_jitter() {
        // A card 100 ppm slow, buffers of 10 ms with ±3 ms timestamp jitter.
        let mut fit = CaptureFit::new(48_000);
        let true_time = |s: u64| (s as f64 / (48_000.0 * (1.0 - 100e-6)) * 1e9) as i64;
        let mut noise = 12_345u64;
        let mut worst = 0i64;
        for k in 0..6000u64 {
            let s = k * 480;
            noise = noise
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let jitter = ((noise >> 33) % 6_000_001) as i64 - 3_000_000;
            fit.observe(s, true_time(s) + jitter);
            if k > 500 {
                worst = worst.max((fit.time_of(s).unwrap() - true_time(s)).abs());
            }
        }
        assert!(worst < 1_000_000, "worst error {worst} ns");
    }

    #[test]
    fn the_clock_cuts_out_paused_time() {
        let t0 = Instant::now();
        let clock = LessonClock::starting_at(t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(clock.lesson_time_ns(at(1000)), Some(1_000_000_000));
        clock.pause(at(2000));
        assert_eq!(clock.lesson_time_ns(at(2500)), None);
        assert_eq!(clock.lesson_time_ns(at(1500)), Some(1_500_000_000));
        clock.resume(at(5000));
        assert_eq!(clock.lesson_time_ns(at(6000)), Some(3_000_000_000));
    }
}
