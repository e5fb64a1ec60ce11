//! 3D Slicer's volume-rendering presets, read as Slicer reads them and turned into [`Preset`]s.
//!
//! Slicer stores a preset as a *volume property* (VTK's `vtkVolumeProperty`): a scalar opacity
//! function, a colour function and a gradient opacity function of the image value, shading
//! (`shade`, ambient, diffuse, specular, specular power), the interpolation and an "effective
//! range". Three files hold them ([`Format`]):
//!
//! - `presets.xml` (Slicer's own list) and scene files (`.mrml`): `VolumeProperty` elements whose
//!   functions are strings `"N x y x y …"` (`N` counts the numbers that follow; 4 per colour
//!   point: x r g b);
//! - `.vp.json` (Slicer ≥ 5.9): `volumeProperties[0].components[0]` with point lists (and VTK's
//!   `midpoint` / `sharpness` per point);
//! - `.vp` (older Slicer): nine lines, the same strings as the XML.
//!
//! What Slicer does on reading, done here too (each instance is recorded in
//! [`VolumeProperty::notes`]):
//!
//! - Numbers are read as C's `atof` reads them: the longest prefix that is a number, so
//!   `-250.0.0` is −250 and trailing junk or spaces are ignored; numbers after the `N`
//!   announced are ignored.
//! - **The shift.** VTK keeps one point per x (adding a point at an x that has one replaces
//!   it), so Slicer raises each point's x to at least 10 single-precision steps above the point
//!   before it (`vtkMRMLVolumePropertyNode::HigherAndUnique`). A repeated x — `200 0 200 0.8`,
//!   a step — keeps both points, the second a hair to the right; a point whose x is lower than
//!   the one before moves up to just after it (in file order: the step stays a step and nothing
//!   is re-sorted). `.vp.json` points are first sorted by x (stably, keeping a step's order),
//!   as Slicer's JSON reader does.
//! - Outside the points the functions are constant at their end values (VTK's clamping).
//! - `effectiveRange="0 -1"` (minimum above maximum) means "not set": Slicer then computes it
//!   from the functions' ranges and 0 ([`VolumeProperty::effective_range`]). It only sets the
//!   extent of Slicer's editor and its Shift slider; it does not change the rendering.
//! - The scalar opacity is per unit distance, 1 mm unless a `.vp.json` says otherwise (VTK's
//!   `ScalarOpacityUnitDistance`; Slicer never changes it): crossing `d` mm keeps
//!   `(1 − α)^(d / 1 mm)` of the light. [`VolumeProperty::to_preset`] keeps that unit in
//!   [`Preset::opacity_unit_mm`], and the renderer corrects for its step with it, as VTK does.
//!
//! What twinray does not reproduce is listed per preset by
//! [`VolumeProperty::not_reproduced`]: the gradient opacity (the renderer has no such term),
//! nearest or cubic interpolation, and functions that change outside the lookup table's
//! −1024…3071 HU range. The table also samples the functions every 4 HU, so a step between two
//! points closer than that is a 4 HU ramp. Slicer's interactive "Shift" slider (moving all
//! points) is an editing tool, not part of a preset, and has no counterpart here.

mod read;

use std::path::{Path, PathBuf};

use crate::lut::{HU_MAX, HU_MIN};
use crate::preset::{Blend, ColourPoint, OpacityPoint, Preset, PresetError, Shading};

pub use read::Format;

/// One control point of a VTK function of the image value: `N` values (1 for opacity, 3 for
/// RGB) at `x`, and the shape of the segment to the next point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlPoint<const N: usize> {
    /// Image value (Hounsfield units for CT).
    pub x: f64,
    /// The function's value here.
    pub value: [f64; N],
    /// Where between this point and the next the value is halfway (0.5: linear).
    pub midpoint: f64,
    /// 0: linear; 1: a step at the midpoint; between: VTK's Hermite curve.
    pub sharpness: f64,
}

/// A piecewise function as VTK evaluates it: points in strictly increasing x, constant beyond
/// the first and last (VTK's clamping).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Function<const N: usize> {
    /// The control points, in strictly increasing x.
    pub points: Vec<ControlPoint<N>>,
}

impl<const N: usize> Function<N> {
    /// The value at `x` (zeros for a function without points, as VTK).
    pub fn at(&self, x: f64) -> [f64; N] {
        let Some(first) = self.points.first() else {
            return [0.0; N];
        };
        // The first point at or after x.
        let next = self.points.partition_point(|p| p.x < x);
        if next == 0 {
            return first.value;
        }
        let Some(b) = self.points.get(next) else {
            return self.points[self.points.len() - 1].value;
        };
        let a = &self.points[next - 1];
        let s = (x - a.x) / (b.x - a.x);
        std::array::from_fn(|i| {
            vtk_segment(s, a.value[i], b.value[i], a.midpoint, a.sharpness, N == 3)
        })
    }

    /// The lowest and highest x, when there are points.
    pub fn range(&self) -> Option<[f64; 2]> {
        Some([self.points.first()?.x, self.points.last()?.x])
    }

    /// The function as linear pieces: its points, plus for every segment that is not linear
    /// (a midpoint other than 0.5, or sharpness) the points that make it so: exact for a
    /// shifted midpoint and for a step, 16 pieces for a Hermite curve.
    fn linear_points(&self) -> Vec<(f64, [f64; N])> {
        let mut out = Vec::with_capacity(self.points.len());
        for (i, p) in self.points.iter().enumerate() {
            out.push((p.x, p.value));
            let Some(next) = self.points.get(i + 1) else {
                break;
            };
            let span = next.x - p.x;
            let midpoint = p.midpoint.clamp(1e-5, 0.99999);
            if p.sharpness > 0.99 {
                // A step at the midpoint: the first value up to just below it, then the second.
                let x_mid = p.x + span * midpoint;
                out.push((f64::from(next_down_f32(x_mid)).max(p.x), p.value));
                out.push((x_mid, next.value));
            } else if p.sharpness < 0.01 {
                if (p.midpoint - 0.5).abs() > 1e-9 {
                    let half = std::array::from_fn(|c| 0.5 * (p.value[c] + next.value[c]));
                    out.push((p.x + span * midpoint, half));
                }
            } else {
                const PIECES: usize = 16;
                for k in 1..PIECES {
                    let x = p.x + span * k as f64 / PIECES as f64;
                    out.push((x, self.at(x)));
                }
            }
        }
        out
    }
}

/// VTK's value at fraction `s` of a segment from `y1` to `y2` (`vtkPiecewiseFunction` and
/// `vtkColorTransferFunction` in RGB): `s` is first bent so the midpoint maps to one half, then
/// sharpness 0 is linear, above 0.99 a step, and in between a Hermite curve pulled towards the
/// step, kept within the end values (within [0, 1] for colours).
fn vtk_segment(s: f64, y1: f64, y2: f64, midpoint: f64, sharpness: f64, colour: bool) -> f64 {
    let m = midpoint.clamp(1e-5, 0.99999);
    let mut s = if s < m {
        0.5 * s / m
    } else {
        0.5 + 0.5 * (s - m) / (1.0 - m)
    };
    if sharpness > 0.99 {
        return if s < 0.5 { y1 } else { y2 };
    }
    if sharpness < 0.01 {
        return (1.0 - s) * y1 + s * y2;
    }
    let power = 1.0 + 10.0 * sharpness;
    if s < 0.5 {
        s = 0.5 * (2.0 * s).powf(power);
    } else if s > 0.5 {
        s = 1.0 - 0.5 * (2.0 * (1.0 - s)).powf(power);
    }
    let (s2, s3) = (s * s, s * s * s);
    let tangent = (1.0 - sharpness) * (y2 - y1);
    let y = (2.0 * s3 - 3.0 * s2 + 1.0) * y1
        + (-2.0 * s3 + 3.0 * s2) * y2
        + (s3 - 2.0 * s2 + s) * tangent
        + (s3 - s2) * tangent;
    if colour {
        y.clamp(0.0, 1.0)
    } else {
        y.clamp(y1.min(y2), y1.max(y2))
    }
}

/// How VTK samples the volume between voxels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// The nearest voxel (VTK's default when a file says nothing).
    Nearest,
    /// Trilinear (every preset Slicer ships).
    Linear,
    /// Tricubic.
    Cubic,
}

/// One of Slicer's volume properties, as Slicer holds it after reading.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeProperty {
    /// The preset's name (`name` in XML; the file name for `.vp.json` and `.vp`).
    pub name: String,
    /// Opacity per [`VolumeProperty::scalar_opacity_unit_mm`] of the image value.
    pub scalar_opacity: Function<1>,
    /// Opacity factor of the gradient magnitude (may have no points: then none).
    pub gradient_opacity: Function<1>,
    /// RGB in [0, 1] of the image value.
    pub colour: Function<3>,
    /// Whether lighting is applied.
    pub shade: bool,
    /// Ambient lighting term.
    pub ambient: f64,
    /// Diffuse lighting term.
    pub diffuse: f64,
    /// Specular lighting term.
    pub specular: f64,
    /// Specular exponent.
    pub specular_power: f64,
    /// How the volume is sampled.
    pub interpolation: Interpolation,
    /// The effective range as stored (minimum above maximum: not set; see
    /// [`VolumeProperty::effective_range`]).
    pub effective_range_stored: [f64; 2],
    /// The distance in mm the scalar opacity is per (1 unless a `.vp.json` says otherwise).
    pub scalar_opacity_unit_mm: f64,
    /// Whether the gradient opacity is switched off (`.vp.json`).
    pub disable_gradient_opacity: bool,
    /// How the file's quirks were read: junk after numbers, shifted points, an unset range.
    pub notes: Vec<String>,
}

impl VolumeProperty {
    /// Slicer's scalar opacity at an image value, per 1 mm of ray (converted from
    /// [`VolumeProperty::scalar_opacity_unit_mm`] when a file uses another unit).
    pub fn scalar_opacity_per_mm_at(&self, x: f64) -> f64 {
        per_mm(self.scalar_opacity.at(x)[0], self.scalar_opacity_unit_mm)
    }

    /// Slicer's colour (RGB in [0, 1]) at an image value.
    pub fn colour_at(&self, x: f64) -> [f64; 3] {
        self.colour.at(x)
    }

    /// The effective range Slicer shows: the stored one, or when it is not set (minimum above
    /// maximum, e.g. `"0 -1"`), the union of the functions' ranges and 0, as Slicer computes it.
    pub fn effective_range(&self) -> [f64; 2] {
        let [lo, hi] = self.effective_range_stored;
        if lo <= hi {
            return [lo, hi];
        }
        let mut range = [0.0f64, 0.0];
        for r in [
            self.colour.range(),
            self.scalar_opacity.range(),
            self.gradient_opacity.range(),
        ]
        .into_iter()
        .flatten()
        {
            range = [range[0].min(r[0]), range[1].max(r[1])];
        }
        range
    }

    /// Whether the gradient opacity changes anything: it multiplies the opacity by a function
    /// of the gradient magnitude (≥ 0), so it does nothing when that function is 1 from 0 on
    /// (as in nearly every preset Slicer ships, `"4 0 1 255 1"`).
    pub fn gradient_opacity_matters(&self) -> bool {
        if self.disable_gradient_opacity || self.gradient_opacity.points.is_empty() {
            return false;
        }
        let one = |y: f64| (y - 1.0).abs() < 1e-9;
        !(one(self.gradient_opacity.at(0.0)[0])
            && self
                .gradient_opacity
                .points
                .iter()
                .filter(|p| p.x > 0.0)
                .all(|p| one(p.value[0])))
    }

    /// What of this preset twinray's renderer does not reproduce, one sentence each (empty
    /// when it renders as in Slicer, up to lighting and the 4 HU table; see the module docs).
    pub fn not_reproduced(&self) -> Vec<String> {
        let mut lost = Vec::new();
        if self.gradient_opacity_matters() {
            lost.push(
                "its gradient opacity (less opacity where the image is uniform) is not \
                 applied: twinray's renderer has no gradient term, so uniform regions look \
                 more opaque than in Slicer"
                    .to_owned(),
            );
        }
        match self.interpolation {
            Interpolation::Linear => {}
            other => lost.push(format!(
                "its {} interpolation is not applied: twinray always samples trilinearly",
                if other == Interpolation::Nearest {
                    "nearest-voxel"
                } else {
                    "cubic"
                }
            )),
        }
        let changes_at = self.changes_outside_lut();
        if let Some(x) = changes_at {
            lost.push(format!(
                "its functions change outside twinray's CT range {HU_MIN}…{HU_MAX} HU (at {x}): \
                 on a CT, values beyond it render as the range's ends"
            ));
        }
        lost
    }

    /// The first point (of either function) outside the lookup table's HU range where the
    /// rendering would differ from the range's nearer end, which is what twinray shows for
    /// values beyond it: another opacity, or another colour where the opacity is not 0. (The
    /// usual padding point at −3024, transparent, changes nothing.)
    fn changes_outside_lut(&self) -> Option<f64> {
        let (lo, hi) = (f64::from(HU_MIN), f64::from(HU_MAX));
        let looks = |x: f64| (self.scalar_opacity.at(x)[0], self.colour.at(x));
        let (at_lo, at_hi) = (looks(lo), looks(hi));
        let differs = |x: f64, edge: (f64, [f64; 3])| {
            let (alpha, rgb) = looks(x);
            alpha != edge.0 || (alpha > 0.0 && rgb != edge.1)
        };
        self.scalar_opacity
            .points
            .iter()
            .map(|p| p.x)
            .chain(self.colour.points.iter().map(|p| p.x))
            .filter(|&x| (x < lo && differs(x, at_lo)) || (x > hi && differs(x, at_hi)))
            .reduce(f64::min)
    }

    /// The preset as twinray's [`Preset`]: the same functions as linear ramps (clamped to
    /// [0, 1]; VTK's curved segments made of linear pieces, see [`Function`]), the opacity
    /// still per Slicer's unit distance ([`Preset::opacity_unit_mm`]), composite blending and
    /// Slicer's shading terms. `source` names the file in the description.
    pub fn to_preset(&self, source: &Path) -> Preset {
        let file = source.file_name().map_or_else(
            || source.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        Preset {
            name: self.name.clone(),
            description: format!("3D Slicer preset {} from {file}", self.name),
            blend: Blend::Composite,
            shading: Shading {
                enabled: self.shade,
                ambient: self.ambient as f32,
                diffuse: self.diffuse as f32,
                specular: self.specular as f32,
                specular_power: self.specular_power as f32,
            },
            colour: self
                .colour
                .linear_points()
                .into_iter()
                .map(|(x, rgb)| ColourPoint {
                    hu: x as f32,
                    rgb: rgb.map(|c| c.clamp(0.0, 1.0) as f32),
                })
                .collect(),
            opacity: self
                .scalar_opacity
                .linear_points()
                .into_iter()
                .map(|(x, [alpha])| OpacityPoint {
                    hu: x as f32,
                    alpha: alpha.clamp(0.0, 1.0) as f32,
                })
                .collect(),
            opacity_unit_mm: Some(self.scalar_opacity_unit_mm as f32),
            // Slicer names its presets by modality (CT-Bone, MR-Default); its points are
            // image values either way.
            modality: twinray_volume::Modality::from_dicom(self.name.get(..2).unwrap_or_default())
                .filter(|_| self.name.as_bytes().get(2) == Some(&b'-')),
            placement: crate::Placement::Values,
        }
    }
}

/// An opacity per `unit_mm` as the opacity per 1 mm of the same material.
fn per_mm(alpha: f64, unit_mm: f64) -> f64 {
    if (unit_mm - 1.0).abs() < 1e-12 {
        return alpha;
    }
    1.0 - (1.0 - alpha.clamp(0.0, 1.0)).powf(1.0 / unit_mm)
}

/// The next `f32` below `x` (for the left side of a step).
fn next_down_f32(x: f64) -> f32 {
    (x as f32).next_down()
}

/// A file of Slicer presets: each preset by name, read or with what is wrong with it (one bad
/// preset does not hide the others).
#[derive(Debug, Clone)]
pub struct SlicerFile {
    path: PathBuf,
    entries: Vec<(String, Result<VolumeProperty, String>)>,
}

impl SlicerFile {
    /// Reads a Slicer preset file; the format comes from its name (see [`Format::of`]).
    ///
    /// # Errors
    /// If the file cannot be read, is not a Slicer preset file, or holds no preset.
    pub fn read(path: &Path) -> Result<Self, PresetError> {
        let text = std::fs::read_to_string(path).map_err(|source| PresetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let format = Format::of(path, &text).ok_or_else(|| PresetError::Parse {
            origin: path.display().to_string(),
            message: "not a 3D Slicer preset file (.xml, .mrml, .vp.json or .vp)".to_owned(),
        })?;
        Self::parse(&text, path, format)
    }

    /// Parses the text of a Slicer preset file; `path` names it in errors and names
    /// single-preset files.
    ///
    /// # Errors
    /// If the text is not XML / JSON, or holds no volume property.
    pub fn parse(text: &str, path: &Path, format: Format) -> Result<Self, PresetError> {
        let entries = read::entries(text, path, format).map_err(|message| PresetError::Parse {
            origin: path.display().to_string(),
            message,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The presets' names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Every preset by name: read, or what is wrong with it.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Result<&VolumeProperty, &str>)> {
        self.entries
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref().map_err(String::as_str)))
    }

    /// The preset called `name` (exactly, else the only one whose name matches ignoring case),
    /// or with `None` the only preset of the file.
    ///
    /// # Errors
    /// If there is no such preset, `None` is given for a file of several, or the preset is
    /// malformed (the error names the file, the preset and the problem).
    pub fn property(&self, name: Option<&str>) -> Result<&VolumeProperty, PresetError> {
        let entry = match name {
            None if self.entries.len() == 1 => &self.entries[0],
            None => {
                return Err(PresetError::WhichOne {
                    path: self.path.clone(),
                    available: self.names(),
                })
            }
            Some(name) => {
                let folded: Vec<_> = self
                    .entries
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .collect();
                match self.entries.iter().find(|(n, _)| n == name) {
                    Some(entry) => entry,
                    None if folded.len() == 1 => folded[0],
                    None => {
                        return Err(PresetError::NotInFile {
                            path: self.path.clone(),
                            name: name.to_owned(),
                            available: self.names(),
                        })
                    }
                }
            }
        };
        entry.1.as_ref().map_err(|problem| PresetError::Invalid {
            origin: format!("'{}' in {}", entry.0, self.path.display()),
            problem: problem.clone(),
        })
    }
}
