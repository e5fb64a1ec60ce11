//! Loading a case as every front end does: a CT (NIfTI, or a DICOM folder or file) and
//! optionally its label map (NIfTI or DICOM SEG) on the CT's own grid.
//!
//! The one place that decides which reader a path goes to and whether labels fit their CT, so
//! `render`, `replay`, `segment`, the studio window and VR agree. Nothing is printed: what a
//! user should know comes back as [`LoadedCase::warnings`], and the front end shows it.

use std::path::{Path, PathBuf};

use twinray_volume::{CtVolume, LabelVolume};

use crate::dicom::{self, DicomError, GeometryPolicy, LoadOptions};
use crate::nifti_io::{read_ct, read_labels, NiftiError};

/// Called with (slices decoded, total) while a DICOM series decodes, from worker threads.
pub type SliceProgress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// A CT and its labels, as read from disk.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// The CT in HU.
    pub ct: CtVolume,
    /// Labels on the CT's grid (reordered onto it when stored in another axis order).
    pub labels: Option<LabelVolume>,
    /// What a user should know (resampled series, SEG segments left out), each naming its file.
    pub warnings: Vec<String>,
}

/// Why a case could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// A NIfTI file could not be read.
    #[error(transparent)]
    Nifti(#[from] NiftiError),
    /// The CT's DICOM series could not be loaded.
    #[error("loading the DICOM series in {}: {source}", path.display())]
    Dicom {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        source: DicomError,
    },
    /// The DICOM SEG could not be placed on the CT.
    #[error("importing the DICOM SEG {}: {source}", path.display())]
    Seg {
        /// The SEG file.
        path: PathBuf,
        /// Why.
        source: DicomError,
    },
    /// A names sidecar was given where the label map belongs.
    #[error("{} holds label names; pass the label map itself (.nii.gz, or a DICOM SEG) as the labels", path.display())]
    NamesNotLabels {
        /// The `.tsv` file.
        path: PathBuf,
    },
    /// The labels are not on the CT's grid.
    #[error("{}: the label map's grid ({label_dims:?} voxels) is not the CT's ({ct_dims:?} voxels in {}), or is placed differently in the patient; labels must be on the CT's own grid", labels.display(), ct.display())]
    OtherGrid {
        /// The label map.
        labels: PathBuf,
        /// Its dimensions.
        label_dims: [usize; 3],
        /// The CT.
        ct: PathBuf,
        /// Its dimensions.
        ct_dims: [usize; 3],
    },
}

/// Whether a path names a NIfTI file (by name; the readers check the content).
#[must_use]
pub fn is_nifti(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

/// Loads the CT at `ct` and the labels at `labels`. Folders, and files that are not NIfTI,
/// are read as DICOM (the series with the most slices, resampled when tilted or irregular).
///
/// # Errors
/// When a file cannot be read, or the labels are not on the CT's grid.
pub fn load_case(
    ct: &Path,
    labels: Option<&Path>,
    progress: Option<SliceProgress<'_>>,
) -> Result<LoadedCase, CaseError> {
    let mut warnings = Vec::new();
    let ct_volume = if ct.is_dir() || !is_nifti(ct) {
        let options = LoadOptions {
            series_number: None,
            policy: GeometryPolicy::Resample,
            progress,
        };
        let loaded = dicom::load_series(ct, &options).map_err(|source| CaseError::Dicom {
            path: ct.to_path_buf(),
            source,
        })?;
        warnings.extend(loaded.warnings);
        loaded.ct
    } else {
        read_ct(ct)?
    };
    let label_volume = match labels {
        None => None,
        Some(path) if path.extension().is_some_and(|e| e == "tsv") => {
            return Err(CaseError::NamesNotLabels {
                path: path.to_path_buf(),
            });
        }
        // A DICOM SEG is placed on the CT's grid by its own frame positions.
        Some(path) if !is_nifti(path) => {
            let import =
                dicom::read_seg(path, ct_volume.geometry()).map_err(|source| CaseError::Seg {
                    path: path.to_path_buf(),
                    source,
                })?;
            warnings.extend(
                import
                    .warnings
                    .iter()
                    .map(|w| format!("{}: {w}", path.display())),
            );
            Some(import.labels)
        }
        Some(path) => Some(fit_to_ct(read_labels(path)?, path, &ct_volume, ct)?),
    };
    Ok(LoadedCase {
        ct: ct_volume,
        labels: label_volume,
        warnings,
    })
}

/// The labels on the CT's grid: as they are, or the same points stored in another axis order
/// (a LAS label map for an LPS CT) reordered. Anything else would need interpolation and is
/// refused.
fn fit_to_ct(
    labels: LabelVolume,
    labels_path: &Path,
    ct: &CtVolume,
    ct_path: &Path,
) -> Result<LabelVolume, CaseError> {
    if labels.geometry().same_grid(ct.geometry(), 0.01) {
        return Ok(labels);
    }
    labels
        .reindexed_onto(ct.geometry(), 0.01)
        .ok_or_else(|| CaseError::OtherGrid {
            labels: labels_path.to_path_buf(),
            label_dims: labels.geometry().dims,
            ct: ct_path.to_path_buf(),
            ct_dims: ct.geometry().dims,
        })
}
