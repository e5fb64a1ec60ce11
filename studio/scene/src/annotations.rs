//! What the teaching tools draw in the scene besides the volume: each measurement as lines
//! and points with its value as a text label, strokes on X-ray boards, and the boards' edges.
//! Values are computed here from the stored inputs (the lesson stores points, not numbers), by
//! `twinray-measure`, the one place each measurement is defined.

use std::collections::HashMap;

use glam::{DMat4, DVec3, Vec3};
use twinray_io::LabelNames;
use twinray_lessons::event::{LabelMapHash, Measurement, PixelSpacing, Space};
use twinray_lessons::state::LessonState;
use twinray_measure::points::{angle_deg, cobb_angle_deg, distance_mm, CobbReference, Line};
use twinray_measure::trajectory::{analyse_trajectory, TrajectoryOptions};
use twinray_renderer::Capsule;
use twinray_volume::{CtVolume, LabelVolume};

use crate::boards::BoardFrames;

/// What a click (desktop) or a trigger press (VR) on the anatomy or a board measures: one
/// type for both front ends, so a measurement placed in VR is recorded as the desktop records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureTool {
    /// Two points: their distance.
    Distance,
    /// Three points (the second is the vertex): the angle.
    Angle,
    /// Two endplate lines, two points each: the Cobb angle.
    Cobb,
    /// Entry, then target: a needle path with the structures it crosses.
    Trajectory,
    /// One point on a structure: its volume and HU statistics.
    LabelStats,
}

impl MeasureTool {
    /// Every tool, in the order the studio's buttons and the headset's tool button offer them.
    pub const ALL: [Self; 5] = [
        Self::Distance,
        Self::Angle,
        Self::Cobb,
        Self::Trajectory,
        Self::LabelStats,
    ];

    /// Points one measurement takes.
    #[must_use]
    pub fn points_needed(self) -> usize {
        match self {
            Self::Distance | Self::Trajectory => 2,
            Self::Angle => 3,
            Self::Cobb => 4,
            Self::LabelStats => 1,
        }
    }

    /// Its name in the studio.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Distance => "distance",
            Self::Angle => "angle",
            Self::Cobb => "Cobb angle",
            Self::Trajectory => "needle path",
            Self::LabelStats => "label statistics",
        }
    }

    /// The measurement of `points` (exactly [`Self::points_needed`] of them, all in `space`),
    /// as the lesson records it; `label_at` names the labelled structure at a point (label
    /// statistics). `None` when the points are too few or no structure is at the point.
    pub fn measurement(
        self,
        space: Space,
        points: &[Vec3],
        label_at: impl FnOnce(Vec3) -> Option<u16>,
    ) -> Option<Measurement> {
        let q = points;
        if q.len() < self.points_needed() {
            return None;
        }
        Some(match self {
            Self::Distance => Measurement::Distance {
                space,
                a_mm: q[0],
                b_mm: q[1],
            },
            Self::Angle => Measurement::Angle {
                space,
                a_mm: q[0],
                vertex_mm: q[1],
                b_mm: q[2],
            },
            Self::Cobb => Measurement::Cobb {
                space,
                line1_mm: [q[0], q[1]],
                line2_mm: [q[2], q[3]],
            },
            Self::Trajectory => Measurement::Trajectory {
                space,
                entry_mm: q[0],
                target_mm: q[1],
            },
            Self::LabelStats => Measurement::LabelStats {
                label_id: label_at(q[0])?,
            },
        })
    }
}

use crate::builder::{patient_from_stage, stroke_capsules_in};

/// Colour of measurement lines and points (a warm yellow, visible on bone and on soft tissue).
const MEASURE_RGBA: [f32; 4] = [1.0, 0.82, 0.1, 1.0];
/// Colour of a planned needle (steel).
const NEEDLE_RGBA: [f32; 4] = [0.82, 0.84, 0.9, 1.0];
/// Line radius of measurements, patient mm.
const LINE_RADIUS_MM: f32 = 0.6;
/// Radius of measurement end points, patient mm.
const POINT_RADIUS_MM: f32 = 1.6;
/// Colour and radius of a board's edge.
const BOARD_EDGE_RGBA: [f32; 4] = [0.55, 0.6, 0.7, 1.0];
const BOARD_EDGE_RADIUS_MM: f32 = 1.2;

/// A text label anchored at a point, drawn facing the viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLabel {
    /// The measurement it gives the value of (`None`: a name or a note).
    pub measurement_id: Option<u32>,
    /// Where, patient mm.
    pub anchor_mm: DVec3,
    /// What it says (one or more lines).
    pub text: String,
}

/// The teaching tools' geometry for one frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    /// Lines, points, needles, board strokes and board edges.
    pub capsules: Vec<Capsule>,
    /// Values and names.
    pub texts: Vec<TextLabel>,
}

/// The case a measurement's value is computed on: needed by trajectories (the structures
/// crossed) and label statistics; without it they show what their points alone give.
#[derive(Debug, Clone, Copy)]
pub struct MeasureCase<'a> {
    /// The image.
    pub ct: &'a CtVolume,
    /// The labels shown.
    pub labels: Option<&'a LabelVolume>,
    /// Their names.
    pub names: &'a LabelNames,
}

/// Values already computed, by measurement id: a trajectory or a label's statistics costs a
/// pass over the volume, so it is computed once per inputs and labels shown.
#[derive(Debug)]
pub struct MeasureCache {
    values: HashMap<u32, (Measurement, Option<LabelMapHash>, bool, Computed)>,
    /// Name the structure under a pen that is drawing (replay); the live desktop names what
    /// is under the pointer itself.
    name_under_the_pen: bool,
}

#[derive(Debug, Clone)]
struct Computed {
    text: String,
    anchor_mm: Option<DVec3>,
}

impl Default for MeasureCache {
    fn default() -> Self {
        Self {
            values: HashMap::new(),
            name_under_the_pen: true,
        }
    }
}

impl MeasureCache {
    /// The teaching tools' geometry of `state`: board edges and strokes on boards (for the
    /// boards in `boards`), and every shown measurement with its value.
    pub fn annotations(
        &mut self,
        state: &LessonState,
        boards: &BoardFrames,
        case: Option<MeasureCase<'_>>,
    ) -> Annotations {
        let mut out = Annotations::default();
        for (&id, board) in &boards.boards {
            let m = board.patient_from_board;
            let (hx, hy) = (board.half_size_mm.x, board.half_size_mm.y);
            let corner = |x: f64, y: f64| m.transform_point3(DVec3::new(x, y, 0.0)).as_vec3();
            let c = [
                corner(-hx, -hy),
                corner(hx, -hy),
                corner(hx, hy),
                corner(-hx, hy),
            ];
            for i in 0..4 {
                out.capsules.push(Capsule {
                    a_mm: c[i],
                    b_mm: c[(i + 1) % 4],
                    radius_mm: BOARD_EDGE_RADIUS_MM,
                    rgba: BOARD_EDGE_RGBA,
                });
            }
            // Strokes sit a hair in front of the image so the board never hides them.
            let lift = DMat4::from_translation(DVec3::new(0.0, 0.0, 0.8));
            for stroke in state.board_strokes(id) {
                stroke_capsules_in(stroke, state.time_ns, &(m * lift), &mut out.capsules);
            }
        }
        let stage = patient_from_stage(&state.scene);
        if let Some(c) = case.filter(|_| self.name_under_the_pen) {
            name_under_the_pen(state, &stage, c, &mut out.texts);
        }
        for (&id, measurement) in &state.scene.measurements {
            let to_patient = match measurement.space() {
                None | Some(Space::Patient) => DMat4::IDENTITY,
                Some(Space::Stage) => stage,
                Some(Space::Board(board)) => match boards.patient_from(board) {
                    Some(m) => m,
                    None => continue,
                },
            };
            let spacing = match measurement.space() {
                Some(Space::Board(board)) => boards.boards.get(&board).map(|b| b.spacing),
                _ => None,
            };
            let computed = self.value(id, measurement, spacing, state.scene.label_map, case);
            let p = |v: Vec3| to_patient.transform_point3(v.as_dvec3());
            let anchor = draw(measurement, &p, &mut out.capsules).or(computed.anchor_mm);
            if let Some(anchor) = anchor {
                out.texts.push(TextLabel {
                    measurement_id: Some(id),
                    anchor_mm: anchor,
                    text: computed.text,
                });
            }
        }
        out
    }

    fn value(
        &mut self,
        id: u32,
        measurement: &Measurement,
        spacing: Option<PixelSpacing>,
        label_map: Option<LabelMapHash>,
        case: Option<MeasureCase<'_>>,
    ) -> Computed {
        let with_case = case.is_some();
        if let Some((m, map, had_case, computed)) = self.values.get(&id) {
            if m == measurement && *map == label_map && *had_case == with_case {
                return computed.clone();
            }
        }
        let computed = compute(measurement, spacing, case);
        self.values
            .insert(id, (*measurement, label_map, with_case, computed.clone()));
        computed
    }
}

/// What a player keeps to draw the teaching tools of a lesson frame after frame: the boards'
/// images, the measurements' values and the label names they are written with. One of these
/// beside each player (the desktop, `twinray replay`, VR).
#[derive(Debug)]
pub struct TeachingTools {
    /// Board images, decoded once.
    pub boards: crate::boards::BoardImages,
    cache: MeasureCache,
    names: LabelNames,
}

impl TeachingTools {
    /// The name of label `id` in this case's table (`label N` when it has none): what a pointer
    /// over the structure is told.
    #[must_use]
    pub fn label_name(&self, id: u16) -> String {
        self.names
            .get(id)
            .map_or_else(|| format!("label {id}"), str::to_owned)
    }

    /// Tools for a case whose labels TotalSegmentator's table for its modality names.
    #[must_use]
    pub fn for_case(case: &crate::Case) -> Self {
        Self::new(LabelNames::totalsegmentator_for(case.intensity.modality))
    }

    /// Stops naming the structure under a drawing pen (for a live view that names what is
    /// under the pointer itself, where authored strokes carry no times).
    #[must_use]
    pub fn without_pen_names(mut self) -> Self {
        self.cache.name_under_the_pen = false;
        self
    }

    /// Tools for a case whose labels `names` names.
    #[must_use]
    pub fn new(names: LabelNames) -> Self {
        Self {
            boards: crate::boards::BoardImages::default(),
            cache: MeasureCache::default(),
            names,
        }
    }

    /// The teaching tools of `state`: decodes new board images from `player`'s lesson and
    /// computes measurement values on `ct` with the `labels` shown. Also returns a warning for
    /// each board image that cannot be shown (said once).
    pub fn teach(
        &mut self,
        state: &LessonState,
        player: Option<&mut twinray_lessons::player::Player>,
        ct: Option<&CtVolume>,
        labels: Option<&LabelVolume>,
    ) -> (Annotations, BoardFrames, Vec<String>) {
        let warnings = self.boards.sync(&state.scene, player);
        let frames = self.boards.frames(&state.scene);
        let case = ct.map(|ct| MeasureCase {
            ct,
            labels,
            names: &self.names,
        });
        let annotations = self.cache.annotations(state, &frames, case);
        (annotations, frames, warnings)
    }

    /// [`Self::teach`] into `frame`.
    pub fn annotate(
        &mut self,
        frame: &mut crate::FrameInputs,
        state: &LessonState,
        player: Option<&mut twinray_lessons::player::Player>,
        ct: Option<&CtVolume>,
        labels: Option<&LabelVolume>,
    ) -> Vec<String> {
        let (annotations, boards, warnings) = self.teach(state, player, ct, labels);
        frame.annotations = annotations;
        frame.boards = boards;
        warnings
    }
}

/// How long after its newest point a stroke still counts as being drawn, for naming what is
/// under the pen (a pen samples at display rate, so a pause this long means it was lifted).
const PEN_NAME_NS: i64 = 300_000_000;

/// Names the labelled structure under the pen while a stroke on the anatomy is being drawn
/// (its newest point is recent), at the pen's tip: what the instructor points at, live and in
/// replay.
fn name_under_the_pen(
    state: &LessonState,
    patient_from_stage: &DMat4,
    case: MeasureCase<'_>,
    out: &mut Vec<TextLabel>,
) {
    let Some(labels) = case.labels else {
        return;
    };
    for stroke in &state.strokes {
        let to_patient = match stroke.begin.space {
            Space::Patient => DMat4::IDENTITY,
            Space::Stage => *patient_from_stage,
            Space::Board(_) => continue,
        };
        let drawn = stroke
            .points
            .partition_point(|p| p.time_ns <= state.time_ns);
        let Some(tip) = drawn.checked_sub(1).map(|i| &stroke.points[i]) else {
            continue;
        };
        if state.time_ns - tip.time_ns > PEN_NAME_NS {
            continue;
        }
        let p = to_patient.transform_point3(tip.position_mm.as_dvec3());
        if let Some(id) = labels.label_near(p, 1) {
            let name = case
                .names
                .get(id)
                .map_or_else(|| format!("label {id}"), str::to_owned);
            out.push(TextLabel {
                measurement_id: None,
                anchor_mm: p,
                text: name,
            });
        }
    }
}

/// The unit words for a length measured in a space: board millimetres may be pixels or sizes
/// at the detector.
fn length_words(value_mm: f64, spacing: Option<PixelSpacing>) -> String {
    match spacing {
        Some(PixelSpacing::Unknown) => format!("{value_mm:.0} px (unknown spacing)"),
        Some(PixelSpacing::Known {
            at_detector: true, ..
        }) => format!("{value_mm:.1} mm at the detector"),
        _ => format!("{value_mm:.1} mm"),
    }
}

fn compute(
    measurement: &Measurement,
    spacing: Option<PixelSpacing>,
    case: Option<MeasureCase<'_>>,
) -> Computed {
    let d = |v: Vec3| v.as_dvec3();
    let text = match *measurement {
        Measurement::Distance { a_mm, b_mm, .. } => {
            length_words(distance_mm(d(a_mm), d(b_mm)), spacing)
        }
        Measurement::Angle {
            a_mm,
            vertex_mm,
            b_mm,
            ..
        } => match angle_deg(d(a_mm), d(vertex_mm), d(b_mm)) {
            Ok(a) => format!("{a:.1}°"),
            Err(e) => format!("angle: {e}"),
        },
        Measurement::Cobb {
            space,
            line1_mm,
            line2_mm,
        } => {
            // On a board: lateral is the image's row direction, measured in its plane; on the
            // twin, as on an AP radiograph (coronal plane, lateral = patient left).
            let reference = match space {
                Space::Board(_) => CobbReference {
                    lateral: DVec3::X,
                    view_normal: Some(DVec3::Z),
                },
                Space::Patient | Space::Stage => CobbReference::CORONAL,
            };
            let line = |l: [Vec3; 2]| Line::new(d(l[0]), d(l[1]));
            match cobb_angle_deg(line(line1_mm), line(line2_mm), &reference) {
                Ok(a) => format!("Cobb {a:.1}°"),
                Err(e) => e.to_string(),
            }
        }
        Measurement::Trajectory {
            space,
            entry_mm,
            target_mm,
        } => {
            let depth = distance_mm(d(entry_mm), d(target_mm));
            let mut text = format!("needle {depth:.0} mm");
            if let (Some(c), Space::Patient) = (case, space) {
                if let Some(labels) = c.labels {
                    match analyse_trajectory(
                        c.ct,
                        labels,
                        c.names,
                        d(entry_mm),
                        d(target_mm),
                        &TrajectoryOptions::default(),
                    ) {
                        Ok(t) => {
                            if let Some(contact) = &t.first_bone_contact {
                                text.push_str(&format!("\nbone at {:.0} mm", contact.depth_mm));
                            } else {
                                text.push_str("\nno bone contact");
                            }
                            let crossed: Vec<&str> = t
                                .crossings
                                .iter()
                                .map(|c| c.name.as_str())
                                .take(4)
                                .collect();
                            if !crossed.is_empty() {
                                text.push('\n');
                                text.push_str(&crossed.join(", "));
                            }
                        }
                        Err(e) => text.push_str(&format!("\n{e}")),
                    }
                }
            }
            text
        }
        Measurement::LabelStats { label_id } => {
            let name = case
                .and_then(|c| c.names.get(label_id).map(str::to_owned))
                .unwrap_or_else(|| format!("label {label_id}"));
            let stats = case.and_then(|c| {
                let labels = c.labels?;
                let stats =
                    twinray_measure::stats::label_stats(c.ct, labels, c.names, Some(&[label_id]))
                        .ok()?;
                let s = stats.into_iter().next()?;
                let centroid = twinray_measure::points::label_centroid_mm(labels, label_id);
                Some((s, centroid))
            });
            return match stats {
                Some((s, centroid)) => {
                    let hu = s.hu.map_or_else(String::new, |h| {
                        format!(
                            "\nHU {:.0} ± {:.0} (median {:.0})",
                            h.mean,
                            h.sd.unwrap_or(0.0),
                            h.median
                        )
                    });
                    Computed {
                        text: format!("{name}\n{:.1} ml{hu}", s.volume_ml),
                        anchor_mm: centroid,
                    }
                }
                None => Computed {
                    text: name,
                    anchor_mm: None,
                },
            };
        }
        Measurement::Other(_) => String::new(),
    };
    Computed {
        text,
        anchor_mm: None,
    }
}

/// Appends a measurement's lines and points (patient mm through `p`) and returns where its
/// value is written.
fn draw(
    measurement: &Measurement,
    p: &dyn Fn(Vec3) -> DVec3,
    out: &mut Vec<Capsule>,
) -> Option<DVec3> {
    let line = |a: DVec3, b: DVec3, radius: f32, rgba: [f32; 4], out: &mut Vec<Capsule>| {
        out.push(Capsule {
            a_mm: a.as_vec3(),
            b_mm: b.as_vec3(),
            radius_mm: radius,
            rgba,
        });
    };
    let dot = |a: DVec3, rgba: [f32; 4], out: &mut Vec<Capsule>| {
        line(a, a, POINT_RADIUS_MM, rgba, out);
    };
    match *measurement {
        Measurement::Distance { a_mm, b_mm, .. } => {
            let (a, b) = (p(a_mm), p(b_mm));
            line(a, b, LINE_RADIUS_MM, MEASURE_RGBA, out);
            dot(a, MEASURE_RGBA, out);
            dot(b, MEASURE_RGBA, out);
            Some((a + b) * 0.5)
        }
        Measurement::Angle {
            a_mm,
            vertex_mm,
            b_mm,
            ..
        } => {
            let (a, v, b) = (p(a_mm), p(vertex_mm), p(b_mm));
            line(v, a, LINE_RADIUS_MM, MEASURE_RGBA, out);
            line(v, b, LINE_RADIUS_MM, MEASURE_RGBA, out);
            for q in [a, v, b] {
                dot(q, MEASURE_RGBA, out);
            }
            Some(v)
        }
        Measurement::Cobb {
            line1_mm, line2_mm, ..
        } => {
            let mut mids = [DVec3::ZERO; 2];
            for (k, l) in [line1_mm, line2_mm].into_iter().enumerate() {
                let (a, b) = (p(l[0]), p(l[1]));
                // Endplate lines drawn a third longer each way, as on a film.
                let ext = (b - a) * 0.33;
                line(a - ext, b + ext, LINE_RADIUS_MM, MEASURE_RGBA, out);
                dot(a, MEASURE_RGBA, out);
                dot(b, MEASURE_RGBA, out);
                mids[k] = (a + b) * 0.5;
            }
            Some((mids[0] + mids[1]) * 0.5)
        }
        Measurement::Trajectory {
            entry_mm,
            target_mm,
            ..
        } => {
            let (e, t) = (p(entry_mm), p(target_mm));
            line(e, t, 0.8, NEEDLE_RGBA, out);
            dot(e, [0.2, 0.85, 0.3, 1.0], out);
            dot(t, [0.95, 0.2, 0.2, 1.0], out);
            // The hub: the needle continues 20 mm outside the skin.
            let dir = (e - t).normalize_or_zero();
            line(e, e + dir * 20.0, 1.6, NEEDLE_RGBA, out);
            Some(e + dir * 24.0)
        }
        Measurement::LabelStats { .. } | Measurement::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinray_lessons::event::{Pose, SceneChange};
    use twinray_lessons::state::SceneState;

    fn state_with(measurement: Measurement) -> LessonState {
        let mut scene = SceneState::default();
        scene.apply(&SceneChange::MeasurementShow { id: 1, measurement });
        LessonState::new(scene)
    }

    #[test]
    fn a_distance_on_the_twin_is_drawn_between_its_points_with_its_length() {
        let state = state_with(Measurement::Distance {
            space: Space::Patient,
            a_mm: Vec3::new(0.0, 0.0, 0.0),
            b_mm: Vec3::new(30.0, 40.0, 0.0),
        });
        let out = MeasureCache::default().annotations(&state, &BoardFrames::default(), None);
        assert_eq!(out.texts.len(), 1);
        assert_eq!(out.texts[0].text, "50.0 mm");
        assert!((out.texts[0].anchor_mm - DVec3::new(15.0, 20.0, 0.0)).length() < 1e-9);
        assert_eq!(out.capsules[0].b_mm, Vec3::new(30.0, 40.0, 0.0));
    }

    #[test]
    fn a_cobb_angle_above_ninety_degrees_is_reported_whatever_the_click_order() {
        let tilt = |deg: f32, flip: bool| {
            let (s, c) = deg.to_radians().sin_cos();
            let (a, b) = (Vec3::new(-c, 0.0, -s) * 20.0, Vec3::new(c, 0.0, s) * 20.0);
            if flip {
                [b, a]
            } else {
                [a, b]
            }
        };
        for flip in [false, true] {
            let state = state_with(Measurement::Cobb {
                space: Space::Patient,
                line1_mm: tilt(55.0, flip),
                line2_mm: tilt(-55.0, !flip),
            });
            let out = MeasureCache::default().annotations(&state, &BoardFrames::default(), None);
            assert_eq!(out.texts[0].text, "Cobb 110.0°", "flip {flip}");
        }
    }

    #[test]
    fn strokes_on_a_board_follow_it_when_it_moves() {
        use twinray_lessons::event::Event;
        use twinray_lessons::event::{
            Brush, ImageBlob, Payload, PixelFormat, PixelSpacing, StrokeBegin, StrokePoint,
            StrokeStyle,
        };
        let blob = ImageBlob::encode(
            20,
            10,
            PixelFormat::Grey8,
            PixelSpacing::Unknown,
            &[100; 200],
        )
        .expect("image");
        let mut images = crate::boards::BoardImages::default();
        images.add_live(&blob).expect("decodes");
        let mut state = LessonState::new(SceneState::default());
        let at = Pose {
            position_mm: Vec3::new(-300.0, 0.0, 0.0),
            ..Pose::default()
        };
        let events = [
            Payload::Scene(SceneChange::BoardShow {
                board_id: 1,
                image: blob.hash,
                title: "X-ray 1".into(),
                pose: at,
                width_mm: 20.0,
            }),
            Payload::StrokeBegin(StrokeBegin {
                stroke_id: 1,
                space: Space::Board(1),
                style: StrokeStyle {
                    colour_rgba: [255; 4],
                    width_mm: 1.0,
                    brush: Brush::Pen,
                },
            }),
            Payload::StrokePoint(StrokePoint {
                stroke_id: 1,
                position_mm: Vec3::new(2.0, 3.0, 0.0),
                pressure: 1.0,
            }),
        ];
        for payload in events {
            state.apply(&Event::new(0, payload));
        }
        let dot = |state: &LessonState| {
            let frames = images.frames(&state.scene);
            let out = MeasureCache::default().annotations(state, &frames, None);
            // Four edges, then the stroke's dot.
            assert_eq!(out.capsules.len(), 5);
            out.capsules[4].a_mm
        };
        let before = dot(&state);
        assert!(
            (before - Vec3::new(-298.0, 3.0, 0.8)).length() < 1e-4,
            "{before:?}"
        );
        state.apply(&Event::new(
            1,
            Payload::Scene(SceneChange::BoardPose {
                board_id: 1,
                pose: Pose {
                    position_mm: Vec3::new(-300.0, 0.0, 100.0),
                    ..Pose::default()
                },
                width_mm: 40.0,
            }),
        ));
        // Moved up 100 mm and shown twice as large: the stroke goes with it.
        let after = dot(&state);
        assert!(
            (after - Vec3::new(-296.0, 6.0, 101.6)).length() < 1e-4,
            "{after:?}"
        );
    }

    #[test]
    fn a_cobb_angle_on_an_x_ray_board_is_measured_in_the_boards_plane_at_its_spacing() {
        use twinray_lessons::event::{ImageBlob, PixelFormat, PixelSpacing};
        let blob = ImageBlob::encode(
            100,
            200,
            PixelFormat::Grey8,
            PixelSpacing::Known {
                row_mm: 0.2,
                col_mm: 0.2,
                at_detector: true,
            },
            &vec![90; 100 * 200],
        )
        .expect("image");
        let mut images = crate::boards::BoardImages::default();
        images.add_live(&blob).expect("decodes");
        // A board standing sideways (turned 90° about the head–feet axis) and shown at twice
        // its natural width: neither changes the angle or the distance in board mm.
        let pose = Pose {
            position_mm: Vec3::new(-250.0, 10.0, 0.0),
            orientation: glam::Quat::from_rotation_z(std::f32::consts::FRAC_PI_2),
        };
        let mut scene = SceneState::default();
        scene.apply(&SceneChange::BoardShow {
            board_id: 1,
            image: blob.hash,
            title: "X-ray 1".into(),
            pose,
            width_mm: 40.0,
        });
        let tilt = |deg: f32, y: f32| {
            let (s, c) = deg.to_radians().sin_cos();
            [
                Vec3::new(-5.0 * c, y - 5.0 * s, 0.0),
                Vec3::new(5.0 * c, y + 5.0 * s, 0.0),
            ]
        };
        scene.apply(&SceneChange::MeasurementShow {
            id: 1,
            measurement: Measurement::Cobb {
                space: Space::Board(1),
                line1_mm: tilt(20.0, 10.0),
                line2_mm: tilt(-15.0, -10.0),
            },
        });
        scene.apply(&SceneChange::MeasurementShow {
            id: 2,
            measurement: Measurement::Distance {
                space: Space::Board(1),
                a_mm: Vec3::new(0.0, -10.0, 0.0),
                b_mm: Vec3::new(0.0, 10.0, 0.0),
            },
        });
        let state = LessonState::new(scene);
        let out = MeasureCache::default().annotations(&state, &images.frames(&state.scene), None);
        let texts: Vec<&str> = out.texts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["Cobb 35.0°", "20.0 mm at the detector"]);
    }

    #[test]
    fn a_measurement_on_a_hidden_board_is_not_drawn() {
        let state = state_with(Measurement::Distance {
            space: Space::Board(4),
            a_mm: Vec3::ZERO,
            b_mm: Vec3::X,
        });
        let out = MeasureCache::default().annotations(&state, &BoardFrames::default(), None);
        assert!(out.capsules.is_empty() && out.texts.is_empty());
        let _ = Pose::default();
    }
}
