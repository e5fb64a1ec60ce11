//! The model description: the JSON file beside each ONNX model that says how to feed it (axes,
//! spacing, patch, normalisation) and what its output channels mean. The format is specified in
//! `segmentation/inference/models/FORMAT.md`.

use std::path::{Path, PathBuf};

use glam::DVec3;
use serde::{Deserialize, Serialize};

use crate::InferenceError;

/// The value of the `format` field.
pub const FORMAT_NAME: &str = "twinray-segmentation-model";
/// The version of the description this code reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest patch edge accepted, in voxels (nnU-Net's largest 3D patches are ~ 128-320).
pub const MAX_PATCH_EDGE: usize = 512;

/// A patient direction: where increasing index along one array axis points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Towards the patient's right.
    R,
    /// Towards the patient's left.
    L,
    /// Towards anterior.
    A,
    /// Towards posterior.
    P,
    /// Towards superior (the head).
    S,
    /// Towards inferior (the feet).
    I,
}

impl Direction {
    /// The unit vector in LPS patient coordinates.
    pub fn lps(self) -> DVec3 {
        match self {
            Self::R => DVec3::NEG_X,
            Self::L => DVec3::X,
            Self::A => DVec3::NEG_Y,
            Self::P => DVec3::Y,
            Self::S => DVec3::Z,
            Self::I => DVec3::NEG_Z,
        }
    }

    /// Which patient axis (0 = left-right, 1 = anterior-posterior, 2 = head-feet) it runs along.
    fn patient_axis(self) -> usize {
        match self {
            Self::R | Self::L => 0,
            Self::A | Self::P => 1,
            Self::S | Self::I => 2,
        }
    }
}

/// Intensity normalisation applied before the model sees the volume.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum Normalization {
    /// nnU-Net's CT scheme: clip HU to `[clip_low, clip_high]`, then `(v - mean) / std`.
    Ct {
        /// Lower clip, HU (nnU-Net: 0.5th percentile of foreground).
        clip_low: f64,
        /// Upper clip, HU (99.5th percentile).
        clip_high: f64,
        /// Mean of clipped foreground HU.
        mean: f64,
        /// Standard deviation of clipped foreground HU.
        std: f64,
    },
    /// nnU-Net's `ZScoreNormalization` (MR and any non-CT channel), with `use_mask_for_norm`
    /// false: each image is normalised by its own statistics, `(v - mean(v)) / max(std(v), 1e-8)`
    /// over the whole image on the model grid. No parameters: an MR has no physical intensity
    /// unit, so nothing learnt from the training set can be applied to it.
    #[serde(rename = "zscore")]
    ZScore,
}

impl Normalization {
    /// Checks the parameters: finite, a non-empty clip range and a positive `std` for the CT
    /// scheme (nothing to check for the z-score).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Ct {
                clip_low,
                clip_high,
                mean,
                std,
            } => {
                if ![clip_low, clip_high, mean, std]
                    .iter()
                    .all(|v| v.is_finite())
                    || clip_low >= clip_high
                    || std <= 0.0
                {
                    return Err(format!(
                        "normalization needs finite values with clip_low < clip_high and std > 0 (got clip {clip_low}..{clip_high}, mean {mean}, std {std})"
                    ));
                }
                Ok(())
            }
            Self::ZScore => Ok(()),
        }
    }

    /// The `(low, high, mean, std)` that normalise `image` (one whole image on the model grid,
    /// unpadded) as `(clamp(v, low, high) − mean) / std`, in `f32` as nnU-Net computes on its
    /// `float32` array. For the z-score the clip is infinite and `mean`/`std` are the image's own.
    ///
    /// The z-score's statistics are accumulated in `f64`: numpy's float32 pairwise sums agree
    /// with that to about 1e-7 relative, a naive `f32` sum over millions of voxels would not.
    #[must_use]
    pub fn parameters(&self, image: &[f32]) -> [f32; 4] {
        match *self {
            Self::Ct {
                clip_low,
                clip_high,
                mean,
                std,
            } => [
                clip_low as f32,
                clip_high as f32,
                mean as f32,
                std.max(1e-8) as f32,
            ],
            Self::ZScore => {
                let (mean, std) = mean_std(image);
                [
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                    mean as f32,
                    std.max(1e-8) as f32,
                ]
            }
        }
    }

    /// Why a model normalised this way gives doubtful labels on an image of `modality`, as a
    /// sentence for a warning; `None` where the scheme fits. The CT scheme clips fixed Hounsfield
    /// units, which an MR's scanner units are not, so its labels on an MR are noise. The z-score
    /// is nnU-Net's scheme for MR and other non-CT images (its CT models use the CT scheme), so
    /// a z-score model on a CT is most likely an MR model: worth a warning, not an error, since
    /// a model may have been trained on CT that way.
    #[must_use]
    pub fn modality_warning(&self, modality: twinray_volume::Modality) -> Option<&'static str> {
        use twinray_volume::Modality;
        match (self, modality) {
            (Self::Ct { .. }, Modality::Mr) => Some(
                "the model normalises CT Hounsfield units, so its labels on an MR are not \
                 meaningful (MR segmentation needs an MR model, normalisation scheme \"zscore\")",
            ),
            (Self::ZScore, Modality::Ct) => Some(
                "the model normalises each image by its own mean and spread (scheme \"zscore\", \
                 nnU-Net's scheme for MR), so it is likely an MR model and its labels on a CT \
                 may not be meaningful",
            ),
            (Self::Ct { .. }, Modality::Ct) | (Self::ZScore, Modality::Mr) => None,
        }
    }

    /// Normalises `image` (one whole image on the model grid, unpadded) in place.
    pub fn apply(&self, image: &mut [f32]) {
        let [lo, hi, mean, std] = self.parameters(image);
        for v in image {
            *v = (v.clamp(lo, hi) - mean) / std;
        }
    }
}

/// Mean and population standard deviation (numpy's `std`, `ddof = 0`) of `values`; `(0, 0)` for
/// none. Two passes: the one-pass `E[v²] − E[v]²` loses the variance of an image whose mean is
/// large next to its spread.
fn mean_std(values: &[f32]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// One output channel: the label id it is written as, and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelClass {
    /// Output channel index.
    pub channel: usize,
    /// Label id written for voxels where this channel wins (TotalSegmentator ids, 0 = none).
    pub id: u16,
    /// Label name, e.g. `liver`.
    pub name: String,
}

/// The most output channels (background included) a model may have: the sliding window keeps
/// the winning channel of each voxel in one byte.
pub const MAX_CLASSES: usize = 256;

/// The description of a segmentation model (see `segmentation/inference/models/FORMAT.md`).
///
/// Array axes are those of the model's input after batch and channel: axis 0 is the slowest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDescription {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// Short model name.
    pub name: String,
    /// The ONNX file, relative to the description file.
    pub onnx: String,
    /// Model input to feed; the first input when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_name: Option<String>,
    /// Model output holding the logits; the first output when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_name: Option<String>,
    /// Patient direction of increasing index along each array axis, slowest first.
    pub axes: [Direction; 3],
    /// Voxel spacing the model expects, per array axis, mm.
    pub spacing_mm: [f64; 3],
    /// Sliding-window patch, per array axis, voxels.
    pub patch_size: [usize; 3],
    /// Window step as a fraction of the patch (nnU-Net: 0.5).
    #[serde(default = "default_step_fraction")]
    pub step_fraction: f64,
    /// Intensity normalisation.
    pub normalization: Normalization,
    /// Array axes mirrored for test-time augmentation when mirroring is asked for.
    #[serde(default)]
    pub mirror_axes: Vec<usize>,
    /// Output channels, one per class, background included.
    pub classes: Vec<ModelClass>,
    /// Free text: what the model was trained on and how well it does.
    #[serde(default)]
    pub description: String,
}

fn default_step_fraction() -> f64 {
    0.5
}

impl ModelDescription {
    /// The names of the classes the model writes (its background, id 0, left out).
    #[must_use]
    pub fn label_names(&self) -> twinray_io::LabelNames {
        self.classes
            .iter()
            .filter(|c| c.id != 0)
            .map(|c| (c.id, c.name.clone()))
            .collect()
    }

    /// Parses and validates a description; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, InferenceError> {
        let d: Self = serde_json::from_str(text).map_err(|e| InferenceError::Description {
            path: origin.to_path_buf(),
            problem: format!("not a valid model description: {e}"),
        })?;
        d.validate()
            .map_err(|problem| InferenceError::Description {
                path: origin.to_path_buf(),
                problem,
            })?;
        Ok(d)
    }

    /// Reads a description file (at most 16 MiB).
    pub fn read(path: &Path) -> Result<Self, InferenceError> {
        let text = read_bounded(path, 16 << 20)?;
        let text = String::from_utf8(text).map_err(|_| InferenceError::Description {
            path: path.to_path_buf(),
            problem: "not UTF-8 text".into(),
        })?;
        Self::parse(&text, path)
    }

    /// Checks what serde cannot: values in range and consistent with each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT_NAME {
            return Err(format!(
                "format is '{}', expected '{FORMAT_NAME}'",
                self.format
            ));
        }
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "version {} is not supported (this twinray reads version {FORMAT_VERSION})",
                self.version
            ));
        }
        let mut seen = [false; 3];
        for d in self.axes {
            if std::mem::replace(&mut seen[d.patient_axis()], true) {
                return Err(format!(
                    "axes {:?} name the same patient axis twice; give one of R/L, A/P and S/I each",
                    self.axes
                ));
            }
        }
        if self
            .spacing_mm
            .iter()
            .any(|s| !s.is_finite() || *s <= 0.0 || *s > 100.0)
        {
            return Err(format!(
                "spacing_mm {:?} must be positive and at most 100 mm",
                self.spacing_mm
            ));
        }
        if self
            .patch_size
            .iter()
            .any(|&p| p == 0 || p > MAX_PATCH_EDGE)
        {
            return Err(format!(
                "patch_size {:?} must be between 1 and {MAX_PATCH_EDGE} voxels per axis",
                self.patch_size
            ));
        }
        if !(self.step_fraction > 0.0 && self.step_fraction <= 1.0) {
            return Err(format!(
                "step_fraction {} must be in (0, 1]",
                self.step_fraction
            ));
        }
        self.normalization.validate()?;
        let mut mirrored = [false; 3];
        for &a in &self.mirror_axes {
            if a > 2 || std::mem::replace(&mut mirrored[a], true) {
                return Err(format!(
                    "mirror_axes {:?} must list distinct array axes among 0, 1, 2",
                    self.mirror_axes
                ));
            }
        }
        if self.classes.len() < 2 {
            return Err(format!(
                "classes lists {} class(es); a segmentation model has background and at least one class",
                self.classes.len()
            ));
        }
        let n = self.classes.len();
        if n > MAX_CLASSES {
            return Err(format!(
                "classes lists {n} output channels; twinray segments with at most {MAX_CLASSES} (background included): the arg-max is kept as one byte per voxel"
            ));
        }
        let mut channels = vec![false; n];
        let mut ids = std::collections::HashSet::new();
        for c in &self.classes {
            if c.channel >= n || std::mem::replace(&mut channels[c.channel], true) {
                return Err(format!(
                    "class '{}': channel {} is out of range or repeated; channels must be 0..{} once each",
                    c.name,
                    c.channel,
                    n - 1
                ));
            }
            if !ids.insert(c.id) {
                return Err(format!("class '{}': label id {} is repeated", c.name, c.id));
            }
            if c.name.trim().is_empty() {
                return Err(format!("class with channel {} has no name", c.channel));
            }
        }
        Ok(())
    }

    /// Label id written for each output channel, by channel.
    pub fn ids_by_channel(&self) -> Vec<u16> {
        let mut ids = vec![0; self.classes.len()];
        for c in &self.classes {
            ids[c.channel] = c.id;
        }
        ids
    }
}

/// Reads a whole file, refusing one larger than `limit` bytes (a model or description path
/// pointing at something huge must not exhaust memory).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, InferenceError> {
    let io = |source| InferenceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limit {
        return Err(InferenceError::Description {
            path: path.to_path_buf(),
            problem: format!("{len} bytes is more than the {limit} bytes accepted"),
        });
    }
    std::fs::read(path).map_err(io)
}

/// The description expected beside an ONNX file: same name, `.json` instead of `.onnx`.
pub fn description_beside(onnx: &Path) -> PathBuf {
    onnx.with_extension("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"{
      "format": "twinray-segmentation-model", "version": 1,
      "name": "example", "onnx": "example.onnx",
      "axes": ["S", "A", "R"], "spacing_mm": [3.0, 3.0, 3.0], "patch_size": [112, 112, 128],
      "step_fraction": 0.5,
      "normalization": {"scheme": "ct", "clip_low": -1004.0, "clip_high": 1588.0,
                        "mean": -50.39, "std": 503.39},
      "mirror_axes": [],
      "classes": [{"channel": 0, "id": 0, "name": "background"},
                  {"channel": 1, "id": 5, "name": "liver"}],
      "description": "test"
    }"#;

    fn parse(text: &str) -> Result<ModelDescription, InferenceError> {
        ModelDescription::parse(text, Path::new("m.json"))
    }

    #[test]
    fn a_model_with_more_channels_than_a_byte_holds_is_refused() {
        let mut d = parse(EXAMPLE).expect("valid");
        d.classes = (0..=MAX_CLASSES)
            .map(|c| ModelClass {
                channel: c,
                id: u16::try_from(c).expect("small"),
                name: format!("class {c}"),
            })
            .collect();
        let e = d.validate().expect_err("257 channels");
        assert!(e.contains("257 output channels"), "{e}");
        d.classes.pop();
        d.validate().expect("256 channels fit");
    }

    #[test]
    fn parses_the_agreed_schema() {
        let d = parse(EXAMPLE).expect("valid");
        assert_eq!(d.axes, [Direction::S, Direction::A, Direction::R]);
        assert_eq!(d.patch_size, [112, 112, 128]);
        assert_eq!(d.ids_by_channel(), vec![0, 5]);
        assert!(d.input_name.is_none());
        assert_eq!(Direction::R.lps(), DVec3::NEG_X);
    }

    #[test]
    fn warns_only_when_the_scheme_does_not_fit_the_modality() {
        use twinray_volume::Modality;
        let ct = parse(EXAMPLE).expect("valid").normalization;
        assert!(ct.modality_warning(Modality::Ct).is_none());
        let why = ct.modality_warning(Modality::Mr).expect("CT model on MR");
        assert!(why.contains("Hounsfield"), "{why}");
        assert!(Normalization::ZScore
            .modality_warning(Modality::Mr)
            .is_none());
        let why = Normalization::ZScore
            .modality_warning(Modality::Ct)
            .expect("z-score model on CT");
        assert!(why.contains("MR model"), "{why}");
    }

    #[test]
    fn zscore_is_parsed_without_parameters() {
        let d = parse(&EXAMPLE.replace(
            r#"{"scheme": "ct", "clip_low": -1004.0, "clip_high": 1588.0,
                        "mean": -50.39, "std": 503.39}"#,
            r#"{"scheme": "zscore"}"#,
        ))
        .expect("valid");
        assert_eq!(d.normalization, Normalization::ZScore);
        let text = serde_json::to_string(&d.normalization).expect("serialise");
        assert_eq!(text, r#"{"scheme":"zscore"}"#);
        let e = parse(&EXAMPLE.replace(r#""scheme": "ct""#, r#""scheme": "mr""#))
            .expect_err("unknown scheme");
        assert!(e.to_string().contains("unknown variant `mr`"), "{e}");
    }

    #[test]
    fn zscore_uses_the_images_own_mean_and_population_std() {
        // numpy: v = [1, 2, 3, 4]; (v - v.mean()) / v.std() (ddof 0, std = sqrt(1.25)).
        let mut v = [1.0f32, 2.0, 3.0, 4.0];
        Normalization::ZScore.apply(&mut v);
        let s = 1.25f32.sqrt();
        for (got, want) in v.iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
            assert!((got - want).abs() < 1e-6, "{v:?}");
        }
        // No clipping: an outlier stays an outlier.
        let mut v = [0.0f32, 0.0, 0.0, 1000.0];
        Normalization::ZScore.apply(&mut v);
        assert!((v[3] - 3f32.sqrt()).abs() < 1e-5, "{v:?}");
    }

    #[test]
    fn zscore_of_a_flat_image_is_zero_not_nan() {
        // std 0 is replaced by 1e-8 as nnU-Net does: every voxel becomes 0.
        let mut v = [-47.0f32; 10];
        Normalization::ZScore.apply(&mut v);
        assert!(v.iter().all(|&x| x == 0.0), "{v:?}");
        let [_, _, mean, std] = Normalization::ZScore.parameters(&[]);
        assert_eq!((mean, std), (0.0, 1e-8));
    }

    #[test]
    fn zscore_keeps_the_spread_of_an_image_far_from_zero() {
        // One-pass E[v²] − E[v]² in f32 would lose this variance entirely.
        let mut v: Vec<f32> = (0..100_000).map(|i| 1.0e5 + (i % 2) as f32).collect();
        Normalization::ZScore.apply(&mut v);
        assert!(
            (v[0] + 1.0).abs() < 1e-3 && (v[1] - 1.0).abs() < 1e-3,
            "{:?}",
            &v[..2]
        );
    }

    #[test]
    fn ct_scheme_clips_then_standardises_with_the_given_statistics() {
        let n = Normalization::Ct {
            clip_low: -100.0,
            clip_high: 100.0,
            mean: 10.0,
            std: 20.0,
        };
        let mut v = [-1000.0f32, 30.0, 5000.0];
        n.apply(&mut v);
        assert_eq!(v, [-5.5, 1.0, 4.5]);
    }

    #[test]
    fn rejects_inconsistent_descriptions_naming_the_problem() {
        let cases = [
            (
                r#""axes": ["S", "A", "R"]"#,
                r#""axes": ["S", "I", "R"]"#,
                "same patient axis",
            ),
            (
                r#""axes": ["S", "A", "R"]"#,
                r#""axes": ["S", "A", "X"]"#,
                "unknown variant",
            ),
            (
                r#""patch_size": [112, 112, 128]"#,
                r#""patch_size": [0, 112, 128]"#,
                "patch_size",
            ),
            (
                r#""mirror_axes": []"#,
                r#""mirror_axes": [0, 3]"#,
                "mirror_axes",
            ),
            (r#""id": 5"#, r#""id": 0"#, "repeated"),
            (r#""channel": 1"#, r#""channel": 2"#, "channel 2"),
            (r#""std": 503.39"#, r#""std": 0.0"#, "std > 0"),
            (r#""version": 1"#, r#""version": 2"#, "version 2"),
            (r#""onnx": "example.onnx","#, "", "missing field `onnx`"),
        ];
        for (from, to, expected) in cases {
            let text = EXAMPLE.replace(from, to);
            assert_ne!(text, EXAMPLE, "{from}");
            let e = parse(&text).expect_err(to).to_string();
            assert!(e.contains(expected) && e.contains("m.json"), "{to}: {e}");
        }
    }
}
