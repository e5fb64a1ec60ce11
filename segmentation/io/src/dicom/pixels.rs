//! From a file's (possibly compressed) pixel data to Hounsfield units.
//!
//! dicom-pixeldata decodes each codec to native little-endian samples; everything after that is
//! done here so that it is the same for every codec: the stored bits are taken from the sample
//! as BitsStored/HighBit say, sign-extended as PixelRepresentation says (the header is
//! authoritative, so a JPEG 2000 stream that declares the other signedness still gives the
//! values pydicom and GDCM give), padding is mapped to air, and the frame's own rescale applies.

use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::SliceHeader;
use super::DicomError;

/// HU written where a CT scanner marked pixels as padding (outside the reconstructed field of
/// view): air, so that padding neither renders as a wall nor skews statistics. An MR's padding
/// becomes zero signal instead ([`super::SliceHeader::background`]).
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
    if header.transfer_syntax_uid == uids::RLE_LOSSLESS {
        check_rle_frame(obj, header)?;
    }
    // Last resort only: check_rle_frame refuses every damaged RLE frame we could construct
    // (dicom-rs 0.10's RLE decoder panics on short segments and short fragments), but the
    // other codecs get no such check, and a byte-flip fuzz of the WG04 files (400 copies per
    // codec) still panicked in dicom-transfer-syntax-registry 0.10.1's JPEG adapter (a decoded
    // frame larger than its buffer, jpeg.rs:233) and JPEG 2000 adapter (jpeg2k.rs:90); none in
    // RLE. A codec bug on hostile input must become an error naming the file, not a crash.
    // Nothing shared is mutated inside, so unwinding leaves no broken state.
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
    let background = header.background();
    let convert = |v: i64| -> f32 {
        if let Some((lo, hi)) = padding {
            if v >= lo && v <= hi {
                return background;
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

/// Size of the RLE header: a segment count and 15 segment offsets, little-endian u32s
/// (PS3.5 G.5).
const RLE_HEADER_BYTES: usize = 64;

/// Checks one RLE Lossless frame before dicom-rs decodes it: its fragment holds a whole header,
/// the header declares 1 to 15 segments and exactly one per byte of each sample (two for
/// 16-bit greyscale), the offsets start after the header, increase and stay inside the
/// fragment, and every segment decodes to at least a full plane of bytes.
///
/// dicom-rs 0.10 trusts all of this: a fragment under 4 bytes or a segment count whose header
/// runs past the fragment panics while slicing (and 2^32 - 1 segments first asks for a 16 GiB
/// offset table, which can abort the process outright), and a segment that decodes short panics
/// indexing it. Offsets that point into the header decode silently to wrong pixels.
fn check_rle_frame(obj: &DefaultDicomObject, header: &SliceHeader) -> Result<(), DicomError> {
    let corrupt = |detail: String| DicomError::CorruptRle {
        path: header.path.clone(),
        frame: header.frame,
        detail,
    };
    let fragments = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.value().fragments())
        .ok_or_else(|| corrupt("the pixel data is not split into fragments".into()))?;
    let fragment: &[u8] = fragments.get(header.frame as usize).ok_or_else(|| {
        corrupt(format!(
            "the pixel data holds {} fragments, and RLE stores one per frame",
            fragments.len()
        ))
    })?;
    if fragment.len() < RLE_HEADER_BYTES {
        return Err(corrupt(format!(
            "its fragment holds {} bytes, less than the {RLE_HEADER_BYTES}-byte RLE header",
            fragment.len()
        )));
    }
    let words: Vec<usize> = fragment[..RLE_HEADER_BYTES]
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
        .collect();
    let count = words[0];
    let needed =
        usize::from(header.samples_per_pixel) * usize::from(header.bits_allocated.div_ceil(8));
    if !(1..=15).contains(&count) {
        return Err(corrupt(format!(
            "the RLE header declares {count} segments; 1 to 15 are possible"
        )));
    }
    if count != needed {
        return Err(corrupt(format!(
            "the RLE header declares {count} segments, but {} sample(s) of {} bits need {needed}",
            header.samples_per_pixel, header.bits_allocated
        )));
    }
    let offsets = &words[1..=count];
    if offsets[0] < RLE_HEADER_BYTES {
        return Err(corrupt(format!(
            "segment 1 starts at byte {}, inside the {RLE_HEADER_BYTES}-byte header",
            offsets[0]
        )));
    }
    if let Some(w) = offsets.windows(2).find(|w| w[1] <= w[0]) {
        return Err(corrupt(format!(
            "segment offsets are not increasing ({} then {})",
            w[0], w[1]
        )));
    }
    let plane = usize::from(header.rows) * usize::from(header.columns);
    for (s, &start) in offsets.iter().enumerate() {
        let end = offsets.get(s + 1).copied().unwrap_or(fragment.len());
        if end > fragment.len() || start >= fragment.len() {
            return Err(corrupt(format!(
                "segment {} spans bytes {start}..{end}, beyond the {}-byte fragment",
                s + 1,
                fragment.len()
            )));
        }
        let decoded = packbits_decoded_len(&fragment[start..end], plane);
        if decoded < plane {
            return Err(corrupt(format!(
                "segment {} decodes to {decoded} bytes, but {}x{} pixels need {plane}",
                s + 1,
                header.columns,
                header.rows
            )));
        }
    }
    Ok(())
}

/// How many bytes a PackBits segment decodes to, counted as dicom-rs decodes it (a literal run
/// cut short by the segment's end yields the bytes that are there), without decoding it;
/// stops counting once `enough` is reached.
fn packbits_decoded_len(segment: &[u8], enough: usize) -> usize {
    let mut at = 0;
    let mut out = 0;
    while at < segment.len() && out < enough {
        let control = segment[at] as i8;
        at += 1;
        match control {
            // A literal run of control + 1 bytes.
            0.. => {
                let run = control as usize + 1;
                out += run.min(segment.len() - at);
                at += run;
            }
            // No-op.
            -128 => {}
            // One byte repeated 1 - control times.
            _ => {
                if at >= segment.len() {
                    break;
                }
                out += (1 - isize::from(control)) as usize;
                at += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::packbits_decoded_len;

    #[test]
    fn packbits_length_counts_runs_as_the_decoder_does() {
        // The PackBits example of dicom-rs's own test: decodes to 24 bytes.
        let encoded = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        assert_eq!(packbits_decoded_len(&encoded, usize::MAX), 24);
        // A literal run cut by the segment end yields the bytes present; a replicate run
        // without its byte yields none; -128 is a no-op; counting stops at `enough`.
        assert_eq!(packbits_decoded_len(&[0x05, 1, 2], usize::MAX), 2);
        assert_eq!(packbits_decoded_len(&[0xFE], usize::MAX), 0);
        assert_eq!(packbits_decoded_len(&[0x80, 0x80, 0xFF, 7], usize::MAX), 2);
        assert_eq!(packbits_decoded_len(&[0x81, 7, 0x81, 7], 300), 256);
        assert_eq!(packbits_decoded_len(&[0x81, 7, 0x81, 7], 100), 128);
    }
}
