//! From a file's (possibly compressed) pixel data to Hounsfield units.
//!
//! dicom-pixeldata decodes each codec to native little-endian samples; everything after that is
//! done here so that it is the same for every codec: the stored bits are taken from the sample
//! as BitsStored/HighBit say, sign-extended as PixelRepresentation says (the header is
//! authoritative, so a JPEG 2000 stream that declares the other signedness still gives the
//! values pydicom and GDCM give), padding is mapped to air, and the frame's own rescale applies.

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::SliceHeader;
use super::DicomError;

/// HU written where the scanner marked pixels as padding (outside the reconstructed field of
/// view): air, so that padding neither renders as a wall nor skews statistics.
pub const PADDING_HU: f32 = -1024.0;

/// Human-readable name of a transfer syntax UID ("unknown" when the registry does not know it).
pub fn transfer_syntax_name(uid: &str) -> String {
    TransferSyntaxRegistry
        .get(uid)
        .map_or_else(|| "unknown".to_owned(), |ts| ts.name().to_owned())
}

/// Refuses transfer syntaxes this build cannot decode before any decoding starts.
pub(crate) fn check_transfer_syntax(header: &SliceHeader) -> Result<(), DicomError> {
    let uid = header.transfer_syntax_uid.as_str();
    let unsupported = || DicomError::UnsupportedTransferSyntax {
        path: header.path.clone(),
        uid: uid.to_owned(),
        name: transfer_syntax_name(uid),
    };
    let ts = TransferSyntaxRegistry.get(uid).ok_or_else(unsupported)?;
    if ts.is_unsupported() || (ts.is_encapsulated_pixel_data() && !ts.can_decode_all()) {
        return Err(unsupported());
    }
    Ok(())
}

/// How stored sample bits become a signed integer.
#[derive(Debug, Clone, Copy)]
struct SampleLayout {
    bytes: usize,
    shift: u32,
    bits: u32,
    signed: bool,
}

impl SampleLayout {
    fn of(header: &SliceHeader) -> Self {
        let bits = u32::from(header.bits_stored);
        Self {
            bytes: usize::from(header.bits_allocated.div_ceil(8)),
            shift: u32::from(header.high_bit) + 1 - bits,
            bits,
            signed: header.signed,
        }
    }

    #[inline]
    fn value(self, raw: u32) -> i64 {
        let v = i64::from(raw >> self.shift);
        let mask = if self.bits >= 32 {
            u32::MAX as i64
        } else {
            (1i64 << self.bits) - 1
        };
        let v = v & mask;
        if self.signed && v >> (self.bits - 1) & 1 == 1 {
            v - (1i64 << self.bits)
        } else {
            v
        }
    }

    /// Normalises a padding value read from a US or SS tag to the stored-value convention.
    fn padding(self, v: i64) -> i64 {
        let bits = (self.bytes * 8) as u32;
        if self.signed && v >= 1i64 << (bits - 1) && v < 1i64 << bits {
            v - (1i64 << bits)
        } else {
            v
        }
    }
}

/// Decodes one frame of an opened file into `out_hu` (`rows·columns` values, i fastest).
pub(crate) fn decode_frame_hu(
    obj: &DefaultDicomObject,
    header: &SliceHeader,
    out_hu: &mut [f32],
) -> Result<(), DicomError> {
    let path = &header.path;
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(DicomError::MissingPixelData { path: path.clone() });
    }
    if header.samples_per_pixel != 1 || !matches!(header.bits_allocated, 8 | 16 | 32) {
        return Err(DicomError::BadValue {
            path: path.clone(),
            tag: super::header::tag_name(tags::SAMPLES_PER_PIXEL),
            detail: format!(
                "{} samples of {} bits per pixel: not a greyscale CT image",
                header.samples_per_pixel, header.bits_allocated
            ),
        });
    }
    check_transfer_syntax(header)?;
    // dicom-rs 0.10's RLE decoder indexes out of bounds on some corrupted segments (found by
    // the byte-flip test): a codec bug on hostile input must become an error naming the file,
    // not a crash. Nothing shared is mutated inside, so unwinding leaves no broken state.
    // Known debt: drop this once the upstream decoder checks its segment offsets.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        obj.decode_pixel_data_frame(header.frame)
    }))
    .map_err(|_| DicomError::Decode {
        path: path.clone(),
        frame: header.frame,
        message: "the codec failed on corrupted data".into(),
    })?
    .map_err(|e| DicomError::Decode {
        path: path.clone(),
        frame: header.frame,
        message: format!("{e}"),
    })?;
    let layout = SampleLayout::of(header);
    let pixels = usize::from(header.rows) * usize::from(header.columns);
    let data = decoded.data();
    if decoded.rows() != u32::from(header.rows)
        || decoded.columns() != u32::from(header.columns)
        || data.len() < pixels * layout.bytes
        || out_hu.len() != pixels
    {
        return Err(DicomError::Decode {
            path: path.clone(),
            frame: header.frame,
            message: format!(
                "decoded {} bytes for {}x{} pixels ({} expected)",
                data.len(),
                decoded.columns(),
                decoded.rows(),
                pixels * layout.bytes
            ),
        });
    }
    let slope = header.rescale_slope;
    let intercept = header.rescale_intercept;
    let padding = header.padding.map(|(value, limit)| {
        let a = layout.padding(value);
        let b = limit.map_or(a, |l| layout.padding(l));
        (a.min(b), a.max(b))
    });
    let convert = |v: i64| -> f32 {
        if let Some((lo, hi)) = padding {
            if v >= lo && v <= hi {
                return PADDING_HU;
            }
        }
        (v as f64 * slope + intercept) as f32
    };
    match layout.bytes {
        1 => {
            for (o, &b) in out_hu.iter_mut().zip(&data[..pixels]) {
                *o = convert(layout.value(u32::from(b)));
            }
        }
        2 => {
            for (o, b) in out_hu.iter_mut().zip(data.chunks_exact(2)) {
                *o = convert(layout.value(u32::from(u16::from_le_bytes([b[0], b[1]]))));
            }
        }
        _ => {
            for (o, b) in out_hu.iter_mut().zip(data.chunks_exact(4)) {
                *o = convert(layout.value(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            }
        }
    }
    Ok(())
}
