//! Overlay geometry drawn inside the ray-march pass: capsules (pen strokes, the avatar's glasses
//! and hands), composited with the volume by depth.
//!
//! The capsules live on the GPU in world space (uploaded once by `set_overlays`). What changes
//! per frame is which capsules each pixel must test: [`Bins::build`] projects every capsule's
//! two end spheres to the screen, culls those outside the frustum or behind the eye, and lists
//! the rest per screen tile, so a pixel intersects only the few capsules whose screen rectangle
//! covers its tile. Capsules that cover much of the screen (or reach behind the eye, where the
//! projection is unbounded) go to one global list that every pixel tests instead, which keeps
//! the bins' size bounded by `MAX_OVERLAY_CAPSULES × MAX_TILES_PER_CAPSULE`. Quads (boards,
//! text labels) are binned in the same lists by the rectangle of their four projected corners
//! (a quad reaching the eye plane covers the whole screen, one wholly behind it nothing).
//!
//! On lavapipe the shader pays for every entry of its tile's list with a full test (both sides
//! of every branch run under a lane mask), so the lists must be tight: binning boards by their
//! projected corners rather than an enclosing capsule cut 10 boards and 50 labels on a 512²
//! frame from 345 to 330 ms of CPU (same-process A/B).

use glam::{DVec3, Vec3};

use crate::camera::Camera;
use crate::RenderError;

/// The most capsules one overlay set may hold: a ten-minute lesson's strokes sampled every few
/// millimetres plus an avatar fit with room to spare, and the per-frame bins stay a few MiB.
pub const MAX_OVERLAY_CAPSULES: usize = 16384;

/// A capsule (segment a–b swept by a sphere) in the renderer's world frame = patient LPS mm,
/// the one primitive strokes, glasses and hands are drawn with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capsule {
    /// One end of the axis, patient LPS mm.
    pub a_mm: Vec3,
    /// The other end of the axis (equal to `a_mm` for a sphere).
    pub b_mm: Vec3,
    /// Radius of the swept sphere in mm; 0 draws nothing.
    pub radius_mm: f32,
    /// Colour and opacity, straight (not premultiplied) alpha, each in [0, 1].
    pub rgba: [f32; 4],
}

/// Words per capsule on the GPU: three `vec4`s (a and radius, b, rgba), std430.
pub(crate) const CAPSULE_VEC4S: usize = 3;

/// Screen tiles are at least this many pixels square (two 8×8 workgroups per side).
const MIN_TILE_PX: u32 = 16;
/// The tile grid has at most this many tiles per side; larger images get larger tiles.
const MAX_TILES_PER_SIDE: u32 = 64;
/// A capsule covering more tiles than this goes to the global list instead.
const MAX_TILES_PER_CAPSULE: u32 = 256;

/// Checks an overlay set and packs it for the shader's `Capsules` buffer. Invisible capsules
/// (zero radius or opacity) are dropped here, so they cost nothing per frame.
pub(crate) fn pack(capsules: &[Capsule]) -> Result<Vec<[f32; 4]>, RenderError> {
    if capsules.len() > MAX_OVERLAY_CAPSULES {
        return Err(RenderError::TooManyOverlays {
            count: capsules.len(),
            max: MAX_OVERLAY_CAPSULES,
        });
    }
    let mut packed = Vec::with_capacity(capsules.len() * CAPSULE_VEC4S);
    for (index, c) in capsules.iter().enumerate() {
        let finite = c.a_mm.is_finite()
            && c.b_mm.is_finite()
            && c.radius_mm.is_finite()
            && c.rgba.iter().all(|v| v.is_finite());
        if !finite || c.radius_mm < 0.0 {
            return Err(RenderError::BadOverlay {
                index,
                reason: "coordinates, radius and colour must be finite and the radius ≥ 0",
            });
        }
        let rgba = c.rgba.map(|v| v.clamp(0.0, 1.0));
        if c.radius_mm == 0.0 || rgba[3] == 0.0 {
            continue;
        }
        packed.push([c.a_mm.x, c.a_mm.y, c.a_mm.z, c.radius_mm]);
        packed.push([c.b_mm.x, c.b_mm.y, c.b_mm.z, 0.0]);
        packed.push(rgba);
    }
    Ok(packed)
}

/// The per-frame screen-space bins of the shader's `Bins` buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bins {
    /// Tile edge in pixels.
    pub tile_px: u32,
    /// Tiles along x and y.
    pub tiles: [u32; 2],
    /// `(offset, count)` per tile, row by row, then one pair for the global list; the offsets
    /// index this same array, whose tail holds the capsule indices.
    pub words: Vec<u32>,
    /// Overlays (capsules and quads) that can touch the frame (in some tile or the global
    /// list).
    pub visible: usize,
    /// How many of them are quads (the frame's pipeline leaves out the test of a kind it lacks).
    pub visible_quads: usize,
}

impl Bins {
    /// Bins the packed capsules, then the quads with corners `quads` (patient mm; their bin
    /// indices follow the capsules'), for `camera` and an image of `size` pixels. Without
    /// `cull`, every overlay goes to the global list (every pixel tests it).
    pub fn build(
        packed: &[[f32; 4]],
        quads: &[[DVec3; 4]],
        camera: &Camera,
        size: [u32; 2],
        cull: bool,
    ) -> Self {
        let tile_px = [size[0], size[1]]
            .iter()
            .map(|&n| n.div_ceil(MAX_TILES_PER_SIDE).next_multiple_of(8))
            .fold(MIN_TILE_PX, u32::max);
        let tiles = size.map(|n| n.div_ceil(tile_px));
        let tile_count = (tiles[0] * tiles[1]) as usize;
        let view_from_world = camera.view_from_world();
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); tile_count + 1];
        let mut visible = 0;
        let mut visible_quads = 0;
        let capsule_count = packed.len() / CAPSULE_VEC4S;
        let full = Some([[0, 0], [size[0] - 1, size[1] - 1]]);
        let capsules = packed.chunks_exact(CAPSULE_VEC4S).map(|c| {
            let ends = [c[0], c[1]]
                .map(|e| view_from_world.transform_point3(Vec3::new(e[0], e[1], e[2]).as_dvec3()));
            let rect = if cull {
                screen_rect(ends, f64::from(c[0][3]), camera, size)
            } else {
                full
            };
            (rect, MAX_TILES_PER_CAPSULE)
        });
        // At most MAX_QUADS quads: each may be listed in up to half the tiles.
        let quads = quads.iter().map(|corners| {
            let rect = if cull {
                quad_rect(
                    corners.map(|p| view_from_world.transform_point3(p)),
                    camera,
                    size,
                )
            } else {
                full
            };
            (rect, (tile_count / 2) as u32)
        });
        for (index, (rect, max_tiles)) in capsules.chain(quads).enumerate() {
            let Some(rect) = rect else {
                continue;
            };
            visible += 1;
            if index >= capsule_count {
                visible_quads += 1;
            }
            let covered = rect.map(|r| r.map(|px| px / tile_px));
            let span = (covered[1][0] - covered[0][0] + 1) * (covered[1][1] - covered[0][1] + 1);
            // Covering everything (or much): cheaper to list once than in every tile.
            if span > max_tiles || span as usize == tile_count {
                lists[tile_count].push(index as u32);
                continue;
            }
            for ty in covered[0][1]..=covered[1][1] {
                for tx in covered[0][0]..=covered[1][0] {
                    lists[(ty * tiles[0] + tx) as usize].push(index as u32);
                }
            }
        }
        let header = 2 * lists.len();
        let mut words = Vec::with_capacity(header + lists.iter().map(Vec::len).sum::<usize>());
        let mut offset = header as u32;
        for list in &lists {
            words.extend([offset, list.len() as u32]);
            offset += list.len() as u32;
        }
        for list in &lists {
            words.extend_from_slice(list);
        }
        Self {
            tile_px,
            tiles,
            words,
            visible,
            visible_quads,
        }
    }
}

/// The inclusive pixel rectangle (clamped to the image) that a quad with corners `corners`
/// (view frame) can cover, or `None` when it covers no pixel centre. A flat convex polygon in
/// front of the eye projects inside the bounding rectangle of its projected corners; one that
/// reaches the eye plane projects to an unbounded region, so then it may cover any pixel, and
/// one wholly behind it none (the shader hits a quad only at t > 0).
fn quad_rect(corners: [DVec3; 4], camera: &Camera, size: [u32; 2]) -> Option<[[u32; 2]; 2]> {
    let depth = corners.map(|p| -p.z);
    // Single-precision slack of the shader's plane hit, relative to the quad's distance.
    let reach = corners.iter().map(|p| p.length()).fold(0.0, f64::max);
    let margin = 1e-4 * (1.0 + reach);
    if depth.iter().all(|&d| d < -margin) {
        return None;
    }
    if depth.iter().any(|&d| d <= margin) {
        return Some([[0, 0], [size[0] - 1, size[1] - 1]]);
    }
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for (p, d) in corners.iter().zip(depth) {
        for (axis, c) in [p.x, p.y].into_iter().enumerate() {
            lo[axis] = lo[axis].min(c / d);
            hi[axis] = hi[axis].max(c / d);
        }
    }
    pixel_rect(lo, hi, camera, size)
}

/// The inclusive pixel rectangle `[[x0, y0], [x1, y1]]` (clamped to the image) that a capsule
/// with end centres `ends` (view frame) and radius `r` can cover, or `None` when it covers
/// no pixel centre. Conservative by a pixel.
fn screen_rect(ends: [DVec3; 2], r: f64, camera: &Camera, size: [u32; 2]) -> Option<[[u32; 2]; 2]> {
    // Depth in front of the eye (the view looks down -z).
    let depth = ends.map(|p| -p.z);
    if depth.iter().all(|&d| d < -r) {
        return None;
    }
    let full = [[0, 0], [size[0] - 1, size[1] - 1]];
    // A sphere that reaches the eye plane projects to an unbounded region; so does a segment
    // crossing it. Then the capsule may cover any pixel.
    let margin = r * 1.001 + 1e-6;
    if depth.iter().any(|&d| d <= margin) {
        return Some(full);
    }
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for (p, d) in ends.iter().zip(depth) {
        // Tangents of the two lines through the eye that touch the sphere's outline, per axis:
        // the circle of radius r around (c, d) seen from the origin spans slopes
        // (c·d ± r·√(c² + d² − r²)) / (d² − r²).
        for (axis, c) in [p.x, p.y].into_iter().enumerate() {
            let denom = d * d - r * r;
            let root = r * (c * c + d * d - r * r).max(0.0).sqrt();
            lo[axis] = lo[axis].min((c * d - root) / denom);
            hi[axis] = hi[axis].max((c * d + root) / denom);
        }
    }
    pixel_rect(lo, hi, camera, size)
}

/// The inclusive pixel rectangle (clamped to the image) whose pixel centres' rays have view
/// tangents within `lo..=hi` (x right, y up), widened by a pixel for rounding; `None` when it
/// holds no pixel of the image.
fn pixel_rect(
    lo: [f64; 2],
    hi: [f64; 2],
    camera: &Camera,
    size: [u32; 2],
) -> Option<[[u32; 2]; 2]> {
    let f = &camera.frustum;
    // Pixel x's ray has tangent tan_left + (x + 0.5)/w · (tan_right − tan_left); rows go down.
    let w = f64::from(size[0]);
    let h = f64::from(size[1]);
    let x0 = (lo[0] - f.tan_left) / (f.tan_right - f.tan_left) * w;
    let x1 = (hi[0] - f.tan_left) / (f.tan_right - f.tan_left) * w;
    let y0 = (f.tan_up - hi[1]) / (f.tan_up - f.tan_down) * h;
    let y1 = (f.tan_up - lo[1]) / (f.tan_up - f.tan_down) * h;
    let (x0, x1) = (x0.min(x1), x0.max(x1));
    let (y0, y1) = (y0.min(y1), y0.max(y1));
    // Pixel centres inside [x0, x1], widened by one pixel for rounding.
    let first = |v: f64| (v - 1.5).ceil();
    let last = |v: f64| (v + 0.5).floor();
    let (px0, px1, py0, py1) = (first(x0), last(x1), first(y0), last(y1));
    if !(px0.is_finite() && px1.is_finite() && py0.is_finite() && py1.is_finite())
        || px1 < 0.0
        || py1 < 0.0
        || px0 > w - 1.0
        || py0 > h - 1.0
    {
        return None;
    }
    let clamp = |v: f64, n: u32| v.clamp(0.0, f64::from(n - 1)) as u32;
    Some([
        [clamp(px0, size[0]), clamp(py0, size[1])],
        [clamp(px1, size[0]), clamp(py1, size[1])],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::Frustum;

    fn capsule(a: [f32; 3], b: [f32; 3], r: f32) -> Capsule {
        Capsule {
            a_mm: Vec3::from(a),
            b_mm: Vec3::from(b),
            radius_mm: r,
            rgba: [1.0, 0.0, 1.0, 1.0],
        }
    }

    fn camera() -> Camera {
        Camera::look_at(
            DVec3::new(0.0, 0.0, 100.0),
            DVec3::ZERO,
            DVec3::Y,
            Frustum::symmetric(60.0, 1.0),
        )
    }

    #[test]
    fn a_capsule_is_binned_where_it_projects_and_culled_elsewhere() {
        let cam = camera();
        let size = [256, 256];
        // A small sphere on the view axis: the tiles around the centre only.
        let packed = pack(&[capsule([0.0; 3], [0.0; 3], 2.0)]).expect("valid");
        let bins = Bins::build(&packed, &[], &cam, size, true);
        assert_eq!(bins.tile_px, 16);
        assert_eq!(bins.visible, 1);
        let count = |tx: u32, ty: u32| bins.words[2 * (ty * bins.tiles[0] + tx) as usize + 1];
        assert_eq!(count(7, 7) + count(8, 8), 2, "the centre tiles hold it");
        assert_eq!(count(0, 0), 0);
        assert_eq!(count(15, 15), 0);
        // Every projected pixel of the sphere lies in a tile that lists it.
        let centre = cam.project(DVec3::ZERO, size).expect("in front");
        let rim = cam
            .project(DVec3::new(2.0, 0.0, 0.0), size)
            .expect("in front");
        assert!(count((rim[0] as u32) / 16, (centre[1] as u32) / 16) == 1);

        // Behind the eye, or far off to the side: culled.
        let packed = pack(&[
            capsule([0.0, 0.0, 150.0], [5.0, 0.0, 160.0], 2.0),
            capsule([500.0, 0.0, 0.0], [520.0, 0.0, 0.0], 2.0),
        ])
        .expect("valid");
        assert_eq!(Bins::build(&packed, &[], &cam, size, true).visible, 0);

        // Through the eye: unbounded, so it goes to the global list.
        let packed = pack(&[capsule([0.0, 0.0, 50.0], [0.0, 0.0, 150.0], 1.0)]).expect("valid");
        let bins = Bins::build(&packed, &[], &cam, size, true);
        let global = 2 * (bins.tiles[0] * bins.tiles[1]) as usize;
        assert_eq!(bins.words[global + 1], 1);
    }

    #[test]
    fn a_quad_is_binned_by_its_projected_corners_and_fills_the_screen_at_the_eye_plane() {
        let cam = camera();
        let size = [256, 256];
        let tile = |bins: &Bins, x: f64, y: f64| {
            let (tx, ty) = ((x as u32) / bins.tile_px, (y as u32) / bins.tile_px);
            let pair = 2 * (ty * bins.tiles[0] + tx) as usize;
            let (first, count) = (bins.words[pair] as usize, bins.words[pair + 1] as usize);
            bins.words[first..first + count].to_vec()
        };
        // A tilted quad off centre: every point of it that projects into the image lies in a
        // tile that lists it (index 1: after the one capsule), and a far corner tile does not.
        let (c, u, v) = (
            DVec3::new(20.0, 5.0, 0.0),
            DVec3::new(12.0, 0.0, 6.0),
            DVec3::new(-3.0, 9.0, 0.0),
        );
        let corners = [c - u - v, c + u - v, c + u + v, c - u + v];
        let packed = pack(&[capsule([-30.0, 0.0, 0.0], [-30.0, 0.0, 0.0], 1.0)]).expect("valid");
        let bins = Bins::build(&packed, &[corners], &cam, size, true);
        assert_eq!((bins.visible, bins.visible_quads), (2, 1));
        for i in 0..=20 {
            for j in 0..=20 {
                let (a, b) = (f64::from(i) / 10.0 - 1.0, f64::from(j) / 10.0 - 1.0);
                let p = cam.project(c + a * u + b * v, size).expect("in front");
                assert!(tile(&bins, p[0], p[1]).contains(&1), "({a}, {b}) at {p:?}");
            }
        }
        assert!(!tile(&bins, 0.0, 0.0).contains(&1));

        // Reaching behind the eye (z = 100): the global list; wholly behind it: culled.
        let global = 2 * (bins.tiles[0] * bins.tiles[1]) as usize;
        let through = [
            DVec3::new(-5.0, -5.0, 50.0),
            DVec3::new(5.0, -5.0, 50.0),
            DVec3::new(5.0, -5.0, 150.0),
            DVec3::new(-5.0, -5.0, 150.0),
        ];
        let bins = Bins::build(&[], &[through], &cam, size, true);
        assert_eq!(bins.words[global + 1], 1);
        let behind = through.map(|p| p + DVec3::new(0.0, 0.0, 60.0));
        assert_eq!(Bins::build(&[], &[behind], &cam, size, true).visible, 0);
        // Without culling it is listed all the same.
        let bins = Bins::build(&[], &[behind], &cam, size, false);
        assert_eq!(
            (bins.visible, bins.visible_quads, bins.words[global + 1]),
            (1, 1, 1)
        );
    }

    #[test]
    fn bad_capsules_are_refused_and_invisible_ones_dropped() {
        let mut nan = capsule([0.0; 3], [1.0; 3], 1.0);
        nan.a_mm.x = f32::NAN;
        assert!(matches!(
            pack(&[capsule([0.0; 3], [1.0; 3], 1.0), nan]),
            Err(RenderError::BadOverlay { index: 1, .. })
        ));
        assert!(matches!(
            pack(&[capsule([0.0; 3], [1.0; 3], -1.0)]),
            Err(RenderError::BadOverlay { index: 0, .. })
        ));
        let many = vec![capsule([0.0; 3], [1.0; 3], 1.0); MAX_OVERLAY_CAPSULES + 1];
        assert!(matches!(
            pack(&many),
            Err(RenderError::TooManyOverlays { .. })
        ));
        let mut clear = capsule([0.0; 3], [1.0; 3], 1.0);
        clear.rgba[3] = 0.0;
        assert!(pack(&[clear, capsule([0.0; 3], [1.0; 3], 0.0)])
            .expect("valid")
            .is_empty());
    }
}
