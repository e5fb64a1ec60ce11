//! Blanking a NIfTI-1 file's free-text fields before it goes into a bundle.

use std::io::{Read, Write};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// The header's free-text fields, as read (trailing NULs dropped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NiftiTextFields {
    /// `data_type` and `db_name` (unused ANALYZE fields).
    pub analyze: String,
    /// `descrip`.
    pub descrip: String,
    /// `aux_file`.
    pub aux_file: String,
    /// `intent_name`.
    pub intent_name: String,
    /// Bytes of header extensions (between the header and the voxels).
    pub extension_bytes: usize,
}

/// (offset, length) of the text fields.
const DATA_TYPE: (usize, usize) = (4, 28); // data_type[10] + db_name[18]
const DESCRIP: (usize, usize) = (148, 80);
const AUX_FILE: (usize, usize) = (228, 24);
const INTENT_NAME: (usize, usize) = (328, 16);
const HEADER: usize = 352;

fn text(h: &[u8], (o, n): (usize, usize)) -> String {
    let field = &h[o..o + n];
    let end = field.iter().position(|&b| b == 0).unwrap_or(n);
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Decompresses (when gzip) at most `limit` bytes of a NIfTI file and checks it is NIfTI-1.
fn plain(bytes: &[u8], limit: u64) -> Result<(Vec<u8>, bool), String> {
    let data = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| format!("not valid gzip: {e}"))?;
        if out.len() as u64 > limit {
            return Err(format!("more than {limit} bytes uncompressed"));
        }
        out
    } else {
        bytes.to_vec()
    };
    if data.len() < HEADER {
        return Err("shorter than a NIfTI-1 header".to_owned());
    }
    let little = data[0..4] == 348i32.to_le_bytes();
    let big = data[0..4] == 348i32.to_be_bytes();
    if !(little || big) || &data[344..347] != b"n+1" {
        return Err("not a single-file NIfTI-1 (sizeof_hdr 348, magic n+1)".to_owned());
    }
    Ok((data, little))
}

fn vox_offset(h: &[u8], little: bool) -> usize {
    let raw = [h[108], h[109], h[110], h[111]];
    let v = if little {
        f32::from_le_bytes(raw)
    } else {
        f32::from_be_bytes(raw)
    };
    if v.is_finite() && v >= HEADER as f32 {
        v as usize
    } else {
        HEADER
    }
}

/// The free-text fields of a NIfTI-1 file (plain or gzip).
///
/// # Errors
/// If it is not a single-file NIfTI-1 or decompresses past `limit` bytes.
pub fn nifti_text_fields(bytes: &[u8], limit: u64) -> Result<NiftiTextFields, String> {
    let (data, little) = plain(bytes, limit)?;
    Ok(NiftiTextFields {
        analyze: text(&data, DATA_TYPE),
        descrip: text(&data, DESCRIP),
        aux_file: text(&data, AUX_FILE),
        intent_name: text(&data, INTENT_NAME),
        extension_bytes: vox_offset(&data, little).min(data.len()) - HEADER,
    })
}

/// A NIfTI-1 file (plain or gzip, at most `limit` bytes uncompressed) with its free-text fields
/// (`data_type`, `db_name`, `descrip`, `aux_file`, `intent_name`) zeroed and its header
/// extensions removed, gzip-compressed; and what was found there (for the manifest).
///
/// # Errors
/// If it is not a single-file NIfTI-1 or decompresses past `limit` bytes.
pub fn deidentify_nifti(bytes: &[u8], limit: u64) -> Result<(Vec<u8>, NiftiTextFields), String> {
    let (mut data, little) = plain(bytes, limit)?;
    let found = NiftiTextFields {
        analyze: text(&data, DATA_TYPE),
        descrip: text(&data, DESCRIP),
        aux_file: text(&data, AUX_FILE),
        intent_name: text(&data, INTENT_NAME),
        extension_bytes: vox_offset(&data, little).min(data.len()) - HEADER,
    };
    for (o, n) in [DATA_TYPE, DESCRIP, AUX_FILE, INTENT_NAME] {
        data[o..o + n].fill(0);
    }
    if found.extension_bytes > 0 {
        data.drain(HEADER..HEADER + found.extension_bytes);
        let v = HEADER as f32;
        let raw = if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        data[108..112].copy_from_slice(&raw);
    }
    data[348..352].fill(0);
    let mut gz = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::fast());
    gz.write_all(&data)
        .and_then(|()| gz.finish())
        .map(|out| (out, found))
        .map_err(|e| format!("compressing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_with_text() -> Vec<u8> {
        let mut h = vec![0u8; HEADER + 16 + 8];
        h[0..4].copy_from_slice(&348i32.to_le_bytes());
        h[344..348].copy_from_slice(b"n+1\0");
        h[148..160].copy_from_slice(b"DOE^JOHN 123");
        h[228..235].copy_from_slice(b"aux-PHI");
        h[328..334].copy_from_slice(b"intent");
        h[14..20].copy_from_slice(b"dbname");
        h[108..112].copy_from_slice(&368f32.to_le_bytes());
        h[348] = 1;
        h[352..368].copy_from_slice(b"EXTENSION-PHI-16");
        h[368..376].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        h
    }

    #[test]
    fn text_fields_and_extensions_are_blanked_and_the_voxels_kept() {
        let (out, found) = deidentify_nifti(&header_with_text(), 1 << 20).expect("blanked");
        assert_eq!(found.descrip, "DOE^JOHN 123");
        assert_eq!(found.extension_bytes, 16);
        let after = nifti_text_fields(&out, 1 << 20).expect("read back");
        assert_eq!(after, NiftiTextFields::default());
        let (plain_out, _) = plain(&out, 1 << 20).expect("plain");
        assert_eq!(plain_out.len(), HEADER + 8);
        assert_eq!(&plain_out[HEADER..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        for needle in [&b"DOE"[..], b"PHI", b"intent", b"dbname"] {
            assert!(!plain_out.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[test]
    fn not_nifti_and_gzip_bombs_are_refused() {
        assert!(deidentify_nifti(b"hello", 1 << 20).is_err());
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&vec![0u8; 1 << 20]).expect("zeros");
        let bomb = gz.finish().expect("gz");
        let e = deidentify_nifti(&bomb, 1000).expect_err("over the limit");
        assert!(e.contains("more than 1000"), "{e}");
    }
}
