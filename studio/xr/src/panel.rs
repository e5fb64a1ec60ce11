//! The learner's controls in the headset: a panel floating in the room, drawn into both eye
//! images, with play/pause, a timeline with chapter marks to scrub, chapter buttons,
//! follow-instructor, speed and narration volume.
//!
//! The left menu button (or holding the left palm up for [`PALM_UP_HOLD_NS`]) summons the
//! panel half a metre in front of the head, facing it, and dismisses it again. A controller's
//! aim ray (or, without a controller, the tracked hand's ray from the wrist through the index
//! knuckle) points at it; the trigger (or a pinch) presses what it points at, and dragging
//! along the timeline or the volume slider scrubs. Nothing here changes the lesson: the panel
//! moves a [`Playback`] the session reads.
//!
//! The panel is a flat quad in stage space. It is rasterised on the CPU into a small image
//! ([`PANEL_PX`]) and composited over each eye's rendered image by casting each covered
//! pixel's ray at the quad, so both eyes see it at the same place in the room (with the
//! right disparity) without the ray-marcher knowing of it.

use glam::{Quat, Vec2, Vec3};
use twinray_lessons::event::{ControllerState, HandJoints, Pose, WRIST_JOINT};
use twinray_renderer::RgbaImage;

use crate::input::{PINCH_END_MM, PINCH_START_MM, PRESS_VALUE, RELEASE_VALUE};
use crate::source::{EyeView, XrFrame, MENU_BUTTON};

/// Width and height of the panel in the room (mm).
pub const PANEL_SIZE_MM: Vec2 = Vec2::new(400.0, 240.0);
/// How far in front of the head the panel appears (mm), and how far below the eyes.
pub const PANEL_DISTANCE_MM: f32 = 450.0;
/// How far below eye level the panel's centre sits (mm): a comfortable downward glance.
pub const PANEL_DROP_MM: f32 = 100.0;
/// Pixels of the panel's image (one per millimetre).
pub const PANEL_PX: [u32; 2] = [400, 240];
/// How long the left palm must face up to summon or dismiss the panel.
pub const PALM_UP_HOLD_NS: i64 = 600_000_000;
/// Playback speeds offered (the narration plays at 1× only).
pub const SPEEDS: [f64; 3] = [0.5, 1.0, 2.0];
/// Line height of the panel's caption, pixels (= mm on the panel: readable at arm's length).
const CAPTION_PX: u32 = 24;
/// Most chapter buttons shown (the timeline's marks show every chapter).
pub const MAX_CHAPTER_BUTTONS: usize = 8;

/// Something on the panel that can be pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Play or pause.
    PlayPause,
    /// Follow the instructor on or off.
    Follow,
    /// Choose [`SPEEDS`]`[i]`.
    Speed(usize),
    /// The narration volume slider.
    Volume,
    /// The timeline (scrubbing).
    Timeline,
    /// Jump to chapter `i`.
    Chapter(usize),
}

/// A rectangle on the panel in panel millimetres (x right, y down from the top-left corner).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

impl Rect {
    fn contains(&self, p: Vec2) -> bool {
        p.x >= self.x && p.x < self.x + self.w && p.y >= self.y && p.y < self.y + self.h
    }

    fn centre(&self) -> Vec2 {
        Vec2::new(self.x + self.w * 0.5, self.y + self.h * 0.5)
    }

    /// Where `p` lies along the rectangle's width, 0 to 1.
    fn fraction(&self, p: Vec2) -> f32 {
        ((p.x - self.x) / self.w).clamp(0.0, 1.0)
    }
}

/// Where each control is, for `chapters` chapters.
fn layout(chapters: usize) -> Vec<(Control, Rect)> {
    let mut out = vec![
        (
            Control::PlayPause,
            Rect {
                x: 10.0,
                y: 10.0,
                w: 50.0,
                h: 50.0,
            },
        ),
        (
            Control::Follow,
            Rect {
                x: 70.0,
                y: 10.0,
                w: 50.0,
                h: 50.0,
            },
        ),
        (
            Control::Volume,
            Rect {
                x: 290.0,
                y: 20.0,
                w: 100.0,
                h: 30.0,
            },
        ),
        (
            Control::Timeline,
            Rect {
                x: 10.0,
                y: 75.0,
                w: 380.0,
                h: 40.0,
            },
        ),
    ];
    for i in 0..SPEEDS.len() {
        out.push((
            Control::Speed(i),
            Rect {
                x: 135.0 + 48.0 * i as f32,
                y: 10.0,
                w: 42.0,
                h: 50.0,
            },
        ));
    }
    let n = chapters.min(MAX_CHAPTER_BUTTONS);
    for i in 0..n {
        let w = 380.0 / n as f32;
        out.push((
            Control::Chapter(i),
            Rect {
                x: 10.0 + w * i as f32 + 2.0,
                y: 130.0,
                w: w - 4.0,
                h: 55.0,
            },
        ));
    }
    out
}

/// What the learner chose: what the session replays and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    /// Playing (else paused).
    pub playing: bool,
    /// Playback speed (one of [`SPEEDS`]).
    pub speed: f64,
    /// The learner stands where the instructor's head was (translation only: turning the
    /// world with the instructor's head would make the learner sick).
    pub follow_instructor: bool,
    /// Narration volume, 0 to 1.
    pub volume: f32,
    /// Until the learner first changes anything, lesson time is the session clock's. After,
    /// lesson time is `anchor.1 + (clock − anchor.0) × speed` while playing, `anchor.1`
    /// while paused.
    anchor: Option<(i64, i64)>,
}

impl Default for Playback {
    fn default() -> Self {
        Self {
            playing: true,
            speed: 1.0,
            follow_instructor: false,
            volume: 1.0,
            anchor: None,
        }
    }
}

impl Playback {
    /// The lesson time at session clock `clock_ns` (the time the session would show
    /// without controls).
    #[must_use]
    pub fn lesson_time_ns(&self, clock_ns: i64) -> i64 {
        match self.anchor {
            None => clock_ns,
            Some((clock0, lesson0)) if self.playing => {
                lesson0 + ((clock_ns - clock0) as f64 * self.speed).round() as i64
            }
            Some((_, lesson0)) => lesson0,
        }
    }

    /// Moves to lesson time `lesson_ns` at clock `clock_ns`.
    pub fn seek(&mut self, clock_ns: i64, lesson_ns: i64) {
        self.anchor = Some((clock_ns, lesson_ns));
    }

    /// Re-anchors at the current lesson time (before a change of speed or play state).
    fn hold(&mut self, clock_ns: i64) {
        let now = self.lesson_time_ns(clock_ns);
        self.seek(clock_ns, now);
    }
}

/// Per-hand pointer state.
#[derive(Debug, Clone, Copy, Default)]
struct Pointer {
    pressed: bool,
    menu: bool,
    /// Where its ray meets the panel (panel mm), when it does.
    hit: Option<Vec2>,
}

/// The panel and its interaction state. See the module docs.
#[derive(Debug, Clone)]
pub struct LearnerPanel {
    visible: bool,
    /// Centre of the panel in stage space; +x right, +y up, facing +z (towards the learner).
    stage_from_panel: Pose,
    chapters: Vec<(i64, String)>,
    range_ns: (i64, i64),
    pointers: [Pointer; 2],
    dragging: Option<(usize, Control)>,
    palm_up_since: Option<i64>,
    palm_toggled: bool,
}

impl LearnerPanel {
    /// A hidden panel for a lesson spanning `range_ns` with these chapters (time, title).
    #[must_use]
    pub fn new(chapters: Vec<(i64, String)>, range_ns: (i64, i64)) -> Self {
        Self {
            visible: false,
            stage_from_panel: Pose::IDENTITY,
            chapters,
            range_ns,
            pointers: [Pointer::default(); 2],
            dragging: None,
            palm_up_since: None,
            palm_toggled: false,
        }
    }

    /// Whether the panel is shown.
    #[must_use]
    pub fn visible(&self) -> bool {
        self.visible
    }

    /// The chapters (time, title).
    #[must_use]
    pub fn chapters(&self) -> &[(i64, String)] {
        &self.chapters
    }

    /// Shows the panel in front of `head`, facing it (upright: only the head's yaw counts).
    pub fn summon(&mut self, head: &Pose) {
        let forward = head.orientation * Vec3::NEG_Z;
        let flat = Vec3::new(forward.x, 0.0, forward.z).normalize_or(Vec3::NEG_Z);
        let centre = head.position_mm + flat * PANEL_DISTANCE_MM - Vec3::Y * PANEL_DROP_MM;
        // The panel's +z points back at the learner.
        let yaw = (-flat.x).atan2(-flat.z);
        self.stage_from_panel = Pose {
            position_mm: centre,
            orientation: Quat::from_rotation_y(yaw),
        };
        self.visible = true;
    }

    /// The centre of `control` in stage space (mm), to aim at (scripted learners, tests).
    #[must_use]
    pub fn control_stage_mm(&self, control: Control) -> Option<Vec3> {
        layout(self.chapters.len())
            .into_iter()
            .find(|(c, _)| *c == control)
            .map(|(_, r)| self.stage_from_panel_mm(r.centre()))
    }

    /// The point of the timeline (stage mm) that stands for lesson time `time_ns`.
    #[must_use]
    pub fn timeline_stage_mm(&self, time_ns: i64) -> Option<Vec3> {
        let (_, r) = layout(self.chapters.len())
            .into_iter()
            .find(|(c, _)| *c == Control::Timeline)?;
        let u = self.fraction_of(time_ns);
        Some(self.stage_from_panel_mm(Vec2::new(r.x + u * r.w, r.y + r.h * 0.5)))
    }

    fn fraction_of(&self, time_ns: i64) -> f32 {
        let (a, b) = self.range_ns;
        if b <= a {
            return 0.0;
        }
        (((time_ns - a) as f64 / (b - a) as f64) as f32).clamp(0.0, 1.0)
    }

    fn time_at(&self, fraction: f32) -> i64 {
        let (a, b) = self.range_ns;
        a + ((b - a) as f64 * f64::from(fraction)).round() as i64
    }

    /// A point of the panel (panel mm from its top-left corner) in stage space.
    fn stage_from_panel_mm(&self, p: Vec2) -> Vec3 {
        let local = Vec3::new(
            p.x - PANEL_SIZE_MM.x * 0.5,
            PANEL_SIZE_MM.y * 0.5 - p.y,
            0.0,
        );
        self.stage_from_panel.position_mm + self.stage_from_panel.orientation * local
    }

    /// Where a stage ray meets the panel's front (panel mm), if it does within the panel.
    fn hit(&self, origin: Vec3, direction: Vec3) -> Option<Vec2> {
        let inv = self.stage_from_panel.orientation.inverse();
        let o = inv * (origin - self.stage_from_panel.position_mm);
        let d = inv * direction;
        if d.z.abs() < 1e-6 {
            return None;
        }
        let t = -o.z / d.z;
        if t.is_nan() || t <= 0.0 {
            return None;
        }
        let p = o + d * t;
        let panel = Vec2::new(p.x + PANEL_SIZE_MM.x * 0.5, PANEL_SIZE_MM.y * 0.5 - p.y);
        (panel.x >= 0.0 && panel.x < PANEL_SIZE_MM.x && panel.y >= 0.0 && panel.y < PANEL_SIZE_MM.y)
            .then_some(panel)
    }

    /// One frame of the learner's input at session clock `clock_ns`: summons or dismisses
    /// the panel and operates its controls on `playback`. Returns whether the lesson time
    /// jumped (a seek, for the narration to follow).
    pub fn update(&mut self, frame: &XrFrame, playback: &mut Playback, clock_ns: i64) -> bool {
        let mut seeked = false;
        // Summon / dismiss: the left menu button, or the left palm held up.
        let menu = frame.controllers[0].is_some_and(|c| c.buttons & MENU_BUTTON != 0);
        let menu_pressed = menu && !self.pointers[0].menu;
        self.pointers[0].menu = menu;
        let palm_up = frame.hands[0].as_ref().is_some_and(palm_faces_up);
        let mut palm_toggle = false;
        if palm_up {
            let since = *self.palm_up_since.get_or_insert(clock_ns);
            if !self.palm_toggled && clock_ns - since >= PALM_UP_HOLD_NS {
                palm_toggle = true;
                self.palm_toggled = true;
            }
        } else {
            self.palm_up_since = None;
            self.palm_toggled = false;
        }
        if menu_pressed || palm_toggle {
            if self.visible {
                self.visible = false;
                self.dragging = None;
            } else {
                self.summon(&frame.head);
            }
        }
        if !self.visible {
            return false;
        }
        let layout = layout(self.chapters.len());
        for i in 0..2 {
            let Some((ray, pressed)) = pointer_ray(
                frame.controllers[i].as_ref(),
                frame.hands[i].as_ref(),
                self.pointers[i].pressed,
            ) else {
                self.pointers[i].hit = None;
                self.pointers[i].pressed = false;
                continue;
            };
            let was = self.pointers[i].pressed;
            self.pointers[i].pressed = pressed;
            // While dragging, the ray may leave the panel: follow it along the panel's plane.
            let hit = self.hit(ray.0, ray.1);
            self.pointers[i].hit = hit;
            if pressed && !was {
                let Some(p) = hit else { continue };
                let Some(&(control, rect)) = layout.iter().find(|(_, r)| r.contains(p)) else {
                    continue;
                };
                match control {
                    Control::PlayPause => {
                        playback.hold(clock_ns);
                        playback.playing = !playback.playing;
                    }
                    Control::Follow => playback.follow_instructor = !playback.follow_instructor,
                    Control::Speed(k) => {
                        playback.hold(clock_ns);
                        playback.speed = SPEEDS[k];
                    }
                    Control::Volume => {
                        playback.volume = rect.fraction(p);
                        self.dragging = Some((i, control));
                    }
                    Control::Timeline => {
                        playback.seek(clock_ns, self.time_at(rect.fraction(p)));
                        seeked = true;
                        self.dragging = Some((i, control));
                    }
                    Control::Chapter(k) => {
                        if let Some((t, _)) = self.chapters.get(k) {
                            playback.seek(clock_ns, *t);
                            seeked = true;
                        }
                    }
                }
            } else if pressed {
                if let (Some((hand, control)), Some(p)) = (self.dragging, hit) {
                    if hand == i {
                        if let Some((_, rect)) = layout.iter().find(|(c, _)| *c == control) {
                            match control {
                                Control::Timeline => {
                                    playback.seek(clock_ns, self.time_at(rect.fraction(p)));
                                    seeked = true;
                                }
                                Control::Volume => playback.volume = rect.fraction(p),
                                _ => {}
                            }
                        }
                    }
                }
            } else if self.dragging.is_some_and(|(hand, _)| hand == i) {
                self.dragging = None;
            }
        }
        seeked
    }

    /// The panel's image for `playback` at lesson time `time_ns`: dark translucent ground,
    /// the play/pause and follow buttons, the speeds, the volume slider, the timeline with a
    /// tick per chapter and the playhead, the numbered chapter buttons, and a dot where each
    /// ray points.
    #[must_use]
    pub fn draw(&self, playback: &Playback, time_ns: i64) -> RgbaImage {
        let mut img = Canvas::new(PANEL_PX);
        img.fill(
            Rect {
                x: 0.0,
                y: 0.0,
                w: PANEL_SIZE_MM.x,
                h: PANEL_SIZE_MM.y,
            },
            [30, 32, 38, 220],
        );
        let idle = [70, 74, 84, 255];
        let on = [40, 150, 220, 255];
        let ink = [235, 235, 235, 255];
        for (control, r) in layout(self.chapters.len()) {
            match control {
                Control::PlayPause => {
                    img.fill(r, idle);
                    if playback.playing {
                        // Pause: two bars.
                        img.fill(
                            Rect {
                                x: r.x + 15.0,
                                y: r.y + 12.0,
                                w: 7.0,
                                h: 26.0,
                            },
                            ink,
                        );
                        img.fill(
                            Rect {
                                x: r.x + 28.0,
                                y: r.y + 12.0,
                                w: 7.0,
                                h: 26.0,
                            },
                            ink,
                        );
                    } else {
                        img.triangle(r, ink);
                    }
                }
                Control::Follow => {
                    img.fill(r, if playback.follow_instructor { on } else { idle });
                    // A head: a disc over shoulders.
                    img.disc(r.centre() - Vec2::new(0.0, 6.0), 9.0, ink);
                    img.fill(
                        Rect {
                            x: r.x + 12.0,
                            y: r.y + 34.0,
                            w: 26.0,
                            h: 8.0,
                        },
                        ink,
                    );
                }
                Control::Speed(k) => {
                    let chosen = (playback.speed - SPEEDS[k]).abs() < 1e-9;
                    img.fill(r, if chosen { on } else { idle });
                    let label = match k {
                        0 => ".5",
                        1 => "1",
                        _ => "2",
                    };
                    img.text(r.centre(), label, ink);
                }
                Control::Volume => {
                    img.fill(
                        Rect {
                            y: r.y + 12.0,
                            h: 6.0,
                            ..r
                        },
                        idle,
                    );
                    img.fill(
                        Rect {
                            y: r.y + 12.0,
                            h: 6.0,
                            w: r.w * playback.volume.clamp(0.0, 1.0),
                            ..r
                        },
                        on,
                    );
                    img.disc(
                        Vec2::new(r.x + r.w * playback.volume.clamp(0.0, 1.0), r.y + 15.0),
                        7.0,
                        ink,
                    );
                }
                Control::Timeline => {
                    img.fill(
                        Rect {
                            y: r.y + 15.0,
                            h: 10.0,
                            ..r
                        },
                        idle,
                    );
                    let u = self.fraction_of(time_ns);
                    img.fill(
                        Rect {
                            y: r.y + 15.0,
                            h: 10.0,
                            w: r.w * u,
                            ..r
                        },
                        on,
                    );
                    for (t, _) in &self.chapters {
                        let x = r.x + r.w * self.fraction_of(*t);
                        img.fill(
                            Rect {
                                x: x - 1.0,
                                y: r.y + 5.0,
                                w: 2.0,
                                h: 30.0,
                            },
                            ink,
                        );
                    }
                    img.fill(
                        Rect {
                            x: r.x + r.w * u - 3.0,
                            y: r.y,
                            w: 6.0,
                            h: r.h,
                        },
                        [255, 210, 0, 255],
                    );
                }
                Control::Chapter(k) => {
                    let current = self
                        .chapters
                        .iter()
                        .rposition(|(t, _)| *t <= time_ns)
                        .is_some_and(|c| c == k);
                    img.fill(r, if current { on } else { idle });
                    img.text(r.centre(), &(k + 1).to_string(), ink);
                }
            }
        }
        // In words what the numbered buttons cannot say: the chapter and the time.
        img.blit(
            &twinray_scene::text::text_image(&self.caption(time_ns), CAPTION_PX),
            10,
            194,
        );
        for p in self.pointers.iter().filter_map(|p| p.hit) {
            img.disc(p, 5.0, [255, 255, 255, 255]);
        }
        img.0
    }

    /// The panel's caption at `time_ns`: the current chapter's number and title, then the
    /// time into the lesson and its length ("3 Spinous processes   0:22 / 0:50").
    #[must_use]
    pub fn caption(&self, time_ns: i64) -> String {
        let clock = |ns: i64| {
            let s = (ns.max(0) / 1_000_000_000).max(0);
            format!("{}:{:02}", s / 60, s % 60)
        };
        let times = format!(
            "{} / {}",
            clock(time_ns - self.range_ns.0),
            clock(self.range_ns.1 - self.range_ns.0)
        );
        match self.chapters.iter().rposition(|(t, _)| *t <= time_ns) {
            Some(c) => format!("{} {}   {times}", c + 1, self.chapters[c].1),
            None => times,
        }
    }

    /// Draws the panel (`image`, from [`Self::draw`]) over one eye's rendered image, seen
    /// from `eye` (its pose and field of view; the image may be any size). Pixels whose ray
    /// misses the panel are left alone.
    ///
    /// Known debt: this runs on the CPU, about 16 ms per stereo frame at 2 × 1832×1920 while
    /// the panel is shown (the `vr` bench). Drawing the quad in the ray-march pass, as the
    /// overlays are, would take it off the frame's critical path.
    pub fn composite(&self, image: &RgbaImage, eye: &EyeView, target: &mut RgbaImage) {
        if !self.visible {
            return;
        }
        let (w, h) = (target.width, target.height);
        let f = eye.fov;
        let (l, r) = (f.angle_left.tan(), f.angle_right.tan());
        let (u, d) = (f.angle_up.tan(), f.angle_down.tan());
        // Only the pixels inside the projected corners can see the panel.
        let mut x_range = (w, 0u32);
        let mut y_range = (h, 0u32);
        let inv = eye.pose.orientation.inverse();
        for corner in [
            Vec2::ZERO,
            Vec2::new(PANEL_SIZE_MM.x, 0.0),
            Vec2::new(0.0, PANEL_SIZE_MM.y),
            PANEL_SIZE_MM,
        ] {
            let v = inv * (self.stage_from_panel_mm(corner) - eye.pose.position_mm);
            if v.z >= -1.0 {
                // A corner beside or behind the eye: test every pixel.
                x_range = (0, w);
                y_range = (0, h);
                break;
            }
            let (tx, ty) = (v.x / -v.z, v.y / -v.z);
            let px = ((tx - l) / (r - l) * w as f32).floor();
            let py = ((u - ty) / (u - d) * h as f32).floor();
            x_range = (
                x_range.0.min(px.clamp(0.0, w as f32) as u32),
                x_range.1.max((px + 1.0).clamp(0.0, w as f32) as u32),
            );
            y_range = (
                y_range.0.min(py.clamp(0.0, h as f32) as u32),
                y_range.1.max((py + 1.0).clamp(0.0, h as f32) as u32),
            );
        }
        for y in y_range.0..y_range.1 {
            let ty = u + (d - u) * (y as f32 + 0.5) / h as f32;
            for x in x_range.0..x_range.1 {
                let tx = l + (r - l) * (x as f32 + 0.5) / w as f32;
                let dir = eye.pose.orientation * Vec3::new(tx, ty, -1.0);
                let Some(p) = self.hit(eye.pose.position_mm, dir) else {
                    continue;
                };
                let sx = ((p.x / PANEL_SIZE_MM.x) * image.width as f32) as u32;
                let sy = ((p.y / PANEL_SIZE_MM.y) * image.height as f32) as u32;
                let src = image.pixel(sx.min(image.width - 1), sy.min(image.height - 1));
                let i = ((y * w + x) * 4) as usize;
                let a = u32::from(src[3]);
                for (dst, &over) in target.pixels[i..i + 3].iter_mut().zip(&src[..3]) {
                    let under = u32::from(*dst);
                    *dst = ((u32::from(over) * a + under * (255 - a) + 127) / 255) as u8;
                }
                target.pixels[i + 3] = target.pixels[i + 3].max(src[3]);
            }
        }
    }
}

/// The learner's pointing ray (origin, direction) and whether it presses, with hysteresis:
/// a controller's aim pose and trigger, else a tracked hand's wrist-to-knuckle ray and pinch.
fn pointer_ray(
    controller: Option<&ControllerState>,
    hand: Option<&HandJoints>,
    was_pressed: bool,
) -> Option<((Vec3, Vec3), bool)> {
    if let Some(c) = controller {
        let pressed = if was_pressed {
            c.trigger > RELEASE_VALUE
        } else {
            c.trigger >= PRESS_VALUE
        };
        let dir = c.aim.orientation * Vec3::NEG_Z;
        return Some(((c.aim.position_mm, dir), pressed));
    }
    let j = hand?;
    let wrist = j.joints[WRIST_JOINT].pose.position_mm;
    let knuckle = j.joints[INDEX_KNUCKLE].pose.position_mm;
    let dir = (knuckle - wrist).normalize_or_zero();
    if dir == Vec3::ZERO {
        return None;
    }
    let gap = crate::input::pinch_gap_mm(j);
    let pressed = if was_pressed {
        gap <= PINCH_END_MM
    } else {
        gap < PINCH_START_MM
    };
    Some(((knuckle, dir), pressed))
}

/// The index finger's proximal joint (`XR_EXT_hand_tracking`).
const INDEX_KNUCKLE: usize = 7;

/// Whether the palm faces up: the palm joint's +y points out of the back of the hand
/// (`XR_EXT_hand_tracking`), so palm up is its +y pointing down.
fn palm_faces_up(hand: &HandJoints) -> bool {
    let back = hand.joints[0].pose.orientation * Vec3::Y;
    back.y < -0.8
}

/// A tiny software canvas for the panel (panel mm = pixels).
struct Canvas(RgbaImage);

impl Canvas {
    fn new(size: [u32; 2]) -> Self {
        Self(RgbaImage {
            width: size[0],
            height: size[1],
            pixels: vec![0; size[0] as usize * size[1] as usize * 4],
        })
    }

    fn put(&mut self, x: i64, y: i64, rgba: [u8; 4]) {
        let (w, h) = (i64::from(self.0.width), i64::from(self.0.height));
        if (0..w).contains(&x) && (0..h).contains(&y) {
            let i = ((y * w + x) * 4) as usize;
            self.0.pixels[i..i + 4].copy_from_slice(&rgba);
        }
    }

    /// Draws `src` (straight alpha) over the canvas with its top-left corner at (x0, y0).
    fn blit(&mut self, src: &RgbaImage, x0: i64, y0: i64) {
        let (w, h) = (i64::from(self.0.width), i64::from(self.0.height));
        for y in 0..i64::from(src.height) {
            for x in 0..i64::from(src.width) {
                let (tx, ty) = (x0 + x, y0 + y);
                if !((0..w).contains(&tx) && (0..h).contains(&ty)) {
                    continue;
                }
                let i = ((y * i64::from(src.width) + x) * 4) as usize;
                let a = u32::from(src.pixels[i + 3]);
                if a == 0 {
                    continue;
                }
                let j = ((ty * w + tx) * 4) as usize;
                for c in 0..3 {
                    let mixed = (u32::from(src.pixels[i + c]) * a
                        + u32::from(self.0.pixels[j + c]) * (255 - a))
                        / 255;
                    self.0.pixels[j + c] = u8::try_from(mixed).unwrap_or(255);
                }
                self.0.pixels[j + 3] = self.0.pixels[j + 3].max(src.pixels[i + 3]);
            }
        }
    }

    fn fill(&mut self, r: Rect, rgba: [u8; 4]) {
        for y in r.y.round() as i64..(r.y + r.h).round() as i64 {
            for x in r.x.round() as i64..(r.x + r.w).round() as i64 {
                self.put(x, y, rgba);
            }
        }
    }

    fn disc(&mut self, c: Vec2, radius: f32, rgba: [u8; 4]) {
        let r = radius.ceil() as i64;
        for dy in -r..=r {
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f32) <= radius * radius {
                    self.put(c.x as i64 + dx, c.y as i64 + dy, rgba);
                }
            }
        }
    }

    /// A play triangle inside `r`, pointing right.
    fn triangle(&mut self, r: Rect, rgba: [u8; 4]) {
        let (x0, y0, size) = (r.x + 17.0, r.y + 12.0, 26.0);
        for dy in 0..size as i64 {
            let half = size * 0.5 - (dy as f32 - size * 0.5).abs();
            for dx in 0..(half * 1.4) as i64 {
                self.put(x0 as i64 + dx, y0 as i64 + dy, rgba);
            }
        }
    }

    /// Digits and '.' in a 3×5 block font, 4 px per block, centred on `c`.
    fn text(&mut self, c: Vec2, s: &str, rgba: [u8; 4]) {
        const SCALE: i64 = 4;
        let glyph = |ch: char| -> [u8; 5] {
            match ch {
                '0' => [7, 5, 5, 5, 7],
                '1' => [2, 6, 2, 2, 7],
                '2' => [7, 1, 7, 4, 7],
                '3' => [7, 1, 7, 1, 7],
                '4' => [5, 5, 7, 1, 1],
                '5' => [7, 4, 7, 1, 7],
                '6' => [7, 4, 7, 5, 7],
                '7' => [7, 1, 1, 1, 1],
                '8' => [7, 5, 7, 5, 7],
                '9' => [7, 5, 7, 1, 7],
                '.' => [0, 0, 0, 0, 2],
                _ => [0; 5],
            }
        };
        let n = s.chars().count() as i64;
        let width = n * 4 * SCALE - SCALE;
        let x0 = c.x as i64 - width / 2;
        let y0 = c.y as i64 - 5 * SCALE / 2;
        for (k, ch) in s.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        for sy in 0..SCALE {
                            for sx in 0..SCALE {
                                self.put(
                                    x0 + (k as i64 * 4 + col) * SCALE + sx,
                                    y0 + row as i64 * SCALE + sy,
                                    rgba,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SimulatedXr;

    fn aim_at(from: Vec3, to: Vec3, trigger: f32) -> ControllerState {
        let dir = (to - from).normalize();
        let pose = Pose {
            position_mm: from,
            orientation: Quat::from_rotation_arc(Vec3::NEG_Z, dir),
        };
        ControllerState {
            grip: pose,
            aim: pose,
            buttons: 0,
            trigger,
            squeeze: 0.0,
            thumbstick: Vec2::ZERO,
        }
    }

    #[test]
    fn the_panel_faces_the_head_and_its_controls_work_by_ray_and_trigger() {
        let mut frame = SimulatedXr::new(Vec3::new(0.0, 1000.0, -500.0), [8, 8], 1).frame_at(0.0);
        frame.hands = [None, None];
        let mut panel = LearnerPanel::new(
            vec![(0, "A".into()), (10_000_000_000, "B".into())],
            (0, 20_000_000_000),
        );
        let mut playback = Playback::default();
        // The menu summons it, half a metre ahead.
        let mut menu = frame.clone();
        menu.controllers[0] = Some(ControllerState {
            buttons: MENU_BUTTON,
            ..frame.controllers[0].expect("left")
        });
        panel.update(&menu, &mut playback, 0);
        assert!(panel.visible());
        let centre = panel.stage_from_panel.position_mm;
        let to_head = frame.head.position_mm - centre;
        assert!((Vec3::new(to_head.x, 0.0, to_head.z).length() - PANEL_DISTANCE_MM).abs() < 1.0);
        let normal = panel.stage_from_panel.orientation * Vec3::Z;
        assert!(normal.dot(to_head.normalize()) > 0.9, "faces the learner");

        let hand = frame.head.position_mm + Vec3::new(150.0, -250.0, -100.0);
        let press = |panel: &mut LearnerPanel, pb: &mut Playback, to: Vec3, t: i64| {
            let mut f = frame.clone();
            f.controllers[1] = Some(aim_at(hand, to, 1.0));
            let seek = panel.update(&f, pb, t);
            f.controllers[1] = Some(aim_at(hand, to, 0.0));
            panel.update(&f, pb, t);
            seek
        };
        // Pause at clock 1 s: lesson time stops there.
        let pp = panel.control_stage_mm(Control::PlayPause).expect("play");
        press(&mut panel, &mut playback, pp, 1_000_000_000);
        assert!(!playback.playing);
        assert_eq!(playback.lesson_time_ns(5_000_000_000), 1_000_000_000);
        // The timeline: pointing at 15 s seeks there.
        let at = panel.timeline_stage_mm(15_000_000_000).expect("timeline");
        assert!(press(&mut panel, &mut playback, at, 2_000_000_000));
        let t = playback.lesson_time_ns(9_000_000_000);
        assert!((t - 15_000_000_000).abs() < 60_000_000, "{t}");
        // Chapter B, then play at 2×.
        let b = panel
            .control_stage_mm(Control::Chapter(1))
            .expect("chapter");
        press(&mut panel, &mut playback, b, 3_000_000_000);
        assert_eq!(playback.lesson_time_ns(3_500_000_000), 10_000_000_000);
        let fast = panel.control_stage_mm(Control::Speed(2)).expect("speed");
        press(&mut panel, &mut playback, fast, 3_000_000_000);
        press(&mut panel, &mut playback, pp, 3_000_000_000);
        assert_eq!(playback.lesson_time_ns(4_000_000_000), 12_000_000_000);
        // Follow and volume.
        let follow = panel.control_stage_mm(Control::Follow).expect("follow");
        press(&mut panel, &mut playback, follow, 3_000_000_000);
        assert!(playback.follow_instructor);
        let vol = panel.control_stage_mm(Control::Volume).expect("volume");
        press(&mut panel, &mut playback, vol, 3_000_000_000);
        assert!((playback.volume - 0.5).abs() < 0.02, "{}", playback.volume);
        // Pointing away presses nothing.
        let before = playback;
        press(
            &mut panel,
            &mut playback,
            hand + Vec3::new(0.0, -1000.0, 0.0),
            3_000_000_000,
        );
        assert_eq!(playback, before);
    }

    #[test]
    fn the_panel_is_drawn_where_it_stands_in_both_eyes() {
        let mut frame = SimulatedXr::new(Vec3::new(0.0, 1000.0, -500.0), [8, 8], 1).frame_at(0.0);
        frame.hands = [None, None];
        let mut panel = LearnerPanel::new(vec![(0, "A".into())], (0, 1_000_000_000));
        panel.summon(&frame.head);
        let image = panel.draw(&Playback::default(), 0);
        let blank = RgbaImage {
            width: 80,
            height: 84,
            pixels: vec![0; 80 * 84 * 4],
        };
        let centre = panel.stage_from_panel.position_mm;
        let mut centroids = Vec::new();
        for view in &frame.views {
            let mut eye = blank.clone();
            panel.composite(&image, view, &mut eye);
            let covered: Vec<(u32, u32)> = (0..eye.height)
                .flat_map(|y| (0..eye.width).map(move |x| (x, y)))
                .filter(|&(x, y)| eye.pixel(x, y)[3] > 0)
                .collect();
            assert!(covered.len() > 200, "{} pixels", covered.len());
            let cx = covered.iter().map(|p| f64::from(p.0)).sum::<f64>() / covered.len() as f64;
            centroids.push(cx);
            // The panel's centre projects inside what was drawn.
            let v = view.pose.orientation.inverse() * (centre - view.pose.position_mm);
            let f = view.fov;
            let tx = v.x / -v.z;
            let px = (tx - f.angle_left.tan()) / (f.angle_right.tan() - f.angle_left.tan()) * 80.0;
            assert!((f64::from(px) - cx).abs() < 3.0, "{px} vs {cx}");
        }
        // Nearer than infinity: further right in the left eye than in the right.
        assert!(centroids[0] > centroids[1]);
        // Hidden, nothing is drawn.
        panel.visible = false;
        let mut eye = blank.clone();
        panel.composite(&image, &frame.views[0], &mut eye);
        assert_eq!(eye, blank);
    }

    #[test]
    fn the_caption_names_the_chapter_and_the_time_in_words_on_the_panel() {
        let panel = LearnerPanel::new(
            vec![
                (0, "Overview".into()),
                (16_000_000_000, "Spinous processes".into()),
            ],
            (0, 50_000_000_000),
        );
        assert_eq!(panel.caption(5_000_000_000), "1 Overview   0:05 / 0:50");
        assert_eq!(
            panel.caption(22_000_000_000),
            "2 Spinous processes   0:22 / 0:50"
        );
        let playback = Playback::default();
        let bright = |img: &RgbaImage| {
            (194..PANEL_PX[1])
                .flat_map(|y| (0..PANEL_PX[0]).map(move |x| (x, y)))
                .filter(|&(x, y)| {
                    let i = ((y * PANEL_PX[0] + x) * 4) as usize;
                    img.pixels[i] > 200 && img.pixels[i + 1] > 200 && img.pixels[i + 2] > 200
                })
                .count()
        };
        let early = panel.draw(&playback, 5_000_000_000);
        let late = panel.draw(&playback, 22_000_000_000);
        // White glyphs in the caption strip, more for the longer title.
        assert!(bright(&early) > 50, "{}", bright(&early));
        assert!(bright(&late) > bright(&early) + 50);
    }

    #[test]
    fn holding_the_left_palm_up_summons_and_then_dismisses_the_panel() {
        let mut frame = SimulatedXr::new(Vec3::new(0.0, 1000.0, -500.0), [8, 8], 1).frame_at(0.0);
        frame.controllers = [None, None];
        let mut up = frame.clone();
        let turned = Pose {
            orientation: Quat::from_rotation_z(std::f32::consts::PI),
            ..Pose::IDENTITY
        };
        up.hands[0] = Some(crate::source::hand_at(
            turned,
            twinray_lessons::event::Handedness::Left,
            60.0,
        ));
        let mut panel = LearnerPanel::new(Vec::new(), (0, 1));
        let mut playback = Playback::default();
        let ms = 1_000_000;
        // Palm down (the script's hands) does nothing; palm up must be held.
        panel.update(&frame, &mut playback, 0);
        panel.update(&up, &mut playback, 100 * ms);
        panel.update(&up, &mut playback, 100 * ms + PALM_UP_HOLD_NS - ms);
        assert!(!panel.visible());
        panel.update(&up, &mut playback, 100 * ms + PALM_UP_HOLD_NS);
        assert!(panel.visible());
        // Still held: no flicker. Lowered and raised again for as long: gone.
        panel.update(&up, &mut playback, 2000 * ms);
        assert!(panel.visible());
        panel.update(&frame, &mut playback, 2100 * ms);
        panel.update(&up, &mut playback, 2200 * ms);
        panel.update(&up, &mut playback, 2200 * ms + PALM_UP_HOLD_NS);
        assert!(!panel.visible());
    }
}
