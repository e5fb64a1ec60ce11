//! DICOM CT and MR series: discovery in a folder, slice ordering, patient geometry, decoding
//! to values (HU on a CT, the scanner's rescaled units on an MR).
//!
//! dicom-rs parses files and decodes codecs (uncompressed, deflate, RLE, JPEG baseline and
//! lossless, JPEG-LS through `charls`, JPEG 2000 through OpenJPEG via `openjpeg-sys`: the C
//! library the peers use, about twice as fast here as the pure-Rust `openjp2` port); everything
//! above a single frame — grouping files into series, ordering slices, geometry, resampling, rescale and
//! padding, DICOM SEG — is done here.
//!
//! Geometry policy: slices are sorted by position along the slice normal; when the stack is
//! tilted (gantry tilt) or irregularly spaced, the series is **resampled** onto a regular grid
//! orthogonal to the slices by default (linear along the normal, bilinear in plane, air outside
//! the data) and a warning says so; [`GeometryPolicy::Refuse`] refuses instead.
//!
//! Memory: files are decoded in parallel on rayon's pool, each worker holding one file at a
//! time, straight into the output volume; resampling needs a second volume.

mod burned_in;
mod error;
mod header;
mod pixels;
mod radiograph;
mod resample;
mod seg;
mod series;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use twinray_volume::{CtVolume, Volume};

pub use burned_in::burned_in_annotation;
pub use error::DicomError;
pub use header::{
    PhilipsScale, SliceHeader, MAX_FRAMES, PHILIPS_SCALE_INTERCEPT, PHILIPS_SCALE_SLOPE,
};
pub use pixels::{transfer_syntax_name, PADDING_HU};
pub use radiograph::{load_radiograph, ImageSpacing, Radiograph, MAX_SIDE as MAX_RADIOGRAPH_SIDE};
pub use seg::{read_seg, SegImport, SegmentInfo};
pub use series::{
    scan, DicomSeries, FolderScan, GeometryPolicy, SeriesPlan, SkippedFile, MAX_FILES,
};

use crate::MAX_VOXELS;

/// How to load a series.
#[derive(Default, Clone, Copy)]
pub struct LoadOptions<'a> {
    /// SeriesNumber to load; `None` loads the series with the most slices.
    pub series_number: Option<i64>,
    /// Resample or refuse tilted and irregular series.
    pub policy: GeometryPolicy,
    /// Called with (slices decoded, total) as decoding progresses, from worker threads.
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

impl std::fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("series_number", &self.series_number)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A loaded series and what a user should know about it.
#[derive(Debug, Clone)]
pub struct LoadedSeries {
    /// The volume on its patient grid: HU on a CT, rescaled scanner units on an MR.
    pub ct: CtVolume,
    /// The series it came from (slice headers included).
    pub series: DicomSeries,
    /// Warnings: tilt, irregular spacing, resampling, other series left out.
    pub warnings: Vec<String>,
    /// Files of the folder that belong to no series.
    pub skipped: Vec<SkippedFile>,
}

/// Picks a series from a scan: the numbered one, or the one with the most slices.
pub fn select_series(
    scan: &FolderScan,
    series_number: Option<i64>,
) -> Result<&DicomSeries, DicomError> {
    let corrupt = scan.skipped.iter().find(|s| s.corrupt);
    if let Some(bad) = corrupt {
        // A corrupted slice would leave a silent gap in whichever series it belonged to.
        return Err(DicomError::Parse {
            path: bad.path.clone(),
            message: bad.reason.clone(),
        });
    }
    match series_number {
        Some(n) => scan
            .series
            .iter()
            .find(|s| s.series_number == Some(n))
            .ok_or_else(|| DicomError::SeriesNotFound {
                dir: scan.root.clone(),
                requested: n,
                available: scan
                    .series
                    .iter()
                    .map(DicomSeries::label)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        None => scan
            .series
            .iter()
            .rev()
            .max_by_key(|s| s.slices.len())
            .ok_or_else(|| DicomError::NoSeries {
                dir: scan.root.clone(),
                skipped: scan.skipped.len(),
            }),
    }
}

/// Loads a CT or MR series from a folder (searched recursively) or a single (multi-frame) file.
pub fn load_series(path: &Path, options: &LoadOptions<'_>) -> Result<LoadedSeries, DicomError> {
    let scan = scan(path)?;
    let series = select_series(&scan, options.series_number)?;
    let mut loaded = load_scanned(series, options)?;
    if options.series_number.is_none() && scan.series.len() > 1 {
        loaded.warnings.push(format!(
            "the folder holds {} series; loaded {} (the one with most slices)",
            scan.series.len(),
            series.label()
        ));
    }
    loaded.skipped = scan.skipped;
    Ok(loaded)
}

/// One file to decode: its frames and the output planes they go to.
type FileJob<'h, 'o> = (PathBuf, Vec<(&'h SliceHeader, &'o mut [f32])>);

/// Loads one series found by [`scan`].
pub fn load_scanned(
    series: &DicomSeries,
    options: &LoadOptions<'_>,
) -> Result<LoadedSeries, DicomError> {
    let plan = series.plan(options.policy)?;
    let first = &series.slices[plan.order[0]];
    let plane = usize::from(first.columns) * usize::from(first.rows);
    let n = plan.order.len();
    // The plan bounds its own grid; the stack of decoded slices is bounded here, with checked
    // arithmetic since a folder may hold up to MAX_FILES files of MAX_FRAMES frames.
    let out_voxels = plan.geometry.voxel_count();
    for count in [plane.checked_mul(n), Some(out_voxels)] {
        if count.is_none_or(|c| c > MAX_VOXELS) {
            return Err(DicomError::TooLarge {
                path: first.path.clone(),
                what: "voxels".into(),
                count: count.map_or(u64::MAX, |c| c as u64),
                limit: MAX_VOXELS as u64,
            });
        }
    }
    for &i in &plan.order {
        pixels::check_transfer_syntax(&series.slices[i])?;
    }
    let mut stack = vec![0f32; plane * n];
    // Work items: one per file, each with its frames and their output planes.
    let mut planes: Vec<Option<&mut [f32]>> = stack.chunks_mut(plane).map(Some).collect();
    let mut by_file: Vec<FileJob<'_, '_>> = Vec::new();
    for (k, &i) in plan.order.iter().enumerate() {
        let h = &series.slices[i];
        let Some(out) = planes[k].take() else {
            continue;
        };
        match by_file.iter_mut().find(|(p, _)| *p == h.path) {
            Some((_, list)) => list.push((h, out)),
            None => by_file.push((h.path.clone(), vec![(h, out)])),
        }
    }
    let done = AtomicUsize::new(0);
    by_file
        .into_par_iter()
        .try_for_each(|(path, frames)| -> Result<(), DicomError> {
            let count = frames.len();
            let obj = header::open_full(&path)?;
            frames
                .into_par_iter()
                .try_for_each(|(h, out)| pixels::decode_frame_hu(&obj, h, out))?;
            let now = done.fetch_add(count, Ordering::Relaxed) + count;
            if let Some(progress) = options.progress {
                progress(now, n);
            }
            Ok(())
        })?;
    let voxels = if plan.resampled {
        resample::resample(
            &stack,
            [usize::from(first.columns), usize::from(first.rows)],
            &plan,
            first.background(),
        )
    } else {
        stack
    };
    let ct = Volume::new(plan.geometry, voxels).map_err(|source| DicomError::Volume {
        path: first.path.clone(),
        source,
    })?;
    Ok(LoadedSeries {
        ct,
        series: series.clone(),
        warnings: plan.warnings,
        skipped: Vec::new(),
    })
}

/// Decodes every frame of one file to HU (i fastest, then j, then frame), without any series
/// logic: for checking codecs and single images. Returns (columns, rows, frames) and the values.
pub fn read_frames_hu(path: &Path) -> Result<([usize; 3], Vec<f32>), DicomError> {
    let obj = header::open_full(path)?;
    let headers = header::slice_headers(&obj, path)?;
    let Some(first) = headers.first() else {
        return Err(DicomError::MissingPixelData {
            path: path.to_owned(),
        });
    };
    // Rows and Columns are at least 1 (checked by `slice_headers`), so `plane` is never 0.
    let plane = usize::from(first.columns) * usize::from(first.rows);
    let count = plane.checked_mul(headers.len());
    if count.is_none_or(|c| c > MAX_VOXELS) {
        return Err(DicomError::TooLarge {
            path: path.to_owned(),
            what: "voxels".into(),
            count: count.map_or(u64::MAX, |c| c as u64),
            limit: MAX_VOXELS as u64,
        });
    }
    let mut out = vec![0f32; plane * headers.len()];
    for (h, chunk) in headers.iter().zip(out.chunks_mut(plane)) {
        pixels::decode_frame_hu(&obj, h, chunk)?;
    }
    Ok((
        [
            usize::from(first.columns),
            usize::from(first.rows),
            headers.len(),
        ],
        out,
    ))
}
