//! Presets: HU ramps, blend mode and shading, stored as TOML data files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use twinray_volume::{Intensity, Modality};

/// Errors reading or validating a preset.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    /// The name is neither a built-in preset nor an existing file.
    #[error("unknown preset '{name}': built-in presets are {}; or give a path to a .toml preset file, or to a 3D Slicer presets.xml (FILE:NAME), .vp.json or .vp file", Preset::BUILT_IN_NAMES.join(", "))]
    Unknown {
        /// What the user asked for.
        name: String,
    },
    /// A file of several presets has none by the name asked for.
    #[error("{} has no preset named '{name}'; it has: {}", path.display(), available.join(", "))]
    NotInFile {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names it has, in file order.
        available: Vec<String>,
    },
    /// A file of several presets was given without saying which one.
    #[error("{} holds {} presets: name one as {}:NAME ({})", path.display(), available.len(), path.display(), available.join(", "))]
    WhichOne {
        /// The file.
        path: PathBuf,
        /// The names it has, in file order.
        available: Vec<String>,
    },
    /// The preset file could not be read.
    #[error("cannot read preset file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The preset text is not valid TOML or misses fields.
    #[error("preset {origin} is not a valid preset: {message}")]
    Parse {
        /// File path or built-in name.
        origin: String,
        /// What the TOML parser said.
        message: String,
    },
    /// The ramps are empty, unsorted or out of range.
    #[error("preset {origin}: {problem}")]
    Invalid {
        /// File path or built-in name.
        origin: String,
        /// What is wrong.
        problem: String,
    },
}

/// How samples along a ray combine into a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// Front-to-back alpha compositing (emission-absorption).
    Composite,
    /// Maximum-intensity projection: the densest visible sample wins.
    Mip,
}

/// Phong shading with a headlight, on the gradient of the density.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shading {
    /// Whether gradients are computed and lighting applied.
    pub enabled: bool,
    /// Ambient term.
    #[serde(default = "default_ambient")]
    pub ambient: f32,
    /// Diffuse term.
    #[serde(default = "default_diffuse")]
    pub diffuse: f32,
    /// Specular term.
    #[serde(default = "default_specular")]
    pub specular: f32,
    /// Specular exponent.
    #[serde(default = "default_specular_power")]
    pub specular_power: f32,
}

fn default_ambient() -> f32 {
    0.2
}
fn default_diffuse() -> f32 {
    0.7
}
fn default_specular() -> f32 {
    0.3
}
fn default_specular_power() -> f32 {
    10.0
}

/// What a preset's control points are positions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Image values: Hounsfield units on a CT (all CT presets and 3D Slicer's).
    #[default]
    Values,
    /// Fractions of the image's display window ([`Intensity::window`]): 0 is its low end, 1
    /// its high end. MR intensities have no fixed scale, so MR presets are written this way
    /// and [`Preset::placed_on`] turns them into values for each image.
    Window,
}

/// One control point of the colour ramp.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourPoint {
    /// Position: the image value (Hounsfield units on a CT, scanner units on an MR), or a
    /// window fraction while the preset's [`Placement`] is [`Placement::Window`] (`at` in the
    /// file).
    #[serde(alias = "at")]
    pub hu: f32,
    /// Linear RGB, each in [0, 1].
    pub rgb: [f32; 3],
}

/// One control point of the opacity ramp.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpacityPoint {
    /// Position, as [`ColourPoint::hu`].
    #[serde(alias = "at")]
    pub hu: f32,
    /// Opacity per unit distance ([`Preset::opacity_unit_mm`], else the volume's smallest voxel
    /// spacing), in [0, 1]: a ray crossing `d` of that tissue keeps `(1 − alpha)^(d / unit)`
    /// of the light behind it, whatever the sample step.
    pub alpha: f32,
}

/// A named transfer function preset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Short name used on the command line.
    pub name: String,
    /// One line for menus and `--help`.
    pub description: String,
    /// Composite or MIP.
    pub blend: Blend,
    /// Lighting.
    pub shading: Shading,
    /// Colour ramp, sorted by HU; piecewise linear, constant beyond the ends.
    pub colour: Vec<ColourPoint>,
    /// Opacity ramp, sorted by HU; piecewise linear, constant beyond the ends.
    pub opacity: Vec<OpacityPoint>,
    /// The distance in mm the ramp's opacities are per (`opacity_unit_mm` in the file):
    /// 1 for presets imported from 3D Slicer (VTK's scalar opacity unit distance). `None`
    /// (twinray's own presets) means the smallest voxel spacing of the volume rendered: opacity
    /// per voxel, whatever the grid's spacing in mm.
    #[serde(default)]
    pub opacity_unit_mm: Option<f32>,
    /// The modality the preset is made for (`modality = "ct"` or `"mr"`), when it is made for
    /// one: a CT preset's points are Hounsfield units, meaningless on an MR, and
    /// [`Preset::mismatch`] says so.
    #[serde(default, deserialize_with = "modality")]
    pub modality: Option<Modality>,
    /// What the control points are positions of (`placement = "window"` for window fractions).
    #[serde(default)]
    pub placement: Placement,
}

fn modality<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Modality>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    match text.as_deref() {
        None => Ok(None),
        Some(m) => Modality::from_dicom(&m.to_ascii_uppercase())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("modality '{m}' is not ct or mr"))),
    }
}

/// Where a preset named on the command line comes from (see [`Preset::source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetSource {
    /// One of the presets shipped inside the binary.
    BuiltIn {
        /// Its name.
        name: &'static str,
        /// Its TOML text.
        text: &'static str,
    },
    /// A preset file, and which preset in it (`FILE:NAME`).
    File {
        /// The file.
        path: PathBuf,
        /// The preset's name, when one was given.
        name: Option<String>,
    },
}

/// The presets shipped inside the binary, so it works from any folder.
const BUILT_IN: [(&str, &str); 9] = [
    ("ct-bone", include_str!("../presets/ct-bone.toml")),
    (
        "ct-soft-tissue",
        include_str!("../presets/ct-soft-tissue.toml"),
    ),
    ("ct-lung", include_str!("../presets/ct-lung.toml")),
    ("ct-vessels", include_str!("../presets/ct-vessels.toml")),
    ("mip", include_str!("../presets/mip.toml")),
    ("mr-default", include_str!("../presets/mr-default.toml")),
    ("mr-angio", include_str!("../presets/mr-angio.toml")),
    ("mr-mip", include_str!("../presets/mr-mip.toml")),
    ("mr-t2-brain", include_str!("../presets/mr-t2-brain.toml")),
];

impl Preset {
    /// Names of the built-in presets.
    pub const BUILT_IN_NAMES: [&'static str; 9] = [
        BUILT_IN[0].0,
        BUILT_IN[1].0,
        BUILT_IN[2].0,
        BUILT_IN[3].0,
        BUILT_IN[4].0,
        BUILT_IN[5].0,
        BUILT_IN[6].0,
        BUILT_IN[7].0,
        BUILT_IN[8].0,
    ];

    /// The preset an image is first shown with, by 3D Slicer's rule (MR-Default for MR-like
    /// images, a CT preset for CT-like ones): `mr-default` for an MR, `ct-bone` (twinray's CT
    /// default, the demo's) for a CT.
    #[must_use]
    pub fn default_for(modality: Modality) -> &'static str {
        match modality {
            Modality::Ct => "ct-bone",
            Modality::Mr => "mr-default",
        }
    }

    /// A warning when the preset is made for another modality than the image's (a CT preset's
    /// Hounsfield units on an MR's scanner units), naming the preset to use instead.
    #[must_use]
    pub fn mismatch(&self, image: Modality) -> Option<String> {
        let made_for = self.modality?;
        (made_for != image).then(|| {
            format!(
                "preset '{}' is made for {made_for} ({} values) but the image is {image} (in {}): \
                 what it shows is not meaningful; try '{}'",
                self.name,
                made_for.unit(),
                image.unit(),
                Self::default_for(image)
            )
        })
    }

    /// The preset with its control points as image values: a [`Placement::Window`] preset
    /// stretched over the image's display window (fraction 0 at its low end, 1 at its high
    /// end); any other preset unchanged.
    #[must_use]
    pub fn placed_on(&self, intensity: &Intensity) -> Self {
        let mut placed = self.clone();
        if self.placement == Placement::Window {
            let [low, high] = intensity.window;
            let at = |f: f32| low + f * (high - low);
            for p in &mut placed.colour {
                p.hu = at(p.hu);
            }
            for p in &mut placed.opacity {
                p.hu = at(p.hu);
            }
            placed.placement = Placement::Values;
        }
        placed
    }

    /// A built-in preset by name, or a preset file when `name_or_path` names one: twinray's own
    /// `.toml`, or 3D Slicer's (see [`crate::slicer`]): `presets.xml:NAME` for one preset of a
    /// file of several, a `.vp.json` or a legacy `.vp` file.
    pub fn load(name_or_path: &str) -> Result<Self, PresetError> {
        match Self::source(name_or_path)? {
            PresetSource::BuiltIn { name, text } => Self::parse(text, name),
            PresetSource::File { path, name } => Self::load_file(&path, name.as_deref()),
        }
    }

    /// Where [`Preset::load`] finds `name_or_path`: a built-in preset, or a file and the name
    /// of a preset in it (`FILE:NAME`, split at the last colon when FILE is a file or has a
    /// preset file's extension).
    ///
    /// # Errors
    /// [`PresetError::Unknown`] when it is neither a built-in name nor anything like a file.
    pub fn source(name_or_path: &str) -> Result<PresetSource, PresetError> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Ok(PresetSource::BuiltIn { name, text });
        }
        let path = Path::new(name_or_path);
        let file = |path: &Path, name: Option<&str>| PresetSource::File {
            path: path.to_path_buf(),
            name: name.map(str::to_owned),
        };
        if path.is_file() {
            return Ok(file(path, None));
        }
        // Preset names have no colon; paths rarely do.
        if let Some((file_part, name)) = name_or_path.rsplit_once(':') {
            let file_path = Path::new(file_part);
            if file_path.is_file() || looks_like_preset_path(file_path) {
                return Ok(file(file_path, Some(name)));
            }
        }
        if looks_like_preset_path(path) || name_or_path.contains('/') {
            return Ok(file(path, None));
        }
        Err(PresetError::Unknown {
            name: name_or_path.to_owned(),
        })
    }

    /// A preset file: twinray's TOML, or one of 3D Slicer's formats (by extension, else by its
    /// first character). `name` picks a preset in a file of several (required when it holds
    /// more than one); a single-preset file accepts only its own name.
    pub fn load_file(path: &Path, name: Option<&str>) -> Result<Self, PresetError> {
        let text = std::fs::read_to_string(path).map_err(|source| PresetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(format) = crate::slicer::Format::of(path, &text) {
            let file = crate::slicer::SlicerFile::parse(&text, path, format)?;
            let property = file.property(name)?;
            let preset = property.to_preset(path);
            preset.validate().map_err(|problem| PresetError::Invalid {
                origin: format!("'{}' in {}", property.name, path.display()),
                problem,
            })?;
            return Ok(preset);
        }
        let preset = Self::parse(&text, &path.display().to_string())?;
        match name {
            Some(name) if name != preset.name => Err(PresetError::NotInFile {
                path: path.to_path_buf(),
                name: name.to_owned(),
                available: vec![preset.name],
            }),
            _ => Ok(preset),
        }
    }

    /// Parses and validates preset text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PresetError> {
        let preset: Self = toml::from_str(text).map_err(|e| PresetError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        preset.validate().map_err(|problem| PresetError::Invalid {
            origin: origin.to_owned(),
            problem,
        })?;
        Ok(preset)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.colour.is_empty() || self.opacity.is_empty() {
            return Err("needs at least one [[colour]] and one [[opacity]] point".into());
        }
        let sorted = |hus: Vec<f32>| hus.windows(2).all(|w| w[0] <= w[1]);
        if !sorted(self.colour.iter().map(|p| p.hu).collect())
            || !sorted(self.opacity.iter().map(|p| p.hu).collect())
        {
            return Err("control points must be sorted by increasing hu".into());
        }
        let unit = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
        if let Some(p) = self.colour.iter().find(|p| !p.rgb.iter().all(|c| unit(*c))) {
            return Err(format!(
                "colour at {} HU has a component outside [0, 1]",
                p.hu
            ));
        }
        if let Some(p) = self.opacity.iter().find(|p| !unit(p.alpha)) {
            return Err(format!("opacity at {} HU is outside [0, 1]", p.hu));
        }
        if let Some(hu) = self
            .colour
            .iter()
            .map(|p| p.hu)
            .chain(self.opacity.iter().map(|p| p.hu))
            .find(|hu| !hu.is_finite())
        {
            return Err(format!("a control point is at {hu} HU"));
        }
        if let Some(mm) = self.opacity_unit_mm {
            if !(mm.is_finite() && mm > 0.0) {
                return Err(format!(
                    "opacity_unit_mm must be a positive distance, not {mm}"
                ));
            }
        }
        Ok(())
    }

    /// The distance in mm the opacities are per, on a volume whose smallest voxel spacing is
    /// `smallest_spacing_mm` (see [`Preset::opacity_unit_mm`]).
    pub fn opacity_unit_mm_on(&self, smallest_spacing_mm: f64) -> f64 {
        self.opacity_unit_mm.map_or(smallest_spacing_mm, f64::from)
    }

    /// The preset as twinray's own TOML preset file, which [`Preset::parse`] reads back to the
    /// same preset (numbers are written in the shortest form that reads back exactly).
    pub fn to_toml(&self) -> String {
        use std::fmt::Write as _;
        let string = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::new();
        let _ = writeln!(out, "name = {}", string(&self.name));
        let _ = writeln!(out, "description = {}", string(&self.description));
        let blend = match self.blend {
            Blend::Composite => "composite",
            Blend::Mip => "mip",
        };
        let _ = writeln!(out, "blend = \"{blend}\"");
        if let Some(m) = self.modality {
            let _ = writeln!(out, "modality = \"{}\"", m.name().to_ascii_lowercase());
        }
        if self.placement == Placement::Window {
            let _ = writeln!(out, "# Points are fractions of the image's display window.");
            let _ = writeln!(out, "placement = \"window\"");
        }
        if let Some(mm) = self.opacity_unit_mm {
            let _ = writeln!(out, "# Opacities are per this distance in mm.");
            let _ = writeln!(out, "opacity_unit_mm = {}", float(mm));
        }
        let s = &self.shading;
        let _ = write!(
            out,
            "\n[shading]\nenabled = {}\nambient = {}\ndiffuse = {}\nspecular = {}\nspecular_power = {}\n",
            s.enabled,
            float(s.ambient),
            float(s.diffuse),
            float(s.specular),
            float(s.specular_power)
        );
        for p in &self.colour {
            let [r, g, b] = p.rgb.map(float);
            let _ = write!(
                out,
                "\n[[colour]]\nhu = {}\nrgb = [{r}, {g}, {b}]\n",
                float(p.hu)
            );
        }
        for p in &self.opacity {
            let _ = write!(
                out,
                "\n[[opacity]]\nhu = {}\nalpha = {}\n",
                float(p.hu),
                float(p.alpha)
            );
        }
        out
    }

    /// Colour at a density (linear interpolation between control points).
    pub fn colour_at(&self, hu: f32) -> [f32; 3] {
        let rgb = |i: usize| self.colour[i].rgb;
        let (i, t) = segment(self.colour.len(), |i| self.colour[i].hu, hu);
        let (a, b) = (rgb(i), rgb((i + 1).min(self.colour.len() - 1)));
        std::array::from_fn(|c| a[c] + (b[c] - a[c]) * t)
    }

    /// Opacity per 1 mm of ray at a density, as 3D Slicer states opacity; `None` for a preset
    /// whose opacities are per voxel spacing ([`Preset::opacity_unit_mm`] unset), which only a
    /// volume gives a length.
    pub fn opacity_per_mm_at(&self, hu: f32) -> Option<f32> {
        let unit_mm = self.opacity_unit_mm?;
        let alpha = self.opacity_at(hu);
        if unit_mm == 1.0 {
            return Some(alpha);
        }
        // The same material over 1 mm instead of `unit_mm`: transmittance to the power 1/unit.
        Some(1.0 - (1.0 - alpha).powf(1.0 / unit_mm))
    }

    /// Opacity per unit distance at a density.
    pub fn opacity_at(&self, hu: f32) -> f32 {
        let (i, t) = segment(self.opacity.len(), |i| self.opacity[i].hu, hu);
        let a = self.opacity[i].alpha;
        let b = self.opacity[(i + 1).min(self.opacity.len() - 1)].alpha;
        a + (b - a) * t
    }
}

/// Whether a name reads as a preset file rather than a built-in name.
fn looks_like_preset_path(path: &Path) -> bool {
    let name = path.to_string_lossy();
    [".toml", ".xml", ".mrml", ".json", ".vp"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// A number as TOML reads it back to the same `f32`: Rust's shortest round-trip form, with a
/// decimal point so that TOML sees a float.
fn float(x: f32) -> String {
    let text = x.to_string();
    if text.contains(['.', 'e', 'E']) || !x.is_finite() {
        text
    } else {
        format!("{text}.0")
    }
}

/// Finds the ramp segment holding `x`: the index of its first point and the fraction along it.
/// Beyond either end, the end point's value holds (fraction 0 at the last point).
fn segment(len: usize, hu_at: impl Fn(usize) -> f32, x: f32) -> (usize, f32) {
    if x <= hu_at(0) {
        return (0, 0.0);
    }
    for i in 0..len - 1 {
        let (lo, hi) = (hu_at(i), hu_at(i + 1));
        if x <= hi {
            let span = hi - lo;
            let t = if span > 0.0 { (x - lo) / span } else { 1.0 };
            return (i, t);
        }
    }
    (len - 1, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_preset_parses() {
        for name in Preset::BUILT_IN_NAMES {
            let p = Preset::load(name).expect("built-in preset parses");
            assert_eq!(p.name, name);
        }
        assert_eq!(
            Preset::load("mip").expect("mip").blend,
            Blend::Mip,
            "mip preset must use maximum-intensity blending"
        );
    }

    #[test]
    fn bone_ramp_matches_the_vtk_peer() {
        let p = Preset::load("ct-bone").expect("ct-bone");
        assert_eq!(p.opacity_at(100.0), 0.0);
        assert!((p.opacity_at(675.0) - 0.45).abs() < 1e-6);
        assert!((p.opacity_at(3000.0) - 0.9).abs() < 1e-6);
        let c = p.colour_at(150.0);
        assert!((c[0] - 0.85).abs() < 1e-6 && (c[2] - 0.65).abs() < 1e-6);
    }

    #[test]
    fn presets_round_trip_through_toml_and_keep_their_opacity_unit() {
        for name in Preset::BUILT_IN_NAMES {
            let p = Preset::load(name).expect("built in");
            assert_eq!(
                p.opacity_unit_mm, None,
                "twinray's own presets are per voxel"
            );
            assert_eq!(Preset::parse(&p.to_toml(), name).expect("reads back"), p);
            assert_eq!(p.opacity_per_mm_at(500.0), None, "per voxel has no length");
        }
        let mut p = Preset::load("ct-bone").expect("ct-bone");
        p.opacity_unit_mm = Some(2.0);
        let text = p.to_toml();
        assert!(text.contains("opacity_unit_mm = 2.0"), "{text}");
        assert_eq!(Preset::parse(&text, "two").expect("reads back"), p);
        // 0.45 per 2 mm lets 0.55 through; over 1 mm, √0.55.
        let per_mm = p.opacity_per_mm_at(675.0).expect("per mm");
        assert!((per_mm - (1.0 - 0.55f32.sqrt())).abs() < 1e-6, "{per_mm}");
        assert_eq!(p.opacity_unit_mm_on(0.7), 2.0);
        p.opacity_unit_mm = None;
        assert_eq!(p.opacity_unit_mm_on(0.7), 0.7);
        let bad = text.replace("opacity_unit_mm = 2.0", "opacity_unit_mm = 0.0");
        let err = Preset::parse(&bad, "zero.toml").expect_err("a zero unit");
        assert!(err.to_string().contains("positive distance"), "{err}");
    }

    #[test]
    fn unknown_and_invalid_presets_are_named_in_errors() {
        let err = Preset::load("ct-banana").expect_err("unknown preset");
        assert!(err.to_string().contains("ct-banana"), "{err}");
        assert!(err.to_string().contains("ct-bone"), "{err}");
        let bad = "name='x'\ndescription=''\nblend='composite'\n[shading]\nenabled=false\n\
                   [[colour]]\nhu=10\nrgb=[1,1,1]\n[[opacity]]\nhu=10\nalpha=1.5\n";
        let err = Preset::parse(bad, "bad.toml").expect_err("alpha out of range");
        assert!(err.to_string().contains("bad.toml") && err.to_string().contains("10 HU"));
        let err = Preset::load("/nonexistent/preset.toml").expect_err("missing file");
        assert!(
            err.to_string().contains("/nonexistent/preset.toml"),
            "{err}"
        );
    }
}
