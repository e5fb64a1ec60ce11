//! One place that turns lesson state into render inputs.
//!
//! The replayer, the desktop window and VR all show the same thing: a [`LessonState`]
//! (from [`twinray_lessons::player::Player::state_at`], or built from the live studio state)
//! plus the case it was taught on. [`SceneBuilder::frame`] turns that into everything one
//! frame needs — the transfer function (preset, curve, label styles), clip plane and crop box,
//! the learner's [`Camera`], and the overlay capsules (strokes, the instructor's glasses and
//! hands or pen) — and [`FrameRenderer`] hands them to the [`VolumeRenderer`]. Nothing here
//! knows of windows or egui.
//!
//! Frames: the renderer's world is the patient frame (LPS mm). Head, hands and controllers
//! are recorded in the stage (room) frame; the scene's twin pose (`stage_from_patient`) maps
//! between them. Strokes carry their own space.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use glam::{DMat3, DMat4, DQuat, DVec3, Vec3};
use twinray_lessons::event::{
    ControllerState, HandJoints, LabelMapHash, Pose, Space, HAND_JOINT_COUNT, WRIST_JOINT,
};
use twinray_lessons::state::{LessonState, SceneState, TimedStrokePoint, VisibleStroke};
use twinray_renderer::{
    Camera, ClipPlane, CropBox, FrameStats, Frustum, GpuContext, Quad, QuadImage, RenderError,
    RenderOptions, RgbaImage, VolumeRenderer,
};
use twinray_transfer_functions::{
    ColourPoint, DensityRange, LabelStyles, OpacityPoint, Palette, Preset, TransferFunction,
};
use twinray_volume::{CtVolume, Geometry, Intensity, LabelVolume, Modality};

use crate::annotations::Annotations;
use crate::label_maps::ShownLabels;
use crate::Case;

pub use twinray_renderer::Capsule;

/// Vertical field of view of the learner's camera (and of the CLI's), as in the VTK peer
/// benchmark; following the instructor keeps it, so only the pose changes.
pub const DEFAULT_FOV_DEG: f64 = 25.0;

/// The preset shown on a CT before a lesson names one (the studio's default view); an MR gets
/// [`Preset::default_for`] its modality (`mr-default`).
pub const DEFAULT_PRESET: &str = "ct-bone";

/// Colour of the instructor's avatar (glasses, hands, pen): magenta, a colour no preset or
/// label palette uses, so the instructor never reads as anatomy.
pub const AVATAR_RGBA: [f32; 4] = [1.0, 0.0, 1.0, 1.0];

/// Glasses, in the head's view frame (OpenXR: +x right, +y up, looking down −z), millimetres.
/// The lens centres sit in front of the eyes at a typical interpupillary distance.
pub mod glasses {
    /// Half the distance between the lens centres (a 64 mm IPD).
    pub const LENS_HALF_SPACING_MM: f32 = 32.0;
    /// How far in front of the eyes the lenses are.
    pub const LENS_FORWARD_MM: f32 = 14.0;
    /// Lens ring radius.
    pub const LENS_RADIUS_MM: f32 = 20.0;
    /// Segments (capsules) per lens ring.
    pub const RING_SEGMENTS: usize = 12;
    /// Thickness (capsule radius) of the frame.
    pub const FRAME_RADIUS_MM: f32 = 2.0;
    /// How far back from the lenses the temples reach (to the ears).
    pub const TEMPLE_LENGTH_MM: f32 = 100.0;
    /// Capsules in one pair of glasses: two rings, the bridge, two temples.
    pub const CAPSULE_COUNT: usize = 2 * RING_SEGMENTS + 3;
}

/// Pen drawn for a controller (no tracked hand): the tip at the aim pose, the shaft along the
/// aim pose's +z (backwards from where it points).
pub mod pen {
    /// Length of the shaft.
    pub const LENGTH_MM: f32 = 140.0;
    /// Shaft radius.
    pub const RADIUS_MM: f32 = 4.0;
    /// Length of the thin tip before the shaft.
    pub const TIP_LENGTH_MM: f32 = 15.0;
    /// Radius of the tip.
    pub const TIP_RADIUS_MM: f32 = 1.5;
    /// Capsules in one pen: tip and shaft.
    pub const CAPSULE_COUNT: usize = 2;
}

/// A filled hand from `XR_EXT_hand_tracking` joints, as index pairs into the 26-joint set:
/// the palm as a fan of capsules from the wrist to each knuckle and to the thumb's base, joined
/// along the knuckles, as thick as the palm is wide between knuckles, so that it reads as a
/// solid palm; then each finger's bones as thick as the runtime's joint radii (the flesh).
/// A thin skeleton (the earlier drawing) did not read as a hand in replays.
const HAND_PALM: [(usize, usize); 8] = [
    (WRIST_JOINT, 2),
    (WRIST_JOINT, 7),
    (WRIST_JOINT, 12),
    (WRIST_JOINT, 17),
    (WRIST_JOINT, 22),
    (7, 12),
    (12, 17),
    (17, 22),
];

/// The fingers' bones: thumb from its metacarpal, the others from the knuckle (the proximal
/// joint; metacarpals lie inside the palm).
const HAND_FINGERS: [(usize, usize); 15] = [
    (2, 3),
    (3, 4),
    (4, 5),
    (7, 8),
    (8, 9),
    (9, 10),
    (12, 13),
    (13, 14),
    (14, 15),
    (17, 18),
    (18, 19),
    (19, 20),
    (22, 23),
    (23, 24),
    (24, 25),
];

/// Knuckles (proximal joints) of the index, middle, ring and little fingers.
const KNUCKLES: [usize; 4] = [7, 12, 17, 22];

/// Capsules drawn for one tracked hand: the palm's, then the fingers'.
pub const HAND_CAPSULE_COUNT: usize = HAND_PALM.len() + HAND_FINGERS.len();

/// Finger radius bounds (mm): runtimes report 0 for untracked joints, and a hostile lesson
/// anything.
const FINGER_RADIUS_MM: (f32, f32) = (3.0, 15.0);

/// Where the learner looks from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LearnerView {
    /// Free orbit around the twin, independent of the instructor.
    Orbit(OrbitView),
    /// The instructor's recorded head pose, with the learner's frustum. Falls back to
    /// `Orbit` (the given one) while the head is not tracked.
    FollowInstructor(OrbitView),
}

/// An orbit around the volume's centre (see [`Camera::orbit`] for the angles): the CLI's
/// camera, the learner's, and the desktop studio's (which also pans).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrbitView {
    /// Degrees around the head-feet axis; positive towards the patient's left.
    pub azimuth_deg: f64,
    /// Degrees towards the head.
    pub elevation_deg: f64,
    /// 1 frames the whole volume; 2 is twice as close.
    pub zoom: f64,
    /// The point orbited, from the volume's centre, patient mm (the studio's pan).
    pub pan_mm: DVec3,
}

impl Default for OrbitView {
    fn default() -> Self {
        Self {
            azimuth_deg: 0.0,
            elevation_deg: 0.0,
            zoom: 1.0,
            pan_mm: DVec3::ZERO,
        }
    }
}

impl OrbitView {
    /// The view at these angles and zoom, around the volume's centre.
    #[must_use]
    pub fn around_centre(azimuth_deg: f64, elevation_deg: f64, zoom: f64) -> Self {
        Self {
            azimuth_deg,
            elevation_deg,
            zoom,
            pan_mm: DVec3::ZERO,
        }
    }

    /// Distance of the eye from the orbited point: the framing distance (the bounding sphere
    /// fills the field of view, like the VTK peer: radius / sin 15°) over the zoom.
    #[must_use]
    pub fn distance_mm(&self, geometry: &Geometry) -> f64 {
        geometry.bounding_radius_mm() / 15f64.to_radians().sin() / self.zoom.max(1e-3)
    }
}

/// The overlay capsules of a frame, by what they show (patient LPS mm).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlays {
    /// Stroke segments, only for points drawn by the frame's instant.
    pub strokes: Vec<Capsule>,
    /// The instructor's glasses at the head pose (empty when the head is not tracked).
    pub glasses: Vec<Capsule>,
    /// Hands (bones and finger tips) or, for a hand with only a controller, a pen.
    pub hands: Vec<Capsule>,
}

impl Overlays {
    /// Every capsule, strokes first.
    #[must_use]
    pub fn all(&self) -> Vec<Capsule> {
        let mut out =
            Vec::with_capacity(self.strokes.len() + self.glasses.len() + self.hands.len());
        out.extend_from_slice(&self.strokes);
        out.extend_from_slice(&self.glasses);
        out.extend_from_slice(&self.hands);
        out
    }
}

/// Everything one frame needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInputs {
    /// Preset (or the lesson's curve) with the label styles.
    pub transfer_function: TransferFunction,
    /// Clip plane, crop box and sampling.
    pub options: RenderOptions,
    /// The learner's camera.
    pub camera: Camera,
    /// True when the camera is the instructor's head (follow mode with a tracked head).
    pub follows_instructor: bool,
    /// Strokes and the instructor's avatar.
    pub overlays: Overlays,
    /// Measurements, boards' edges and strokes on boards, with their texts; filled by the
    /// player ([`crate::annotations::MeasureCache::annotations`]), which knows the boards'
    /// images and the case.
    pub annotations: Annotations,
    /// The X-ray boards shown and where they stand (filled with `annotations`).
    pub boards: crate::boards::BoardFrames,
}

/// Builds [`FrameInputs`] for one case. Keeps parsed presets, so asking every frame is cheap.
#[derive(Debug, Clone)]
pub struct SceneBuilder {
    geometry: Geometry,
    /// The image's modality and window: which preset is the default, where window-placed
    /// presets go, the lookup table's range and which label table colours the labels.
    intensity: Intensity,
    presets: HashMap<String, Preset>,
    warnings: BTreeSet<String>,
}

impl SceneBuilder {
    /// A builder for a CT on this grid (tests and tools with a synthetic CT; a loaded case
    /// goes through [`Self::for_case`]).
    #[must_use]
    pub fn new(geometry: Geometry) -> Self {
        Self::with_intensity(geometry, Intensity::measure(Modality::Ct, &[], None))
    }

    /// A builder for a case: its grid and what its values mean.
    #[must_use]
    pub fn for_case(case: &Case) -> Self {
        Self::with_intensity(*case.ct.geometry(), case.intensity)
    }

    /// A builder for an image on `geometry` whose values are described by `intensity`.
    #[must_use]
    pub fn with_intensity(geometry: Geometry, intensity: Intensity) -> Self {
        Self {
            geometry,
            intensity,
            presets: HashMap::new(),
            warnings: BTreeSet::new(),
        }
    }

    /// The preset shown before a lesson names one: [`Preset::default_for`] the modality.
    #[must_use]
    pub fn default_preset(&self) -> &'static str {
        Preset::default_for(self.intensity.modality)
    }

    /// The case's grid.
    #[must_use]
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Everything a frame of `state` needs, seen from `view` in an image of `size` pixels.
    /// Following the instructor, the glasses are left out (the camera is inside them).
    pub fn frame(
        &mut self,
        state: &LessonState,
        view: &LearnerView,
        size: [u32; 2],
    ) -> FrameInputs {
        let (camera, follows_instructor) = self.camera(state, view, size);
        let mut overlays = overlays(state);
        if follows_instructor {
            // Through the instructor's eyes their own glasses would fill the view.
            overlays.glasses.clear();
        }
        FrameInputs {
            transfer_function: self.transfer_function(&state.scene),
            options: self.render_options(&state.scene),
            camera,
            follows_instructor,
            overlays,
            annotations: Annotations::default(),
            boards: crate::boards::BoardFrames::default(),
        }
    }

    /// The transfer function of a scene: its preset (or [`Self::default_preset`]) placed on
    /// the image ([`Preset::placed_on`]), its curve when the instructor edited one, its label
    /// styles over TotalSegmentator's palette for the modality (`total` on a CT, `total_mr` on
    /// an MR), over the image's [`DensityRange`]. A preset this build does not know falls back
    /// to the default, and a preset made for another modality is used with a warning (see
    /// [`Self::take_warnings`]).
    pub fn transfer_function(&mut self, scene: &SceneState) -> TransferFunction {
        let name = scene.preset.as_deref().unwrap_or(self.default_preset());
        let mut preset = self.preset(name);
        apply_curve(&mut preset, scene);
        let mut tf = TransferFunction::new(preset);
        tf.range = DensityRange::of(&self.intensity);
        if self.intensity.modality == Modality::Mr {
            tf.labels = LabelStyles::from_palette(&Palette::totalsegmentator_mr());
        }
        for (&label, style) in &scene.labels {
            let Ok(id) = u8::try_from(label) else {
                self.warnings.insert(format!(
                    "label {label} is above 255, the largest id the renderer colours; ignored"
                ));
                continue;
            };
            tf.labels.set_visible(id, style.visible);
            if let Some(rgb) = style.colour_rgb {
                tf.labels.set_colour(id, rgb.map(|c| f32::from(c) / 255.0));
            }
            tf.labels.set_opacity(id, style.opacity);
        }
        tf
    }

    fn preset(&mut self, name: &str) -> Preset {
        if let Some(p) = self.presets.get(name) {
            return p.clone();
        }
        let default = self.default_preset();
        let preset = match Preset::load(name) {
            Ok(p) => p,
            Err(e) => {
                self.warnings.insert(format!(
                    "the lesson's preset cannot be used ({e}); showing {default}"
                ));
                self.presets
                    .get(default)
                    .cloned()
                    .or_else(|| Preset::load(default).ok())
                    .unwrap_or_else(|| fallback_preset(name))
            }
        };
        if let Some(warning) = preset.mismatch(self.intensity.modality) {
            self.warnings.insert(warning);
        }
        let preset = preset.placed_on(&self.intensity);
        self.presets.insert(name.to_owned(), preset.clone());
        preset
    }

    /// Clip plane and crop box of a scene, in the renderer's terms.
    #[must_use]
    pub fn render_options(&self, scene: &SceneState) -> RenderOptions {
        RenderOptions {
            clip_plane: scene.clip_plane.map(|p| clip_plane(&p)),
            crop: scene
                .crop_box
                .map_or_else(CropBox::default, |c| crop_fractions(&self.geometry, &c)),
            ..RenderOptions::default()
        }
    }

    /// The learner's camera and whether it is the instructor's head.
    #[must_use]
    pub fn camera(
        &self,
        state: &LessonState,
        view: &LearnerView,
        size: [u32; 2],
    ) -> (Camera, bool) {
        match view {
            LearnerView::Orbit(o) => (orbit_camera(&self.geometry, o, size), false),
            LearnerView::FollowInstructor(o) => match instructor_camera(state, size) {
                Some(c) => (c, true),
                None => (orbit_camera(&self.geometry, o, size), false),
            },
        }
    }

    /// Problems met so far (each once), e.g. an unknown preset; clears the list.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings).into_iter().collect()
    }
}

/// A preset built in code, for the (impossible in practice) case where even the built-in
/// default fails to parse: a grey ramp over bone densities.
fn fallback_preset(name: &str) -> Preset {
    Preset {
        name: name.to_owned(),
        description: String::new(),
        blend: twinray_transfer_functions::Blend::Composite,
        shading: twinray_transfer_functions::Shading {
            enabled: true,
            ambient: 0.2,
            diffuse: 0.7,
            specular: 0.3,
            specular_power: 10.0,
        },
        colour: vec![ColourPoint {
            hu: 0.0,
            rgb: [0.9, 0.9, 0.85],
        }],
        opacity: vec![
            OpacityPoint {
                hu: 150.0,
                alpha: 0.0,
            },
            OpacityPoint {
                hu: 400.0,
                alpha: 0.8,
            },
        ],
        opacity_unit_mm: None,
        modality: None,
        placement: twinray_transfer_functions::Placement::Values,
    }
}

/// Replaces the preset's ramps with the lesson's curve, when it has one.
fn apply_curve(preset: &mut Preset, scene: &SceneState) {
    let mut points: Vec<_> = scene
        .transfer_curve
        .iter()
        .filter(|p| p.density_hu.is_finite() && p.rgba.iter().all(|c| c.is_finite()))
        .copied()
        .collect();
    if points.is_empty() {
        return;
    }
    points.sort_by(|a, b| a.density_hu.total_cmp(&b.density_hu));
    preset.colour = points
        .iter()
        .map(|p| ColourPoint {
            hu: p.density_hu,
            rgb: [p.rgba[0], p.rgba[1], p.rgba[2]].map(|c| c.clamp(0.0, 1.0)),
        })
        .collect();
    preset.opacity = points
        .iter()
        .map(|p| OpacityPoint {
            hu: p.density_hu,
            alpha: p.rgba[3].clamp(0.0, 1.0),
        })
        .collect();
}

/// The lesson's clip plane (keeps `n · p ≤ d`) as the renderer's (keeps `n · p + offset ≥ 0`).
#[must_use]
pub fn clip_plane(plane: &twinray_lessons::event::ClipPlane) -> ClipPlane {
    let n = plane.normal.as_dvec3().normalize_or_zero();
    ClipPlane {
        normal: -n,
        offset_mm: f64::from(plane.distance_mm),
    }
}

/// A patient-space crop box as fractions along the volume's voxel axes: the bounds of its
/// corners in texture coordinates (exact for axis-aligned grids, the enclosing box otherwise).
#[must_use]
pub fn crop_fractions(geometry: &Geometry, crop: &twinray_lessons::event::CropBox) -> CropBox {
    let voxel_from_patient = geometry.voxel_from_patient();
    let (lo, hi) = (crop.min_mm.as_dvec3(), crop.max_mm.as_dvec3());
    let mut min = [f32::INFINITY; 3];
    let mut max = [f32::NEG_INFINITY; 3];
    for c in 0..8 {
        let corner = DVec3::new(
            if c & 1 == 0 { lo.x } else { hi.x },
            if c & 2 == 0 { lo.y } else { hi.y },
            if c & 4 == 0 { lo.z } else { hi.z },
        );
        let ijk = voxel_from_patient.transform_point3(corner);
        for a in 0..3 {
            // Texture coordinates put voxel centre i at (i + 0.5) / n.
            let f = ((ijk[a] + 0.5) / geometry.dims[a] as f64) as f32;
            min[a] = min[a].min(f);
            max[a] = max[a].max(f);
        }
    }
    CropBox {
        min: min.map(|v| {
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            }
        }),
        max: max.map(|v| {
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                1.0
            }
        }),
    }
}

/// The orbit camera of the CLI, the learner and the studio: around the volume's centre (plus
/// the pan), framing the bounding sphere like the VTK peer ([`OrbitView::distance_mm`], 25°
/// vertical field of view).
#[must_use]
pub fn orbit_camera(geometry: &Geometry, view: &OrbitView, size: [u32; 2]) -> Camera {
    Camera::orbit(
        geometry.centre_mm() + view.pan_mm,
        view.distance_mm(geometry),
        view.azimuth_deg,
        view.elevation_deg,
        learner_frustum(size),
    )
}

/// The learner's frustum for an image of `size` pixels.
#[must_use]
pub fn learner_frustum(size: [u32; 2]) -> Frustum {
    let aspect = f64::from(size[0].max(1)) / f64::from(size[1].max(1));
    Frustum::symmetric(DEFAULT_FOV_DEG, aspect)
}

/// The camera at the instructor's head (in patient space), with the learner's frustum;
/// `None` while the head is not tracked.
#[must_use]
pub fn instructor_camera(state: &LessonState, size: [u32; 2]) -> Option<Camera> {
    let head = state.head?;
    // On a scaled twin the head's frame carries the scale: keep its rotation and where it
    // lands, as the eyes of a learner in the room see it.
    let m = patient_from_stage(&state.scene) * pose_matrix(&head);
    let (_, rotation, translation) = m.to_scale_rotation_translation();
    Some(Camera {
        world_from_view: DMat4::from_rotation_translation(rotation, translation),
        frustum: learner_frustum(size),
    })
}

/// A pose as a rigid transform (millimetres).
#[must_use]
pub fn pose_matrix(pose: &Pose) -> DMat4 {
    DMat4::from_rotation_translation(
        pose.orientation.as_dquat().normalize(),
        pose.position_mm.as_dvec3(),
    )
}

/// The transform from the stage (room) frame to the patient frame, from the twin's pose and
/// scale (a twin at scale 2 is twice life size in the room, so a stage millimetre is half a
/// patient millimetre).
#[must_use]
pub fn patient_from_stage(scene: &SceneState) -> DMat4 {
    (pose_matrix(&scene.stage_from_patient)
        * DMat4::from_scale(DVec3::splat(f64::from(scene.twin_scale()))))
    .inverse()
}

/// A pose in the patient frame, from a pose in `space`.
#[must_use]
pub fn pose_in_patient(pose: &Pose, space: Space, scene: &SceneState) -> Pose {
    if space == Space::Patient {
        return *pose;
    }
    let m = patient_from_stage(scene) * pose_matrix(pose);
    let (_, rotation, translation) = m.to_scale_rotation_translation();
    Pose {
        position_mm: translation.as_vec3(),
        orientation: rotation.as_quat(),
    }
}

/// The overlay capsules of a lesson state: strokes (points drawn by `state.time_ns` only),
/// glasses at the head, and each hand (or a pen for a controller without a tracked hand).
/// On a scaled twin the avatar keeps its size in the room: its positions go through the
/// scaled [`patient_from_stage`], and its thicknesses shrink by the scale with them.
#[must_use]
pub fn overlays(state: &LessonState) -> Overlays {
    let patient_from_stage = patient_from_stage(&state.scene);
    let mut out = Overlays::default();
    for stroke in &state.strokes {
        stroke_capsules(stroke, state.time_ns, &patient_from_stage, &mut out.strokes);
    }
    if let Some(head) = state.head {
        glasses_capsules(&(patient_from_stage * pose_matrix(&head)), &mut out.glasses);
    }
    for hand in 0..2 {
        if let Some(joints) = &state.hands[hand] {
            hand_capsules(joints, &patient_from_stage, &mut out.hands);
        } else if let Some(controller) = &state.controllers[hand] {
            pen_capsules(controller, &patient_from_stage, &mut out.hands);
        }
    }
    let scale = state.scene.twin_scale();
    if scale != 1.0 {
        for c in out.glasses.iter_mut().chain(&mut out.hands) {
            c.radius_mm /= scale;
        }
    }
    out
}

/// Shortest stroke segment drawn as its own capsule.
pub const STROKE_SEGMENT_MIN_MM: f32 = 2.0;

/// Appends a stroke's capsules: one per segment between consecutive points drawn by
/// `time_ns` (a dot for a single point; points closer than [`STROKE_SEGMENT_MIN_MM`] merged),
/// its width and colour from its style.
pub fn stroke_capsules(
    stroke: &VisibleStroke,
    time_ns: i64,
    patient_from_stage: &DMat4,
    out: &mut Vec<Capsule>,
) {
    match stroke.begin.space {
        Space::Patient => stroke_capsules_in(stroke, time_ns, &DMat4::IDENTITY, out),
        Space::Stage => stroke_capsules_in(stroke, time_ns, patient_from_stage, out),
        // Strokes on image boards are drawn with their board ([`crate::annotations`]), which
        // knows where it stands.
        Space::Board(_) => {}
    }
}

/// Appends a stroke's capsules, its points taken to patient mm by `patient_from_space`.
pub fn stroke_capsules_in(
    stroke: &VisibleStroke,
    time_ns: i64,
    patient_from_space: &DMat4,
    out: &mut Vec<Capsule>,
) {
    let style = stroke.begin.style;
    let rgba = style.colour_rgba.map(|c| f32::from(c) / 255.0);
    let to_patient = |p: Vec3| patient_from_space.transform_point3(p.as_dvec3()).as_vec3();
    let width = if style.width_mm.is_finite() && style.width_mm > 0.0 {
        style.width_mm
    } else {
        1.0
    };
    let radius = |pressure: f32| 0.5 * width * (0.5 + 0.5 * pressure.clamp(0.0, 1.0));
    let visible = stroke.points.partition_point(|p| p.time_ns <= time_ns);
    let visible = &stroke.points[..visible];
    // Pens sample at display rate, a fraction of a millimetre apart: keep points at least
    // STROKE_SEGMENT_MIN_MM apart (greedily from the start, so an earlier instant's capsules
    // are a prefix of a later one's), and always the newest point, where the pen is.
    let mut points: Vec<&TimedStrokePoint> = Vec::new();
    for (i, p) in visible.iter().enumerate() {
        let far = points
            .last()
            .is_none_or(|k| k.position_mm.distance(p.position_mm) >= STROKE_SEGMENT_MIN_MM);
        if far || i + 1 == visible.len() {
            points.push(p);
        }
    }
    match points.as_slice() {
        [] => {}
        [only] => {
            let p = to_patient(only.position_mm);
            out.push(Capsule {
                a_mm: p,
                b_mm: p,
                radius_mm: radius(only.pressure),
                rgba,
            });
        }
        _ => {
            for pair in points.windows(2) {
                out.push(Capsule {
                    a_mm: to_patient(pair[0].position_mm),
                    b_mm: to_patient(pair[1].position_mm),
                    radius_mm: radius(0.5 * (pair[0].pressure + pair[1].pressure)),
                    rgba,
                });
            }
        }
    }
}

/// Appends the glasses' capsules for a head at `patient_from_head` (view frame: +x right,
/// +y up, looking down −z): two lens rings, the bridge between them and two temples.
pub fn glasses_capsules(patient_from_head: &DMat4, out: &mut Vec<Capsule>) {
    use glasses::*;
    let at = |x: f32, y: f32, z: f32| {
        patient_from_head
            .transform_point3(DVec3::new(f64::from(x), f64::from(y), f64::from(z)))
            .as_vec3()
    };
    let capsule = |a: Vec3, b: Vec3| Capsule {
        a_mm: a,
        b_mm: b,
        radius_mm: FRAME_RADIUS_MM,
        rgba: AVATAR_RGBA,
    };
    let z = -LENS_FORWARD_MM;
    for side in [-1.0f32, 1.0] {
        let cx = side * LENS_HALF_SPACING_MM;
        let ring = |i: usize| {
            let angle = std::f32::consts::TAU * i as f32 / RING_SEGMENTS as f32;
            at(
                cx + LENS_RADIUS_MM * angle.cos(),
                LENS_RADIUS_MM * angle.sin(),
                z,
            )
        };
        for i in 0..RING_SEGMENTS {
            out.push(capsule(ring(i), ring(i + 1)));
        }
    }
    let inner = LENS_HALF_SPACING_MM - LENS_RADIUS_MM;
    out.push(capsule(at(-inner, 0.0, z), at(inner, 0.0, z)));
    let outer = LENS_HALF_SPACING_MM + LENS_RADIUS_MM;
    for side in [-1.0f32, 1.0] {
        out.push(capsule(
            at(side * outer, 0.0, z),
            at(side * (outer + 8.0), 0.0, z + TEMPLE_LENGTH_MM),
        ));
    }
}

/// Appends one tracked hand, filled (see [`HAND_PALM`]): palm capsules as thick as half the
/// mean spacing of the knuckles (so neighbours overlap and leave no gap), finger capsules as
/// thick as their joints. Joints are in the stage frame; radii are stage millimetres.
pub fn hand_capsules(joints: &HandJoints, patient_from_stage: &DMat4, out: &mut Vec<Capsule>) {
    let p: [Vec3; HAND_JOINT_COUNT] = std::array::from_fn(|j| {
        patient_from_stage
            .transform_point3(joints.joints[j].pose.position_mm.as_dvec3())
            .as_vec3()
    });
    let finger = |j: usize| {
        let r = joints.joints[j].radius_mm;
        if r.is_finite() {
            r.clamp(FINGER_RADIUS_MM.0, FINGER_RADIUS_MM.1)
        } else {
            FINGER_RADIUS_MM.0
        }
    };
    // Knuckle spacing in stage mm (the joints' own frame, before any twin scale).
    let stage = |j: usize| joints.joints[j].pose.position_mm;
    let spacing = KNUCKLES
        .windows(2)
        .map(|k| stage(k[0]).distance(stage(k[1])))
        .sum::<f32>()
        / (KNUCKLES.len() - 1) as f32;
    let palm_radius = if spacing.is_finite() {
        (0.6 * spacing).clamp(FINGER_RADIUS_MM.0, 2.0 * FINGER_RADIUS_MM.1)
    } else {
        FINGER_RADIUS_MM.0
    };
    for &(a, b) in &HAND_PALM {
        out.push(Capsule {
            a_mm: p[a],
            b_mm: p[b],
            radius_mm: palm_radius.max(0.5 * (finger(a) + finger(b))),
            rgba: AVATAR_RGBA,
        });
    }
    for &(a, b) in &HAND_FINGERS {
        out.push(Capsule {
            a_mm: p[a],
            b_mm: p[b],
            radius_mm: 0.5 * (finger(a) + finger(b)),
            rgba: AVATAR_RGBA,
        });
    }
}

/// Appends a pen held by a controller: a thin tip at the aim pose and the shaft behind it.
pub fn pen_capsules(
    controller: &ControllerState,
    patient_from_stage: &DMat4,
    out: &mut Vec<Capsule>,
) {
    use pen::*;
    let m = *patient_from_stage * pose_matrix(&controller.aim);
    let at = |back: f32| {
        m.transform_point3(DVec3::new(0.0, 0.0, f64::from(back)))
            .as_vec3()
    };
    out.push(Capsule {
        a_mm: at(0.0),
        b_mm: at(TIP_LENGTH_MM),
        radius_mm: TIP_RADIUS_MM,
        rgba: AVATAR_RGBA,
    });
    out.push(Capsule {
        a_mm: at(TIP_LENGTH_MM),
        b_mm: at(LENGTH_MM),
        radius_mm: RADIUS_MM,
        rgba: AVATAR_RGBA,
    });
}

/// The rotation of a camera that looks from `eye` at `target` with `up` as image-up, in the
/// view-frame convention of [`Camera`] (+x right, +y up, looking down −z). For scripting
/// head poses.
#[must_use]
pub fn look_rotation(eye: DVec3, target: DVec3, up: DVec3) -> DQuat {
    let forward = (target - eye).normalize_or_zero();
    let mut right = forward.cross(up).normalize_or_zero();
    if right == DVec3::ZERO {
        right = forward.any_orthonormal_vector();
    }
    let true_up = right.cross(forward);
    DQuat::from_mat3(&DMat3::from_cols(right, true_up, -forward)).normalize()
}

/// Line height of the texts drawn in the scene, pixels of their image.
const TEXT_LINE_PX: u32 = 40;

/// What one quad image shows.
#[derive(Debug, Clone, PartialEq)]
enum QuadImageKey {
    /// A board's image.
    Board(twinray_lessons::event::ImageHash),
    /// A text.
    Text(String),
}

/// Renders [`FrameInputs`]: re-bakes the lookup table only when the transfer function
/// changed, hands the overlays over, and renders.
pub struct FrameRenderer {
    renderer: VolumeRenderer,
    /// The capsules on the GPU, to skip re-uploading an unchanged set.
    uploaded: Option<Vec<Capsule>>,
    /// What the quad images on the GPU show (boards' images, then texts), and their sizes.
    quad_images: (Vec<QuadImageKey>, Vec<[u32; 2]>),
    /// The quads on the GPU.
    quads: Vec<Quad>,
    /// The label map on the GPU (`None`: the case's own labels, uploaded by [`Self::new`]).
    label_map: Option<LabelMapHash>,
}

impl std::fmt::Debug for FrameRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRenderer")
            .field("renderer", &self.renderer)
            .finish()
    }
}

impl FrameRenderer {
    /// A renderer on `ctx` with the image uploaded over its [`DensityRange`].
    ///
    /// # Errors
    /// If the device cannot build the pipeline or hold the volume.
    pub fn new(
        ctx: Arc<GpuContext>,
        ct: &CtVolume,
        labels: Option<&LabelVolume>,
        intensity: &Intensity,
    ) -> Result<Self, RenderError> {
        let default = Preset::default_for(intensity.modality);
        let tf = TransferFunction::new(
            Preset::load(default)
                .unwrap_or_else(|_| fallback_preset(default))
                .placed_on(intensity),
        );
        let mut renderer = VolumeRenderer::new(ctx, &tf)?;
        renderer.set_volume(ct, labels, DensityRange::of(intensity))?;
        Ok(Self {
            renderer,
            uploaded: None,
            quad_images: (Vec::new(), Vec::new()),
            quads: Vec::new(),
            label_map: None,
        })
    }

    /// Puts the boards' images and the annotations' texts on the GPU as quads: the boards
    /// where they stand, each text beside its anchor facing `camera`, one text line about
    /// 3.5 % of the view's height whatever its distance. Uploads images only when the set
    /// changed (a board shown or hidden, a value changed).
    ///
    /// # Errors
    /// If the device fails or the images exceed the renderer's limits.
    pub fn show_boards_and_texts(
        &mut self,
        camera: &Camera,
        annotations: &Annotations,
        boards: &crate::boards::BoardFrames,
    ) -> Result<(), RenderError> {
        let keys: Vec<QuadImageKey> = boards
            .boards
            .values()
            .map(|b| QuadImageKey::Board(b.image))
            .chain(
                annotations
                    .texts
                    .iter()
                    .map(|t| QuadImageKey::Text(t.text.clone())),
            )
            .collect();
        if keys != self.quad_images.0 {
            // Boards keyed by their image hash: the renderer uploads a board only when it is
            // not on the GPU yet, so a measurement's text changing costs the text alone.
            let texts: Vec<RgbaImage> = annotations
                .texts
                .iter()
                .map(|t| crate::text::text_image(&t.text, TEXT_LINE_PX))
                .collect();
            let mut images = Vec::with_capacity(keys.len());
            for b in boards.boards.values() {
                images.push(QuadImage {
                    key: twinray_renderer::QuadImageKey(b.image.0),
                    width: b.picture.width,
                    height: b.picture.height,
                    pixels: &b.picture.rgba,
                });
            }
            images.extend(texts.iter().map(QuadImage::hashed));
            let sizes = images.iter().map(|i| [i.width, i.height]).collect();
            self.renderer.set_quad_images_keyed(&images)?;
            self.quad_images = (keys, sizes);
            self.quads.clear();
        }
        let mut quads = Vec::with_capacity(self.quad_images.1.len());
        for (index, b) in boards.boards.values().enumerate() {
            let m = b.patient_from_board;
            quads.push(Quad {
                centre_mm: m.transform_point3(DVec3::ZERO).as_vec3(),
                u_half_mm: m.transform_vector3(DVec3::X * b.half_size_mm.x).as_vec3(),
                v_half_mm: m.transform_vector3(DVec3::Y * b.half_size_mm.y).as_vec3(),
                image: index,
                tint: [1.0; 4],
                two_sided: true,
            });
        }
        let view = camera.world_from_view;
        let right = view.transform_vector3(DVec3::X).normalize_or_zero();
        let up = view.transform_vector3(DVec3::Y).normalize_or_zero();
        let per_distance = (camera.frustum.tan_up - camera.frustum.tan_down).abs();
        let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
        for (k, t) in annotations.texts.iter().enumerate() {
            let index = boards.boards.len() + k;
            let [w, h] = self.quad_images.1.get(index).copied().unwrap_or([1, 1]);
            let distance = (t.anchor_mm - camera.eye()).length();
            let mm_per_px = 0.035 * per_distance * distance / f64::from(TEXT_LINE_PX);
            let (half_w, half_h) = (
                0.5 * f64::from(w) * mm_per_px,
                0.5 * f64::from(h) * mm_per_px,
            );
            // Up and to the right of its anchor, so the point measured stays visible; a bit
            // towards the viewer so the measured surface does not cut it.
            let towards = (camera.eye() - t.anchor_mm).normalize_or_zero();
            let mut centre = t.anchor_mm
                + right * (half_w + 6.0 * mm_per_px)
                + up * (half_h + 6.0 * mm_per_px)
                + towards * 10.0;
            // Texts placed near each other would overlap: lift this one above those already
            // placed that it would cover (compared on the view plane, in units of distance).
            let on_plane = |c: DVec3| {
                let v = camera.view_from_world().transform_point3(c);
                let depth = (-v.z).max(1e-6);
                (v.x / depth, v.y / depth, depth)
            };
            let (half_wn, half_hn) = (half_w / distance, half_h / distance);
            for _ in 0..placed.len() {
                let (x, y, depth) = on_plane(centre);
                let Some(&(_, oy, _, ohn)) = placed.iter().find(|&&(ox, oy, own, ohn)| {
                    (x - ox).abs() < half_wn + own && (y - oy).abs() < half_hn + ohn
                }) else {
                    break;
                };
                let lift = (oy + ohn + half_hn + 2.0 * mm_per_px / distance) - y;
                centre += up * (lift * depth);
            }
            let (x, y, _) = on_plane(centre);
            placed.push((x, y, half_wn, half_hn));
            quads.push(Quad {
                centre_mm: centre.as_vec3(),
                u_half_mm: (right * half_w).as_vec3(),
                v_half_mm: (up * half_h).as_vec3(),
                image: index,
                tint: [1.0; 4],
                two_sided: false,
            });
        }
        if quads != self.quads {
            self.renderer.set_quads(&quads)?;
            self.quads = quads;
        }
        Ok(())
    }

    /// The label map on the GPU: `None` for the case's own labels.
    #[must_use]
    pub fn label_map(&self) -> Option<LabelMapHash> {
        self.label_map
    }

    /// Shows `shown` (from [`crate::LabelMaps::resolve`]) with `ct`, the image this renderer was made
    /// with: re-uploads the volume only when the map differs from the one on the GPU.
    ///
    /// # Errors
    /// If the device cannot hold the volume.
    pub fn show_labels(&mut self, ct: &CtVolume, shown: &ShownLabels) -> Result<(), RenderError> {
        if shown.hash == self.label_map {
            return Ok(());
        }
        // The same range as the image's first upload: only the labels change.
        let range = self.renderer.density_range().unwrap_or_else(|| {
            DensityRange::of(&Intensity::measure(Modality::Ct, ct.voxels(), None))
        });
        self.renderer
            .set_volume(ct, shown.labels.as_deref(), range)?;
        self.label_map = shown.hash;
        Ok(())
    }

    /// Renders one frame of `size` pixels.
    ///
    /// # Errors
    /// If the device fails or the size is out of range.
    pub fn render(
        &mut self,
        frame: &FrameInputs,
        size: [u32; 2],
    ) -> Result<(RgbaImage, FrameStats), RenderError> {
        let mut capsules = frame.overlays.all();
        capsules.extend_from_slice(&frame.annotations.capsules);
        self.show_boards_and_texts(&frame.camera, &frame.annotations, &frame.boards)?;
        self.render_view(
            &frame.transfer_function,
            &frame.camera,
            &frame.options,
            &capsules,
            size,
        )
    }

    /// Renders `size` pixels of the case with `tf`, seen by `camera`, with `capsules` drawn
    /// by depth: for callers that build the frame themselves (the window's render thread).
    ///
    /// # Errors
    /// If the device fails, the size is out of range or a capsule is invalid.
    pub fn render_view(
        &mut self,
        tf: &TransferFunction,
        camera: &Camera,
        options: &RenderOptions,
        capsules: &[Capsule],
        size: [u32; 2],
    ) -> Result<(RgbaImage, FrameStats), RenderError> {
        if self.renderer.transfer_function() != tf {
            self.renderer.set_transfer_function(tf)?;
        }
        if self.uploaded.as_deref() != Some(capsules) {
            self.uploaded = None;
            self.renderer.set_overlays(capsules)?;
            self.uploaded = Some(capsules.to_vec());
        }
        self.renderer.render(camera, options, size)
    }

    /// The volume renderer, e.g. for picking. Overlays set on it directly are replaced by
    /// the next [`Self::render`].
    pub fn renderer_mut(&mut self) -> &mut VolumeRenderer {
        self.uploaded = None;
        &mut self.renderer
    }

    /// The surface point under `pixel` (x right, y down) of the frame's view, as the pen
    /// finds it: the first sample where the volume's accumulated opacity reaches 0.5, with
    /// the frame's transfer function, clip plane and crop box.
    ///
    /// # Errors
    /// If the device fails or the size is out of range.
    pub fn pick(
        &mut self,
        frame: &FrameInputs,
        size: [u32; 2],
        pixel: [f64; 2],
    ) -> Result<Option<DVec3>, RenderError> {
        if self.renderer.transfer_function() != &frame.transfer_function {
            self.renderer
                .set_transfer_function(&frame.transfer_function)?;
        }
        self.renderer
            .pick(&frame.camera, &frame.options, size, pixel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinray_lessons::event::{
        Brush, ClipPlane as LessonClip, HandJoint, StrokeBegin, StrokeStyle,
    };
    use twinray_lessons::state::LabelState;
    use twinray_transfer_functions::Lut;

    fn grid() -> Geometry {
        Geometry::axis_aligned([40, 30, 20], [2.0, 2.0, 3.0], [-39.0, -29.0, -28.5]).expect("grid")
    }

    fn empty_state(time_ns: i64) -> LessonState {
        LessonState {
            time_ns,
            ..LessonState::new(SceneState::default())
        }
    }

    fn stroke(id: u32, times_ns: &[i64]) -> VisibleStroke {
        VisibleStroke {
            begin: StrokeBegin {
                stroke_id: id,
                space: Space::Patient,
                style: StrokeStyle {
                    colour_rgba: [255, 200, 0, 255],
                    width_mm: 3.0,
                    brush: Brush::Pen,
                },
            },
            begin_time_ns: times_ns[0],
            points: times_ns
                .iter()
                .map(|&t| TimedStrokePoint {
                    time_ns: t,
                    position_mm: Vec3::new(t as f32 * 1e-2, 0.0, 0.0),
                    pressure: 1.0,
                })
                .collect(),
        }
    }

    #[test]
    fn label_state_reaches_the_lookup_table() {
        let mut b = SceneBuilder::new(grid());
        let mut scene = SceneState::default();
        scene.labels.insert(
            31,
            LabelState {
                visible: false,
                ..LabelState::default()
            },
        );
        scene.labels.insert(
            29,
            LabelState {
                visible: true,
                colour_rgb: Some([255, 0, 0]),
                opacity: 0.5,
            },
        );
        let tf = b.transfer_function(&scene);
        assert_eq!(tf.preset.name, DEFAULT_PRESET);
        let lut = tf.bake();
        let bin = ((1000.0 - twinray_transfer_functions::HU_MIN)
            / (twinray_transfer_functions::HU_MAX - twinray_transfer_functions::HU_MIN)
            * (twinray_transfer_functions::LUT_BINS - 1) as f32) as usize;
        let bone = Lut::bake(
            &tf.preset,
            &TransferFunction::new(tf.preset.clone()).labels,
            DensityRange::CT,
        );
        assert_eq!(lut.texel(31, bin), [0.0; 4], "hidden label has no opacity");
        let l3 = lut.texel(29, bin);
        assert_eq!(&l3[..3], &[1.0, 0.0, 0.0], "recoloured");
        assert!(
            (l3[3] - 0.5 * bone.texel(29, bin)[3]).abs() < 1e-6,
            "half opacity"
        );
        assert_eq!(lut.texel(30, bin), bone.texel(30, bin), "others untouched");

        // Showing it again (a later change) restores it.
        scene.labels.entry(31).or_default().visible = true;
        assert_eq!(
            b.transfer_function(&scene).bake().texel(31, bin),
            bone.texel(31, bin)
        );
    }

    #[test]
    fn presets_and_curves_follow_the_scene_and_unknown_presets_warn() {
        let mut b = SceneBuilder::new(grid());
        let mut scene = SceneState {
            preset: Some("ct-soft-tissue".into()),
            ..SceneState::default()
        };
        assert_eq!(b.transfer_function(&scene).preset.name, "ct-soft-tissue");
        scene.transfer_curve = vec![
            twinray_lessons::event::TransferPoint {
                density_hu: 500.0,
                rgba: [1.0, 1.0, 1.0, 0.7],
            },
            twinray_lessons::event::TransferPoint {
                density_hu: 100.0,
                rgba: [1.0, 0.0, 0.0, 0.0],
            },
        ];
        let tf = b.transfer_function(&scene);
        assert_eq!(tf.preset.opacity.len(), 2);
        assert!((tf.preset.opacity_at(500.0) - 0.7).abs() < 1e-6);
        assert!(tf.preset.opacity_at(100.0).abs() < 1e-6);
        assert!(b.take_warnings().is_empty());
        scene.preset = Some("no-such-preset".into());
        scene.transfer_curve.clear();
        assert_eq!(b.transfer_function(&scene).preset.name, DEFAULT_PRESET);
        let warnings = b.take_warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("no-such-preset"), "{warnings:?}");
    }

    #[test]
    fn clip_plane_keeps_the_same_half_and_crop_maps_to_fractions() {
        let p = clip_plane(&LessonClip {
            normal: Vec3::new(0.0, 2.0, 0.0),
            distance_mm: 10.0,
        });
        let kept = |q: DVec3| p.normal.dot(q) + p.offset_mm >= 0.0;
        assert!(kept(DVec3::new(0.0, 9.0, 0.0)) && !kept(DVec3::new(0.0, 11.0, 0.0)));
        let g = grid();
        let all = crop_fractions(
            &g,
            &twinray_lessons::event::CropBox {
                min_mm: Vec3::splat(-1000.0),
                max_mm: Vec3::splat(1000.0),
            },
        );
        assert_eq!(all, CropBox::default());
        // The left half in x (patient x ≥ 0): voxel i ≥ 19.5 of 40 → fraction 0.5.
        let half = crop_fractions(
            &g,
            &twinray_lessons::event::CropBox {
                min_mm: Vec3::new(0.0, -1000.0, -1000.0),
                max_mm: Vec3::splat(1000.0),
            },
        );
        assert!(
            (half.min[0] - 0.5).abs() < 1e-6 && half.max[0] == 1.0,
            "{half:?}"
        );
    }

    #[test]
    fn strokes_are_drawn_progressively_and_undrawn_when_scrubbing_back() {
        let s = stroke(1, &[1_000, 2_000, 3_000, 4_000]);
        let counts: Vec<usize> = [0, 1_000, 2_500, 4_000, 9_000]
            .iter()
            .map(|&t| {
                let mut state = empty_state(t);
                state.strokes = vec![s.clone()];
                overlays(&state).strokes.len()
            })
            .collect();
        // No point, a dot, one segment, three segments, still three.
        assert_eq!(counts, [0, 1, 1, 3, 3]);
        let mut state = empty_state(2_500);
        state.strokes = vec![s];
        let o = overlays(&state);
        assert_eq!(o.strokes[0].b_mm, Vec3::new(20.0, 0.0, 0.0));
        assert_eq!(o.strokes[0].radius_mm, 1.5);
        assert_eq!(o.strokes[0].rgba, [1.0, 200.0 / 255.0, 0.0, 1.0]);
        assert!(o.glasses.is_empty() && o.hands.is_empty());

        // Display-rate points 0.5 mm apart merge into segments of at least 2 mm, and the
        // newest point is always the stroke's end.
        let mut dense = stroke(2, &(1..=21).map(|i| i * 1_000).collect::<Vec<_>>());
        for (i, p) in dense.points.iter_mut().enumerate() {
            p.position_mm = Vec3::new(i as f32 * 0.5, 0.0, 0.0);
        }
        let mut state = empty_state(21_000);
        state.strokes = vec![dense.clone()];
        let all = overlays(&state).strokes;
        assert_eq!(all.len(), 5);
        assert_eq!(all[4].b_mm, Vec3::new(10.0, 0.0, 0.0));
        state.time_ns = 12_000;
        let part = overlays(&state).strokes;
        assert_eq!(part.len(), 3);
        assert_eq!(part[2].b_mm, Vec3::new(5.5, 0.0, 0.0));
        assert_eq!(part[..2], all[..2]);
    }

    fn twin_pose() -> Pose {
        // Patient standing in the room: superior up (+y), anterior towards +z, 1.2 m high.
        Pose {
            position_mm: Vec3::new(100.0, 1200.0, -600.0),
            orientation: glam::Quat::from_rotation_x(-std::f32::consts::FRAC_PI_2),
        }
    }

    #[test]
    fn glasses_sit_at_the_head_pose_in_patient_space() {
        let mut state = empty_state(0);
        state.scene.stage_from_patient = twin_pose();
        let head = Pose {
            position_mm: Vec3::new(100.0, 1650.0, -100.0),
            orientation: glam::Quat::from_rotation_y(0.3),
        };
        state.head = Some(head);
        let o = overlays(&state);
        assert_eq!(o.glasses.len(), glasses::CAPSULE_COUNT);
        assert!(o.glasses.iter().all(|c| c.rgba == AVATAR_RGBA));
        // The head in patient space: 450 mm above the twin's centre, 500 mm in front of it.
        let head_patient = pose_in_patient(&head, Space::Stage, &state.scene);
        assert!(
            (head_patient.position_mm - Vec3::new(0.0, -500.0, 450.0)).length() < 1e-3,
            "{head_patient:?}"
        );
        // Centre of each ring: lens offsets in the head frame, carried to patient space.
        let m = patient_from_stage(&state.scene) * pose_matrix(&head);
        for (ring, side) in [(0, -1.0), (1, 1.0)] {
            let caps = &o.glasses[ring * glasses::RING_SEGMENTS..][..glasses::RING_SEGMENTS];
            let centre = caps.iter().map(|c| c.a_mm).sum::<Vec3>() / caps.len() as f32;
            let expected = m
                .transform_point3(DVec3::new(
                    side * f64::from(glasses::LENS_HALF_SPACING_MM),
                    0.0,
                    -f64::from(glasses::LENS_FORWARD_MM),
                ))
                .as_vec3();
            assert!(
                (centre - expected).length() < 1e-2,
                "{centre} vs {expected}"
            );
            for c in caps {
                assert!((c.a_mm.distance(expected) - glasses::LENS_RADIUS_MM).abs() < 1e-2);
            }
        }
        // Lenses are in front of the eyes: towards the face (looking down −z of the head).
        let forward = m.transform_vector3(DVec3::NEG_Z).as_vec3();
        let lens_mid = (o.glasses[glasses::CAPSULE_COUNT - 3].a_mm
            + o.glasses[glasses::CAPSULE_COUNT - 3].b_mm)
            * 0.5;
        assert!((lens_mid - head_patient.position_mm).dot(forward) > 10.0);
    }

    #[test]
    fn follow_camera_is_the_head_pose_and_falls_back_to_orbit() {
        let b = SceneBuilder::new(grid());
        let mut state = empty_state(0);
        state.scene.stage_from_patient = twin_pose();
        let orbit = OrbitView {
            azimuth_deg: 40.0,
            elevation_deg: 10.0,
            zoom: 1.0,
            ..OrbitView::default()
        };
        let view = LearnerView::FollowInstructor(orbit);
        let (cam, follows) = b.camera(&state, &view, [200, 100]);
        assert!(!follows);
        assert_eq!(cam, orbit_camera(&grid(), &orbit, [200, 100]));

        let eye = DVec3::new(0.0, -500.0, 450.0);
        let rot_patient = look_rotation(eye, DVec3::ZERO, DVec3::Z);
        let patient_head = pose_matrix(&Pose {
            position_mm: eye.as_vec3(),
            orientation: rot_patient.as_quat(),
        });
        let stage_head = pose_matrix(&twin_pose()) * patient_head;
        let (_, r, t) = stage_head.to_scale_rotation_translation();
        state.head = Some(Pose {
            position_mm: t.as_vec3(),
            orientation: r.as_quat(),
        });
        let (cam, follows) = b.camera(&state, &view, [200, 100]);
        assert!(follows);
        assert!((cam.eye() - eye).length() < 0.1, "{}", cam.eye());
        assert!(cam.world_from_view.abs_diff_eq(patient_head, 1e-3));
        assert_eq!(cam.frustum, learner_frustum([200, 100]));
        // It looks at the target: the origin projects to the image centre.
        let centre = cam.project(DVec3::ZERO, [200, 100]).expect("in front");
        assert!((centre[0] - 100.0).abs() < 0.5 && (centre[1] - 50.0).abs() < 0.5);
    }

    #[test]
    fn hands_draw_bones_and_controllers_draw_a_pen() {
        let mut state = empty_state(0);
        let mut joints = HandJoints::default();
        for (j, joint) in joints.joints.iter_mut().enumerate() {
            *joint = HandJoint {
                pose: Pose {
                    position_mm: Vec3::new(j as f32 * 10.0, 0.0, 0.0),
                    orientation: glam::Quat::IDENTITY,
                },
                radius_mm: 8.0,
            };
        }
        state.hands[1] = Some(joints);
        let aim = Pose {
            position_mm: Vec3::new(0.0, 0.0, 100.0),
            orientation: glam::Quat::IDENTITY,
        };
        let controller = ControllerState {
            grip: aim,
            aim,
            buttons: 0,
            trigger: 0.0,
            squeeze: 0.0,
            thumbstick: glam::Vec2::ZERO,
        };
        state.controllers[0] = Some(controller);
        // A controller in the tracked hand is not drawn twice.
        state.controllers[1] = Some(controller);
        let o = overlays(&state);
        assert_eq!(o.hands.len(), HAND_CAPSULE_COUNT + pen::CAPSULE_COUNT);
        // Left (the pen) first, then the right hand.
        // The index finger's last bone (9 → 10) is the sixth finger capsule.
        let index_tip = o.hands[pen::CAPSULE_COUNT + HAND_PALM.len() + 5];
        assert_eq!(index_tip.b_mm, Vec3::new(100.0, 0.0, 0.0));
        let pen_tip = o.hands[0];
        assert_eq!(pen_tip.a_mm, Vec3::new(0.0, 0.0, 100.0));
        assert_eq!(
            pen_tip.b_mm,
            Vec3::new(0.0, 0.0, 100.0 + pen::TIP_LENGTH_MM)
        );
    }

    /// A right hand, palm facing −z, fingers along +y: wrist at the origin, knuckles 80 mm
    /// up and 20 mm apart (a real hand's size), finger joints 8 mm thick.
    fn open_hand() -> HandJoints {
        let mut joints = HandJoints::default();
        let mut put = |j: usize, x: f32, y: f32, r: f32| {
            joints.joints[j] = HandJoint {
                pose: Pose {
                    position_mm: Vec3::new(x, y, 0.0),
                    orientation: glam::Quat::IDENTITY,
                },
                radius_mm: r,
            };
        };
        put(0, 0.0, 40.0, 10.0);
        put(WRIST_JOINT, 0.0, 0.0, 10.0);
        for (k, x) in [-30.0f32, -10.0, 10.0, 30.0].into_iter().enumerate() {
            let base = 6 + 5 * k;
            put(base, x * 0.5, 20.0, 10.0);
            for step in 1..5 {
                put(base + step, x, 80.0 + 25.0 * (step - 1) as f32, 8.0);
            }
        }
        for (step, (x, y)) in [(40.0f32, 20.0f32), (55.0, 40.0), (65.0, 60.0), (70.0, 80.0)]
            .into_iter()
            .enumerate()
        {
            put(2 + step, x, y, 10.0);
        }
        joints
    }

    fn covered(capsules: &[Capsule], p: Vec3) -> bool {
        capsules.iter().any(|c| {
            let ab = c.b_mm - c.a_mm;
            let t = if ab.length_squared() > 0.0 {
                ((p - c.a_mm).dot(ab) / ab.length_squared()).clamp(0.0, 1.0)
            } else {
                0.0
            };
            p.distance(c.a_mm + ab * t) <= c.radius_mm
        })
    }

    #[test]
    fn a_filled_hand_covers_its_palm_and_fingers_without_gaps() {
        let mut state = empty_state(0);
        state.hands[1] = Some(open_hand());
        let hands = overlays(&state).hands;
        assert_eq!(hands.len(), HAND_CAPSULE_COUNT);
        assert!(hands.iter().all(|c| c.rgba == AVATAR_RGBA));
        // Every point of the palm (wrist to knuckles, little to index finger, in its plane)
        // is inside the hand: a skeleton of bones leaves most of it empty.
        for y in (0..=80).step_by(5) {
            for x in (-30..=30).step_by(5) {
                let (x, y) = (x as f32, y as f32);
                // The palm narrows towards the wrist: the hull of wrist and knuckles.
                if x.abs() > 10.0 + 20.0 * y / 80.0 {
                    continue;
                }
                let p = Vec3::new(x, y, 0.0);
                assert!(covered(&hands, p), "palm point {p} is not drawn");
            }
        }
        // Along each finger, to its tip, as thick as its joints.
        for x in [-30.0f32, -10.0, 10.0, 30.0] {
            for y in (80..=155).step_by(5) {
                let p = Vec3::new(x, y as f32, 3.9);
                assert!(covered(&hands, p), "finger point {p} is not drawn");
            }
        }
        // Not a blob: between two fingers' middles there is air.
        assert!(!covered(&hands, Vec3::new(20.0, 130.0, 0.0)));
    }

    #[test]
    fn a_scaled_twin_shrinks_the_room_into_the_patient_frame() {
        let mut state = empty_state(0);
        state.scene.stage_from_patient = twin_pose();
        state.scene.twin_scale = 2.0;
        let m = patient_from_stage(&state.scene);
        // A point 100 mm from the twin's origin in the room is 50 mm from it in the patient.
        let stage = twin_pose().position_mm + twin_pose().orientation * Vec3::new(100.0, 0.0, 0.0);
        let p = m.transform_point3(stage.as_dvec3());
        assert!(p.distance(DVec3::new(50.0, 0.0, 0.0)) < 1e-6, "{p}");
        // The avatar keeps its size in the room: thicknesses halve in patient mm.
        state.hands[1] = Some(open_hand());
        state.scene.twin_scale = 1.0;
        let life = overlays(&state).hands;
        state.scene.twin_scale = 2.0;
        let big = overlays(&state).hands;
        for (a, b) in life.iter().zip(&big) {
            assert!((a.radius_mm - 2.0 * b.radius_mm).abs() < 1e-4);
        }
        // A scale no twin can have is life size.
        state.scene.twin_scale = f32::NAN;
        assert_eq!(state.scene.twin_scale(), 1.0);
        assert_eq!(overlays(&state).hands, life);
    }
}
