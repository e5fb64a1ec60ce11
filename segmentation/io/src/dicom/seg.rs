//! DICOM SEG import: segments of a binary (1-bit packed) or fractional segmentation become
//! labels of a `LabelVolume` on the referenced CT's grid, each frame placed by its own
//! PlanePositionSequence so frame order in the file does not matter.

use std::path::Path;

use dicom_dictionary_std::tags;
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

/// Reads a DICOM SEG file and puts its segments on `ct_grid` (nearest voxel).
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
    let voxel_from_patient = ct_grid.voxel_from_patient();
    let [nx, ny, nz] = ct_grid.dims;
    let mut labels = vec![0u16; ct_grid.voxel_count()];
    let mut off_grid_frames = 0usize;
    let mut outside = 0usize;
    for f in 0..frames {
        let segment = frame_attr(&obj, f, tags::SEGMENT_IDENTIFICATION_SEQUENCE, |o| {
            int(o, tags::REFERENCED_SEGMENT_NUMBER)
        })
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| DicomError::MissingTag {
            path: path.to_owned(),
            tag: format!("frame {f}: {}", tag_name(tags::REFERENCED_SEGMENT_NUMBER)),
        })?;
        let get3 =
            |group, tag| frame_attr(&obj, f, group, |o| floats(o, tag)).filter(|v| v.len() >= 3);
        let missing = |tag| DicomError::MissingTag {
            path: path.to_owned(),
            tag: format!("frame {f}: {}", tag_name(tag)),
        };
        let ipp = get3(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT)
            .ok_or_else(|| missing(tags::IMAGE_POSITION_PATIENT))?;
        let iop = frame_attr(&obj, f, tags::PLANE_ORIENTATION_SEQUENCE, |o| {
            floats(o, tags::IMAGE_ORIENTATION_PATIENT)
        })
        .filter(|v| v.len() >= 6)
        .ok_or_else(|| missing(tags::IMAGE_ORIENTATION_PATIENT))?;
        let spacing = frame_attr(&obj, f, tags::PIXEL_MEASURES_SEQUENCE, |o| {
            floats(o, tags::PIXEL_SPACING)
        })
        .filter(|v| v.len() >= 2)
        .ok_or_else(|| missing(tags::PIXEL_SPACING))?;
        let origin = voxel_from_patient.transform_point3(DVec3::new(ipp[0], ipp[1], ipp[2]));
        let di =
            voxel_from_patient.transform_vector3(DVec3::new(iop[0], iop[1], iop[2]) * spacing[1]);
        let dj =
            voxel_from_patient.transform_vector3(DVec3::new(iop[3], iop[4], iop[5]) * spacing[0]);
        if (origin.z - origin.z.round()).abs() > 0.1 || di.z.abs() > 1e-3 || dj.z.abs() > 1e-3 {
            off_grid_frames += 1;
        }
        for r in 0..rows {
            for c in 0..cols {
                let idx = f * plane + r * cols + c;
                let on = if bits == 1 {
                    data[idx / 8] >> (idx % 8) & 1 == 1
                } else {
                    f64::from(data[idx]) >= threshold
                };
                if !on {
                    continue;
                }
                let v = (origin + di * c as f64 + dj * r as f64).round();
                if v.x < 0.0 || v.y < 0.0 || v.z < 0.0 {
                    outside += 1;
                    continue;
                }
                let (i, j, k) = (v.x as usize, v.y as usize, v.z as usize);
                if i >= nx || j >= ny || k >= nz {
                    outside += 1;
                    continue;
                }
                let slot = &mut labels[ct_grid.linear_index(i, j, k)];
                *slot = (*slot).max(segment);
            }
        }
    }
    let mut warnings = Vec::new();
    if off_grid_frames > 0 {
        warnings.push(format!(
            "{off_grid_frames} frames do not lie on the CT's slices (placed at the nearest voxel)"
        ));
    }
    if outside > 0 {
        warnings.push(format!("{outside} segment pixels fall outside the CT grid"));
    }
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
