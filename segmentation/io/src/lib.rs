//! From scanner files to volumes: DICOM series ([`dicom`]) and DICOM SEG, NIfTI, label-name
//! sidecars ([`LabelNames`]), and [`load_case`], the one way every front end loads a CT with
//! its labels.
//!
//! Readers take a path or bytes, return typed errors that name the file, and print nothing:
//! warnings come back to the caller. The grid types live in `twinray-volume` (re-exported here)
//! so that the renderer can use them without knowing any file format.

mod case;
pub mod dicom;
mod label_names;
mod nifti_io;
pub mod picture;

pub use case::{
    is_nifti, load_case, load_case_with, CaseError, CaseOptions, LoadedCase, SliceProgress,
};
pub use dicom::{load_series, scan, DicomError, GeometryPolicy, LoadOptions, LoadedSeries};
pub use label_names::{LabelNames, LabelNamesError};
pub use nifti_io::{
    ct_nifti_bytes, labels_nifti_bytes, read_ct, read_ct_bytes, read_labels, read_labels_bytes,
    write_ct, write_labels, NiftiError, MAX_OUTPUT_BYTES, MAX_VOXELS,
};
pub use picture::{load_picture, Picture, PictureError};
pub use twinray_volume::{
    CtVolume, Geometry, Intensity, LabelVolume, Modality, Volume, VolumeError, WindowSource,
};
