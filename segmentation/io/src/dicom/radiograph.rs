//! A 2D radiograph (DICOM CR, DX, or any single-frame greyscale image) as an instructor puts it
//! beside the twin: the picture as a radiologist's viewer shows it, its real size when the file
//! says it, and which way the patient faces in it.
//!
//! - Display: the rescale, then the first VOI window with DICOM's LINEAR function (PS3.3
//!   C.11.2.1.2.1), else the image's own range; MONOCHROME1 (minimum is white) and an INVERSE
//!   Presentation LUT Shape are inverted. 8 bits, rounded.
//! - Size: Pixel Spacing (0028,0030) when it holds two positive numbers (calibrated at the
//!   patient), else Imager Pixel Spacing (0018,1164) ("size at the detector": magnified by the
//!   beam's divergence), else unknown. A `0\0` spacing, as some CR plates write, is unknown.
//! - Orientation: Patient Orientation (0020,0020), the patient directions of the rows and the
//!   columns (e.g. `L\F` for a PA chest: rows run to the patient's left, columns to the feet).

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_pixeldata::PixelDecoder;

use super::header::{float, floats, int, open_full, required_dimension, tag_name, text};
use super::DicomError;

/// The largest radiograph read: 16384 pixels a side (a 43 cm plate at 0.05 mm is 8600).
pub const MAX_SIDE: u32 = 16_384;

/// How large a pixel is, and what the size means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImageSpacing {
    /// Calibrated at the patient (Pixel Spacing): row spacing (between rows, mm), column
    /// spacing (between columns, mm).
    AtPatient {
        /// Distance between rows, mm.
        row_mm: f64,
        /// Distance between columns, mm.
        column_mm: f64,
    },
    /// At the detector only (Imager Pixel Spacing): the patient's anatomy is smaller by the
    /// geometric magnification.
    AtDetector {
        /// Distance between rows, mm.
        row_mm: f64,
        /// Distance between columns, mm.
        column_mm: f64,
    },
    /// Not in the file (or zero): the board gets a nominal size.
    Unknown,
}

impl ImageSpacing {
    /// Words for a user: "0.200 × 0.200 mm per pixel at the patient", "… size at the
    /// detector", "unknown spacing".
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::AtPatient { row_mm, column_mm } => {
                format!("{row_mm:.3} × {column_mm:.3} mm per pixel at the patient")
            }
            Self::AtDetector { row_mm, column_mm } => {
                format!("{row_mm:.3} × {column_mm:.3} mm per pixel, size at the detector")
            }
            Self::Unknown => "unknown spacing".to_owned(),
        }
    }
}

/// A radiograph ready to show.
#[derive(Debug, Clone)]
pub struct Radiograph {
    /// The file.
    pub path: PathBuf,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// The displayed grey values, row by row (`width × height`).
    pub display: Vec<u8>,
    /// Its pixel size.
    pub spacing: ImageSpacing,
    /// Patient Orientation: the directions of the rows and of the columns (`L`, `F`, `A`, …).
    pub patient_orientation: Option<(String, String)>,
    /// The VOI window used (centre, width), `None` when the image's own range was.
    pub window: Option<(f64, f64)>,
    /// Whether the grey scale was inverted (MONOCHROME1 or an INVERSE Presentation LUT).
    pub inverted: bool,
    /// Burned In Annotation (0028,0301) says YES: patient text may be in the pixels.
    pub burned_in_annotation: bool,
}

impl Radiograph {
    /// Its physical size in mm (width, height), when the spacing is known.
    #[must_use]
    pub fn size_mm(&self) -> Option<(f64, f64)> {
        match self.spacing {
            ImageSpacing::AtPatient { row_mm, column_mm }
            | ImageSpacing::AtDetector { row_mm, column_mm } => Some((
                f64::from(self.width) * column_mm,
                f64::from(self.height) * row_mm,
            )),
            ImageSpacing::Unknown => None,
        }
    }
}

fn spacing_pair(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<(f64, f64)> {
    match floats(obj, tag).unwrap_or_default()[..] {
        [r, c] if r > 0.0 && c > 0.0 => Some((r, c)),
        _ => None,
    }
}

/// DICOM's LINEAR VOI function to 0…255 (PS3.3 C.11.2.1.2.1).
fn linear_voi(x: f64, centre: f64, width: f64) -> f64 {
    let (c, w) = (centre - 0.5, (width - 1.0).max(f64::EPSILON));
    if x <= c - w / 2.0 {
        0.0
    } else if x > c + w / 2.0 {
        255.0
    } else {
        ((x - c) / w + 0.5) * 255.0
    }
}

/// Reads a single-frame greyscale DICOM image as a radiograph to show.
///
/// # Errors
/// If the file is not DICOM, has no pixel data, is not greyscale, is larger than
/// [`MAX_SIDE`] a side, or its codec fails.
pub fn load_radiograph(path: &Path) -> Result<Radiograph, DicomError> {
    let obj = open_full(path)?;
    let bad = |tag: dicom_core::Tag, detail: String| DicomError::BadValue {
        path: path.to_path_buf(),
        tag: tag_name(tag),
        detail,
    };
    let side = |tag| -> Result<u32, DicomError> {
        let v = u32::from(required_dimension(&obj, path, tag)?);
        if v > MAX_SIDE {
            return Err(bad(tag, format!("{v} pixels (at most {MAX_SIDE})")));
        }
        Ok(v)
    };
    let (height, width) = (side(tags::ROWS)?, side(tags::COLUMNS)?);
    if int(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) != 1 {
        return Err(bad(
            tags::SAMPLES_PER_PIXEL,
            "a colour image: a radiograph board shows greyscale".to_owned(),
        ));
    }
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(DicomError::MissingPixelData {
            path: path.to_path_buf(),
        });
    }
    let photometric = text(&obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    // A codec bug on hostile input becomes an error naming the file (see pixels.rs).
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        obj.decode_pixel_data_frame(0)
    }))
    .map_err(|_| DicomError::Decode {
        path: path.to_path_buf(),
        frame: 0,
        message: "the codec failed on corrupted data".into(),
    })?
    .map_err(|e| DicomError::Decode {
        path: path.to_path_buf(),
        frame: 0,
        message: e.to_string(),
    })?;
    if decoded.rows() != height || decoded.columns() != width {
        return Err(DicomError::Decode {
            path: path.to_path_buf(),
            frame: 0,
            message: format!(
                "decoded {}x{} pixels, the header says {width}x{height}",
                decoded.columns(),
                decoded.rows()
            ),
        });
    }
    // Raw stored values, sign-extended per Bits Stored and Pixel Representation.
    let bits_allocated = int(&obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let bits_stored = int(&obj, tags::BITS_STORED)
        .unwrap_or(bits_allocated)
        .clamp(1, 32) as u32;
    let signed = int(&obj, tags::PIXEL_REPRESENTATION) == Some(1);
    let data = decoded.data();
    let n = width as usize * height as usize;
    let bytes = match bits_allocated {
        8 => 1,
        16 => 2,
        32 => 4,
        other => {
            return Err(bad(
                tags::BITS_ALLOCATED,
                format!("{other} bits (8, 16 or 32)"),
            ))
        }
    };
    if data.len() < n * bytes {
        return Err(DicomError::Decode {
            path: path.to_path_buf(),
            frame: 0,
            message: format!("{} bytes for {n} pixels", data.len()),
        });
    }
    let mask = if bits_stored >= 32 {
        u32::MAX
    } else {
        (1u32 << bits_stored) - 1
    };
    let raw = |i: usize| -> f64 {
        let v = match bytes {
            1 => u32::from(data[i]),
            2 => u32::from(u16::from_le_bytes([data[2 * i], data[2 * i + 1]])),
            _ => u32::from_le_bytes([
                data[4 * i],
                data[4 * i + 1],
                data[4 * i + 2],
                data[4 * i + 3],
            ]),
        } & mask;
        if signed && bits_stored < 32 && v & (1 << (bits_stored - 1)) != 0 {
            f64::from(v) - f64::from(1u32 << (bits_stored - 1)) * 2.0
        } else {
            f64::from(v)
        }
    };
    let slope = float(&obj, tags::RESCALE_SLOPE)
        .filter(|s| *s != 0.0 && s.is_finite())
        .unwrap_or(1.0);
    let intercept = float(&obj, tags::RESCALE_INTERCEPT)
        .filter(|i| i.is_finite())
        .unwrap_or(0.0);
    let values: Vec<f64> = (0..n).map(|i| raw(i) * slope + intercept).collect();
    let window = match (
        float(&obj, tags::WINDOW_CENTER),
        float(&obj, tags::WINDOW_WIDTH),
    ) {
        (Some(c), Some(w)) if c.is_finite() && w.is_finite() && w >= 1.0 => Some((c, w)),
        _ => None,
    };
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let inverted = (photometric == "MONOCHROME1")
        != (text(&obj, tags::PRESENTATION_LUT_SHAPE).as_deref() == Some("INVERSE"));
    let display = values
        .iter()
        .map(|&v| {
            let y = match window {
                Some((c, w)) => linear_voi(v, c, w),
                None if hi > lo => (v - lo) / (hi - lo) * 255.0,
                None => 0.0,
            };
            let y = if inverted { 255.0 - y } else { y };
            y.round().clamp(0.0, 255.0) as u8
        })
        .collect();
    let spacing = if let Some((r, c)) = spacing_pair(&obj, tags::PIXEL_SPACING) {
        ImageSpacing::AtPatient {
            row_mm: r,
            column_mm: c,
        }
    } else if let Some((r, c)) = spacing_pair(&obj, tags::IMAGER_PIXEL_SPACING) {
        ImageSpacing::AtDetector {
            row_mm: r,
            column_mm: c,
        }
    } else {
        ImageSpacing::Unknown
    };
    let patient_orientation = text(&obj, tags::PATIENT_ORIENTATION).and_then(|v| {
        let (r, c) = v.split_once('\\')?;
        Some((r.trim().to_owned(), c.trim().to_owned()))
    });
    Ok(Radiograph {
        path: path.to_path_buf(),
        width,
        height,
        display,
        spacing,
        patient_orientation,
        window,
        inverted,
        burned_in_annotation: text(&obj, tags::BURNED_IN_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("YES")),
    })
}
