//! DICOM SEG import: segments of a binary (1-bit packed) or fractional segmentation become
//! labels of a `LabelVolume` on the referenced CT's grid, each frame placed by its own
//! PlanePositionSequence so frame order in the file does not matter.
//!
//! The SEG is sampled at every CT voxel (nearest SEG pixel on the nearest SEG plane) rather
//! than its pixels pushed to their nearest CT voxel: a SEG coarser than its CT (a segmentation
//! made at half resolution, or on every other slice) would otherwise leave holes.

use std::collections::BTreeMap;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use glam::DVec3;
use twinray_volume::{Geometry, LabelVolume, Volume};

use super::header::{self, float, floats, frame_attr, int, items, tag_name, text, MAX_FRAMES};
use super::DicomError;
use crate::MAX_VOXELS;

/// One segment of a SEG object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// SegmentNumber, which becomes the label id.
    pub number: u16,
    /// SegmentLabel (the anatomy's name).
    pub label: String,
}

/// What a SEG import gives.
#[derive(Debug, Clone)]
pub struct SegImport {
    /// Labels on the CT's grid (0 = no segment; overlaps: the higher segment number wins).
    pub labels: LabelVolume,
    /// The segments, by number.
    pub segments: Vec<SegmentInfo>,
    /// Frames or pixels that fell outside the CT grid, etc.
    pub warnings: Vec<String>,
}

fn seg_err(path: &Path, detail: impl Into<String>) -> DicomError {
    DicomError::Segmentation {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Reads a DICOM SEG file and puts its segments on `ct_grid`: each CT voxel takes the label of
/// the nearest SEG pixel on the nearest SEG plane (see `place_on_grid`); a warning says so when
/// the SEG's pixels are not the CT's voxels.
pub fn read_seg(path: &Path, ct_grid: &Geometry) -> Result<SegImport, DicomError> {
    let obj = header::open_full(path)?;
    let modality = text(&obj, tags::MODALITY).unwrap_or_default();
    if modality != "SEG" {
        return Err(seg_err(
            path,
            format!("{} is '{modality}', not SEG", tag_name(tags::MODALITY)),
        ));
    }
    let need = |tag| {
        int(&obj, tag).ok_or_else(|| DicomError::MissingTag {
            path: path.to_owned(),
            tag: tag_name(tag),
        })
    };
    // Rows and Columns are US (1..=65535) and NumberOfFrames at most MAX_FRAMES, as for a CT,
    // so that the products below are bounded before they are formed.
    let rows = usize::from(header::required_dimension(&obj, path, tags::ROWS)?);
    let cols = usize::from(header::required_dimension(&obj, path, tags::COLUMNS)?);
    let bits = need(tags::BITS_ALLOCATED)?;
    let frames_raw = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    let frames = usize::try_from(frames_raw)
        .ok()
        .filter(|n| *n >= 1 && *n <= MAX_FRAMES as usize)
        .ok_or_else(|| {
            seg_err(
                path,
                format!("{} is {frames_raw}", tag_name(tags::NUMBER_OF_FRAMES)),
            )
        })?;
    let plane = rows * cols;
    let voxels = plane.checked_mul(frames).filter(|&v| v <= MAX_VOXELS);
    let Some(voxels) = voxels else {
        return Err(DicomError::TooLarge {
            path: path.to_owned(),
            what: format!("voxels in {frames} frames of {cols}x{rows}"),
            count: (plane as u64).saturating_mul(frames as u64),
            limit: MAX_VOXELS as u64,
        });
    };
    let fractional = text(&obj, tags::SEGMENTATION_TYPE).as_deref() == Some("FRACTIONAL");
    let threshold = if fractional {
        // Half the maximum: a voxel belongs to a segment when at least half of it is inside.
        float(&obj, tags::MAXIMUM_FRACTIONAL_VALUE).unwrap_or(255.0) / 2.0
    } else {
        0.5
    };
    match (bits, fractional) {
        (1, false) | (8, _) => {}
        _ => {
            return Err(seg_err(
                path,
                format!(
                    "{} is {bits}: SEG needs 1 (binary) or 8",
                    tag_name(tags::BITS_ALLOCATED)
                ),
            ))
        }
    }
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_owned();
    let native = matches!(
        ts.as_str(),
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2"
    );
    if !native {
        return Err(DicomError::UnsupportedTransferSyntax {
            path: path.to_owned(),
            name: super::transfer_syntax_name(&ts),
            uid: ts,
        });
    }
    let segments: Vec<SegmentInfo> = items(&obj, tags::SEGMENT_SEQUENCE)
        .ok_or_else(|| DicomError::MissingTag {
            path: path.to_owned(),
            tag: tag_name(tags::SEGMENT_SEQUENCE),
        })?
        .iter()
        .filter_map(|item| {
            let number = u16::try_from(int(item, tags::SEGMENT_NUMBER)?).ok()?;
            Some(SegmentInfo {
                number,
                label: text(item, tags::SEGMENT_LABEL).unwrap_or_default(),
            })
        })
        .collect();
    let pixel_element = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| DicomError::MissingPixelData {
            path: path.to_owned(),
        })?;
    let data = pixel_element
        .to_bytes()
        .map_err(|e| seg_err(path, format!("{}: {e}", tag_name(tags::PIXEL_DATA))))?;
    // Checked before any pixel is indexed: every index below is < voxels.
    let needed = if bits == 1 {
        voxels.div_ceil(8)
    } else {
        voxels
    };
    if data.len() < needed {
        return Err(seg_err(
            path,
            format!(
                "{} holds {} bytes, {frames} frames of {cols}x{rows} need {needed} (truncated)",
                tag_name(tags::PIXEL_DATA),
                data.len()
            ),
        ));
    }
    let pixel_on = |f: usize, n: usize| {
        let idx = f * plane + n;
        if bits == 1 {
            data[idx / 8] >> (idx % 8) & 1 == 1
        } else {
            f64::from(data[idx]) >= threshold
        }
    };
    let mut seg_frames = Vec::with_capacity(frames);
    for f in 0..frames {
        seg_frames.push(frame_geometry(&obj, path, f)?);
    }
    let placed = place_on_grid(&seg_frames, [cols, rows], ct_grid, pixel_on);
    let mut warnings = Vec::new();
    if placed.off_grid_frames > 0 {
        let [cx, cy, cz] = ct_grid.spacing_mm();
        let [dr, dc] = seg_frames[0].spacing;
        warnings.push(format!(
            "{} of {frames} frames are not on the CT's voxel grid (SEG pixels {dc:.3}x{dr:.3} mm, \
             CT voxels {cx:.3}x{cy:.3}x{cz:.3} mm, or shifted or tilted against them): each CT \
             voxel took the label of the nearest SEG pixel on the nearest SEG plane",
            placed.off_grid_frames
        ));
    }
    if placed.outside > 0 {
        warnings.push(format!(
            "{} segment pixels fall outside the CT grid",
            placed.outside
        ));
    }
    let labels = placed.labels;
    let labels = Volume::new(*ct_grid, labels).map_err(|source| DicomError::Volume {
        path: path.to_owned(),
        source,
    })?;
    Ok(SegImport {
        labels,
        segments,
        warnings,
    })
}

/// Where one SEG frame lies and which segment it holds.
struct SegFrame {
    segment: u16,
    /// Centre of its first pixel, LPS mm.
    origin: DVec3,
    /// Unit direction of increasing column (first IOP triplet) and row (second triplet).
    row_dir: DVec3,
    col_dir: DVec3,
    /// PixelSpacing: (between rows, between columns), mm.
    spacing: [f64; 2],
}

/// Reads and checks one frame's segment and plane (per-frame functional group first, then the
/// shared one): finite position, unit orthogonal directions, positive spacing.
fn frame_geometry(obj: &InMemDicomObject, path: &Path, f: usize) -> Result<SegFrame, DicomError> {
    let missing = |tag| DicomError::MissingTag {
        path: path.to_owned(),
        tag: format!("frame {f}: {}", tag_name(tag)),
    };
    let bad = |tag, detail: String| DicomError::BadValue {
        path: path.to_owned(),
        tag: format!("frame {f}: {}", tag_name(tag)),
        detail,
    };
    let segment = frame_attr(obj, f, tags::SEGMENT_IDENTIFICATION_SEQUENCE, |o| {
        int(o, tags::REFERENCED_SEGMENT_NUMBER)
    })
    .and_then(|n| u16::try_from(n).ok())
    .ok_or_else(|| missing(tags::REFERENCED_SEGMENT_NUMBER))?;
    let ipp = frame_attr(obj, f, tags::PLANE_POSITION_SEQUENCE, |o| {
        floats(o, tags::IMAGE_POSITION_PATIENT)
    })
    .filter(|v| v.len() >= 3)
    .ok_or_else(|| missing(tags::IMAGE_POSITION_PATIENT))?;
    let iop = frame_attr(obj, f, tags::PLANE_ORIENTATION_SEQUENCE, |o| {
        floats(o, tags::IMAGE_ORIENTATION_PATIENT)
    })
    .filter(|v| v.len() >= 6)
    .ok_or_else(|| missing(tags::IMAGE_ORIENTATION_PATIENT))?;
    let spacing = frame_attr(obj, f, tags::PIXEL_MEASURES_SEQUENCE, |o| {
        floats(o, tags::PIXEL_SPACING)
    })
    .filter(|v| v.len() >= 2)
    .ok_or_else(|| missing(tags::PIXEL_SPACING))?;
    let origin = DVec3::new(ipp[0], ipp[1], ipp[2]);
    if !origin.is_finite() {
        return Err(bad(tags::IMAGE_POSITION_PATIENT, format!("{ipp:?}")));
    }
    let r = DVec3::new(iop[0], iop[1], iop[2]);
    let c = DVec3::new(iop[3], iop[4], iop[5]);
    if !(r.is_finite() && c.is_finite())
        || r.length() < 0.5
        || c.length() < 0.5
        || r.normalize().dot(c.normalize()).abs() > 0.01
    {
        return Err(bad(
            tags::IMAGE_ORIENTATION_PATIENT,
            "row and column directions are not unit-length and orthogonal".into(),
        ));
    }
    let spacing = [spacing[0], spacing[1]];
    if !spacing.iter().all(|s| s.is_finite() && *s > 0.0) {
        return Err(bad(tags::PIXEL_SPACING, format!("{spacing:?}")));
    }
    Ok(SegFrame {
        segment,
        origin,
        row_dir: r.normalize(),
        col_dir: c.normalize(),
        spacing,
    })
}

/// Labels on the CT grid, and what the user should hear about the placement.
struct Placed {
    labels: Vec<u16>,
    off_grid_frames: usize,
    outside: usize,
}

/// The frames of one orientation and pixel spacing, as planes along their normal.
struct Stack<'f> {
    normal: DVec3,
    /// Planes by ascending position along `normal` (mm), each with its frames.
    planes: Vec<(f64, Vec<(usize, &'f SegFrame)>)>,
}

/// Groups frames by orientation and pixel spacing, then into planes along the normal (frames
/// within 0.01 mm of each other share a plane).
fn stacks(frames: &[SegFrame]) -> Vec<Stack<'_>> {
    let key = |f: &SegFrame| {
        let d = [f.row_dir, f.col_dir].map(|v| v.to_array().map(|x| (x * 1e3).round() as i64));
        let s = f.spacing.map(|x| (x * 1e4).round() as i64);
        (d, s)
    };
    let mut groups: BTreeMap<_, Vec<(usize, &SegFrame)>> = BTreeMap::new();
    for (n, f) in frames.iter().enumerate() {
        groups.entry(key(f)).or_default().push((n, f));
    }
    groups
        .into_values()
        .map(|mut list| {
            let normal = list[0].1.row_dir.cross(list[0].1.col_dir).normalize();
            let along = |f: &SegFrame| f.origin.dot(normal);
            list.sort_by(|a, b| along(a.1).total_cmp(&along(b.1)));
            let mut planes: Vec<(f64, Vec<(usize, &SegFrame)>)> = Vec::new();
            for (n, f) in list {
                let s = along(f);
                match planes.last_mut() {
                    Some((at, members)) if s - *at < 0.01 => members.push((n, f)),
                    _ => planes.push((s, vec![(n, f)])),
                }
            }
            Stack { normal, planes }
        })
        .collect()
}

/// Voxel indices `a..=b` whose centres lie in the continuous index range `lo..=hi`, within
/// `0..n`; `None` when there are none (or the range is not finite).
fn index_range(lo: f64, hi: f64, n: usize) -> Option<(usize, usize)> {
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    let a = (lo - 1e-9).ceil().max(0.0);
    let b = (hi + 1e-9).floor().min(n as f64 - 1.0);
    (a <= b).then_some((a as usize, b as usize))
}

/// Puts the SEG's frames on the CT grid by sampling the SEG at every CT voxel: each voxel takes
/// the label of the nearest SEG pixel on the nearest SEG plane (within half the SEG's plane
/// spacing, or half the CT voxel's depth along the SEG normal when that is larger or there is
/// one plane), so a SEG coarser than its CT leaves no holes and one on the CT's own grid is
/// copied exactly. Overlaps: the higher segment number wins.
///
/// `pixel_on(frame, row * cols + col)` says whether a SEG pixel is set.
fn place_on_grid(
    frames: &[SegFrame],
    [cols, rows]: [usize; 2],
    ct: &Geometry,
    pixel_on: impl Fn(usize, usize) -> bool,
) -> Placed {
    let voxel_from_patient = ct.voxel_from_patient();
    let [nx, ny, nz] = ct.dims;
    let mut labels = vec![0u16; ct.voxel_count()];
    let (mut off_grid_frames, mut outside) = (0, 0);
    // On the lattice: first pixel within 0.01 voxel of a voxel centre, pixel steps one voxel
    // along a CT axis (to 1e-4, so that drift over a whole frame stays far below a voxel).
    let near = |v: DVec3, tolerance: f64| (v - v.round()).abs().max_element() < tolerance;
    let unit_axis = |v: DVec3| near(v, 1e-4) && (v.length() - 1.0).abs() < 1e-4;
    let inside = |v: DVec3| {
        v.cmpge(DVec3::splat(-0.5)).all()
            && v.x < nx as f64 - 0.5
            && v.y < ny as f64 - 0.5
            && v.z < nz as f64 - 0.5
    };
    // Which SEG pixels fall outside the CT (a warning), and which frames are off its lattice.
    for (f, frame) in frames.iter().enumerate() {
        let origin = voxel_from_patient.transform_point3(frame.origin);
        let di = voxel_from_patient.transform_vector3(frame.row_dir * frame.spacing[1]);
        let dj = voxel_from_patient.transform_vector3(frame.col_dir * frame.spacing[0]);
        if !(near(origin, 0.01) && unit_axis(di) && unit_axis(dj)) {
            off_grid_frames += 1;
        }
        for n in (0..rows * cols).filter(|&n| pixel_on(f, n)) {
            let v = origin + di * (n % cols) as f64 + dj * (n / cols) as f64;
            if !inside(v) {
                outside += 1;
            }
        }
    }
    let patient_from_voxel = ct.patient_from_voxel;
    let axes = [
        patient_from_voxel.x_axis.truncate(),
        patient_from_voxel.y_axis.truncate(),
        patient_from_voxel.z_axis.truncate(),
    ];
    let ct_origin = patient_from_voxel.w_axis.truncate();
    let mut image = vec![0u16; rows * cols];
    for stack in stacks(frames) {
        let n = stack.normal;
        let positions: Vec<f64> = stack.planes.iter().map(|(s, _)| *s).collect();
        let steps: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
        let mut sorted = steps.clone();
        sorted.sort_by(f64::total_cmp);
        let seg_step = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let ct_depth: f64 = axes.iter().map(|a| a.dot(n).abs()).sum();
        let half = seg_step.max(ct_depth) / 2.0 * (1.0 + 1e-9) + 1e-9;
        for (p, (s, members)) in stack.planes.iter().enumerate() {
            // This plane's share of the normal: nearer to it than to its neighbours, and
            // within `half` of it.
            let lower = p
                .checked_sub(1)
                .map_or(s - half, |q| ((positions[q] + s) / 2.0).max(s - half));
            let upper = positions
                .get(p + 1)
                .map_or(s + half, |next| ((s + next) / 2.0).min(s + half));
            // Frames of one plane may still differ in their in-plane origin (to 0.01 mm): one
            // layer each.
            let mut layers: BTreeMap<[i64; 3], Vec<(usize, &SegFrame)>> = BTreeMap::new();
            for &(f, frame) in members {
                let key = frame.origin.to_array().map(|x| (x * 100.0).round() as i64);
                layers.entry(key).or_default().push((f, frame));
            }
            for layer in layers.values() {
                image.fill(0);
                for &(f, frame) in layer {
                    for px in (0..rows * cols).filter(|&px| pixel_on(f, px)) {
                        image[px] = image[px].max(frame.segment);
                    }
                }
                sample_layer(
                    layer[0].1,
                    n,
                    &image,
                    [cols, rows],
                    (lower, upper),
                    (ct_origin, axes, ct.dims),
                    &mut labels,
                );
            }
        }
    }
    Placed {
        labels,
        off_grid_frames,
        outside,
    }
}

/// Writes into `labels` the nearest pixel of `image` (a layer shaped like `frame`) at every CT
/// voxel whose position along the stack's normal `n` lies in `lower..upper` (mm).
fn sample_layer(
    frame: &SegFrame,
    n: DVec3,
    image: &[u16],
    [cols, rows]: [usize; 2],
    (lower, upper): (f64, f64),
    (ct_origin, axes, dims): (DVec3, [DVec3; 3], [usize; 3]),
    labels: &mut [u16],
) {
    let [dr, dc] = frame.spacing;
    // SEG coordinates (column, row, mm along the normal) are affine in the CT index.
    let to_seg = |v: DVec3| {
        DVec3::new(
            v.dot(frame.row_dir) / dc,
            v.dot(frame.col_dir) / dr,
            v.dot(n),
        )
    };
    let base = to_seg(ct_origin - frame.origin) + DVec3::new(0.0, 0.0, frame.origin.dot(n));
    let step = axes.map(to_seg);
    // The CT index box holding the layer's footprint between `lower` and `upper`.
    let (w, h) = (cols as f64 - 0.5, rows as f64 - 0.5);
    let corners = [lower, upper].into_iter().flat_map(|s| {
        [(-0.5, -0.5), (w, -0.5), (-0.5, h), (w, h)].map(|(c, r)| {
            frame.origin
                + frame.row_dir * (c * dc)
                + frame.col_dir * (r * dr)
                + n * (s - frame.origin.dot(n))
        })
    });
    let to_index = glam::DMat3::from_cols(axes[0], axes[1], axes[2]).inverse();
    let (mut lo, mut hi) = (DVec3::splat(f64::INFINITY), DVec3::splat(f64::NEG_INFINITY));
    for corner in corners {
        let v = to_index * (corner - ct_origin);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let [nx, ny, nz] = dims;
    let (Some((i0, i1)), Some((j0, j1)), Some((k0, k1))) = (
        index_range(lo.x, hi.x, nx),
        index_range(lo.y, hi.y, ny),
        index_range(lo.z, hi.z, nz),
    ) else {
        return;
    };
    for k in k0..=k1 {
        for j in j0..=j1 {
            let row_start = base + step[1] * j as f64 + step[2] * k as f64;
            for i in i0..=i1 {
                let v = row_start + step[0] * i as f64;
                if !(v.z >= lower && v.z < upper) {
                    continue;
                }
                let (c, r) = (v.x.round(), v.y.round());
                if c < 0.0 || r < 0.0 || c >= cols as f64 || r >= rows as f64 {
                    continue;
                }
                let label = image[r as usize * cols + c as usize];
                if label > 0 {
                    let slot = &mut labels[i + nx * (j + ny * k)];
                    *slot = (*slot).max(label);
                }
            }
        }
    }
}
