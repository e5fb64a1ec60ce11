//! The comfort governor: keeps frames inside the display period by lowering image quality,
//! never by skipping tracking.
//!
//! A late frame in a headset is shown with a stale pose and the world judders, which makes
//! people sick; a slightly coarser image does not. So after each frame the governor compares
//! the measured frame time with the display period and picks, for the next frame, a rung of a
//! quality ladder (ray-march sample step and per-eye resolution scale). Head pose and input are
//! still read and recorded every frame whatever the rung.
//!
//! Frame cost is modelled as proportional to pixels / step (ray-marching is bound by samples):
//! a slow frame moves down at once to the best rung predicted to fit, so one bad frame is
//! corrected on the next; moving back up needs [`UPGRADE_AFTER_FRAMES`] frames in a row with
//! room to spare (hysteresis), so the image does not flicker between two rungs.

/// A quality setting for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Ray-march sample step in voxels (of the smallest spacing): larger is faster, coarser.
    pub step_voxels: f32,
    /// Per-eye resolution as a fraction of the runtime's recommended size.
    pub resolution_scale: f32,
}

impl Quality {
    /// Relative cost of a frame at this quality (1 = full resolution at a 0.5-voxel step).
    #[must_use]
    pub fn relative_cost(&self) -> f64 {
        let s = f64::from(self.resolution_scale);
        s * s * 0.5 / f64::from(self.step_voxels)
    }

    /// The eye image size at this quality for a recommended size (at least 1×1).
    #[must_use]
    pub fn eye_size(&self, recommended: [u32; 2]) -> [u32; 2] {
        recommended.map(|v| ((v as f32 * self.resolution_scale).round() as u32).max(1))
    }
}

/// The ladder, best first. The last rung is the floor: below it the image stops being useful
/// for teaching anatomy (a 1 mm structure is lost at a 2-voxel step and half resolution).
pub const LADDER: [Quality; 9] = [
    q(0.5, 1.0),
    q(0.75, 1.0),
    q(1.0, 1.0),
    q(1.0, 0.85),
    q(1.5, 0.85),
    q(1.5, 0.7),
    q(2.0, 0.7),
    q(2.0, 0.6),
    q(2.0, 0.5),
];

const fn q(step_voxels: f32, resolution_scale: f32) -> Quality {
    Quality {
        step_voxels,
        resolution_scale,
    }
}

/// A frame must be predicted to take at most this share of the period to be chosen (the rest
/// is compositor and readback slack).
pub const TARGET_SHARE: f64 = 0.85;
/// A better rung is taken only if it is predicted under this share of the period.
pub const UPGRADE_SHARE: f64 = 0.7;
/// Frames in a row with room to spare before moving one rung up.
pub const UPGRADE_AFTER_FRAMES: u32 = 30;

/// What the governor decided after a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComfortReport {
    /// The frame time that was measured (nanoseconds).
    pub frame_ns: i64,
    /// The display period (nanoseconds).
    pub period_ns: i64,
    /// The rung chosen for the next frame (index into [`LADDER`]).
    pub rung: usize,
    /// Its quality.
    pub quality: Quality,
    /// True when even the floor is predicted to miss the period.
    pub at_floor_and_late: bool,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ComfortGovernor {
    rung: usize,
    good_frames: u32,
}

impl Default for ComfortGovernor {
    fn default() -> Self {
        Self::new()
    }
}

impl ComfortGovernor {
    /// Starts at the best rung.
    #[must_use]
    pub fn new() -> Self {
        Self {
            rung: 0,
            good_frames: 0,
        }
    }

    /// The quality to render the next frame with.
    #[must_use]
    pub fn quality(&self) -> Quality {
        LADDER[self.rung]
    }

    /// Feeds the time the last frame took (rendered at [`Self::quality`]) and the display
    /// period; picks the next frame's quality.
    pub fn frame_done(&mut self, frame_ns: i64, period_ns: i64) -> ComfortReport {
        let current = LADDER[self.rung].relative_cost();
        let predict = |rung: usize| frame_ns as f64 * LADDER[rung].relative_cost() / current;
        let period = period_ns.max(1) as f64;
        if frame_ns as f64 > TARGET_SHARE * period {
            // Too slow: the best rung at or below the current one predicted to fit, else the floor.
            self.rung = (self.rung..LADDER.len())
                .find(|&r| predict(r) <= TARGET_SHARE * period)
                .unwrap_or(LADDER.len() - 1);
            self.good_frames = 0;
        } else if self.rung > 0 && predict(self.rung - 1) <= UPGRADE_SHARE * period {
            self.good_frames += 1;
            if self.good_frames >= UPGRADE_AFTER_FRAMES {
                self.rung -= 1;
                self.good_frames = 0;
            }
        } else {
            self.good_frames = 0;
        }
        let quality = LADDER[self.rung];
        ComfortReport {
            frame_ns,
            period_ns,
            rung: self.rung,
            quality,
            at_floor_and_late: self.rung == LADDER.len() - 1
                && predict(self.rung) > TARGET_SHARE * period,
        }
    }
}

impl std::fmt::Display for ComfortReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frame {:.1} ms vs {:.1} ms period -> step {:.2} voxels, resolution x{:.2}{}",
            self.frame_ns as f64 * 1e-6,
            self.period_ns as f64 * 1e-6,
            self.quality.step_voxels,
            self.quality.resolution_scale,
            if self.at_floor_and_late {
                " (at the quality floor and still late)"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::PERIOD_90HZ_NS;

    /// A synthetic renderer whose frame time follows the cost model: `full_ns` at rung 0.
    fn frame_ns(full_ns: f64, q: Quality) -> i64 {
        (full_ns * q.relative_cost()).round() as i64
    }

    #[test]
    fn ladder_gets_cheaper_monotonically() {
        for pair in LADDER.windows(2) {
            assert!(pair[1].relative_cost() < pair[0].relative_cost());
        }
    }

    #[test]
    fn one_slow_frame_drops_straight_to_a_rung_that_fits() {
        let mut g = ComfortGovernor::new();
        // Full quality takes 30 ms: needs a rung at ≤ 9.4 ms, i.e. cost ≤ 0.31.
        let report = g.frame_done(30_000_000, PERIOD_90HZ_NS);
        assert!(report.rung > 0 && !report.at_floor_and_late);
        let next = frame_ns(30e6, report.quality);
        assert!(
            next as f64 <= TARGET_SHARE * PERIOD_90HZ_NS as f64,
            "{report}"
        );
        // The rung above would not have fitted: it picked the best that does.
        assert!(
            frame_ns(30e6, LADDER[report.rung - 1]) as f64 > TARGET_SHARE * PERIOD_90HZ_NS as f64
        );
    }

    #[test]
    fn stays_put_in_the_hysteresis_band_and_climbs_back_slowly() {
        let mut g = ComfortGovernor::new();
        let full = 30e6;
        let mut rungs = Vec::new();
        for _ in 0..5 {
            let q = g.quality();
            rungs.push(g.frame_done(frame_ns(full, q), PERIOD_90HZ_NS).rung);
        }
        assert!(
            rungs.windows(2).all(|w| w[0] == w[1]),
            "no oscillation: {rungs:?}"
        );
        let settled = rungs[0];
        // The scene gets 3x cheaper (the learner looks away): it climbs one rung per 30 frames.
        let mut climbs = Vec::new();
        for i in 0..200 {
            let before = g.quality();
            let r = g.frame_done(frame_ns(full / 3.0, before), PERIOD_90HZ_NS);
            if r.quality != before {
                climbs.push(i);
            }
        }
        assert!(
            !climbs.is_empty() && g.quality().relative_cost() > LADDER[settled].relative_cost()
        );
        assert!(climbs
            .windows(2)
            .all(|w| w[1] - w[0] >= UPGRADE_AFTER_FRAMES as usize));
        // It never climbs to a rung that would be late.
        assert!(frame_ns(full / 3.0, g.quality()) as f64 <= TARGET_SHARE * PERIOD_90HZ_NS as f64);
    }

    #[test]
    fn never_goes_below_the_floor_and_says_so() {
        let mut g = ComfortGovernor::new();
        // Lavapipe: seconds per frame.
        for _ in 0..3 {
            let r = g.frame_done(2_000_000_000, PERIOD_90HZ_NS);
            assert_eq!(r.rung, LADDER.len() - 1);
            assert!(r.at_floor_and_late);
            assert!(r.to_string().contains("floor"));
        }
        assert_eq!(g.quality(), LADDER[LADDER.len() - 1]);
    }
}
