//! The scripted demo lesson (`twinray demo`): records — a lumbar spine lesson on the demo case —
//! through the real [`Recorder`], as fast as it can be written.
//!
//! The script plays an instructor standing at the twin: the head walks around the patient at
//! display rate looking at the lumbar spine, the hands follow, vertebra labels are hidden and
//! isolated, presets change, two strokes are drawn along the spinous processes from behind
//! (each point placed on the bone surface the way the studio's pen places it: the first dense
//! sample along the ray from the instructor's side), a sagittal clip plane opens the spine and
//! a pen (a controller without hand tracking) points at a vertebral body.
//!
//! Everything is a function of the case, so the same case gives the same events (the file's
//! wall-clock anchor is fixed for the same reason; chunk boundaries, and so the bytes, may
//! differ between runs, as the recorder also closes chunks by wall-clock time).

use std::path::Path;

use glam::{DMat3, DMat4, DQuat, DVec3, Quat, Vec2, Vec3};
use twinray_lessons::event::{
    Brush, Chapter, ClipPlane, ControllerSample, ControllerState, Event, HandJoint, HandJoints,
    HandSample, Handedness, Payload, Pose, SceneChange, Space, StrokeBegin, StrokePoint,
    StrokeStyle, Viewpoint, HAND_JOINT_COUNT, WRIST_JOINT,
};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::recorder::{Recorder, RecorderOptions, RecordingReport};
use twinray_renderer::RenderOptions;
use twinray_transfer_functions::{Lut, Preset, TransferFunction};

use crate::builder::look_rotation;
use crate::{Case, SceneError};

/// Times of the script, in seconds of lesson time, so tests and docs can point into it.
pub mod script {
    /// Display rate of the scripted head and hands.
    pub const FRAME_RATE_HZ: i64 = 60;
    /// Length of the lesson.
    pub const DURATION_S: f64 = 50.0;
    /// Chapters: start time and title.
    pub const CHAPTERS: [(f64, &str); 6] = [
        (0.0, "Overview: the lumbar spine"),
        (8.0, "Lumbar vertebrae L1 to L5"),
        (16.0, "Spinous processes"),
        (30.0, "Soft tissue"),
        (36.0, "Midline cut"),
        (45.0, "Summary"),
    ];
    /// T11, T12 and S1 are hidden one after the other from here (until [`RESTORE_S`]).
    pub const HIDE_NEIGHBOURS_S: f64 = 8.0;
    /// L1, L2, L4 and L5 are hidden (L3 isolated) from here …
    pub const ISOLATE_L3_S: f64 = 11.0;
    /// … and shown again from here.
    pub const SHOW_LUMBAR_S: f64 = 14.0;
    /// Stroke 1 (along the spinous processes, L1 to L5) is drawn in this interval.
    pub const STROKE_SPINE_S: (f64, f64) = (17.0, 25.0);
    /// Stroke 2 (a ring around L3's spinous process) is drawn in this interval.
    pub const STROKE_RING_S: (f64, f64) = (26.0, 29.0);
    /// `ct-soft-tissue` from here until [`BONE_AGAIN_S`].
    pub const SOFT_TISSUE_S: f64 = 30.0;
    /// The sagittal clip plane (keeping the patient's left half) from here until [`RESTORE_S`].
    pub const CLIP_S: f64 = 36.0;
    /// `ct-bone` again.
    pub const BONE_AGAIN_S: f64 = 40.0;
    /// The right hand holds a controller (a pen, no hand tracking) in this interval.
    pub const PEN_S: (f64, f64) = (38.0, 44.0);
    /// Clip plane removed, T11, T12 and S1 shown again.
    pub const RESTORE_S: f64 = 45.0;
    /// The pelvis radiograph is put on a board beside the twin.
    pub const BOARD_S: f64 = 45.5;
    /// A ring is drawn on the board around the femoral head in this interval.
    pub const BOARD_STROKE_S: (f64, f64) = (46.0, 47.5);
    /// The Cobb angle between the L1 and L5 endplates (on the twin) is shown from here.
    pub const COBB_S: f64 = 48.0;
    /// A midline needle path through the L3–L4 interspace is shown from here.
    pub const TRAJECTORY_S: f64 = 48.5;
}

/// The pelvis radiograph of the demo lesson's last chapter (NEMA WG04 RG2: CR pelvis with the
/// lower lumbar spine, 0.2 mm pixels; see `data/xray/README.md`).
const DEMO_RADIOGRAPH_DCM: &[u8] = include_bytes!("../../../data/xray/wg04/RG2_J2KI.dcm");

/// The demo radiograph as a board image. The DICOM reader reads files, so the embedded bytes
/// go through a private temporary file, removed at once.
fn demo_board_image() -> Result<crate::boards::BoardImage, SceneError> {
    // One folder per call: threads of one process may load the demo at once, and each removes
    // its own folder when done.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("twinray-demo-board-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| SceneError::Board(format!("{}: {e}", dir.display())))?;
    let path = dir.join("pelvis.dcm");
    let written = std::fs::write(&path, DEMO_RADIOGRAPH_DCM)
        .map_err(|e| SceneError::Board(format!("{}: {e}", path.display())));
    let image = written.and_then(|()| crate::boards::load_board_image(&path));
    let _ = std::fs::remove_dir_all(&dir);
    image
}

/// TotalSegmentator ids of the labels the script uses.
mod ids {
    pub const S1: u32 = 26;
    pub const L5: u32 = 27;
    pub const L4: u32 = 28;
    pub const L3: u32 = 29;
    pub const L2: u32 = 30;
    pub const L1: u32 = 31;
    pub const T12: u32 = 32;
    pub const T11: u32 = 33;
    /// Superior to inferior.
    pub const LUMBAR: [u32; 5] = [L1, L2, L3, L4, L5];
}

/// Fixed wall-clock anchor of the demo lesson (2026-01-01T00:00:00Z), so its content depends
/// only on the case.
const DEMO_ANCHOR_UNIX_NS: i64 = 1_767_225_600_000_000_000;

/// Where the twin stands in the room: upright (superior up, +y in the stage), its anterior
/// towards the stage's +z, centred at 1.2 m height 0.6 m in front of the stage origin.
#[must_use]
pub fn demo_twin_pose(centre_mm: DVec3) -> Pose {
    let rotation = Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2);
    Pose {
        position_mm: Vec3::new(0.0, 1200.0, -600.0) - rotation * centre_mm.as_vec3(),
        orientation: rotation,
    }
}

/// Where the script looks and draws, measured on the case's labels and CT.
#[derive(Debug, Clone)]
pub struct SpineLandmarks {
    /// Tips of the spinous processes L1 … L5 on the bone surface (patient mm).
    pub spinous_tips_mm: Vec<DVec3>,
    /// Centroids of L1 … L5.
    pub centroids_mm: Vec<DVec3>,
    /// Mean of the centroids: where the instructor mostly looks.
    pub centre_mm: DVec3,
}

/// Finds the lumbar landmarks from the label map (ids 27–31) and the CT.
///
/// # Errors
/// If the case has no labels or lacks one of L1–L5.
pub fn spine_landmarks(case: &Case) -> Result<SpineLandmarks, SceneError> {
    let labels = case.labels.as_ref().ok_or_else(|| {
        SceneError::DemoCase(
            "the demo lesson needs vertebra labels (TotalSegmentator ids 27-31, L5-L1)".into(),
        )
    })?;
    let g = labels.geometry();
    let [ni, nj, nk] = g.dims;
    // Per label: centroid sums and the most posterior voxels.
    let mut sum = [DVec3::ZERO; 5];
    let mut count = [0usize; 5];
    let mut posterior: [Vec<DVec3>; 5] = Default::default();
    for k in 0..nk {
        for j in 0..nj {
            for i in 0..ni {
                let id = u32::from(labels.voxels()[g.linear_index(i, j, k)]);
                let Some(slot) = ids::LUMBAR.iter().position(|&l| l == id) else {
                    continue;
                };
                let p = g.patient_from_index(DVec3::new(i as f64, j as f64, k as f64));
                sum[slot] += p;
                count[slot] += 1;
                posterior[slot].push(p);
            }
        }
    }
    let mut tips = Vec::new();
    let mut centroids = Vec::new();
    for slot in 0..5 {
        if count[slot] == 0 {
            return Err(SceneError::DemoCase(format!(
                "the labels of {} have no vertebra {} (id {}); the demo lesson draws on L1-L5",
                case.origin,
                ["L1", "L2", "L3", "L4", "L5"][slot],
                ids::LUMBAR[slot]
            )));
        }
        centroids.push(sum[slot] / count[slot] as f64);
        // LPS: +y is posterior. The spinous process tip: the mean of the voxels within 4 mm of
        // the most posterior one, moved onto the bone surface from behind.
        let max_y = posterior[slot]
            .iter()
            .map(|p| p.y)
            .fold(f64::NEG_INFINITY, f64::max);
        let near: Vec<_> = posterior[slot]
            .iter()
            .filter(|p| p.y >= max_y - 4.0)
            .collect();
        let tip = near.iter().copied().sum::<DVec3>() / near.len() as f64;
        tips.push(surface_from_behind(case, tip).unwrap_or(tip));
    }
    let centre = centroids.iter().copied().sum::<DVec3>() / 5.0;
    Ok(SpineLandmarks {
        spinous_tips_mm: tips,
        centroids_mm: centroids,
        centre_mm: centre,
    })
}

/// Where the pen lands when the instructor draws over `p` from behind the patient: on the
/// ray from 30 mm behind `p` (posterior) towards anterior, the surface as the learner sees it
/// in the lesson's `ct-bone` view with every label shown ([`twinray_renderer::surface`], the renderer's
/// own definition), computed on the CPU so recording needs no GPU. Only up to 30 mm past `p`:
/// where a thin process is translucent the stroke stays at `p` rather than jumping onto the
/// vertebral body far in front.
fn surface_from_behind(case: &Case, p: DVec3) -> Option<DVec3> {
    const REACH_MM: f64 = 30.0;
    let lut = bone_lut()?;
    let dir = DVec3::new(0.0, -1.0, 0.0);
    let start = p - dir * REACH_MM;
    twinray_renderer::surface::surface_along(
        &case.ct,
        case.labels.as_ref(),
        lut,
        &RenderOptions::default(),
        start,
        dir,
    )
    .filter(|q| (*q - start).dot(dir) <= 2.0 * REACH_MM)
}

/// The `ct-bone` preset the demo draws on (built in, so always there) with the default label
/// styles, baked once.
fn bone_lut() -> Option<&'static Lut> {
    static LUT: std::sync::OnceLock<Option<Lut>> = std::sync::OnceLock::new();
    LUT.get_or_init(|| {
        Preset::load("ct-bone")
            .ok()
            .map(|preset| TransferFunction::new(preset).bake())
    })
    .as_ref()
}

/// A stroke's path: points 1 mm apart, each on the surface as the pen finds it.
fn stroke_path(case: &Case, outline: &[DVec3], closed: bool) -> Vec<DVec3> {
    let mut corners = outline.to_vec();
    if closed {
        if let Some(&first) = outline.first() {
            corners.push(first);
        }
    }
    let mut out = Vec::new();
    for w in corners.windows(2) {
        let n = (w[0].distance(w[1]).ceil() as usize).max(1);
        for s in 0..n {
            let p = w[0].lerp(w[1], s as f64 / n as f64);
            out.push(surface_from_behind(case, p).unwrap_or(p));
        }
    }
    if let Some(&last) = corners.last() {
        out.push(surface_from_behind(case, last).unwrap_or(last));
    }
    out
}

/// The point at fraction `u` (0 to 1) along a path, by index.
fn along(path: &[DVec3], u: f64) -> DVec3 {
    if path.is_empty() {
        return DVec3::ZERO;
    }
    let x = u.clamp(0.0, 1.0) * (path.len() - 1) as f64;
    let i = (x.floor() as usize).min(path.len() - 1);
    let j = (i + 1).min(path.len() - 1);
    path[i].lerp(path[j], x - i as f64)
}

/// Smooth 0 → 1 over `[a, b]`.
fn smoothstep(a: f64, b: f64, t: f64) -> f64 {
    let x = ((t - a) / (b - a)).clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Piecewise smooth interpolation through `(time, value)` keys.
fn keyed(keys: &[(f64, f64)], t: f64) -> f64 {
    let Some(&(t0, v0)) = keys.first() else {
        return 0.0;
    };
    if t <= t0 {
        return v0;
    }
    for w in keys.windows(2) {
        let ((ta, va), (tb, vb)) = (w[0], w[1]);
        if t <= tb {
            return va + (vb - va) * smoothstep(ta, tb, t);
        }
    }
    keys.last().map_or(v0, |k| k.1)
}

/// The head's orbit: azimuth and elevation (as [`crate::OrbitView`]) keyed in time.
const HEAD_AZIMUTH: [(f64, f64); 9] = [
    (0.0, -30.0),
    (8.0, 60.0),
    (15.0, 150.0),
    (17.0, 180.0),
    (29.0, 185.0),
    (30.0, 200.0),
    (36.0, 240.0),
    (40.0, 270.0),
    (50.0, 350.0),
];
const HEAD_ELEVATION: [(f64, f64); 6] = [
    (0.0, 15.0),
    (8.0, 20.0),
    (17.0, 35.0),
    (29.0, 35.0),
    (36.0, 15.0),
    (50.0, 20.0),
];
/// Distance of the head from what it looks at.
const HEAD_DISTANCE_MM: f64 = 550.0;

/// The script's positions at one instant, in patient space.
struct Pose6 {
    eye: DVec3,
    target: DVec3,
}

fn head_at(t: f64, lm: &SpineLandmarks) -> Pose6 {
    let az = keyed(&HEAD_AZIMUTH, t).to_radians();
    let el = keyed(&HEAD_ELEVATION, t).to_radians();
    let dir = DVec3::new(az.sin() * el.cos(), -az.cos() * el.cos(), el.sin());
    // While drawing on the back, the instructor looks at the spinous processes.
    let tips = lm.spinous_tips_mm.iter().copied().sum::<DVec3>() / 5.0;
    let w = smoothstep(15.0, 17.0, t) * (1.0 - smoothstep(29.0, 31.0, t));
    let target = lm.centre_mm.lerp(tips, w);
    Pose6 {
        eye: target + dir * HEAD_DISTANCE_MM,
        target,
    }
}

/// 26 hand joints whose index finger tip is at `tip_mm`, pointing along `dir` with the palm
/// facing `palm_towards`, in patient space. The index is extended, the other fingers curled:
/// a pointing hand.
fn pointing_hand(
    hand: Handedness,
    tip_mm: DVec3,
    dir: DVec3,
    palm_towards: DVec3,
) -> [(DVec3, DQuat, f32); HAND_JOINT_COUNT] {
    let z = dir.normalize_or_zero();
    let y = -(palm_towards - palm_towards.dot(z) * z).normalize_or_zero();
    let x = y.cross(z);
    let frame = DQuat::from_mat3(&DMat3::from_cols(x, y, z)).normalize();
    let side = if hand == Handedness::Left { 1.0 } else { -1.0 };
    // Hand-local joints: wrist at the origin, fingers along +z, palm towards −y, thumb on
    // the `side` of x; (position, rotation, radius).
    let mut local = [(DVec3::ZERO, DQuat::IDENTITY, 0f32); HAND_JOINT_COUNT];
    local[WRIST_JOINT] = (DVec3::ZERO, DQuat::IDENTITY, 20.0);
    local[0] = (DVec3::new(0.0, 0.0, 50.0), DQuat::IDENTITY, 22.0);
    let bases = [
        DVec3::new(side * 22.0, -8.0, 15.0),
        DVec3::new(side * 12.0, 0.0, 25.0),
        DVec3::new(0.0, 0.0, 25.0),
        DVec3::new(-side * 12.0, 0.0, 25.0),
        DVec3::new(-side * 22.0, 0.0, 22.0),
    ];
    let lengths: [[f64; 4]; 5] = [
        [40.0, 32.0, 26.0, 0.0],
        [65.0, 40.0, 25.0, 20.0],
        [65.0, 44.0, 28.0, 21.0],
        [62.0, 41.0, 26.0, 20.0],
        [55.0, 32.0, 20.0, 18.0],
    ];
    let mut j = 2;
    for f in 0..5 {
        let (curl, splay) = match f {
            0 => (0.35, side * 0.6),
            1 => (0.05, 0.0),
            _ => (0.55, -side * 0.05 * (f as f64 - 1.0)),
        };
        let segments = if f == 0 { 4 } else { 5 };
        let mut p = bases[f];
        let mut rot = DQuat::from_rotation_y(splay);
        for s in 0..segments {
            let radius = if f == 0 {
                10.0 - 1.5 * s as f32
            } else {
                9.0 - 1.2 * s as f32
            };
            local[j] = (p, rot, radius);
            // The bone to the next joint (none after the tip).
            if let Some(length) = lengths[f].get(s).filter(|_| s + 1 < segments) {
                // Fingers bend at the knuckles onwards (not inside the palm).
                if s >= 1 || f == 0 {
                    rot *= DQuat::from_rotation_x(curl);
                }
                p += rot * DVec3::new(0.0, 0.0, *length);
            }
            j += 1;
        }
    }
    let index_tip = local[10].0;
    std::array::from_fn(|i| {
        let (p, r, radius) = local[i];
        (tip_mm + frame * (p - index_tip), frame * r, radius)
    })
}

fn to_stage_joints(
    joints: &[(DVec3, DQuat, f32); HAND_JOINT_COUNT],
    stage_from_patient: &DMat4,
) -> HandJoints {
    let (_, twin_rotation, _) = stage_from_patient.to_scale_rotation_translation();
    let mut out = HandJoints::default();
    for (o, (p, r, radius)) in out.joints.iter_mut().zip(joints) {
        *o = HandJoint {
            pose: Pose {
                position_mm: stage_from_patient.transform_point3(*p).as_vec3(),
                orientation: (twin_rotation * *r).normalize().as_quat(),
            },
            radius_mm: *radius,
        };
    }
    out
}

fn stage_pose(position: DVec3, rotation: DQuat, stage_from_patient: &DMat4) -> Pose {
    let (_, twin_rotation, _) = stage_from_patient.to_scale_rotation_translation();
    Pose {
        position_mm: stage_from_patient.transform_point3(position).as_vec3(),
        orientation: (twin_rotation * rotation).normalize().as_quat(),
    }
}

/// The last chapter's teaching tools: the pelvis radiograph on a board with a ring drawn
/// around the femoral head, the Cobb angle of the lumbar curve between the L1 and L5
/// endplates, and a midline needle path into the L3–L4 interspace.
fn teaching_tools(
    case: &Case,
    lm: &SpineLandmarks,
    discrete: &mut Vec<(f64, Payload)>,
) -> Result<(), SceneError> {
    use script::*;
    use twinray_lessons::event::Measurement;
    let board = demo_board_image()?;
    let (pose, width_mm) = crate::boards::default_board_pose(
        case.ct.geometry(),
        &board.blob,
        board.patient_orientation.as_ref(),
    );
    for event in board
        .blob
        .into_events(secs_to_ns(BOARD_S), 1, "Pelvis AP".into(), pose, width_mm)
    {
        discrete.push((BOARD_S, event.payload));
    }
    // The femoral head in RG2 is centred near pixel (940, 913) of 1760×2140 at 0.2 mm:
    // board mm (x right, y up, from the centre) (12, 31).
    discrete.push((
        BOARD_STROKE_S.0,
        Payload::StrokeBegin(StrokeBegin {
            stroke_id: 3,
            space: Space::Board(1),
            style: StrokeStyle {
                colour_rgba: [255, 80, 200, 255],
                width_mm: 4.0,
                brush: Brush::Pen,
            },
        }),
    ));
    let n = 32;
    for i in 0..=n {
        let f = f64::from(i) / f64::from(n);
        let a = std::f64::consts::TAU * f;
        let t = BOARD_STROKE_S.0 + f * (BOARD_STROKE_S.1 - BOARD_STROKE_S.0);
        discrete.push((
            t,
            Payload::StrokePoint(StrokePoint {
                stroke_id: 3,
                position_mm: Vec3::new(
                    12.0 + 30.0 * a.cos() as f32,
                    31.0 + 30.0 * a.sin() as f32,
                    0.0,
                ),
                pressure: 0.8,
            }),
        ));
    }
    discrete.push((BOARD_STROKE_S.1 + 1e-6, Payload::StrokeEnd { stroke_id: 3 }));
    // Endplate lines perpendicular to the spine's axis at its two ends, in the coronal plane,
    // 40 mm long, through L1's and L5's centroids.
    let c = &lm.centroids_mm;
    let endplate = |at: DVec3, axis: DVec3| {
        let axis = DVec3::new(axis.x, 0.0, axis.z).normalize_or(DVec3::Z);
        let across = DVec3::Y.cross(axis).normalize_or(DVec3::X) * 20.0;
        [(at - across).as_vec3(), (at + across).as_vec3()]
    };
    discrete.push((
        COBB_S,
        Payload::Scene(SceneChange::MeasurementShow {
            id: 1,
            measurement: Measurement::Cobb {
                space: Space::Patient,
                line1_mm: endplate(c[0], c[0] - c[1]),
                line2_mm: endplate(c[4], c[3] - c[4]),
            },
        }),
    ));
    // Midline, from 40 mm behind the L3–L4 spinous tips to the middle of the interspace.
    let tips = (lm.spinous_tips_mm[2] + lm.spinous_tips_mm[3]) * 0.5;
    let interspace = (c[2] + c[3]) * 0.5;
    let target = DVec3::new(tips.x, interspace.y, interspace.z);
    let entry = DVec3::new(tips.x, tips.y + 40.0, tips.z);
    discrete.push((
        TRAJECTORY_S,
        Payload::Scene(SceneChange::MeasurementShow {
            id: 2,
            measurement: Measurement::Trajectory {
                space: Space::Patient,
                entry_mm: entry.as_vec3(),
                target_mm: target.as_vec3(),
            },
        }),
    ));
    Ok(())
}

fn secs_to_ns(s: f64) -> i64 {
    (s * 1e9).round() as i64
}

/// The scripted lesson's events, in time order.
///
/// # Errors
/// If the case lacks the lumbar labels the script draws on.
pub fn demo_events(case: &Case) -> Result<Vec<Event>, SceneError> {
    use script::*;
    let lm = spine_landmarks(case)?;
    let volume_centre = case.ct.geometry().centre_mm();
    let twin = demo_twin_pose(volume_centre);
    let stage_from_patient = crate::builder::pose_matrix(&twin);

    // Stroke 1 along the spinous tips; stroke 2 a ring around L3's in the coronal plane.
    let spine_path = stroke_path(case, &lm.spinous_tips_mm, false);
    let l3_tip = lm.spinous_tips_mm[2];
    let ring: Vec<DVec3> = (0..24)
        .map(|i| {
            let a = std::f64::consts::TAU * f64::from(i) / 24.0;
            l3_tip + DVec3::new(14.0 * a.cos(), 0.0, 14.0 * a.sin())
        })
        .collect();
    let ring_path = stroke_path(case, &ring, true);
    let strokes = [
        (1u32, STROKE_SPINE_S, &spine_path, [255u8, 214, 0, 255]),
        (2u32, STROKE_RING_S, &ring_path, [0u8, 220, 255, 255]),
    ];

    // Discrete events: (time, payload), merged into the frame stream below.
    let mut discrete: Vec<(f64, Payload)> = Vec::new();
    for (t, title) in CHAPTERS {
        discrete.push((
            t,
            Payload::Chapter(Chapter {
                title: title.to_owned(),
            }),
        ));
    }
    let scene = |t: f64, c: SceneChange| (t, Payload::Scene(c));
    let visible = |label: u32, visible: bool| SceneChange::LabelVisibility { label, visible };
    discrete.push(scene(
        0.0,
        SceneChange::TwinPose {
            stage_from_patient: twin,
        },
    ));
    discrete.push(scene(
        0.0,
        SceneChange::Preset {
            name: "ct-bone".into(),
        },
    ));
    for (k, label) in [ids::T11, ids::T12, ids::S1].into_iter().enumerate() {
        discrete.push(scene(
            HIDE_NEIGHBOURS_S + 0.4 * k as f64,
            visible(label, false),
        ));
    }
    for (k, label) in [ids::L1, ids::L2, ids::L4, ids::L5].into_iter().enumerate() {
        discrete.push(scene(ISOLATE_L3_S + 0.2 * k as f64, visible(label, false)));
        discrete.push(scene(SHOW_LUMBAR_S + 0.2 * k as f64, visible(label, true)));
    }
    discrete.push((
        16.0,
        Payload::Viewpoint(Viewpoint {
            name: "From behind".into(),
            space: Space::Patient,
            pose: {
                let eye = lm.centre_mm + DVec3::new(0.0, 600.0, 150.0);
                Pose {
                    position_mm: eye.as_vec3(),
                    orientation: look_rotation(eye, lm.centre_mm, DVec3::Z).as_quat(),
                }
            },
        }),
    ));
    for (id, (t0, t1), _, colour) in &strokes {
        discrete.push((
            *t0,
            Payload::StrokeBegin(StrokeBegin {
                stroke_id: *id,
                space: Space::Patient,
                style: StrokeStyle {
                    colour_rgba: *colour,
                    width_mm: 3.0,
                    brush: Brush::Pen,
                },
            }),
        ));
        // Ends just after its last point (points are emitted with the frames).
        discrete.push((*t1 + 1e-6, Payload::StrokeEnd { stroke_id: *id }));
    }
    discrete.push(scene(
        SOFT_TISSUE_S,
        SceneChange::Preset {
            name: "ct-soft-tissue".into(),
        },
    ));
    // Keeps the patient's left half (x ≥ the midline): n · p ≤ d with n = −x.
    let midline_x = lm.centre_mm.x as f32;
    discrete.push(scene(
        CLIP_S,
        SceneChange::ClipPlane {
            plane: Some(ClipPlane {
                normal: Vec3::new(-1.0, 0.0, 0.0),
                distance_mm: -midline_x,
            }),
        },
    ));
    discrete.push(scene(
        BONE_AGAIN_S,
        SceneChange::Preset {
            name: "ct-bone".into(),
        },
    ));
    discrete.push(scene(RESTORE_S, SceneChange::ClipPlane { plane: None }));
    for (k, label) in [ids::S1, ids::T12, ids::T11].into_iter().enumerate() {
        discrete.push(scene(
            RESTORE_S + 0.4 * k as f64 + 0.5,
            visible(label, true),
        ));
    }
    teaching_tools(case, &lm, &mut discrete)?;
    discrete.sort_by(|a, b| a.0.total_cmp(&b.0));

    let frames = (DURATION_S * FRAME_RATE_HZ as f64).round() as i64;
    let mut events = Vec::with_capacity(frames as usize * 6);
    let mut next_discrete = 0;
    for n in 0..=frames {
        let t = n as f64 / FRAME_RATE_HZ as f64;
        let t_ns = n * 1_000_000_000 / FRAME_RATE_HZ;
        // Discrete events first (a stroke's begin precedes its first point; its end is
        // timed just after its last point, so it falls into the next frame).
        while next_discrete < discrete.len() && discrete[next_discrete].0 <= t + 1e-9 {
            let (td, payload) = discrete[next_discrete].clone();
            events.push(Event::new(secs_to_ns(td).min(t_ns).max(0), payload));
            next_discrete += 1;
        }
        let mut draw_tip = None;
        for (id, (t0, t1), path, _) in &strokes {
            if t >= *t0 && t <= *t1 {
                let p = along(path, (t - t0) / (t1 - t0));
                draw_tip = Some(p);
                events.push(Event::new(
                    t_ns.max(secs_to_ns(*t0)),
                    Payload::StrokePoint(StrokePoint {
                        stroke_id: *id,
                        position_mm: p.as_vec3(),
                        pressure: 0.8,
                    }),
                ));
            }
        }
        let head = head_at(t, &lm);
        let head_rotation = look_rotation(head.eye, head.target, DVec3::Z);
        events.push(Event::new(
            t_ns,
            Payload::Head(stage_pose(head.eye, head_rotation, &stage_from_patient)),
        ));

        // Hands: idle, pointing at the target from between the head and it; the right hand
        // moves to the pen tip while drawing (blending in and out over 0.6 s).
        let towards = (head.target - head.eye).normalize_or_zero();
        let right_of_head = towards.cross(DVec3::Z).normalize_or_zero();
        let idle =
            |s: f64| head.eye + towards * 330.0 + right_of_head * (s * 140.0) - DVec3::Z * 120.0;
        let drawing_weight = strokes
            .iter()
            .map(|(_, (t0, t1), _, _)| {
                smoothstep(t0 - 0.6, *t0, t) * (1.0 - smoothstep(*t1, t1 + 0.6, t))
            })
            .fold(0.0, f64::max);
        let pen_stroke_tip = draw_tip.unwrap_or_else(|| {
            // Between and around strokes: hover over the nearest stroke end.
            if t < STROKE_SPINE_S.0 {
                spine_path.first().copied().unwrap_or(lm.centre_mm)
            } else if t < STROKE_RING_S.0 {
                spine_path.last().copied().unwrap_or(lm.centre_mm)
            } else {
                ring_path.last().copied().unwrap_or(lm.centre_mm)
            }
        });
        let draw_dir = DVec3::new(0.0, -1.0, -0.5).normalize();
        for hand in Handedness::BOTH {
            let s = if hand == Handedness::Right { 1.0 } else { -1.0 };
            let in_pen = hand == Handedness::Right && t >= PEN_S.0 && t <= PEN_S.1;
            let joints = if in_pen {
                None
            } else {
                let idle_tip = idle(s);
                let (tip, dir) = if hand == Handedness::Right {
                    let w = drawing_weight;
                    (
                        idle_tip.lerp(pen_stroke_tip - draw_dir * 2.0, w),
                        towards.lerp(draw_dir, w).normalize_or_zero(),
                    )
                } else {
                    (idle_tip, towards)
                };
                let joints = pointing_hand(hand, tip, dir, -DVec3::Z);
                Some(to_stage_joints(&joints, &stage_from_patient))
            };
            events.push(Event::new(
                t_ns,
                Payload::Hand(Box::new(HandSample { hand, joints })),
            ));
        }
        // The pen: a controller pointing at L3's body on the cut face, from the patient's right.
        if t >= PEN_S.0 - 0.5 && t <= PEN_S.1 + 0.5 {
            let state = (t >= PEN_S.0 && t <= PEN_S.1).then(|| {
                let body = lm.centroids_mm[2];
                let wobble = DVec3::new(0.0, 8.0 * (t * 2.0).sin(), 10.0 * (t * 1.3).cos());
                let tip = DVec3::new(lm.centre_mm.x - 3.0, body.y, body.z) + wobble;
                let dir = DVec3::new(1.0, 0.0, -0.4).normalize();
                let aim = stage_pose(
                    tip,
                    look_rotation(tip - dir * 100.0, tip, DVec3::Z),
                    &stage_from_patient,
                );
                ControllerState {
                    grip: aim,
                    aim,
                    buttons: 0,
                    trigger: 0.0,
                    squeeze: 0.6,
                    thumbstick: Vec2::ZERO,
                }
            });
            events.push(Event::new(
                t_ns,
                Payload::Controller(ControllerSample {
                    hand: Handedness::Right,
                    state,
                }),
            ));
        }
    }
    while next_discrete < discrete.len() {
        let (td, payload) = discrete[next_discrete].clone();
        events.push(Event::new(secs_to_ns(td), payload));
        next_discrete += 1;
    }
    Ok(events)
}

/// Records the scripted lesson on `case` into `out`.
///
/// # Errors
/// If the case lacks the lumbar labels, or the file cannot be written.
pub fn record_demo(case: &Case, out: &Path) -> Result<RecordingReport, SceneError> {
    let events = demo_events(case)?;
    let mut header = LessonHeader::new(case.case_ref.clone(), DEMO_ANCHOR_UNIX_NS);
    header.recorder = concat!("twinray demo ", env!("CARGO_PKG_VERSION")).to_owned();
    header.title = Some("The lumbar spine (scripted demo)".to_owned());
    header
        .metadata
        .insert("course".to_owned(), "twinray demo".to_owned());
    let options = RecorderOptions {
        // A scripted file is rewritten from scratch if anything fails; no need to fsync.
        sync_each_chunk: false,
        ..RecorderOptions::default()
    };
    let failed = |action| {
        move |source| SceneError::Recording {
            action,
            path: out.to_path_buf(),
            source: Box::new(source),
        }
    };
    let recorder = Recorder::create(out, &header, options).map_err(failed("creating"))?;
    for e in events {
        recorder
            .record_blocking(e)
            .map_err(failed("recording into"))?;
    }
    recorder.finish().map_err(failed("finishing"))
}
