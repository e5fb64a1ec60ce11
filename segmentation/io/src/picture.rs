//! A picture (PNG or JPEG: a photograph of a film, a screenshot of a viewer, a textbook
//! figure) as an instructor puts it on a board beside the twin. Such files carry no size in
//! millimetres, so a board showing one has "unknown spacing".
//!
//! Pictures come from users and from the web: the declared size is checked against
//! [`MAX_PICTURE_SIDE`] and [`MAX_PICTURE_PIXELS`] before any pixel buffer is allocated.

use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The longest side read, in pixels.
pub const MAX_PICTURE_SIDE: u32 = 16_384;
/// The most pixels read (2²⁶, 256 MiB as RGBA): a 43 cm film scanned at 0.05 mm is 2²⁶.
pub const MAX_PICTURE_PIXELS: u64 = 1 << 26;

/// What is wrong with a picture file.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// The file cannot be read.
    #[error("{path}: cannot read it: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither PNG nor JPEG.
    #[error("{path}: not a PNG or JPEG picture (a DICOM radiograph is read as one)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The codec refused it.
    #[error("{path}: the picture cannot be decoded: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The codec's words.
        reason: String,
    },
    /// Larger than this reader takes.
    #[error(
        "{path}: the picture is {width}×{height} pixels, larger than the {MAX_PICTURE_SIDE} a \
         side and {MAX_PICTURE_PIXELS} pixels read"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
}

/// A decoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Straight-alpha sRGB RGBA, row by row from the top.
    pub rgba: Vec<u8>,
}

fn check_size(path: &Path, width: u32, height: u32) -> Result<(), PictureError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0
        || height == 0
        || width > MAX_PICTURE_SIDE
        || height > MAX_PICTURE_SIDE
        || pixels > MAX_PICTURE_PIXELS
    {
        return Err(PictureError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
        });
    }
    Ok(())
}

/// Reads a PNG or JPEG file (by its signature, not its name).
///
/// # Errors
/// [`PictureError`] naming the file: unreadable, another format, damaged, or too large.
pub fn load_picture(path: &Path) -> Result<Picture, PictureError> {
    let io = |source| PictureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = [0u8; 8];
    {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(io)?;
        let n = file.read(&mut head).map_err(io)?;
        if n < 3 {
            return Err(PictureError::UnknownFormat {
                path: path.to_path_buf(),
            });
        }
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let decode = |reason: String| PictureError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    if head == *b"\x89PNG\r\n\x1a\n" {
        let mut decoder = png::Decoder::new(BufReader::new(file));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(|e| decode(e.to_string()))?;
        let (width, height) = (reader.info().width, reader.info().height);
        check_size(path, width, height)?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| decode("its size overflows".to_owned()))?;
        let mut buf = vec![0u8; size];
        let frame = reader
            .next_frame(&mut buf)
            .map_err(|e| decode(e.to_string()))?;
        buf.truncate(frame.buffer_size());
        let rgba = match frame.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::GrayscaleAlpha => buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            png::ColorType::Indexed => {
                return Err(decode("an indexed PNG was not expanded".to_owned()));
            }
        };
        return finish(path, width, height, rgba);
    }
    if head[..3] == [0xFF, 0xD8, 0xFF] {
        let mut decoder = jpeg_decoder::Decoder::new(BufReader::new(file));
        decoder.read_info().map_err(|e| decode(e.to_string()))?;
        let info = decoder
            .info()
            .ok_or_else(|| decode("no frame header".to_owned()))?;
        let (width, height) = (u32::from(info.width), u32::from(info.height));
        check_size(path, width, height)?;
        let pixels = decoder.decode().map_err(|e| decode(e.to_string()))?;
        let rgba = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            jpeg_decoder::PixelFormat::L16 => pixels
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], 255])
                .collect(),
            jpeg_decoder::PixelFormat::RGB24 => pixels
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            jpeg_decoder::PixelFormat::CMYK32 => pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    // Adobe's inverted CMYK, as jpeg-decoder returns it.
                    let k = u16::from(p[3]);
                    let c = |v: u8| u8::try_from(u16::from(v) * k / 255).unwrap_or(255);
                    [c(p[0]), c(p[1]), c(p[2]), 255]
                })
                .collect(),
        };
        return finish(path, width, height, rgba);
    }
    Err(PictureError::UnknownFormat {
        path: path.to_path_buf(),
    })
}

fn finish(path: &Path, width: u32, height: u32, rgba: Vec<u8>) -> Result<Picture, PictureError> {
    let expected = u64::from(width) * u64::from(height) * 4;
    if rgba.len() as u64 != expected {
        return Err(PictureError::Decode {
            path: path.to_path_buf(),
            reason: format!("{} bytes decoded, {expected} expected", rgba.len()),
        });
    }
    Ok(Picture {
        width,
        height,
        rgba,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("twinray-picture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join(name)
    }

    fn write_png(path: &Path, width: u32, height: u32, colour: png::ColorType, data: &[u8]) {
        let file = std::fs::File::create(path).expect("create");
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
        encoder.set_color(colour);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(data).expect("data");
    }

    #[test]
    fn a_grey_png_reads_as_opaque_rgba_top_row_first() {
        let path = temp("grey.png");
        // 2×2: top row black, white; bottom row 100, 200.
        write_png(&path, 2, 2, png::ColorType::Grayscale, &[0, 255, 100, 200]);
        let picture = load_picture(&path).expect("reads");
        assert_eq!((picture.width, picture.height), (2, 2));
        assert_eq!(&picture.rgba[..8], &[0, 0, 0, 255, 255, 255, 255, 255]);
        assert_eq!(&picture.rgba[8..12], &[100, 100, 100, 255]);
    }

    #[test]
    fn a_png_declaring_a_huge_size_is_refused_before_decoding() {
        let path = temp("huge.png");
        write_png(&path, 1, 1, png::ColorType::Rgba, &[1, 2, 3, 4]);
        // Patch the IHDR width to 2³¹−1 (the CRC then fails, but the size is checked first
        // or the codec refuses it: either way no buffer of that size is allocated).
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[16..20].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        std::fs::write(&path, bytes).expect("write");
        let err = load_picture(&path).expect_err("refused");
        assert!(err.to_string().contains("huge.png"), "{err}");
    }

    #[test]
    fn a_jpeg_reads_with_the_colours_an_independent_reader_sees() {
        // Written and read back by Pillow: (254, 0, 0) at (2, 4) and (0, 0, 254) at (13, 4).
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/red_left_blue_right.jpg");
        let picture = load_picture(&path).expect("reads");
        assert_eq!((picture.width, picture.height), (16, 8));
        let at = |x: usize, y: usize| {
            let i = (y * 16 + x) * 4;
            picture.rgba[i..i + 4].to_vec()
        };
        let near =
            |got: Vec<u8>, want: [u8; 4]| got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 2);
        assert!(near(at(2, 4), [254, 0, 0, 255]), "{:?}", at(2, 4));
        assert!(near(at(13, 4), [0, 0, 254, 255]), "{:?}", at(13, 4));
    }

    #[test]
    fn other_files_are_named_and_refused() {
        let path = temp("notes.txt");
        std::fs::write(&path, b"not a picture at all").expect("write");
        let err = load_picture(&path).expect_err("refused");
        assert!(matches!(err, PictureError::UnknownFormat { .. }), "{err}");
        assert!(err.to_string().contains("notes.txt"));
    }
}
