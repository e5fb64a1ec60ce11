//! Shared harness for the cross-crate tests: phantoms made in code, a renderer on the CPU
//! device, and golden-image comparison with one documented tolerance.

pub mod services;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use glam::DVec3;
use twinray_renderer::{DevicePreference, GpuContext, RgbaImage};
use twinray_volume::{CtVolume, Geometry, Volume};

/// Environment variable that re-blesses golden images instead of comparing with them.
pub const BLESS_ENV: &str = "TWINRAY_BLESS";

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A file of the shipped demo case.
pub fn demo_file(name: &str) -> PathBuf {
    repo_root().join("data/demo").join(name)
}

/// This test process's scratch folder `twinray-<kind>-<pid>`, emptied on its first use in the
/// process. Process ids repeat across runs (a fresh container starts its processes at the same
/// numbers) and recordings never overwrite a file, so a folder left by an earlier run must not
/// leak its files into this one; tests of one binary share the folder and pick distinct names.
pub fn scratch_dir(kind: &str) -> PathBuf {
    static EMPTIED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join(format!("twinray-{kind}-{}", std::process::id()));
    let mut emptied = EMPTIED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !emptied.iter().any(|k| k == kind) {
        let _ = std::fs::remove_dir_all(&dir);
        emptied.push(kind.to_owned());
    }
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// One Vulkan context for the whole test binary. Tests render on the CPU device (lavapipe) so
/// that goldens compare across machines; `TWINRAY_DEVICE` overrides that. A missing device is a
/// failure, never a skip.
pub fn gpu() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let preference = match std::env::var(twinray_scene::device::DEVICE_ENV) {
            Ok(_) => {
                twinray_scene::device::device_preference(None).expect("TWINRAY_DEVICE is valid")
            }
            Err(_) => DevicePreference::Cpu,
        };
        GpuContext::new(preference).expect("a Vulkan device (install mesa-vulkan-drivers)")
    })
    .clone()
}

/// Serialises GPU use across the test threads of one binary: lavapipe already uses every core
/// for one dispatch, and interleaved submissions only add memory.
pub fn gpu_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A phantom on an axis-aligned grid centred on the patient origin, HU given by `hu(p)` at each
/// voxel centre `p` (LPS mm).
pub fn phantom(dims: [usize; 3], spacing_mm: [f64; 3], hu: impl Fn(DVec3) -> f32) -> CtVolume {
    let origin = [0, 1, 2].map(|a| -(dims[a] as f64 - 1.0) * 0.5 * spacing_mm[a]);
    let g = Geometry::axis_aligned(dims, spacing_mm, origin).expect("valid phantom grid");
    Volume::from_fn(g, |i, j, k| {
        hu(g.patient_from_index(DVec3::new(i as f64, j as f64, k as f64)))
    })
}

/// Pixels whose alpha exceeds `threshold` (0–255).
pub fn covered_pixels(image: &RgbaImage, threshold: u8) -> usize {
    image
        .pixels
        .chunks_exact(4)
        .filter(|p| p[3] > threshold)
        .count()
}

/// Centroid (x, y) of pixels whose alpha exceeds `threshold`.
pub fn covered_centroid(image: &RgbaImage, threshold: u8) -> Option<[f64; 2]> {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for y in 0..image.height {
        for x in 0..image.width {
            if image.pixel(x, y)[3] > threshold {
                sx += f64::from(x) + 0.5;
                sy += f64::from(y) + 0.5;
                n += 1.0;
            }
        }
    }
    (n > 0.0).then(|| [sx / n, sy / n])
}

/// How two images of the same size differ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageDifference {
    /// Mean of NVIDIA's FLIP error map (0 = identical, 1 = as different as can be seen), at
    /// FLIP's default 67 pixels per degree.
    pub flip_mean: f32,
    /// Largest FLIP error of any pixel.
    pub flip_max: f32,
    /// Mean absolute difference over all pixels and channels, in 8-bit levels.
    pub mean_levels: f64,
    /// Pixels where some channel differs by more than [`Tolerance::CHANNEL_LEVELS`].
    pub differing_pixels: usize,
}

impl ImageDifference {
    /// Compares RGB8 images of `width` × `height` (tightly packed rows).
    #[must_use]
    pub fn between(reference_rgb: &[u8], test_rgb: &[u8], width: u32, height: u32) -> Self {
        let reference = nv_flip::FlipImageRgb8::with_data(width, height, reference_rgb);
        let test = nv_flip::FlipImageRgb8::with_data(width, height, test_rgb);
        let error = nv_flip::flip(reference, test, nv_flip::DEFAULT_PIXELS_PER_DEGREE);
        let pool = nv_flip::FlipPool::from_image(&error);
        let total: u64 = reference_rgb
            .iter()
            .zip(test_rgb)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let differing_pixels = reference_rgb
            .chunks_exact(3)
            .zip(test_rgb.chunks_exact(3))
            .filter(|(a, b)| {
                a.iter()
                    .zip(b.iter())
                    .any(|(x, y)| x.abs_diff(*y) > Tolerance::CHANNEL_LEVELS)
            })
            .count();
        Self {
            flip_mean: pool.mean(),
            flip_max: pool.max_value(),
            mean_levels: total as f64 / reference_rgb.len().max(1) as f64,
            differing_pixels,
        }
    }

    /// Whether the difference is within [`Tolerance`].
    #[must_use]
    pub fn is_within_tolerance(&self) -> bool {
        self.flip_mean <= Tolerance::FLIP_MEAN
            && self.mean_levels <= Tolerance::MEAN_LEVELS
            && self.differing_pixels <= Tolerance::MAX_DIFFERING_PIXELS
    }
}

impl std::fmt::Display for ImageDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FLIP mean {:.5} (at most {}), max {:.3}; mean difference {:.4} levels (at most {}); {} pixels off by more than {} levels (at most {})",
            self.flip_mean,
            Tolerance::FLIP_MEAN,
            self.flip_max,
            self.mean_levels,
            Tolerance::MEAN_LEVELS,
            self.differing_pixels,
            Tolerance::CHANNEL_LEVELS,
            Tolerance::MAX_DIFFERING_PIXELS
        )
    }
}

/// The tolerance of every golden-image comparison, in one place.
///
/// An image passes when all three bounds hold: the mean FLIP error (a perceptual difference that
/// weighs what a viewer notices: edges, contrast, colour), the mean absolute difference (so a
/// small change spread over every pixel, such as a brightness or shading drift, fails), and the
/// number of pixels off by more than `CHANNEL_LEVELS` (so a local change, a moved label or
/// stroke, fails). Goldens are rendered on lavapipe and the suite renders on lavapipe, where
/// frames are deterministic (fixed jitter seed; two runs are byte-identical here). The bounds are
/// set from measurements written down in `tests/goldens/README.md`: the largest difference seen
/// between renders of the same scene by code revisions nobody could tell apart, and the smallest
/// difference of the regressions the suite must catch (3 % brightness, a one-voxel shift, one
/// label's colour), with the bounds between them.
pub struct Tolerance;

impl Tolerance {
    /// A channel difference above this many levels makes a pixel count as differing.
    pub const CHANNEL_LEVELS: u8 = 12;
    /// Largest number of differing pixels allowed.
    pub const MAX_DIFFERING_PIXELS: usize = 20;
    /// Largest mean FLIP error allowed.
    pub const FLIP_MEAN: f32 = 0.002;
    /// Largest mean absolute difference allowed, in 8-bit levels.
    pub const MEAN_LEVELS: f64 = 0.05;
}

/// The golden `tests/goldens/{name}.png` as RGB8, with its size.
///
/// # Panics
/// When the golden is missing or unreadable (with how to make one).
#[must_use]
pub fn read_golden(name: &str) -> (u32, u32, Vec<u8>) {
    let golden_path = repo_root()
        .join("tests/goldens")
        .join(format!("{name}.png"));
    read_png_rgb(&golden_path).unwrap_or_else(|e| {
        panic!(
            "golden {} cannot be read ({e}); if this is a new test, render it with {BLESS_ENV}=1 and look at it before committing",
            golden_path.display()
        )
    })
}

/// The RGB8 bytes of a rendered frame (its alpha dropped).
#[must_use]
pub fn rgb_of(image: &RgbaImage) -> Vec<u8> {
    image
        .pixels
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// How a frame differs from its golden.
///
/// # Panics
/// When the golden is missing or has another size.
#[must_use]
pub fn compare_with_golden(name: &str, image: &RgbaImage) -> ImageDifference {
    let (width, height, golden) = read_golden(name);
    assert_eq!(
        (width, height),
        (image.width, image.height),
        "golden {name} has another size"
    );
    ImageDifference::between(&golden, &rgb_of(image), width, height)
}

/// Compares a frame with `tests/goldens/{name}.png` ([`Tolerance`]).
///
/// With `TWINRAY_BLESS=1` the golden is (re)written instead, and the test fails so that blessing
/// is never mistaken for a pass. On a mismatch, `{name}.actual.png` and `{name}.diff.png` are
/// written beside the golden and named in the panic message.
pub fn assert_matches_golden(name: &str, image: &RgbaImage) {
    let dir = repo_root().join("tests/goldens");
    let golden_path = dir.join(format!("{name}.png"));
    if std::env::var(BLESS_ENV).is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).expect("create goldens folder");
        image.write_png(&golden_path).expect("write golden");
        panic!(
            "{BLESS_ENV}=1: wrote {}; run again without it to compare",
            golden_path.display()
        );
    }
    let difference = compare_with_golden(name, image);
    if !difference.is_within_tolerance() {
        let (_, _, golden) = read_golden(name);
        let actual = rgb_of(image);
        let mut diff = Vec::with_capacity(actual.len());
        for (a, g) in actual.chunks_exact(3).zip(golden.chunks_exact(3)) {
            let d = a
                .iter()
                .zip(g)
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap_or(0);
            if d > 0 {
                // Brighter magenta for larger differences.
                let level = 96 + u16::from(d).min(159);
                diff.extend([level as u8, 0, level as u8]);
            } else {
                // Faint copy of the image, so the differing pixels stand out in context.
                let grey = (u16::from(a[0]) + u16::from(a[1]) + u16::from(a[2])) / 12;
                diff.extend([grey as u8; 3]);
            }
        }
        let actual_path = dir.join(format!("{name}.actual.png"));
        let diff_path = dir.join(format!("{name}.diff.png"));
        image.write_png(&actual_path).expect("write actual image");
        write_png_rgb(&diff_path, image.width, image.height, &diff).expect("write diff image");
        panic!(
            "{name} differs from its golden: {difference}. \
             Actual: {}  Diff (magenta = differs): {}  Golden: {}. \
             If the change is intended, re-bless with {BLESS_ENV}=1 and look at the new image.",
            actual_path.display(),
            diff_path.display(),
            golden_path.display()
        );
    }
}

/// Reads a PNG as RGB8 with its size.
///
/// # Errors
/// When it cannot be read or decoded.
pub fn read_png_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => return Err(format!("unexpected colour type {other:?}")),
    };
    Ok((info.width, info.height, rgb))
}

fn write_png_rgb(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())
}

/// A hard threshold at 0 HU: everything denser is fully opaque white, unshaded.
pub fn solid_preset() -> twinray_transfer_functions::Preset {
    twinray_transfer_functions::Preset::parse(
        r#"
name = "solid"
description = "test: opaque above 0 HU"
blend = "composite"
[shading]
enabled = false
[[colour]]
hu = 0
rgb = [1.0, 1.0, 1.0]
[[opacity]]
hu = -1
alpha = 0.0
[[opacity]]
hu = 1
alpha = 1.0
"#,
        "solid (test)",
    )
    .expect("test preset parses")
}
