//! From scanner data to a labelled twin: reading CT volumes and label maps with their patient
//! geometry, segmenting a CT with an ONNX model ([`inference`]), and label names.
//!
//! The shared grid types live in `twinray-volume` (re-exported here) so that the renderer can use
//! them without depending on file formats or inference.

pub mod dicom;
pub mod inference;
pub mod label_names;
mod nifti_io;

pub use dicom::{load_series, scan, DicomError, GeometryPolicy, LoadOptions, LoadedSeries};
pub use inference::{
    InferenceError, Model, ModelDescription, Progress, Runtime, SegmentOptions, Segmentation,
    Segmenter,
};
pub use label_names::{LabelNames, LabelNamesError};
pub use nifti_io::{read_ct, read_labels, write_ct, write_labels, NiftiError, MAX_VOXELS};
pub use twinray_volume::{CtVolume, Geometry, LabelVolume, Volume, VolumeError};
