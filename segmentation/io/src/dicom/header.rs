//! Reading the attributes a loader needs from one file's header, without its pixel data.
//!
//! A multi-frame (Enhanced CT) file yields one [`SliceHeader`] per frame, with geometry and
//! rescale taken from its per-frame functional group, falling back to the shared group: from
//! there on, classic and enhanced series are assembled by the same code.

use std::path::{Path, PathBuf};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::Tag;
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use glam::DVec3;
use twinray_volume::Modality;

use super::DicomError;

/// Most frames a single file may declare; bounds allocations made from NumberOfFrames.
pub const MAX_FRAMES: u32 = 65_536;

/// `Keyword (gggg,eeee)` for error messages.
pub(crate) fn tag_name(tag: Tag) -> String {
    let keyword = StandardDataDictionary
        .by_tag(tag)
        .map_or("UnknownTag", |e| e.alias());
    format!("{keyword} ({:04X},{:04X})", tag.group(), tag.element())
}

/// The technical attributes of one image (one file, or one frame of a multi-frame file).
///
/// Holds no patient-identifying attribute on purpose: what is not read cannot be leaked.
#[derive(Debug, Clone)]
pub struct SliceHeader {
    /// The file.
    pub path: PathBuf,
    /// Frame index within the file (0 for single-frame files).
    pub frame: u32,
    /// Transfer syntax UID of the file.
    pub transfer_syntax_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Modality (CT, MR, SEG…).
    pub modality: String,
    /// SeriesInstanceUID; empty strings are kept empty (some exports have them).
    pub series_uid: String,
    /// StudyInstanceUID (used only to group series whose SeriesInstanceUID is empty).
    pub study_uid: String,
    /// FrameOfReferenceUID.
    pub frame_of_reference_uid: String,
    /// SeriesNumber.
    pub series_number: Option<i64>,
    /// SeriesDescription.
    pub series_description: String,
    /// ImageType values, upper case.
    pub image_type: Vec<String>,
    /// Rows (pixels along j).
    pub rows: u16,
    /// Columns (pixels along i).
    pub columns: u16,
    /// Frames in the file.
    pub frames_in_file: u32,
    /// BitsAllocated.
    pub bits_allocated: u16,
    /// BitsStored.
    pub bits_stored: u16,
    /// HighBit.
    pub high_bit: u16,
    /// PixelRepresentation: true when stored values are two's-complement signed.
    pub signed: bool,
    /// SamplesPerPixel.
    pub samples_per_pixel: u16,
    /// ImagePositionPatient: centre of the first transmitted pixel, LPS mm.
    pub position_mm: Option<DVec3>,
    /// First ImageOrientationPatient triplet: direction of increasing column index (i).
    pub row_direction: Option<DVec3>,
    /// Second ImageOrientationPatient triplet: direction of increasing row index (j).
    pub column_direction: Option<DVec3>,
    /// PixelSpacing as (between rows, between columns), mm.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// SliceThickness, mm (informational; spacing comes from positions).
    pub slice_thickness_mm: Option<f64>,
    /// RescaleSlope (1 when absent).
    pub rescale_slope: f64,
    /// RescaleIntercept (0 when absent).
    pub rescale_intercept: f64,
    /// PixelPaddingValue and PixelPaddingRangeLimit, in stored-value units.
    pub padding: Option<(i64, Option<i64>)>,
    /// The first WindowCenter and WindowWidth (after rescale), when both are present.
    pub window: Option<[f64; 2]>,
    /// Manufacturer (0008,0070), e.g. `Philips Medical Systems` (empty when absent).
    pub manufacturer: String,
    /// Philips' private MR scale, read only from Philips files (see [`PhilipsScale`]).
    pub philips_scale: Option<PhilipsScale>,
}

/// MR Scale Slope (2005,100E).
pub const PHILIPS_SCALE_SLOPE: Tag = Tag(0x2005, 0x100E);
/// MR Scale Intercept (2005,100D).
pub const PHILIPS_SCALE_INTERCEPT: Tag = Tag(0x2005, 0x100D);
/// Philips' private per-frame sequence of Enhanced MR files that holds the scale slope.
const PHILIPS_PIXEL_VALUE_SEQUENCE: Tag = Tag(0x2005, 0x140F);

/// Philips' private MR scale: how the stored values relate to the floating-point values the
/// scanner computed. Philips MR images are stored as integers scaled for display; the DICOM
/// rescale gives the displayed value `DV = PV × RS + RI` (what twinray loads), and the
/// scanner's floating-point value is `FP = DV / (RS × SS)` (Philips' PAR/REC header formula,
/// the one dcm2niix applies). Only FP is comparable across images of a series whose scales
/// differ (quantitative maps, dynamics); DV is what the console shows, so twinray keeps
/// showing DV and only exposes the scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhilipsScale {
    /// MR Scale Slope (2005,100E), `SS`.
    pub scale_slope: f64,
    /// MR Scale Intercept (2005,100D), 0 when absent. Not part of Philips' documented formula
    /// (nor used by dcm2niix); reported, not applied.
    pub scale_intercept: f64,
    /// The image's RescaleSlope `RS` (1 when absent), which the formula divides out again.
    pub rescale_slope: f64,
}

impl PhilipsScale {
    /// The scanner's floating-point value of a loaded (rescaled, displayed) value:
    /// `DV / (RS × SS)`.
    #[must_use]
    pub fn floating_point(&self, displayed: f64) -> f64 {
        displayed / (self.rescale_slope * self.scale_slope)
    }

    /// The factor that turns a displayed value into the floating-point value, `1 / (RS × SS)`.
    #[must_use]
    pub fn factor(&self) -> f64 {
        1.0 / (self.rescale_slope * self.scale_slope)
    }
}

/// Whether the Manufacturer names Philips: their private tags mean something else elsewhere.
fn is_philips(manufacturer: &str) -> bool {
    manufacturer.to_ascii_lowercase().contains("philips")
}

/// One float (VR FL) of a private tag: typed when the file has explicit VR, 4 little-endian bytes
/// (VR UN) when it has implicit VR, where the reader cannot know a private tag's type.
fn private_float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    use dicom_core::VR;
    let element = obj.get(tag)?;
    match element.vr() {
        VR::UN | VR::OB => {
            let bytes = element.to_bytes().ok()?;
            let first: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(f64::from(f32::from_le_bytes(first)))
        }
        _ => float(obj, tag),
    }
}

impl SliceHeader {
    /// The value that padding and "outside the data" become: air (−1024 HU) on a CT and any
    /// modality twinray does not know, zero signal on an MR ([`Modality::background`]).
    pub fn background(&self) -> f32 {
        Modality::from_dicom(&self.modality)
            .unwrap_or(Modality::Ct)
            .background()
    }

    /// True for scout/localizer images, which never belong in a volume.
    pub fn is_localizer(&self) -> bool {
        self.image_type.iter().any(|t| t == "LOCALIZER")
    }
}

/// Opens a whole file (pixel data included), mapping parser failures to errors naming the file.
pub(crate) fn open_full(path: &Path) -> Result<DefaultDicomObject, DicomError> {
    check_magic(path)?;
    OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| DicomError::Parse {
            path: path.to_owned(),
            message: format!("{e}"),
        })
}

/// Opens a file's header, stopping before the pixel data (cheap for scanning big folders).
pub(crate) fn open_header(path: &Path) -> Result<DefaultDicomObject, DicomError> {
    check_magic(path)?;
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| DicomError::Parse {
            path: path.to_owned(),
            message: format!("{e}"),
        })
}

/// Checks the Part 10 `DICM` magic, so that non-DICOM files are told apart from corrupt ones.
fn check_magic(path: &Path) -> Result<(), DicomError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|source| DicomError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut head = [0u8; 132];
    let ok = file.read_exact(&mut head).is_ok() && &head[128..132] == b"DICM";
    if ok {
        Ok(())
    } else {
        Err(DicomError::NotDicom {
            path: path.to_owned(),
        })
    }
}

pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_owned())
}

pub(crate) fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag)?
        .to_multi_float64()
        .ok()
        .filter(|v| !v.is_empty())
}

pub(crate) fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}

pub(crate) fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

pub(crate) fn items(obj: &InMemDicomObject, tag: Tag) -> Option<&[InMemDicomObject]> {
    obj.get(tag)?.items()
}

fn vec3(v: &[f64]) -> DVec3 {
    DVec3::new(v[0], v[1], v[2])
}

/// Finds `attr` inside functional group `group` of frame `frame`: per-frame item first, then the
/// shared one (PS3.3 C.7.6.16).
fn functional(
    obj: &InMemDicomObject,
    frame: usize,
    group: Tag,
) -> impl Iterator<Item = &InMemDicomObject> {
    let per_frame = items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|f| f.get(frame))
        .and_then(|item| items(item, group))
        .and_then(|g| g.first());
    let shared = items(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|f| f.first())
        .and_then(|item| items(item, group))
        .and_then(|g| g.first());
    per_frame.into_iter().chain(shared)
}

/// Reads the geometry/rescale attributes of one frame: top level for classic images, functional
/// groups (then top level) for enhanced ones.
pub(crate) fn frame_attr<T>(
    obj: &InMemDicomObject,
    frame: usize,
    group: Tag,
    get: impl Fn(&InMemDicomObject) -> Option<T>,
) -> Option<T> {
    functional(obj, frame, group)
        .find_map(&get)
        .or_else(|| get(obj))
}

fn required_u16(obj: &InMemDicomObject, path: &Path, tag: Tag) -> Result<u16, DicomError> {
    let v = int(obj, tag).ok_or_else(|| DicomError::MissingTag {
        path: path.to_owned(),
        tag: tag_name(tag),
    })?;
    u16::try_from(v).map_err(|_| DicomError::BadValue {
        path: path.to_owned(),
        tag: tag_name(tag),
        detail: format!("{v} is out of range"),
    })
}

/// Rows or Columns: a US value, so at most 65535, and at least 1 — an image without rows has
/// no pixels to place, and a zero would reach the frame splitting as a zero-sized chunk.
pub(crate) fn required_dimension(
    obj: &InMemDicomObject,
    path: &Path,
    tag: Tag,
) -> Result<u16, DicomError> {
    let v = int(obj, tag).ok_or_else(|| DicomError::MissingTag {
        path: path.to_owned(),
        tag: tag_name(tag),
    })?;
    u16::try_from(v)
        .ok()
        .filter(|&d| d >= 1)
        .ok_or_else(|| DicomError::BadValue {
            path: path.to_owned(),
            tag: tag_name(tag),
            detail: format!("{v} is not an image dimension (1 to 65535 pixels)"),
        })
}

/// True when the object describes an image (has Rows and Columns).
pub(crate) fn is_image(obj: &InMemDicomObject) -> bool {
    obj.get(tags::ROWS).is_some() && obj.get(tags::COLUMNS).is_some()
}

/// One header per frame of `obj` (already opened from `path`).
pub(crate) fn slice_headers(
    obj: &DefaultDicomObject,
    path: &Path,
) -> Result<Vec<SliceHeader>, DicomError> {
    let rows = required_dimension(obj, path, tags::ROWS)?;
    let columns = required_dimension(obj, path, tags::COLUMNS)?;
    let bits_allocated = required_u16(obj, path, tags::BITS_ALLOCATED)?;
    let bits_stored = int(obj, tags::BITS_STORED)
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(bits_allocated);
    let high_bit = int(obj, tags::HIGH_BIT)
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(bits_stored.saturating_sub(1));
    if !matches!(bits_allocated, 1 | 8 | 16 | 32)
        || bits_stored == 0
        || bits_stored > bits_allocated
        || high_bit >= bits_allocated
        || high_bit + 1 < bits_stored
    {
        return Err(DicomError::BadValue {
            path: path.to_owned(),
            tag: tag_name(tags::BITS_STORED),
            detail: format!(
                "BitsAllocated {bits_allocated}, BitsStored {bits_stored}, HighBit {high_bit} are inconsistent"
            ),
        });
    }
    let frames_raw = int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let frames_in_file = u32::try_from(frames_raw)
        .ok()
        .filter(|&n| n <= MAX_FRAMES)
        .ok_or_else(|| DicomError::TooLarge {
            path: path.to_owned(),
            what: tag_name(tags::NUMBER_OF_FRAMES),
            count: u64::try_from(frames_raw).unwrap_or(u64::MAX),
            limit: u64::from(MAX_FRAMES),
        })?;
    let signed = int(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
    let padding = int(obj, tags::PIXEL_PADDING_VALUE).map(|v| {
        let limit = int(obj, tags::PIXEL_PADDING_RANGE_LIMIT);
        (v, limit)
    });
    let image_type = obj
        .get(tags::IMAGE_TYPE)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim().to_ascii_uppercase()).collect())
        .unwrap_or_default();
    let meta = obj.meta();
    let base = SliceHeader {
        path: path.to_owned(),
        frame: 0,
        transfer_syntax_uid: meta
            .transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_owned(),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID).unwrap_or_default(),
        modality: text(obj, tags::MODALITY).unwrap_or_default(),
        series_uid: text(obj, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        study_uid: text(obj, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        frame_of_reference_uid: text(obj, tags::FRAME_OF_REFERENCE_UID).unwrap_or_default(),
        series_number: int(obj, tags::SERIES_NUMBER),
        series_description: text(obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        image_type,
        rows,
        columns,
        frames_in_file,
        bits_allocated,
        bits_stored,
        high_bit,
        signed,
        samples_per_pixel: int(obj, tags::SAMPLES_PER_PIXEL)
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(1),
        position_mm: None,
        row_direction: None,
        column_direction: None,
        pixel_spacing_mm: None,
        slice_thickness_mm: None,
        rescale_slope: 1.0,
        rescale_intercept: 0.0,
        padding,
        window: None,
        manufacturer: text(obj, tags::MANUFACTURER).unwrap_or_default(),
        philips_scale: None,
    };
    let philips = is_philips(&base.manufacturer);
    let mut out = Vec::with_capacity(frames_in_file as usize);
    for frame in 0..frames_in_file {
        let f = frame as usize;
        let position = frame_attr(obj, f, tags::PLANE_POSITION_SEQUENCE, |o| {
            floats(o, tags::IMAGE_POSITION_PATIENT)
        });
        let orientation = frame_attr(obj, f, tags::PLANE_ORIENTATION_SEQUENCE, |o| {
            floats(o, tags::IMAGE_ORIENTATION_PATIENT)
        });
        let spacing = frame_attr(obj, f, tags::PIXEL_MEASURES_SEQUENCE, |o| {
            floats(o, tags::PIXEL_SPACING)
        });
        let thickness = frame_attr(obj, f, tags::PIXEL_MEASURES_SEQUENCE, |o| {
            float(o, tags::SLICE_THICKNESS)
        });
        let slope = frame_attr(obj, f, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
            float(o, tags::RESCALE_SLOPE)
        });
        let intercept = frame_attr(obj, f, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
            float(o, tags::RESCALE_INTERCEPT)
        });
        let window = frame_attr(obj, f, tags::FRAME_VOILUT_SEQUENCE, |o| {
            Some([
                float(o, tags::WINDOW_CENTER)?,
                float(o, tags::WINDOW_WIDTH)?,
            ])
        });
        let bad = |tag: Tag, detail: String| DicomError::BadValue {
            path: path.to_owned(),
            tag: tag_name(tag),
            detail,
        };
        let position_mm = match position {
            Some(v) if v.len() >= 3 && v.iter().all(|x| x.is_finite()) => Some(vec3(&v)),
            Some(v) => {
                return Err(bad(
                    tags::IMAGE_POSITION_PATIENT,
                    format!("{} values", v.len()),
                ))
            }
            None => None,
        };
        let (row_direction, column_direction) = match orientation {
            Some(v) if v.len() >= 6 && v.iter().all(|x| x.is_finite()) => {
                let r = vec3(&v[0..3]);
                let c = vec3(&v[3..6]);
                if r.length() < 0.5
                    || c.length() < 0.5
                    || r.normalize().dot(c.normalize()).abs() > 0.01
                {
                    return Err(bad(
                        tags::IMAGE_ORIENTATION_PATIENT,
                        "row and column directions are not unit-length and orthogonal".into(),
                    ));
                }
                (Some(r.normalize()), Some(c.normalize()))
            }
            Some(v) => {
                return Err(bad(
                    tags::IMAGE_ORIENTATION_PATIENT,
                    format!("{} values", v.len()),
                ))
            }
            None => (None, None),
        };
        let pixel_spacing_mm = match spacing {
            Some(v)
                if v.len() >= 2
                    && v[0] > 0.0
                    && v[1] > 0.0
                    && v[0].is_finite()
                    && v[1].is_finite() =>
            {
                Some([v[0], v[1]])
            }
            Some(v) => return Err(bad(tags::PIXEL_SPACING, format!("{v:?}"))),
            None => None,
        };
        let rescale_slope = slope.unwrap_or(1.0);
        let rescale_intercept = intercept.unwrap_or(0.0);
        if !rescale_slope.is_finite() || rescale_slope == 0.0 || !rescale_intercept.is_finite() {
            return Err(bad(
                tags::RESCALE_SLOPE,
                format!("slope {rescale_slope}, intercept {rescale_intercept}"),
            ));
        }
        let philips_scale = if philips {
            let scale_slope = frame_attr(obj, f, PHILIPS_PIXEL_VALUE_SEQUENCE, |o| {
                private_float(o, PHILIPS_SCALE_SLOPE)
            });
            let scale_intercept = frame_attr(obj, f, PHILIPS_PIXEL_VALUE_SEQUENCE, |o| {
                private_float(o, PHILIPS_SCALE_INTERCEPT)
            });
            match scale_slope {
                // A zero or absurd slope says nothing usable; the image still loads as DV.
                Some(ss) if ss.is_finite() && ss != 0.0 => Some(PhilipsScale {
                    scale_slope: ss,
                    scale_intercept: scale_intercept.filter(|v| v.is_finite()).unwrap_or(0.0),
                    rescale_slope,
                }),
                _ => None,
            }
        } else {
            None
        };
        out.push(SliceHeader {
            frame,
            philips_scale,
            position_mm,
            row_direction,
            column_direction,
            pixel_spacing_mm,
            slice_thickness_mm: thickness,
            rescale_slope,
            rescale_intercept,
            window,
            ..base.clone()
        });
    }
    Ok(out)
}
