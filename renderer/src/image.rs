//! Frames read back from the GPU, and PNG output.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::RenderError;

/// An RGBA8 frame: colour premultiplied by opacity (so it is also the frame composited over
/// black) and the accumulated opacity in alpha. Rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 4` bytes.
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// The RGBA of pixel `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }

    /// Writes the frame over a black background as an opaque RGB PNG. The image goes to a
    /// temporary file beside `path` that is renamed over it when complete, so an interrupted
    /// write never leaves a truncated PNG (or destroys the previous one).
    pub fn write_png(&self, path: &Path) -> Result<(), RenderError> {
        let tmp = path.with_extension("png.partial");
        let written = self.write_png_to(&tmp).and_then(|()| {
            std::fs::rename(&tmp, path).map_err(|e| RenderError::Output {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    fn write_png_to(&self, path: &Path) -> Result<(), RenderError> {
        let io = |e: std::io::Error| RenderError::Output {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let encoding = |e: png::EncodingError| RenderError::Output {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = File::create(path).map_err(io)?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encoding)?;
        let rgb: Vec<u8> = self
            .pixels
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        writer.write_image_data(&rgb).map_err(encoding)?;
        writer.finish().map_err(encoding)
    }
}
