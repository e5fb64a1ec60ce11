//! Shared harness for the cross-crate tests: phantoms made in code, a renderer on the CPU
//! device, and golden-image comparison with one documented tolerance.

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

/// The tolerance of every golden-image comparison, in one place.
///
/// A pixel differs when any channel differs by more than `CHANNEL_LEVELS`; a comparison fails
/// when more than `MAX_DIFFERING_PIXELS` pixels differ. Goldens are rendered on lavapipe and the
/// suite renders on lavapipe, where frames are deterministic (fixed jitter seed); the slack
/// covers other LLVM versions and SIMD widths rounding half-floats differently at a few edge
/// pixels, not changes anyone could see as a different image.
pub struct Tolerance;

impl Tolerance {
    /// Largest per-channel difference that still counts as equal.
    pub const CHANNEL_LEVELS: u8 = 12;
    /// Largest number of differing pixels allowed.
    pub const MAX_DIFFERING_PIXELS: usize = 20;
}

/// Compares a frame with `tests/goldens/{name}.png`.
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
    let golden = read_png_rgb(&golden_path).unwrap_or_else(|e| {
        panic!(
            "golden {} cannot be read ({e}); if this is a new test, render it with {BLESS_ENV}=1 and look at it before committing",
            golden_path.display()
        )
    });
    assert_eq!(
        (golden.0, golden.1),
        (image.width, image.height),
        "golden {} has another size",
        golden_path.display()
    );
    let actual: Vec<u8> = image
        .pixels
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut differing = 0usize;
    let mut worst = 0u8;
    let mut diff = Vec::with_capacity(actual.len());
    for (a, g) in actual.chunks_exact(3).zip(golden.2.chunks_exact(3)) {
        let d = a
            .iter()
            .zip(g)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        worst = worst.max(d);
        if d > Tolerance::CHANNEL_LEVELS {
            differing += 1;
            diff.extend([255, 0, 255]);
        } else {
            // Faint copy of the image, so the differing pixels stand out in context.
            let grey = (u16::from(a[0]) + u16::from(a[1]) + u16::from(a[2])) / 12;
            diff.extend([grey as u8; 3]);
        }
    }
    if differing > Tolerance::MAX_DIFFERING_PIXELS {
        let actual_path = dir.join(format!("{name}.actual.png"));
        let diff_path = dir.join(format!("{name}.diff.png"));
        image.write_png(&actual_path).expect("write actual image");
        write_png_rgb(&diff_path, image.width, image.height, &diff).expect("write diff image");
        panic!(
            "{name}: {differing} pixels differ from the golden by more than {} levels (worst {worst}; at most {} may). \
             Actual: {}  Diff (magenta = differs): {}  Golden: {}. \
             If the change is intended, re-bless with {BLESS_ENV}=1 and look at the new image.",
            Tolerance::CHANNEL_LEVELS,
            Tolerance::MAX_DIFFERING_PIXELS,
            actual_path.display(),
            diff_path.display(),
            golden_path.display()
        );
    }
}

fn read_png_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), String> {
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
