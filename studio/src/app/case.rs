//! The case open in the studio: the CT, its labels, and what the panels derive from them once
//! (which labels are present, the HU histogram, a de-identified content reference).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use twinray_segmentation::{CtVolume, LabelVolume};
use twinray_transfer_functions::{HU_MAX, HU_MIN};

/// Bins of the HU histogram shown under the transfer-function curve.
pub const HISTOGRAM_BINS: usize = 256;

/// The demo case shipped in `data/demo/` (a lumbar spine CT with vertebra labels).
pub fn demo_paths() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo");
    (
        root.join("example_ct.nii.gz"),
        root.join("spine_report_totalseg_vertebrae.nii.gz"),
    )
}

/// A loaded case and what the studio derives from it once.
#[derive(Debug)]
pub struct Case {
    /// Shown in the title bar: the file or folder name, never DICOM patient fields.
    pub name: String,
    /// The CT in HU (shared with the render thread).
    pub ct: Arc<CtVolume>,
    /// Its label map on the same grid, if any.
    pub labels: Option<Arc<LabelVolume>>,
    /// Label ids that occur in the label map (0 excluded), ascending.
    pub present_labels: Vec<u16>,
    /// Voxel counts over [`HU_MIN`, `HU_MAX`] in [`HISTOGRAM_BINS`] bins.
    pub histogram: Vec<u64>,
    /// Content reference written into lesson headers: identifies the case without naming the
    /// patient.
    pub case_ref: String,
}

impl Case {
    /// Wraps volumes already in memory.
    pub fn new(name: impl Into<String>, ct: CtVolume, labels: Option<LabelVolume>) -> Self {
        let mut seen = [false; 65536];
        if let Some(l) = &labels {
            for &v in l.voxels() {
                seen[usize::from(v)] = true;
            }
        }
        let present_labels = (1..=u16::MAX).filter(|&id| seen[usize::from(id)]).collect();
        let mut histogram = vec![0u64; HISTOGRAM_BINS];
        for &hu in ct.voxels() {
            histogram[histogram_bin(hu)] += 1;
        }
        let mut hash = crc32c::crc32c(bytemuck::cast_slice(ct.voxels()));
        if let Some(l) = &labels {
            let bytes: Vec<u8> = l.voxels().iter().flat_map(|v| v.to_le_bytes()).collect();
            hash = crc32c::crc32c_append(hash, &bytes);
        }
        Self {
            name: name.into(),
            ct: Arc::new(ct),
            labels: labels.map(Arc::new),
            present_labels,
            histogram,
            case_ref: format!("crc32c:{hash:08x}"),
        }
    }

    /// Loads a CT (NIfTI file or DICOM folder) and optional labels, as `twinray render` does.
    pub fn load(ct: &Path, labels: Option<&Path>) -> Result<Self> {
        let (ct_volume, label_volume) = crate::render_cmd::load_case(ct, labels)
            .with_context(|| format!("opening the case {}", ct.display()))?;
        let name = ct.file_name().map_or_else(
            || ct.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self::new(name, ct_volume, label_volume))
    }

    /// The embedded demo case.
    pub fn demo() -> Result<Self> {
        let (ct, labels) = demo_paths();
        let mut case = Self::load(&ct, Some(&labels))?;
        case.name = "demo: lumbar spine".to_owned();
        Ok(case)
    }

    /// HU at the centre of histogram bin `bin`.
    pub fn histogram_hu(bin: usize) -> f32 {
        HU_MIN + (bin as f32 + 0.5) * (HU_MAX - HU_MIN) / HISTOGRAM_BINS as f32
    }
}

/// The histogram bin of a density (clamped to the lookup table's range).
pub fn histogram_bin(hu: f32) -> usize {
    let t = ((hu - HU_MIN) / (HU_MAX - HU_MIN)).clamp(0.0, 1.0);
    ((t * HISTOGRAM_BINS as f32) as usize).min(HISTOGRAM_BINS - 1)
}
