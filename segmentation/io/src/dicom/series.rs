//! Finding the image series in a folder and working out where their slices lie.
//!
//! Slices are ordered by their position projected on the slice normal (never InstanceNumber or
//! file name, which exports get wrong), spacing comes from position differences (never
//! SliceThickness), and a gantry tilt or irregular spacing is detected here so that the loader
//! can resample (the default) or refuse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use glam::{DMat4, DVec3, DVec4};
use rayon::prelude::*;
use twinray_volume::Geometry;

use super::header::{self, is_image, tag_name, PhilipsScale, SliceHeader};
use super::pixels::transfer_syntax_name;
use super::DicomError;
use crate::MAX_VOXELS;

/// Most files a folder scan will look at (a bound on memory for headers).
pub const MAX_FILES: usize = 200_000;

/// Widest spread of slice positions a series may have, along the slice normal or in plane:
/// 10 m. A scanner's patient coordinates span a couple of metres (table travel included), so a
/// slice farther than this from the rest of its series has a corrupt ImagePositionPatient;
/// refusing it also keeps the grid arithmetic far from overflow (1e300 mm would give an
/// infinite or wrapped grid size).
const MAX_SPAN_MM: f64 = 10_000.0;

/// A file left out of every series, and why (shown by `twinray info`).
#[derive(Debug, Clone)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was left out, in words (no patient data).
    pub reason: String,
    /// True when the file looked like DICOM but could not be parsed (truncated or corrupted):
    /// loading refuses such folders rather than silently leaving a gap.
    pub corrupt: bool,
}

/// The image series of a folder, and the files that belong to none.
#[derive(Debug, Clone)]
pub struct FolderScan {
    /// What was scanned.
    pub root: PathBuf,
    /// Image series, ordered by series number.
    pub series: Vec<DicomSeries>,
    /// Files left out, with reasons.
    pub skipped: Vec<SkippedFile>,
}

/// One image series: its slices (or frames) in file order, not yet sorted.
#[derive(Debug, Clone)]
pub struct DicomSeries {
    /// SeriesNumber, when present.
    pub series_number: Option<i64>,
    /// SeriesDescription (may be empty).
    pub description: String,
    /// Modality.
    pub modality: String,
    /// One header per slice (per frame for multi-frame files).
    pub slices: Vec<SliceHeader>,
}

/// What to do when slices are not on a regular orthogonal grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeometryPolicy {
    /// Resample onto a regular grid orthogonal to the slices (linear between slices, bilinear
    /// within them), as dicom2nifti and most viewers do; the loader adds a warning saying so.
    #[default]
    Resample,
    /// Refuse with [`DicomError::NeedsResampling`].
    Refuse,
}

/// Where the slices of a series lie, and the regular grid they will be loaded onto.
#[derive(Debug, Clone)]
pub struct SeriesPlan {
    /// The grid of the loaded volume (LPS mm; i = column, j = row, k = slice along the normal).
    pub geometry: Geometry,
    /// Indices into [`DicomSeries::slices`], by ascending position along the slice normal.
    pub order: Vec<usize>,
    /// Median distance between neighbouring slices along the normal, mm.
    pub step_mm: f64,
    /// Angle between the slice stack's axis and the slice normal (gantry tilt), degrees.
    pub tilt_deg: f64,
    /// True when slice distances differ by more than 1 % (+5 µm), e.g. a missing slice.
    pub irregular_spacing: bool,
    /// True when voxels are interpolated rather than copied.
    pub resampled: bool,
    /// What a user should know about this series.
    pub warnings: Vec<String>,
    /// Per sorted slice: distance along the normal from the grid origin (mm), and its in-plane
    /// offset from the grid origin in pixels (columns, rows).
    pub(crate) slice_positions: Vec<(f64, f64, f64)>,
}

impl DicomSeries {
    /// `#N "description"` for messages.
    pub fn label(&self) -> String {
        let number = self
            .series_number
            .map_or_else(|| "(no number)".to_owned(), |n| n.to_string());
        format!("{number} \"{}\"", self.description)
    }

    /// Names of the transfer syntaxes used by its files.
    pub fn transfer_syntaxes(&self) -> Vec<String> {
        let mut uids: Vec<&str> = self
            .slices
            .iter()
            .map(|s| s.transfer_syntax_uid.as_str())
            .collect();
        uids.sort_unstable();
        uids.dedup();
        uids.iter().map(|u| transfer_syntax_name(u)).collect()
    }

    /// Philips' private MR scale of the series ([`PhilipsScale`]) when every slice carries
    /// the same one, so that one factor turns the whole loaded volume into floating-point
    /// values; `Err` with the slices' distinct scales when they differ (each slice then needs
    /// its own factor), `Ok(None)` when no slice has one.
    pub fn philips_scale(&self) -> Result<Option<PhilipsScale>, Vec<PhilipsScale>> {
        let mut distinct: Vec<PhilipsScale> = Vec::new();
        let mut without = false;
        for slice in &self.slices {
            match slice.philips_scale {
                Some(s) if !distinct.contains(&s) => distinct.push(s),
                Some(_) => {}
                None => without = true,
            }
        }
        match distinct.as_slice() {
            [] => Ok(None),
            [one] if !without => Ok(Some(*one)),
            _ => Err(distinct),
        }
    }

    /// Sorts the slices along their normal and works out the grid (see [`GeometryPolicy`]).
    pub fn plan(&self, policy: GeometryPolicy) -> Result<SeriesPlan, DicomError> {
        plan(self, policy)
    }
}

fn skipped(path: &Path, reason: impl Into<String>) -> SkippedFile {
    SkippedFile {
        path: path.to_owned(),
        reason: reason.into(),
        corrupt: false,
    }
}

fn list_files(root: &Path, out: &mut Vec<PathBuf>) -> Result<(), DicomError> {
    if root.is_file() {
        out.push(root.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(root).map_err(|source| DicomError::Io {
        path: root.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if out.len() > MAX_FILES {
            return Err(DicomError::TooLarge {
                path: root.to_owned(),
                what: "files under the folder".into(),
                count: out.len() as u64,
                limit: MAX_FILES as u64,
            });
        }
        if path.is_dir() {
            list_files(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one file's headers, or says why it belongs in no image series.
fn classify(path: &Path) -> Result<Vec<SliceHeader>, SkippedFile> {
    let obj = match header::open_header(path) {
        Ok(obj) => obj,
        Err(DicomError::NotDicom { .. }) => return Err(skipped(path, "not a DICOM file")),
        Err(e) => {
            return Err(SkippedFile {
                path: path.to_owned(),
                reason: format!("unreadable: {e}"),
                corrupt: true,
            })
        }
    };
    let modality = header::text(&obj, tags::MODALITY).unwrap_or_default();
    if modality == "SEG" {
        return Err(skipped(
            path,
            "DICOM SEG object (a segmentation, not an image series; import it with the CT)",
        ));
    }
    if !is_image(&obj) {
        return Err(skipped(
            path,
            format!("not an image (modality '{modality}', no Rows/Columns)"),
        ));
    }
    let headers = header::slice_headers(&obj, path).map_err(|e| skipped(path, format!("{e}")))?;
    let Some(first) = headers.first() else {
        return Err(skipped(path, "no frames"));
    };
    if first.is_localizer() {
        return Err(skipped(path, "localizer (ImageType LOCALIZER)"));
    }
    if first.samples_per_pixel != 1 {
        return Err(skipped(
            path,
            format!("colour image (SamplesPerPixel {})", first.samples_per_pixel),
        ));
    }
    if headers.iter().any(|h| {
        h.position_mm.is_none() || h.row_direction.is_none() || h.pixel_spacing_mm.is_none()
    }) {
        return Err(skipped(
            path,
            format!(
                "cannot be placed in a volume: no {}, {} or {}",
                tag_name(tags::IMAGE_POSITION_PATIENT),
                tag_name(tags::IMAGE_ORIENTATION_PATIENT),
                tag_name(tags::PIXEL_SPACING)
            ),
        ));
    }
    Ok(headers)
}

/// Orientation rounded for grouping (1e-3 ≈ 0.06°).
fn orientation_key(h: &SliceHeader) -> [i64; 6] {
    let r = h.row_direction.unwrap_or(DVec3::ZERO);
    let c = h.column_direction.unwrap_or(DVec3::ZERO);
    [r.x, r.y, r.z, c.x, c.y, c.z].map(|v| (v * 1000.0).round() as i64)
}

/// Scans a folder (recursively) or a single file, reading headers in parallel, and groups the
/// images into series by SeriesInstanceUID — or, when that is empty, by study, series number,
/// modality, frame of reference and matrix size.
pub fn scan(root: &Path) -> Result<FolderScan, DicomError> {
    let mut files = Vec::new();
    list_files(root, &mut files)?;
    let results: Vec<Result<Vec<SliceHeader>, SkippedFile>> =
        files.par_iter().map(|p| classify(p)).collect();
    let mut skipped_files = Vec::new();
    let mut groups: BTreeMap<String, Vec<SliceHeader>> = BTreeMap::new();
    for result in results {
        match result {
            Ok(headers) => {
                for h in headers {
                    let key = if h.series_uid.is_empty() {
                        format!(
                            "~{}|{:?}|{}|{}|{}x{}",
                            h.study_uid,
                            h.series_number,
                            h.modality,
                            h.frame_of_reference_uid,
                            h.columns,
                            h.rows
                        )
                    } else {
                        h.series_uid.clone()
                    };
                    groups.entry(key).or_default().push(h);
                }
            }
            Err(s) => skipped_files.push(s),
        }
    }
    let mut series = Vec::new();
    for (_, slices) in groups {
        // Slices whose orientation differs from the majority (a localizer without the
        // LOCALIZER flag, a reformat saved into the same series) cannot share its grid.
        let mut counts: BTreeMap<[i64; 6], usize> = BTreeMap::new();
        for s in &slices {
            *counts.entry(orientation_key(s)).or_default() += 1;
        }
        let majority = counts
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, _)| *k)
            .unwrap_or_default();
        let (keep, odd): (Vec<_>, Vec<_>) = slices
            .into_iter()
            .partition(|s| orientation_key(s) == majority);
        for s in odd {
            if s.frame == 0 {
                skipped_files.push(skipped(
                    &s.path,
                    "orientation unlike the rest of its series (ImageOrientationPatient)",
                ));
            }
        }
        let Some(first) = keep.first() else { continue };
        series.push(DicomSeries {
            series_number: first.series_number,
            description: first.series_description.clone(),
            modality: first.modality.clone(),
            slices: keep,
        });
    }
    series.sort_by_key(|s| (s.series_number.unwrap_or(i64::MAX), s.description.clone()));
    skipped_files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(FolderScan {
        root: root.to_owned(),
        series,
        skipped: skipped_files,
    })
}

fn check_same<T: PartialEq + std::fmt::Debug>(
    first: &SliceHeader,
    slice: &SliceHeader,
    tag: dicom_core::Tag,
    get: impl Fn(&SliceHeader) -> T,
) -> Result<(), DicomError> {
    let (a, b) = (get(first), get(slice));
    if a == b {
        Ok(())
    } else {
        Err(DicomError::InconsistentDimensions {
            path: slice.path.clone(),
            tag: tag_name(tag),
            expected: format!("{a:?}"),
            found: format!("{b:?}"),
        })
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// The slice farthest from the series' median position (`order`: slice indices sorted along
/// the normal; `along`: their positions along it, mm; `offsets`: in plane, pixels): the one to
/// name when positions are implausible.
fn outlier<'s>(
    series: &'s DicomSeries,
    order: &[usize],
    along: &[f64],
    offsets: &[(f64, f64)],
    [sx, sy]: [f64; 2],
) -> &'s SliceHeader {
    let mm: Vec<DVec3> = along
        .iter()
        .zip(offsets)
        .map(|(s, (u, v))| DVec3::new(u * sx, v * sy, *s))
        .collect();
    let centre = DVec3::new(
        median(&mm.iter().map(|p| p.x).collect::<Vec<_>>()),
        median(&mm.iter().map(|p| p.y).collect::<Vec<_>>()),
        median(&mm.iter().map(|p| p.z).collect::<Vec<_>>()),
    );
    // NaN distances (from infinite positions) count as the farthest.
    let farthest = mm
        .iter()
        .map(|p| {
            let d = p.distance(centre);
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(k, _)| k);
    &series.slices[order.get(farthest).copied().unwrap_or(0)]
}

/// Refuses a series whose slice positions spread wider than [`MAX_SPAN_MM`] (or are not
/// finite once differenced), naming the slice farthest from the others.
fn check_span(
    series: &DicomSeries,
    order: &[usize],
    along: &[f64],
    offsets: &[(f64, f64)],
    [sx, sy]: [f64; 2],
) -> Result<(), DicomError> {
    let extent = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        hi - lo
    };
    let spans = [
        extent(&mut along.iter().copied()),
        extent(&mut offsets.iter().map(|(u, _)| u * sx)),
        extent(&mut offsets.iter().map(|(_, v)| v * sy)),
    ];
    let ok = spans.iter().all(|s| s.is_finite() && *s <= MAX_SPAN_MM)
        && along.iter().all(|s| s.is_finite());
    if ok {
        return Ok(());
    }
    let widest = spans
        .iter()
        .map(|s| if s.is_nan() { f64::INFINITY } else { *s })
        .fold(0.0, f64::max);
    Err(DicomError::BadValue {
        path: outlier(series, order, along, offsets, [sx, sy])
            .path
            .clone(),
        tag: tag_name(tags::IMAGE_POSITION_PATIENT),
        detail: format!(
            "the slices of series {} spread over {widest:.3e} mm, more than the {MAX_SPAN_MM} mm \
             a patient's scan can span; this slice is the farthest from the others (is its \
             position corrupt, or is it from another acquisition?)",
            series.label()
        ),
    })
}

fn plan(series: &DicomSeries, policy: GeometryPolicy) -> Result<SeriesPlan, DicomError> {
    let slices = &series.slices;
    let Some(first) = slices.first() else {
        return Err(DicomError::NoSeries {
            dir: PathBuf::new(),
            skipped: 0,
        });
    };
    let missing = |tag| DicomError::MissingTag {
        path: first.path.clone(),
        tag: tag_name(tag),
    };
    let row_dir = first
        .row_direction
        .ok_or_else(|| missing(tags::IMAGE_ORIENTATION_PATIENT))?;
    let col_dir = first
        .column_direction
        .ok_or_else(|| missing(tags::IMAGE_ORIENTATION_PATIENT))?;
    let [sy, sx] = first
        .pixel_spacing_mm
        .ok_or_else(|| missing(tags::PIXEL_SPACING))?;
    for s in slices {
        check_same(first, s, tags::ROWS, |h| h.rows)?;
        check_same(first, s, tags::COLUMNS, |h| h.columns)?;
        check_same(first, s, tags::BITS_ALLOCATED, |h| h.bits_allocated)?;
        check_same(first, s, tags::PIXEL_SPACING, |h| {
            h.pixel_spacing_mm
                .map(|p| p.map(|v| (v * 1e4).round() as i64))
        })?;
        if s.position_mm.is_none() {
            return Err(DicomError::MissingTag {
                path: s.path.clone(),
                tag: tag_name(tags::IMAGE_POSITION_PATIENT),
            });
        }
    }
    let normal = row_dir.cross(col_dir).normalize();
    let pos = |i: usize| slices[i].position_mm.unwrap_or(DVec3::ZERO);
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by(|&a, &b| pos(a).dot(normal).total_cmp(&pos(b).dot(normal)));
    let p0 = pos(order[0]);
    let along: Vec<f64> = order.iter().map(|&i| (pos(i) - p0).dot(normal)).collect();
    // In-plane offsets of each slice from the first one, in pixels.
    let offsets: Vec<(f64, f64)> = order
        .iter()
        .map(|&i| {
            let d = pos(i) - p0;
            (d.dot(row_dir) / sx, d.dot(col_dir) / sy)
        })
        .collect();
    check_span(series, &order, &along, &offsets, [sx, sy])?;
    let steps: Vec<f64> = along.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, step) in steps.iter().enumerate() {
        if *step < 1e-3 {
            return Err(DicomError::DuplicateSlicePosition {
                first: slices[order[n]].path.clone(),
                second: slices[order[n + 1]].path.clone(),
                position_mm: pos(order[n]).dot(normal),
            });
        }
    }
    let mut warnings = Vec::new();
    let n = order.len();
    let step_mm = if n > 1 {
        median(&steps)
    } else {
        let thickness = first
            .slice_thickness_mm
            .filter(|t| *t > 0.0 && t.is_finite());
        if thickness.is_none() {
            warnings.push("single slice without SliceThickness: assuming 1 mm".into());
        }
        thickness.unwrap_or(1.0)
    };
    let irregular_spacing = steps
        .iter()
        .any(|s| (s - step_mm).abs() > 0.01 * step_mm + 0.005);
    let max_shift_px = offsets.iter().map(|(u, v)| u.hypot(*v)).fold(0.0, f64::max);
    let tilted = max_shift_px > 0.05;
    let tilt_deg = if n > 1 {
        let d = pos(order[n - 1]) - p0;
        let inplane = (d - normal * d.dot(normal)).length();
        inplane.atan2(d.dot(normal)).to_degrees()
    } else {
        0.0
    };
    let mut reasons = Vec::new();
    if tilted {
        reasons.push(format!(
            "gantry tilt of {tilt_deg:.2}° (slices shifted by up to {max_shift_px:.1} pixels in plane)"
        ));
    }
    if irregular_spacing {
        let (lo, hi) = steps.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), s| {
            (lo.min(*s), hi.max(*s))
        });
        reasons.push(format!(
            "irregular slice spacing ({lo:.3}…{hi:.3} mm, median {step_mm:.3} mm)"
        ));
    }
    let resampled = !reasons.is_empty();
    if resampled && policy == GeometryPolicy::Refuse {
        return Err(DicomError::NeedsResampling {
            series: series.label(),
            reason: reasons.join(" and "),
        });
    }
    let (dims, origin, k_step, slice_positions) = if resampled {
        let (umin, umax, vmin, vmax) = offsets.iter().fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), (u, v)| (a.min(*u), b.max(*u), c.min(*v), d.max(*v)),
        );
        // Whole pixels only, so untilted series keep their in-plane sampling.
        let (umin, vmin) = (umin.floor(), vmin.floor());
        // Sizes in f64 first: check_span bounds them, and the voxel count is checked before
        // any conversion to usize, so nothing here can wrap.
        let nx_f = f64::from(first.columns) + (umax - umin).ceil();
        let ny_f = f64::from(first.rows) + (vmax - vmin).ceil();
        let span = along[n - 1];
        let nk_f = (span / step_mm).round() + 1.0;
        let limit = 4.0 * n as f64 + 4.0;
        if !(nk_f.is_finite() && nk_f <= limit) {
            return Err(DicomError::TooLarge {
                path: first.path.clone(),
                what: "slices after resampling".into(),
                count: nk_f as u64,
                limit: limit as u64,
            });
        }
        let voxels = nx_f * ny_f * nk_f;
        if !(voxels.is_finite() && voxels <= MAX_VOXELS as f64) {
            return Err(DicomError::BadValue {
                path: outlier(series, &order, &along, &offsets, [sx, sy])
                    .path
                    .clone(),
                tag: tag_name(tags::IMAGE_POSITION_PATIENT),
                detail: format!(
                    "the slices of series {} are shifted so far from each other that a regular \
                     grid holding them all would be {nx_f:.0}x{ny_f:.0}x{nk_f:.0} voxels, more \
                     than the limit of {MAX_VOXELS}; this slice is the farthest from the others \
                     (is its position corrupt, or is it from another acquisition?)",
                    series.label()
                ),
            });
        }
        let (nx, ny, nk) = (nx_f as usize, ny_f as usize, nk_f as usize);
        let k_step = if nk > 1 {
            span / (nk - 1) as f64
        } else {
            step_mm
        };
        warnings.push(format!(
            "{}: resampled onto a regular orthogonal grid ({nx}x{ny}x{nk}, {k_step:.3} mm between slices)",
            reasons.join(" and ")
        ));
        let origin = p0 + row_dir * (umin * sx) + col_dir * (vmin * sy);
        let positions = along
            .iter()
            .zip(&offsets)
            .map(|(s, (u, v))| (*s, u - umin, v - vmin))
            .collect();
        ([nx, ny, nk], origin, k_step, positions)
    } else {
        let k_step = if n > 1 {
            along[n - 1] / (n - 1) as f64
        } else {
            step_mm
        };
        let positions = along.iter().map(|s| (*s, 0.0, 0.0)).collect();
        (
            [usize::from(first.columns), usize::from(first.rows), n],
            p0,
            k_step,
            positions,
        )
    };
    if let Some(t) = first.slice_thickness_mm {
        if n > 1 && (t - k_step).abs() > 0.01 * k_step + 0.005 {
            warnings.push(format!(
                "SliceThickness says {t:.3} mm but positions step {k_step:.3} mm (positions used)"
            ));
        }
    }
    let patient_from_voxel = DMat4::from_cols(
        (row_dir * sx).extend(0.0),
        (col_dir * sy).extend(0.0),
        (normal * k_step).extend(0.0),
        DVec4::new(origin.x, origin.y, origin.z, 1.0),
    );
    let geometry =
        Geometry::new(dims, patient_from_voxel).map_err(|source| DicomError::Volume {
            path: first.path.clone(),
            source,
        })?;
    Ok(SeriesPlan {
        geometry,
        order,
        step_mm,
        tilt_deg,
        irregular_spacing,
        resampled,
        warnings,
        slice_positions,
    })
}
