//! Loading a case as every front end does: a CT or MR image (NIfTI, or a DICOM folder or file)
//! and optionally its label map (NIfTI or DICOM SEG) on the image's own grid, with what the
//! image's values mean ([`Intensity`]: the modality and display window).
//!
//! The one place that decides which reader a path goes to and whether labels fit their CT, so
//! `render`, `replay`, `segment`, the studio window and VR agree. Nothing is printed: what a
//! user should know comes back as [`LoadedCase::warnings`], and the front end shows it.

use std::path::{Path, PathBuf};

use twinray_volume::{CtVolume, Intensity, LabelVolume, Modality};

use crate::dicom::{self, DicomError, GeometryPolicy, LoadOptions, PhilipsScale};
use crate::nifti_io::{read_ct, read_labels, NiftiError};

/// Called with (slices decoded, total) while a DICOM series decodes, from worker threads.
pub type SliceProgress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// An image and its labels, as read from disk.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// The image: HU on a CT, scanner units on an MR (see [`Self::intensity`]).
    pub ct: CtVolume,
    /// What the image's values mean: its modality (DICOM's Modality; for a NIfTI, which has
    /// none, the caller's choice, else 3D Slicer's range rule), range and display window.
    pub intensity: Intensity,
    /// Labels on the CT's grid (reordered onto it when stored in another axis order).
    pub labels: Option<LabelVolume>,
    /// What a user should know (resampled series, SEG segments left out), each naming its file.
    pub warnings: Vec<String>,
    /// Philips' private MR scale, when the image is a Philips DICOM series whose slices all
    /// carry the same one: [`PhilipsScale::floating_point`] turns the loaded (displayed)
    /// values into the scanner's floating-point values. The voxels stay displayed values.
    pub philips_scale: Option<PhilipsScale>,
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

/// How [`load_case_with`] reads a case.
#[derive(Clone, Copy, Default)]
pub struct CaseOptions<'a> {
    /// Called as DICOM slices decode.
    pub progress: Option<SliceProgress<'a>>,
    /// The image's modality when the user knows it: needed for a NIfTI (which does not say),
    /// and overrides a DICOM series' own Modality.
    pub modality: Option<Modality>,
    /// The DICOM SeriesNumber to load (`twinray info` lists them); `None` takes the series
    /// with the most slices.
    pub series_number: Option<i64>,
}

impl std::fmt::Debug for CaseOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseOptions")
            .field("modality", &self.modality)
            .field("series_number", &self.series_number)
            .finish_non_exhaustive()
    }
}

/// Loads the image at `ct` and the labels at `labels` ([`load_case_with`] with only a
/// progress callback).
///
/// # Errors
/// When a file cannot be read, or the labels are not on the image's grid.
pub fn load_case(
    ct: &Path,
    labels: Option<&Path>,
    progress: Option<SliceProgress<'_>>,
) -> Result<LoadedCase, CaseError> {
    load_case_with(
        ct,
        labels,
        &CaseOptions {
            progress,
            ..CaseOptions::default()
        },
    )
}

/// Loads the image at `ct` and the labels at `labels`. Folders, and files that are not NIfTI,
/// are read as DICOM (the series asked for, else the one with the most slices, resampled when
/// tilted or irregular).
///
/// The modality is the user's ([`CaseOptions::modality`]), else the DICOM series' own, else
/// (a NIfTI, or a DICOM modality twinray does not know) 3D Slicer's range rule
/// ([`Modality::guess_from_range`]). The display window is the DICOM file's first
/// WindowCenter/Width, else the voxels' 0.1–99.9th percentiles.
///
/// # Errors
/// When a file cannot be read, or the labels are not on the image's grid.
pub fn load_case_with(
    ct: &Path,
    labels: Option<&Path>,
    options: &CaseOptions<'_>,
) -> Result<LoadedCase, CaseError> {
    let mut warnings = Vec::new();
    let (ct_volume, dicom_modality, dicom_window, philips_scale) = if ct.is_dir() || !is_nifti(ct) {
        let load = LoadOptions {
            series_number: options.series_number,
            policy: GeometryPolicy::Resample,
            progress: options.progress,
        };
        let loaded = dicom::load_series(ct, &load).map_err(|source| CaseError::Dicom {
            path: ct.to_path_buf(),
            source,
        })?;
        warnings.extend(loaded.warnings);
        let first = loaded.series.slices.first();
        let modality = loaded.series.modality.clone();
        if options.modality.is_none() && Modality::from_dicom(&modality).is_none() {
            warnings.push(format!(
                "{}: DICOM modality '{modality}' is neither CT nor MR; its values are shown as \
                 their range suggests (pass the modality to choose)",
                ct.display()
            ));
        }
        (
            loaded.ct,
            Modality::from_dicom(&modality),
            first.and_then(|h| h.window),
            loaded.series.philips_scale().ok().flatten(),
        )
    } else {
        (read_ct(ct)?, None, None, None)
    };
    let modality = options.modality.or(dicom_modality).unwrap_or_else(|| {
        let (lo, hi) = ct_volume
            .voxels()
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        Modality::guess_from_range(lo, hi)
    });
    let intensity = Intensity::measure(modality, ct_volume.voxels(), dicom_window);
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
        intensity,
        labels: label_volume,
        warnings,
        philips_scale,
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
