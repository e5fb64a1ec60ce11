//! Text labels as images, for the renderer's textured quads (measurement values and structure
//! names beside the twin, also in the VR eye images).
//!
//! [`text_image`] rasterises white glyphs with a dark halo on a transparent background, so a
//! label reads over white bone and over black air alike. The font is Hack Regular, embedded by
//! the `epaint_default_fonts` crate (Hack: MIT licence; its Bitstream Vera parts: the Bitstream
//! Vera licence; both ask that their copyright and licence notices travel with the font, so a
//! binary distribution of twinray must include `fonts/Hack-Regular.txt` from that crate).

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use twinray_renderer::RgbaImage;

/// The most lines a label has; further lines are dropped.
pub const MAX_LINES: usize = 16;
/// The most characters of one line; a longer line is cut and ends in `…`.
pub const MAX_LINE_CHARS: usize = 120;
/// The widest and tallest image [`text_image`] returns (what one quad atlas layer holds without
/// downscaling); glyphs beyond the right edge are dropped, as are lines below the bottom.
pub const MAX_IMAGE_PX: u32 = 2047;
/// The range `height_px` is clamped to.
pub const HEIGHT_PX_RANGE: (u32, u32) = (6, 256);

/// Opacity of the dark halo around the glyphs.
const HALO_ALPHA: f32 = 0.85;

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR).ok())
        .as_ref()
}

/// `text` as a straight-alpha RGBA image (rows top down): white glyphs with a dark halo on a
/// transparent background, lines split at `'\n'` and left-aligned, for
/// `VolumeRenderer::set_quad_images`.
///
/// `height_px` is the height of one line of the font (ascender to descender, clamped to
/// [`HEIGHT_PX_RANGE`]); the halo (about a tenth of that, 1 to 4 px) and one pixel more pad the
/// image on every side. The size is bounded: at most [`MAX_LINES`] lines of [`MAX_LINE_CHARS`]
/// characters (a longer line ends in `…`) and [`MAX_IMAGE_PX`] pixels per side (what lies beyond
/// is clipped). Control characters other than `'\n'` are dropped. Empty text gives a 1×1
/// transparent image.
pub fn text_image(text: &str, height_px: u32) -> RgbaImage {
    let empty = RgbaImage {
        width: 1,
        height: 1,
        pixels: vec![0; 4],
    };
    let Some(font) = font() else {
        return empty;
    };
    if text.is_empty() {
        return empty;
    }
    let height_px = height_px.clamp(HEIGHT_PX_RANGE.0, HEIGHT_PX_RANGE.1);
    let scaled = font.as_scaled(PxScale::from(height_px as f32));
    let halo = (height_px as f32 / 10.0).round().clamp(1.0, 4.0) as i32;
    let pad = halo as f32 + 1.0;
    let line_step = (scaled.height() + scaled.line_gap()).ceil();
    let max_inner = MAX_IMAGE_PX as f32 - 2.0 * pad;

    // Lay out: glyphs with their pen positions, line by line, within the bounds.
    let mut glyphs = Vec::new();
    let mut width = 0.0f32;
    let mut lines = 0usize;
    for (index, line) in text.split('\n').take(MAX_LINES).enumerate() {
        let baseline = pad + scaled.ascent() + index as f32 * line_step;
        if baseline - scaled.descent() > MAX_IMAGE_PX as f32 - pad {
            break;
        }
        lines = index + 1;
        let mut chars: Vec<char> = line.chars().filter(|c| !c.is_control()).collect();
        if chars.len() > MAX_LINE_CHARS {
            chars.truncate(MAX_LINE_CHARS - 1);
            chars.push('…');
        }
        let mut caret = 0.0f32;
        let mut previous = None;
        for c in chars {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            let advance = scaled.h_advance(id);
            if caret + advance > max_inner {
                break;
            }
            glyphs.push(id.with_scale_and_position(scaled.scale(), point(pad + caret, baseline)));
            caret += advance;
            previous = Some(id);
        }
        width = width.max(caret);
    }
    let w = ((width + 2.0 * pad).ceil() as u32).clamp(1, MAX_IMAGE_PX);
    let h = ((lines as f32 - 1.0) * line_step + scaled.height() + 2.0 * pad).ceil();
    let h = (h as u32).clamp(1, MAX_IMAGE_PX);

    // Glyph coverage.
    let (wu, hu) = (w as usize, h as usize);
    let mut coverage = vec![0.0f32; wu * hu];
    for glyph in glyphs {
        let Some(outlined) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        outlined.draw(|x, y, c| {
            let px = bounds.min.x as i64 + i64::from(x);
            let py = bounds.min.y as i64 + i64::from(y);
            if (0..w as i64).contains(&px) && (0..h as i64).contains(&py) {
                let cell = &mut coverage[py as usize * wu + px as usize];
                *cell = (*cell + c).min(1.0);
            }
        });
    }

    // The halo: the coverage dilated by a disc of radius `halo`.
    let offsets: Vec<(i32, i32)> = (-halo..=halo)
        .flat_map(|dy| (-halo..=halo).map(move |dx| (dx, dy)))
        .filter(|(dx, dy)| dx * dx + dy * dy <= halo * halo + halo)
        .collect();
    let mut pixels = Vec::with_capacity(wu * hu * 4);
    for y in 0..hu as i32 {
        for x in 0..wu as i32 {
            let glyph = coverage[y as usize * wu + x as usize];
            let mut near = 0.0f32;
            for &(dx, dy) in &offsets {
                let (sx, sy) = (x + dx, y + dy);
                if sx >= 0 && sy >= 0 && sx < w as i32 && sy < h as i32 {
                    near = near.max(coverage[sy as usize * wu + sx as usize]);
                }
            }
            // White glyph over a black halo, then back to straight alpha.
            let alpha = glyph + (1.0 - glyph) * near * HALO_ALPHA;
            let white = if alpha > 0.0 { glyph / alpha } else { 0.0 };
            let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let level = byte(white);
            pixels.extend([level, level, level, byte(alpha)]);
        }
    }
    RgbaImage {
        width: w,
        height: h,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opaque(image: &RgbaImage) -> usize {
        image.pixels.chunks_exact(4).filter(|p| p[3] == 255).count()
    }

    /// The bounding box `[x0, y0, x1, y1]` (inclusive) of the bright glyph pixels.
    fn ink_box(image: &RgbaImage) -> [u32; 4] {
        let mut b = [u32::MAX, u32::MAX, 0, 0];
        for y in 0..image.height {
            for x in 0..image.width {
                let p = image.pixel(x, y);
                if p[0] > 128 && p[3] > 128 {
                    b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                }
            }
        }
        b
    }

    #[test]
    fn the_bundled_font_parses() {
        assert!(font().is_some());
    }

    #[test]
    fn text_has_opaque_white_glyphs_in_a_dark_halo_on_transparent_ground() {
        let image = text_image("L3 vertebra: 32.5 mm", 24);
        assert_eq!(
            image.pixels.len(),
            (image.width * image.height * 4) as usize
        );
        assert!(opaque(&image) > 50, "{}", opaque(&image));
        let white = image
            .pixels
            .chunks_exact(4)
            .filter(|p| p[0] == 255 && p[3] == 255)
            .count();
        let dark = image
            .pixels
            .chunks_exact(4)
            .filter(|p| p[0] < 30 && p[3] > 150)
            .count();
        assert!(white > 50 && dark > 50, "white {white}, halo {dark}");
        // The corners are clear.
        assert_eq!(image.pixel(0, 0)[3], 0);
        assert_eq!(image.pixel(image.width - 1, image.height - 1)[3], 0);
    }

    #[test]
    fn width_grows_with_length_and_lines_stack() {
        let short = text_image("L3", 24);
        let long = text_image("L3 vertebral body", 24);
        assert!(
            long.width > short.width + 100,
            "{} vs {}",
            long.width,
            short.width
        );
        assert_eq!(long.height, short.height);
        let two = text_image("L3\nL4", 24);
        assert!(two.height > short.height + 20);
        assert_eq!(two.width, short.width);
        // Bounded: a huge text is clipped to the largest image.
        let huge = text_image(&"W".repeat(10_000), 200);
        assert!(huge.width <= MAX_IMAGE_PX && huge.height <= MAX_IMAGE_PX);
        let many = text_image(&"line\n".repeat(1000), 24);
        assert!(many.height < 24 * (MAX_LINES as u32 + 2));
    }

    #[test]
    fn empty_text_is_one_transparent_pixel() {
        let image = text_image("", 24);
        assert_eq!((image.width, image.height), (1, 1));
        assert_eq!(image.pixels, vec![0; 4]);
    }

    #[test]
    fn the_letter_i_is_taller_than_wide() {
        let b = ink_box(&text_image("I", 48));
        let (w, h) = (b[2] - b[0] + 1, b[3] - b[1] + 1);
        assert!(h > w, "I is {w}x{h} px");
        assert!(h > 20, "I is {h} px tall at 48 px per line");
    }
}
