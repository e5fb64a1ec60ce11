//! A deterministic synthetic instructor, for benchmarks, examples and tests.
//!
//! It produces what a real session produces, at the rates the issue names: head and both
//! hands at 90 Hz with smooth motion plus sensor-like noise (±0.5 mm, ±0.2°), hands lost for
//! about a second now and then, a stroke about every 5 s (drawn with the right index tip
//! for about 1.5 s), all strokes cleared about every minute, a scene change about every 10 s
//! and a chapter every 5 minutes. Same seed, same events.

use glam::{Quat, Vec3};

use crate::event::{
    Brush, Chapter, ClipPlane, Event, HandJoint, HandJoints, HandSample, Handedness, Payload, Pose,
    SceneChange, Space, StrokeBegin, StrokePoint, StrokeStyle, TransferPoint, HAND_JOINT_COUNT,
    WRIST_JOINT,
};

/// A small, fast, seedable random number generator (`SplitMix64`).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        // The top 24 bits fit an f32 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        v
    }

    /// Roughly normal noise with standard deviation about `sigma` (sum of two uniforms:
    /// cheap, bounded, good enough for sensor jitter).
    pub fn noise(&mut self, sigma: f32) -> f32 {
        (self.unit() + self.unit() - 1.0) * sigma * 2.45
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Display rate of the synthetic headset.
pub const FRAME_RATE_HZ: i64 = 90;
/// One display frame in nanoseconds.
pub const FRAME_PERIOD_NS: i64 = 1_000_000_000 / FRAME_RATE_HZ;

const FINGER_BASES_MM: [Vec3; 5] = [
    Vec3::new(-30.0, 0.0, 20.0),
    Vec3::new(-20.0, 0.0, 90.0),
    Vec3::new(0.0, 0.0, 95.0),
    Vec3::new(20.0, 0.0, 90.0),
    Vec3::new(38.0, 0.0, 82.0),
];
const SEGMENT_MM: [f32; 4] = [40.0, 28.0, 22.0, 18.0];

/// How sensor noise is added to hand joints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandNoise {
    /// Like a hand-tracking runtime, which fits a skeleton: noise on the wrist pose (±0.5 mm,
    /// ±0.2°) and on each finger's flex (±0.3°), with joints following kinematically.
    Skeletal,
    /// Pessimistic: independent noise on every joint's position (±0.5 mm) and orientation
    /// (±0.2°), which no skeletal runtime produces.
    IndependentPerJoint,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SyntheticInstructor {
    noise: HandNoise,
    rng: Rng,
    frame: i64,
    next_stroke_ns: i64,
    stroke: Option<(u32, i64)>,
    next_stroke_id: u32,
    visible: Vec<u32>,
    next_clear_ns: i64,
    next_scene_ns: i64,
    scene_step: u32,
    next_chapter_ns: i64,
    chapter: u32,
    hand_lost_until_ns: [i64; 2],
    joint_phase: [f32; 2],
}

impl SyntheticInstructor {
    /// An instructor with a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self::with_noise(seed, HandNoise::Skeletal)
    }

    /// An instructor with a seed and a hand noise model.
    #[must_use]
    pub fn with_noise(seed: u64, noise: HandNoise) -> Self {
        Self {
            noise,
            rng: Rng::new(seed),
            frame: 0,
            next_stroke_ns: 2_000_000_000,
            stroke: None,
            next_stroke_id: 1,
            visible: Vec::new(),
            next_clear_ns: 60_000_000_000,
            next_scene_ns: 1_000_000_000,
            scene_step: 0,
            next_chapter_ns: 0,
            chapter: 0,
            hand_lost_until_ns: [0; 2],
            joint_phase: [0.3, 1.7],
        }
    }

    /// Time of the next frame.
    #[must_use]
    pub fn time_ns(&self) -> i64 {
        self.frame * FRAME_PERIOD_NS
    }

    /// Appends the events of the next display frame to `out`.
    pub fn next_frame(&mut self, out: &mut Vec<Event>) {
        let t = self.time_ns();
        self.frame += 1;
        // Seconds, for the motion model (f32 is plenty for a few hours at this smoothness).
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let s = (t as f64 * 1e-9) as f32;

        if t >= self.next_chapter_ns {
            self.chapter += 1;
            out.push(Event::new(
                t,
                Payload::Chapter(Chapter {
                    title: format!("Chapter {}", self.chapter),
                }),
            ));
            self.next_chapter_ns += 300_000_000_000;
        }

        out.push(Event::new(t, Payload::Head(self.head(s))));
        let mut right_tip = Vec3::ZERO;
        for hand in Handedness::BOTH {
            let h = hand.index();
            if self.hand_lost_until_ns[h] <= t
                && self.rng.below(20 * FRAME_RATE_HZ.unsigned_abs()) == 0
            {
                #[allow(clippy::cast_possible_wrap)]
                let lost_ns = 500_000_000 + self.rng.below(1_000_000_000) as i64;
                self.hand_lost_until_ns[h] = t + lost_ns;
            }
            let joints = if t < self.hand_lost_until_ns[h] {
                None
            } else {
                let j = self.hand(hand, s);
                if hand == Handedness::Right {
                    right_tip = j.joints[10].pose.position_mm;
                }
                Some(j)
            };
            out.push(Event::new(
                t,
                Payload::Hand(Box::new(HandSample { hand, joints })),
            ));
        }

        // Strokes: begin, a point per frame, end after ~1.5 s.
        if let Some((id, end_ns)) = self.stroke {
            if t >= end_ns {
                out.push(Event::new(t, Payload::StrokeEnd { stroke_id: id }));
                self.stroke = None;
            } else {
                out.push(Event::new(
                    t,
                    Payload::StrokePoint(StrokePoint {
                        stroke_id: id,
                        position_mm: right_tip
                            + Vec3::new(
                                self.rng.noise(0.3),
                                self.rng.noise(0.3),
                                self.rng.noise(0.3),
                            ),
                        pressure: 0.5 + 0.4 * (s * 3.0).sin(),
                    }),
                ));
            }
        } else if t >= self.next_stroke_ns {
            let id = self.next_stroke_id;
            self.next_stroke_id += 1;
            self.visible.push(id);
            out.push(Event::new(
                t,
                Payload::StrokeBegin(StrokeBegin {
                    stroke_id: id,
                    space: if id.is_multiple_of(3) {
                        Space::Stage
                    } else {
                        Space::Patient
                    },
                    style: StrokeStyle {
                        colour_rgba: [255, (id * 40 % 256) as u8, 0, 255],
                        width_mm: 2.0,
                        brush: Brush::Pen,
                    },
                }),
            ));
            #[allow(clippy::cast_possible_wrap)]
            let duration_ns = 1_000_000_000 + self.rng.below(1_000_000_000) as i64;
            self.stroke = Some((id, t + duration_ns));
            #[allow(clippy::cast_possible_wrap)]
            let gap_ns = 4_000_000_000 + self.rng.below(2_000_000_000) as i64;
            self.next_stroke_ns = t + gap_ns;
        }
        if t >= self.next_clear_ns && self.stroke.is_none() {
            if !self.visible.is_empty() {
                out.push(Event::new(
                    t,
                    Payload::StrokeErase {
                        stroke_ids: std::mem::take(&mut self.visible),
                    },
                ));
            }
            self.next_clear_ns = t + 60_000_000_000;
        }

        if t >= self.next_scene_ns {
            out.push(Event::new(t, Payload::Scene(self.scene_change(s))));
            #[allow(clippy::cast_possible_wrap)]
            let gap_ns = 8_000_000_000 + self.rng.below(4_000_000_000) as i64;
            self.next_scene_ns = t + gap_ns;
        }
    }

    fn head(&mut self, s: f32) -> Pose {
        let r = &mut self.rng;
        let position_mm = Vec3::new(
            120.0 * (s * 0.31).sin() + 40.0 * (s * 1.3).sin() + r.noise(0.2),
            1650.0 + 30.0 * (s * 0.7).sin() + r.noise(0.2),
            -300.0 + 80.0 * (s * 0.23).cos() + r.noise(0.2),
        );
        let orientation = Quat::from_rotation_y(0.5 * (s * 0.2).sin() + 0.1 * (s * 1.1).sin())
            * Quat::from_rotation_x(-0.3 + 0.15 * (s * 0.45).sin())
            * Quat::from_scaled_axis(Vec3::new(r.noise(0.001), r.noise(0.001), r.noise(0.001)));
        Pose {
            position_mm,
            orientation,
        }
    }

    fn hand(&mut self, hand: Handedness, s: f32) -> HandJoints {
        let h = hand.index();
        let side = if hand == Handedness::Left { -1.0 } else { 1.0 };
        let phase = self.joint_phase[h];
        let wrist_mm = Vec3::new(
            side * 250.0 + 150.0 * (s * 0.9 + phase).sin() + 40.0 * (s * 2.3).sin(),
            1150.0 + 120.0 * (s * 0.7 + phase).sin(),
            -450.0 + 100.0 * (s * 1.1 + phase).cos(),
        );
        let mut wrist_rot = Quat::from_rotation_y(side * 0.4 + 0.5 * (s * 0.8 + phase).sin())
            * Quat::from_rotation_x(0.6 * (s * 0.6).sin())
            * Quat::from_rotation_z(0.4 * (s * 1.3 + phase).cos());
        let skeletal = self.noise == HandNoise::Skeletal;
        let r = &mut self.rng;
        let mut wrist_mm = wrist_mm;
        if skeletal {
            wrist_mm += Vec3::new(r.noise(0.5), r.noise(0.5), r.noise(0.5));
            wrist_rot *= Quat::from_scaled_axis(Vec3::new(
                r.noise(0.0035),
                r.noise(0.0035),
                r.noise(0.0035),
            ));
        }
        let mut finger_noise = [0f32; 5];
        for n in &mut finger_noise {
            *n = if skeletal { r.noise(0.005) } else { 0.0 };
        }
        let mut hj = HandJoints::default();
        let mut jitter = |p: Vec3, q: Quat, radius_mm: f32| {
            if skeletal {
                return HandJoint {
                    pose: Pose {
                        position_mm: p,
                        orientation: q,
                    },
                    radius_mm,
                };
            }
            HandJoint {
                pose: Pose {
                    position_mm: p + Vec3::new(r.noise(0.5), r.noise(0.5), r.noise(0.5)),
                    orientation: q * Quat::from_scaled_axis(Vec3::new(
                        r.noise(0.0035),
                        r.noise(0.0035),
                        r.noise(0.0035),
                    )),
                },
                radius_mm,
            }
        };
        hj.joints[WRIST_JOINT] = jitter(wrist_mm, wrist_rot, 25.0);
        hj.joints[0] = jitter(
            wrist_mm + wrist_rot * Vec3::new(0.0, 0.0, 45.0),
            wrist_rot,
            30.0,
        );
        // 5 fingers × 4 joints after palm and wrist: thumb has 4 (metacarpal..tip), others 5;
        // the XR set is 2 + 4 + 5 × 4 = 26.
        let mut j = 2;
        for (f, base) in FINGER_BASES_MM.iter().enumerate() {
            // Finger flex, a slow open/close per finger.
            #[allow(clippy::cast_precision_loss)]
            let curl = 0.25 + 0.25 * (s * (1.1 + f as f32 * 0.3) + phase).sin() + finger_noise[f];
            let segments = if f == 0 { 4 } else { 5 };
            let mut local = *base;
            let mut rot = Quat::IDENTITY;
            for seg in 0..segments {
                if j >= HAND_JOINT_COUNT {
                    break;
                }
                let radius = 11.0 - seg as f32 * 1.5;
                hj.joints[j] = jitter(wrist_mm + wrist_rot * local, wrist_rot * rot, radius);
                rot *= Quat::from_rotation_x(curl);
                local += rot * Vec3::new(0.0, 0.0, SEGMENT_MM[seg.min(3)]);
                j += 1;
            }
        }
        hj
    }

    fn scene_change(&mut self, s: f32) -> SceneChange {
        self.scene_step += 1;
        let k = self.scene_step;
        #[allow(clippy::cast_precision_loss)]
        let kf = k as f32;
        match k % 6 {
            0 => SceneChange::WindowLevel {
                centre_hu: 40.0 + 10.0 * s.sin(),
                width_hu: 400.0,
            },
            1 => SceneChange::LabelOpacity {
                label: k % 12,
                opacity: 0.5 + 0.5 * kf.sin(),
            },
            2 => SceneChange::ClipPlane {
                plane: Some(ClipPlane {
                    normal: Vec3::new(0.0, 0.0, 1.0),
                    distance_mm: 20.0 * kf.cos(),
                }),
            },
            3 => SceneChange::TransferCurve {
                points: (0..10)
                    .map(|i| TransferPoint {
                        density_hu: -1000.0 + 300.0 * i as f32,
                        rgba: [1.0, 0.8, 0.6, i as f32 * 0.1],
                    })
                    .collect(),
            },
            4 => SceneChange::TwinPose {
                stage_from_patient: Pose {
                    position_mm: Vec3::new(0.0, 1000.0, -600.0 + kf.sin() * 50.0),
                    orientation: Quat::from_rotation_y(kf * 0.1),
                },
            },
            _ => SceneChange::MprSlices {
                slices_mm: Vec3::new(kf, -kf, 2.0 * kf),
            },
        }
    }
}
