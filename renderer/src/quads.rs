//! Textured rectangles drawn inside the ray-march pass: X-ray image boards standing beside the
//! twin and text labels facing the viewer, composited with the volume by depth exactly as the
//! overlay capsules are (tissue in front tints them, opaque bone hides them).
//!
//! Their images live in one 2D array texture (the atlas, kept by `quad_atlas`), on shelves
//! in layers of at most [`ATLAS_LAYER_PX`]² texels, one transparent texel apart, so that fifty
//! small text images share a layer and a 2000×2000 radiograph fills one. The quads themselves
//! are a small buffer ([`pack`]) rewritten every frame if need be (labels turn to face the
//! camera); each frame they are binned per screen tile with the capsules, by the screen
//! rectangle of their projected corners ([`Packed::corners`]), so a pixel tests only the quads
//! over its tile.
//!
//! [`ray_hit`] is the CPU twin of the shader's intersection, for the pen drawing on a board.

use glam::{DVec3, Vec3};

use crate::RenderError;

/// The most quads one set may hold (ten boards and fifty labels with room to spare); each pixel's
/// work stays bounded because quads are binned per screen tile.
pub const MAX_QUADS: usize = 256;
/// The most images [`crate::VolumeRenderer::set_quad_images`] takes.
pub const MAX_QUAD_IMAGES: usize = 4096;
/// Edge of an atlas layer in texels. An image wider or taller than this less its one-texel
/// gutter is downscaled on upload (keeping its aspect) to fit.
pub const ATLAS_LAYER_PX: u32 = 2048;
/// The most atlas layers (each [`ATLAS_LAYER_PX`]² RGBA8, 16 MiB): 128 MiB of device memory.
pub const MAX_ATLAS_LAYERS: u32 = 8;

/// The largest image side stored without downscaling: a layer less the gutter.
const MAX_IMAGE_PX: u32 = ATLAS_LAYER_PX - 1;

/// A textured rectangle in the renderer's world frame (patient LPS mm, like
/// [`crate::Capsule`]): the points `centre_mm + a · u_half_mm + b · v_half_mm` for `a`, `b` in
/// [−1, 1].
///
/// **Image orientation.** Image columns grow along `+u`, image rows grow along `−v` (so `v` is
/// the image's "up"): the image's top-left corner is at `centre − u + v`, its top-right at
/// `centre + u + v`, its bottom-left at `centre − u − v`. A point `centre + a·u + b·v` shows the
/// image at pixel coordinates `x = (a + 1) / 2 · width`, `y = (1 − b) / 2 · height` (pixel
/// centres at `+0.5`, as [`QuadHit::pixel`] reports them).
///
/// **Sides.** The front is the side `u × v` points to: seen from there, with `u` to the viewer's
/// right and `v` up, the image reads as stored. A one-sided quad is invisible from behind. A
/// two-sided quad (boards) shows from behind the same texel at each point, i.e. the image
/// mirrored left to right, as a radiograph on a light box seen from its back.
///
/// `u` and `v` need not be orthogonal (a parallelogram is drawn), but must be finite, non-zero
/// and not parallel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quad {
    /// Centre of the rectangle, patient LPS mm.
    pub centre_mm: Vec3,
    /// Half the rectangle along the image's columns (centre to the right edge), mm.
    pub u_half_mm: Vec3,
    /// Half the rectangle along the image's rows, pointing up (centre to the top edge), mm.
    pub v_half_mm: Vec3,
    /// Which of the images given to [`crate::VolumeRenderer::set_quad_images`] it shows.
    pub image: usize,
    /// Multiplies every texel: straight (not premultiplied) RGBA, each in [0, 1]; `[1.0; 4]`
    /// shows the image as it is, alpha 0.5 makes it half transparent.
    pub tint: [f32; 4],
    /// Whether it is seen from behind too (mirrored); labels built facing the camera need not be.
    pub two_sided: bool,
}

/// Where a ray meets a quad ([`ray_hit`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuadHit {
    /// Index of the quad in the slice given.
    pub index: usize,
    /// Distance along the (unit) ray, mm.
    pub t_mm: f64,
    /// Image coordinates of the hit in pixels of the image as given (not as downscaled into the
    /// atlas): x right from the left edge, y down from the top edge, in [0, width] × [0, height].
    pub pixel: [f64; 2],
}

/// The parts of a quad both the shader and [`ray_hit`] use, in f64.
struct Frame {
    centre: DVec3,
    /// `u × v`: the front normal (not unit length).
    normal: DVec3,
    /// Dual basis: `dot(p − centre, u_dual)` is `a`, `dot(p − centre, v_dual)` is `b`.
    u_dual: DVec3,
    v_dual: DVec3,
}

impl Frame {
    /// `None` when the quad is not finite or degenerate.
    fn of(q: &Quad) -> Option<Self> {
        let (c, u, v) = (
            q.centre_mm.as_dvec3(),
            q.u_half_mm.as_dvec3(),
            q.v_half_mm.as_dvec3(),
        );
        if !(c.is_finite() && u.is_finite() && v.is_finite()) {
            return None;
        }
        let normal = u.cross(v);
        let scale = u.length() * v.length();
        if scale <= 0.0 || normal.length() <= 1e-6 * scale {
            return None;
        }
        let vn = v.cross(normal);
        let nu = normal.cross(u);
        Some(Self {
            centre: c,
            normal,
            u_dual: vn / u.dot(vn),
            v_dual: nu / v.dot(nu),
        })
    }

    /// `(t, a, b)` where the ray meets the quad's plane inside the rectangle, from a side it is
    /// seen from.
    fn hit(&self, two_sided: bool, origin: DVec3, dir: DVec3) -> Option<(f64, f64, f64)> {
        let rate = dir.dot(self.normal);
        if rate == 0.0 || (rate > 0.0 && !two_sided) {
            return None;
        }
        let t = (self.centre - origin).dot(self.normal) / rate;
        if t.is_nan() || t <= 0.0 {
            return None;
        }
        let p = (origin - self.centre) + t * dir;
        let (a, b) = (p.dot(self.u_dual), p.dot(self.v_dual));
        (a.abs() <= 1.0 && b.abs() <= 1.0).then_some((t, a, b))
    }
}

/// The nearest quad along the ray from `origin` in direction `dir` (normalised here), with the
/// image coordinates of the hit; the CPU twin of the shader's intersection, for the pen drawing
/// on a board. `image_sizes[i]` is the `[width, height]` of image `i`, as given to
/// [`crate::VolumeRenderer::set_quad_images`]. Texel alpha is not consulted (a hit on a
/// transparent part of the image counts); one-sided quads are hit from the front only; quads
/// that are invalid, fully transparent (`tint[3] == 0`) or show an image not in `image_sizes`
/// are skipped.
pub fn ray_hit(
    quads: &[Quad],
    image_sizes: &[[u32; 2]],
    origin: DVec3,
    dir: DVec3,
) -> Option<QuadHit> {
    let dir = dir.normalize_or_zero();
    if dir == DVec3::ZERO || !origin.is_finite() {
        return None;
    }
    let mut best: Option<QuadHit> = None;
    for (index, q) in quads.iter().enumerate() {
        let Some(size) = image_sizes.get(q.image) else {
            continue;
        };
        if q.tint[3].is_nan() || q.tint[3] <= 0.0 {
            continue;
        }
        let Some((t_mm, a, b)) = Frame::of(q).and_then(|f| f.hit(q.two_sided, origin, dir)) else {
            continue;
        };
        if best.is_none_or(|h| t_mm < h.t_mm) {
            best = Some(QuadHit {
                index,
                t_mm,
                pixel: [
                    (a + 1.0) * 0.5 * f64::from(size[0]),
                    (1.0 - b) * 0.5 * f64::from(size[1]),
                ],
            });
        }
    }
    best
}

/// Where one image lies in the atlas, in texels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub layer: u32,
    pub x: u32,
    pub y: u32,
    /// Size as stored (after any downscale).
    pub width: u32,
    pub height: u32,
}

/// The size an image is stored at: as given when it fits a layer with its gutter, else scaled
/// down (keeping the aspect) until it does.
pub(crate) fn fitted_size(size: [u32; 2]) -> [u32; 2] {
    let largest = size[0].max(size[1]);
    if largest <= MAX_IMAGE_PX {
        return size;
    }
    let scale = f64::from(MAX_IMAGE_PX) / f64::from(largest);
    size.map(|n| ((f64::from(n) * scale).round() as u32).clamp(1, MAX_IMAGE_PX))
}

/// Straight-alpha `pixels` of an image of `given` size premultiplied, box-filtered down to
/// `size` (which is never larger than `given`).
pub(crate) fn resample_premultiplied(given: [u32; 2], pixels: &[u8], size: [u32; 2]) -> Vec<u8> {
    let [width, height] = given;
    let premultiply = |p: &[u8]| {
        let a = u32::from(p[3]);
        [
            (u32::from(p[0]) * a + 127) / 255,
            (u32::from(p[1]) * a + 127) / 255,
            (u32::from(p[2]) * a + 127) / 255,
            a,
        ]
    };
    if size == given {
        return pixels
            .chunks_exact(4)
            .flat_map(|p| premultiply(p).map(|c| c as u8))
            .collect();
    }
    // Each output texel averages the source texels whose index maps into it.
    let span = |i: u32, out: u32, src: u32| {
        let lo = (u64::from(i) * u64::from(src) / u64::from(out)) as u32;
        let hi = ((u64::from(i + 1) * u64::from(src)).div_ceil(u64::from(out)) as u32).min(src);
        lo..hi.max(lo + 1)
    };
    let mut out = Vec::with_capacity(size[0] as usize * size[1] as usize * 4);
    for y in 0..size[1] {
        let rows = span(y, size[1], height);
        for x in 0..size[0] {
            let cols = span(x, size[0], width);
            let mut sum = [0u64; 4];
            let mut n = 0u64;
            for sy in rows.clone() {
                for sx in cols.clone() {
                    let i = (sy as usize * width as usize + sx as usize) * 4;
                    let p = premultiply(&pixels[i..i + 4]);
                    for (s, c) in sum.iter_mut().zip(p) {
                        *s += u64::from(c);
                    }
                    n += 1;
                }
            }
            out.extend(sum.map(|s| ((s + n / 2) / n) as u8));
        }
    }
    out
}

/// Words per quad on the GPU: six `vec4`s, std430 (see `raymarch.comp`'s `Quad`).
pub(crate) const QUAD_VEC4S: usize = 6;

/// A quad set checked and packed for the shader's `Quads` buffer, with the corners of each to
/// bin it by.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Packed {
    /// [`QUAD_VEC4S`] per drawn quad.
    pub gpu: Vec<[f32; 4]>,
    /// The four corners of each drawn quad (patient LPS mm), which [`crate::overlay::Bins`]
    /// projects to bin it by the screen rectangle it can cover.
    pub corners: Vec<[DVec3; 4]>,
}

impl Packed {
    /// No quad to draw.
    pub fn is_empty(&self) -> bool {
        self.corners.is_empty()
    }
}

/// Checks `quads` against the atlas `places` (one per image) and packs them. Fully transparent
/// quads (`tint[3] == 0`) are dropped, so they cost nothing per frame.
pub(crate) fn pack(
    quads: &[Quad],
    places: &[Place],
    layer_size: [u32; 2],
) -> Result<Packed, RenderError> {
    if quads.len() > MAX_QUADS {
        return Err(RenderError::TooManyQuads {
            count: quads.len(),
            max: MAX_QUADS,
        });
    }
    let mut packed = Packed {
        gpu: Vec::with_capacity(quads.len() * QUAD_VEC4S),
        corners: Vec::with_capacity(quads.len()),
    };
    for (index, q) in quads.iter().enumerate() {
        let bad = |reason| RenderError::BadQuad { index, reason };
        if !q.tint.iter().all(|v| v.is_finite()) {
            return Err(bad("the tint must be finite"));
        }
        let frame = Frame::of(q).ok_or_else(|| {
            bad("centre and axes must be finite, the axes non-zero and not parallel")
        })?;
        let place = places
            .get(q.image)
            .ok_or_else(|| bad("its image index is beyond the images set by set_quad_images"))?;
        let tint = q.tint.map(|v| v.clamp(0.0, 1.0));
        if tint[3] == 0.0 {
            continue;
        }
        let f = |v: DVec3| v.as_vec3().to_array();
        let [cx, cy, cz] = q.centre_mm.to_array();
        let [nx, ny, nz] = f(frame.normal);
        let [ux, uy, uz] = f(frame.u_dual);
        let [vx, vy, vz] = f(frame.v_dual);
        let (lw, lh) = (layer_size[0] as f32, layer_size[1] as f32);
        packed.gpu.extend([
            [cx, cy, cz, place.layer as f32],
            [nx, ny, nz, if q.two_sided { 1.0 } else { 0.0 }],
            [ux, uy, uz, 0.0],
            [vx, vy, vz, 0.0],
            tint,
            [
                place.x as f32 / lw,
                place.y as f32 / lh,
                place.width as f32 / lw,
                place.height as f32 / lh,
            ],
        ]);
        let (c, u, v) = (
            q.centre_mm.as_dvec3(),
            q.u_half_mm.as_dvec3(),
            q.v_half_mm.as_dvec3(),
        );
        packed
            .corners
            .push([c - u - v, c + u - v, c + u + v, c - u + v]);
    }
    Ok(packed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::RgbaImage;

    fn image(width: u32, height: u32, rgba: [u8; 4]) -> RgbaImage {
        RgbaImage {
            width,
            height,
            pixels: rgba.repeat((width * height) as usize),
        }
    }

    /// A 40 × 20 mm board facing −y (towards an anterior camera), its image upright there.
    fn board() -> Quad {
        Quad {
            centre_mm: Vec3::new(0.0, -50.0, 0.0),
            // Patient left (+x) is the anterior viewer's right, superior (+z) is up; u × v = −y.
            u_half_mm: Vec3::new(20.0, 0.0, 0.0),
            v_half_mm: Vec3::new(0.0, 0.0, 10.0),
            image: 0,
            tint: [1.0; 4],
            two_sided: false,
        }
    }

    #[test]
    fn ray_hit_reports_the_image_pixel_under_the_ray() {
        let sizes = [[400, 200]];
        let eye = DVec3::new(0.0, -200.0, 0.0);
        // Straight at the centre.
        let hit = ray_hit(&[board()], &sizes, eye, DVec3::Y).expect("hit");
        assert_eq!(hit.index, 0);
        assert!((hit.t_mm - 150.0).abs() < 1e-9);
        assert!((hit.pixel[0] - 200.0).abs() < 1e-9 && (hit.pixel[1] - 100.0).abs() < 1e-9);
        // Towards the top-left corner region (−u, +v): small x, small y.
        let target = DVec3::new(-15.0, -50.0, 5.0);
        let hit = ray_hit(&[board()], &sizes, eye, target - eye).expect("hit");
        assert!((hit.pixel[0] - 50.0).abs() < 1e-9, "{:?}", hit.pixel);
        assert!((hit.pixel[1] - 50.0).abs() < 1e-9, "{:?}", hit.pixel);
        // Beside it: none.
        let beside = DVec3::new(25.0, -50.0, 0.0);
        assert_eq!(ray_hit(&[board()], &sizes, eye, beside - eye), None);
        // From behind: only when two-sided, and then the same texel (mirrored to that viewer).
        let back = DVec3::new(0.0, 100.0, 0.0);
        assert_eq!(ray_hit(&[board()], &sizes, back, target - back), None);
        let two = Quad {
            two_sided: true,
            ..board()
        };
        let hit = ray_hit(&[two], &sizes, back, target - back).expect("two-sided");
        assert!((hit.pixel[0] - 50.0).abs() < 1e-9 && (hit.pixel[1] - 50.0).abs() < 1e-9);
        // The nearer of two, and an unknown image is skipped.
        let near = Quad {
            centre_mm: Vec3::new(0.0, -100.0, 0.0),
            ..board()
        };
        let unknown = Quad {
            centre_mm: Vec3::new(0.0, -150.0, 0.0),
            image: 3,
            ..board()
        };
        let hit = ray_hit(&[board(), near, unknown], &sizes, eye, DVec3::Y).expect("hit");
        assert_eq!(hit.index, 1);
    }

    #[test]
    fn bad_quads_are_refused_by_index_and_clear_ones_dropped() {
        let places = [Place {
            layer: 0,
            x: 0,
            y: 0,
            width: 2,
            height: 2,
        }];
        let mut nan = board();
        nan.centre_mm.y = f32::NAN;
        let flat = Quad {
            v_half_mm: Vec3::new(40.0, 0.0, 0.0),
            ..board()
        };
        let unknown = Quad {
            image: 1,
            ..board()
        };
        for (bad, what) in [(nan, "NaN"), (flat, "parallel axes"), (unknown, "no image")] {
            assert!(
                matches!(
                    pack(&[board(), bad], &places, [2, 2]),
                    Err(RenderError::BadQuad { index: 1, .. })
                ),
                "{what}"
            );
        }
        let many = vec![board(); MAX_QUADS + 1];
        assert!(matches!(
            pack(&many, &places, [2, 2]),
            Err(RenderError::TooManyQuads { .. })
        ));
        let clear = Quad {
            tint: [1.0, 1.0, 1.0, 0.0],
            ..board()
        };
        let packed = pack(&[clear, board()], &places, [2, 2]).expect("valid");
        assert_eq!(packed.gpu.len(), QUAD_VEC4S);
        assert_eq!(packed.corners.len(), 1);
    }

    #[test]
    fn images_are_premultiplied_and_box_filtered_down() {
        let half = image(1, 1, [255, 255, 255, 128]);
        assert_eq!(
            resample_premultiplied([1, 1], &half.pixels, [1, 1]),
            vec![128, 128, 128, 128]
        );
        // Two texels, one opaque red and one clear, averaged into one: half-transparent red
        // premultiplied (the clear texel's colour does not bleed in).
        let pixels = [255, 0, 0, 255, 0, 255, 0, 0];
        assert_eq!(
            resample_premultiplied([2, 1], &pixels, [1, 1]),
            vec![128, 0, 0, 128]
        );
        assert_eq!(fitted_size([4000, 2000]), [2047, 1024]);
        assert_eq!(fitted_size([2000, 2000]), [2000, 2000]);
    }
}
