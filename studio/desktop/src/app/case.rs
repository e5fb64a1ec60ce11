//! The case open in the studio ([`twinray_scene::Case`]: volumes and content hash) and what the
//! panels derive from it once: which labels are present and the HU histogram.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use twinray_io::{CtVolume, Intensity, LabelNames, LabelVolume};
use twinray_transfer_functions::DensityRange;

/// Bins of the histogram shown under the transfer-function curve.
pub const HISTOGRAM_BINS: usize = 256;

/// A loaded case and what the studio derives from it once.
#[derive(Debug)]
pub struct OpenCase {
    /// Shown in the title bar: the file name or "demo", never DICOM patient fields.
    pub name: String,
    /// The image, HU on a CT, scanner units on an MR (shared with the render thread).
    pub ct: Arc<CtVolume>,
    /// What its values mean: modality, range, display window.
    pub intensity: Intensity,
    /// The values the renderer and the histogram span ([`DensityRange::of`] the image).
    pub range: DensityRange,
    /// Its label map on the same grid, if any.
    pub labels: Option<Arc<LabelVolume>>,
    /// Label ids that occur in the label map (0 excluded), ascending.
    pub present_labels: Vec<u16>,
    /// Voxel counts over [`Self::range`] in [`HISTOGRAM_BINS`] bins.
    pub histogram: Vec<u64>,
    /// Content hash written into lesson headers ([`twinray_scene::content_hash`]).
    pub case_ref: String,
    /// Names of the labels when they came from a model (its classes); `None`: the
    /// TotalSegmentator table names them.
    pub label_names: Option<LabelNames>,
}

impl OpenCase {
    /// Wraps volumes already in memory.
    pub fn new(name: impl Into<String>, ct: CtVolume, labels: Option<LabelVolume>) -> Self {
        Self::from_case(name, twinray_scene::Case::new(ct, labels, "memory"))
    }

    /// Derives the panels' data from a loaded case.
    pub fn from_case(name: impl Into<String>, case: twinray_scene::Case) -> Self {
        let present_labels = case.labels.as_ref().map_or_else(Vec::new, present_labels);
        let range = DensityRange::of(&case.intensity);
        let mut histogram = vec![0u64; HISTOGRAM_BINS];
        for &value in case.ct.voxels() {
            histogram[histogram_bin(range, value)] += 1;
        }
        Self {
            name: name.into(),
            ct: Arc::new(case.ct),
            intensity: case.intensity,
            range,
            labels: case.labels.map(Arc::new),
            present_labels,
            histogram,
            case_ref: case.case_ref,
            label_names: None,
        }
    }

    /// Replaces the label map (a segmentation of this CT) and the names of its labels.
    pub fn replace_labels(&mut self, labels: LabelVolume, names: LabelNames) {
        self.present_labels = present_labels(&labels);
        self.labels = Some(Arc::new(labels));
        self.label_names = Some(names);
    }

    /// Loads a CT (NIfTI file or DICOM folder) and optional labels, as `twinray render` does,
    /// with the loader's warnings.
    pub fn load(ct: &Path, labels: Option<&Path>) -> Result<(Self, Vec<String>)> {
        let (case, warnings) = twinray_scene::Case::load(ct, labels, None)?;
        Ok((Self::from_case(file_name(ct), case), warnings))
    }

    /// The demo case embedded in the binary.
    pub fn demo() -> Result<Self> {
        Ok(Self::from_case(
            "demo: lumbar spine",
            twinray_scene::Case::demo()?,
        ))
    }

    /// Whether a lesson's `case_ref` names this case, by the current hash or the first one
    /// (as `twinray_scene::Case::is_named_by`).
    pub fn is_named_by(&self, case_ref: &str) -> bool {
        self.case_ref == case_ref
            || twinray_scene::content_hash_as(
                twinray_scene::HashVersion::V1,
                &self.ct,
                self.labels.as_deref(),
            ) == case_ref
    }

    /// The value at the centre of histogram bin `bin`.
    pub fn histogram_value(&self, bin: usize) -> f32 {
        let r = self.range;
        r.low + (bin as f32 + 0.5) * (r.high - r.low) / HISTOGRAM_BINS as f32
    }
}

/// The title-bar name of a case file: its file name, never DICOM patient fields.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Label ids that occur in a label map (0 excluded), ascending.
fn present_labels(labels: &LabelVolume) -> Vec<u16> {
    let mut seen = vec![false; 65536];
    for &v in labels.voxels() {
        seen[usize::from(v)] = true;
    }
    (1..=u16::MAX).filter(|&id| seen[usize::from(id)]).collect()
}

/// The histogram bin of a value (clamped to the lookup table's range).
pub fn histogram_bin(range: DensityRange, value: f32) -> usize {
    let t = range.normalise(value);
    ((t * HISTOGRAM_BINS as f32) as usize).min(HISTOGRAM_BINS - 1)
}
