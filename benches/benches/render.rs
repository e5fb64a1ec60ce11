//! Frame time of the ray-marcher, measured the way `shared/peers/vtk_volume_render.py` measures
//! VTK: 512×512 (and 1024×1024), step 0.5 voxel, the bone transfer function with shading, the
//! camera orbiting 2° per frame, 2 warm-up frames excluded, each frame finished and read back
//! before the clock stops. Prints the median and fastest frame, the median CPU time of a frame
//! over all threads (the figure to compare shader changes by on a shared machine, where wall time
//! follows other users' load), the device, the step and the samples per frame; when the peer
//! venv exists, runs VTK's CPU ray caster in the same run and prints the ratio by medians and by
//! fastest frames (shaded bone on example_ct and the synthetic 256³ sphere, and MIP on
//! example_ct, each against the goal of 3×). Also prints the studio's frame times
//! through `FrameRenderer` at 1280×800 (a half-size drag frame and the full refined one) and the
//! device memory a 512³ CT with labels and gradients would take.
//!
//! The overlay cases draw 0, 100 and 2000 capsules (pen strokes wound around the anatomy, half
//! of them hidden behind it, plus an avatar's glasses outside the volume) composited by depth
//! into the same 512×512 bone frame, so their difference to the plain case is the overlay cost.
//! The quad case draws 10 X-ray boards (1000×1000 images) behind the anatomy and 50 text labels
//! around it that turn to face the camera every frame (`set_quads` per frame, timed with it).
//!
//! `cargo bench -p twinray-benches --bench render` (`-- --quick` for fewer cases,
//! `-- --overlays` for the overlay and quad cases only, `TWINRAY_DEVICE=gpu|cpu` to choose the device,
//! `TWINRAY_BENCH_PEER=0` to skip VTK, `TWINRAY_BENCH_CASES=text` for the 512×512 cases whose
//! name contains `text`, without the studio frames).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use twinray_benches::{median, process_cpu_ms};

use anyhow::{Context, Result};
use glam::{DVec3, Vec3};
use twinray_io::read_ct;
use twinray_renderer::{
    Camera, Capsule, Frustum, GpuContext, Quad, RenderOptions, RgbaImage, VolumeRenderer,
};
use twinray_transfer_functions::{Preset, TransferFunction};
use twinray_volume::{CtVolume, Geometry, Volume};

const WARMUP: usize = 2;
const FRAMES: usize = 10;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The peer's `sphere_shell_phantom(N)`: air outside, a 1000 HU bone shell, 40 HU inside,
/// one-voxel anti-aliased edges, 1 mm voxels.
fn sphere_shell(n: usize) -> CtVolume {
    let g = Geometry::axis_aligned([n; 3], [1.0; 3], [0.0; 3]).expect("valid grid");
    let c = (n as f64 - 1.0) / 2.0;
    let (ro, ri) = (0.9 * n as f64 / 2.0, 0.7 * n as f64 / 2.0);
    Volume::from_fn(g, |i, j, k| {
        let d = DVec3::new(i as f64 - c, j as f64 - c, k as f64 - c).length();
        let outer = (ro - d + 0.5).clamp(0.0, 1.0);
        let inner = (ri - d + 0.5).clamp(0.0, 1.0);
        (-1000.0 + 2000.0 * outer - 960.0 * inner).round() as f32
    })
}

struct Case {
    name: String,
    ct: CtVolume,
    size: [u32; 2],
    preset: &'static str,
    /// Overlay capsules drawn with the volume.
    overlays: Vec<Capsule>,
    /// Boards and labels drawn with the volume.
    quads: Option<QuadScene>,
}

/// Textured quads: fixed boards, and labels turned to face the camera every frame.
struct QuadScene {
    images: Vec<RgbaImage>,
    boards: Vec<Quad>,
    /// (centre, half width, half height) in mm, and the image index, per label.
    labels: Vec<(Vec3, f32, f32, usize)>,
}

impl QuadScene {
    /// `boards` boards of a 1000×1000 synthetic radiograph in a 5-wide grid behind the volume
    /// (posterior, partly hidden by bone), and `labels` text labels on a helix around it.
    fn new(ct: &CtVolume, boards: usize, labels: usize) -> Self {
        let g = ct.geometry();
        let c = g.centre_mm().as_vec3();
        let r = g.bounding_radius_mm() as f32;
        let radiograph = RgbaImage {
            width: 1000,
            height: 1000,
            pixels: (0..1000u32 * 1000)
                .flat_map(|i| {
                    let (x, y) = (i % 1000, i / 1000);
                    let v = (((x / 50 + y / 50) % 2) * 120 + (x * 135 / 1000)) as u8;
                    [v, v, v, 255]
                })
                .collect(),
        };
        let mut images: Vec<RgbaImage> = (0..boards).map(|_| radiograph.clone()).collect();
        let side = 0.3 * r;
        let boards = (0..boards)
            .map(|i| Quad {
                centre_mm: c + Vec3::new(
                    ((i % 5) as f32 - 2.0) * 1.05 * side,
                    1.1 * r,
                    ((i / 5) as f32 - 0.5) * 1.05 * side,
                ),
                u_half_mm: Vec3::new(0.5 * side, 0.0, 0.0),
                v_half_mm: Vec3::new(0.0, 0.0, 0.5 * side),
                image: i,
                tint: [1.0; 4],
                two_sided: true,
            })
            .collect();
        let height_mm = 0.05 * r;
        let labels = (0..labels)
            .map(|i| {
                let image =
                    twinray_scene::text::text_image(&format!("Structure {i}: 12.{i} mm"), 20);
                let half_w = 0.5 * height_mm * image.width as f32 / image.height as f32;
                images.push(image);
                let s = i as f32 / labels.max(1) as f32;
                let angle = s * 3.0 * std::f32::consts::TAU;
                let centre = c + 0.6 * r * Vec3::new(angle.cos(), angle.sin(), 2.0 * s - 1.0);
                (centre, half_w, 0.5 * height_mm, images.len() - 1)
            })
            .collect();
        Self {
            images,
            boards,
            labels,
        }
    }

    /// The boards, and the labels facing `camera` (upright in its image).
    fn quads(&self, camera: &Camera) -> Vec<Quad> {
        let right = camera.world_from_view.x_axis.truncate().as_vec3();
        let up = camera.world_from_view.y_axis.truncate().as_vec3();
        let labels = self.labels.iter().map(|&(centre, w, h, image)| Quad {
            centre_mm: centre,
            u_half_mm: right * w,
            v_half_mm: up * h,
            image,
            tint: [1.0; 4],
            two_sided: false,
        });
        self.boards.iter().copied().chain(labels).collect()
    }
}

/// `strokes` pen strokes of `segments` capsules each, wound as a helix around the volume's
/// centre at 0.45 of its bounding radius (so they pass in front of and behind the anatomy),
/// plus the avatar's glasses (eight capsules) outside the volume in the camera's view.
fn strokes(ct: &CtVolume, count: usize) -> Vec<Capsule> {
    let g = ct.geometry();
    let c = g.centre_mm().as_vec3();
    let r = (g.bounding_radius_mm() * 0.45) as f32;
    let magenta = [1.0, 0.1, 0.9, 1.0];
    let mut out = Vec::with_capacity(count + 8);
    let turns = 6.0;
    let point = |i: usize| {
        let s = i as f32 / count.max(1) as f32;
        let angle = s * turns * std::f32::consts::TAU;
        c + Vec3::new(r * angle.cos(), r * angle.sin(), r * (2.0 * s - 1.0))
    };
    for i in 0..count.saturating_sub(8) {
        out.push(Capsule {
            a_mm: point(i),
            b_mm: point(i + 1),
            radius_mm: 1.5,
            rgba: magenta,
        });
    }
    if count > 0 {
        // Glasses: two rims of three segments and a bridge, in front of the patient's face.
        let eye = c + Vec3::new(0.0, -1.6 * r, 0.5 * r);
        for side in [-1.0f32, 1.0] {
            let centre = eye + Vec3::new(side * 18.0, 0.0, 0.0);
            for k in 0..3 {
                let a = k as f32 / 3.0 * std::f32::consts::TAU;
                let b = (k + 1) as f32 / 3.0 * std::f32::consts::TAU;
                out.push(Capsule {
                    a_mm: centre + 14.0 * Vec3::new(a.cos(), 0.0, a.sin()),
                    b_mm: centre + 14.0 * Vec3::new(b.cos(), 0.0, b.sin()),
                    radius_mm: 1.5,
                    rgba: magenta,
                });
            }
        }
        out.push(Capsule {
            a_mm: eye + Vec3::new(-4.0, 0.0, 0.0),
            b_mm: eye + Vec3::new(4.0, 0.0, 0.0),
            radius_mm: 1.5,
            rgba: magenta,
        });
        out.truncate(count);
    }
    out
}

/// One case's figures.
struct Figures {
    median_ms: f64,
    /// The fastest frame: on a shared machine the least disturbed by other users' load.
    min_ms: f64,
    /// Median CPU time of a frame over all threads (lavapipe's workers included).
    cpu_ms: f64,
    upload_ms: f64,
    samples: u64,
    step_mm: f32,
}

fn run_case(renderer: &mut VolumeRenderer, case: &Case) -> Result<Figures> {
    renderer.set_transfer_function(&TransferFunction::new(Preset::load(case.preset)?))?;
    renderer.set_overlays(&case.overlays)?;
    renderer.set_quad_images(case.quads.as_ref().map_or(&[][..], |q| &q.images))?;
    let upload = Instant::now();
    renderer.set_volume(&case.ct, None, twinray_transfer_functions::DensityRange::CT)?;
    let upload_ms = upload.elapsed().as_secs_f64() * 1e3;
    let g = case.ct.geometry();
    let distance = g.bounding_radius_mm() / 15f64.to_radians().sin();
    let aspect = f64::from(case.size[0]) / f64::from(case.size[1]);
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut samples = Vec::new();
    let mut step_mm = 0.0;
    for frame in 1..=WARMUP + FRAMES {
        let camera = Camera::orbit(
            g.centre_mm(),
            distance,
            2.0 * frame as f64,
            0.0,
            Frustum::symmetric(25.0, aspect),
        );
        let cpu_before = process_cpu_ms();
        let t = Instant::now();
        if let Some(quads) = &case.quads {
            renderer.set_quads(&quads.quads(&camera))?;
        }
        let (_, stats) = renderer.render(&camera, &RenderOptions::default(), case.size)?;
        if frame > WARMUP {
            times.push(t.elapsed().as_secs_f64() * 1e3);
            samples.push(stats.samples as f64);
            if let (Some(a), Some(b)) = (cpu_before, process_cpu_ms()) {
                cpu.push(b - a);
            }
        }
        step_mm = stats.step_mm;
    }
    Ok(Figures {
        min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
        median_ms: median(times),
        cpu_ms: median(cpu),
        upload_ms,
        samples: median(samples) as u64,
        step_mm,
    })
}

/// The studio's own render path (`FrameRenderer`, as the window's render thread uses it) on the
/// demo case with its labels at 1280×800, orbiting 2° per frame: the full frame (what the
/// studio shows once a drag stops) and a half-size frame at a doubled step (what a reduced-size
/// frame during a drag would cost). Returns (half-size median ms, full-size median ms).
fn studio_frames(ctx: &std::sync::Arc<GpuContext>) -> Result<(f64, f64)> {
    let case = twinray_scene::Case::demo()?;
    let mut frames = twinray_scene::builder::FrameRenderer::new(
        ctx.clone(),
        &case.ct,
        case.labels.as_ref(),
        &case.intensity,
    )?;
    let tf = TransferFunction::new(Preset::load("ct-bone")?);
    let g = case.ct.geometry();
    let distance = g.bounding_radius_mm() / 15f64.to_radians().sin();
    let mut medians = Vec::new();
    for (size, step) in [([640, 400], 1.0), ([1280, 800], 0.5)] {
        let options = RenderOptions {
            step_voxels: step,
            ..RenderOptions::default()
        };
        let aspect = f64::from(size[0]) / f64::from(size[1]);
        let mut times = Vec::new();
        for frame in 1..=WARMUP + 4 {
            let camera = Camera::orbit(
                g.centre_mm(),
                distance,
                30.0 + 2.0 * frame as f64,
                15.0,
                Frustum::symmetric(25.0, aspect),
            );
            let t = Instant::now();
            frames.render_view(&tf, &camera, &options, &[], size)?;
            if frame > WARMUP {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        medians.push(median(times));
    }
    Ok((medians[0], medians[1]))
}

/// A peer's (median, fastest) frame in ms.
type PeerTimes = (f64, f64);

/// Runs the VTK peer on the same input when its venv exists; returns its CPU and GPU mappers'
/// times (the GPU mapper only when `both`).
fn vtk_peer(volume: &Path, tf: &str, both: bool) -> Option<(PeerTimes, Option<PeerTimes>)> {
    if std::env::var("TWINRAY_BENCH_PEER").is_ok_and(|v| v == "0") {
        return None;
    }
    let python = twinray_benches::peers_python();
    let script = repo_root().join("../shared/peers/vtk_volume_render.py");
    if !python.exists() || !script.exists() {
        eprintln!(
            "(VTK peer not run: no venv at {}; run `bash ../shared/peers/setup.sh` to compare)",
            python.display()
        );
        return None;
    }
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--size", "512x512", "--sample-distance", "0.5", "--frames"]);
    cmd.arg(FRAMES.to_string())
        .args(["--warmup", "2", "--tf", tf, "--mapper"])
        .arg(if both { "both" } else { "cpu" });
    if volume.as_os_str() == "synthetic-256" {
        cmd.args(["--synthetic", "256"]);
    } else {
        cmd.arg("--volume").arg(volume);
    }
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))?;
    let json: serde_json::Value = serde_json::from_str(last).ok()?;
    let find = |mapper: &str| {
        let render = &json["results"][mapper]["render"];
        Some((render["median_ms"].as_f64()?, render["min_ms"].as_f64()?))
    };
    Some((find("cpu")?, find("gpu")))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let overlays_only = std::env::args().any(|a| a == "--overlays");
    let ctx = GpuContext::new(twinray_scene::device::device_preference(None)?)?;
    println!("device: {}", ctx.device_name());
    let demo = repo_root().join("data/demo/example_ct.nii.gz");
    let ct = read_ct(&demo).with_context(|| format!("loading {}", demo.display()))?;
    let overlay_cases: Vec<Case> = [0, 100, 2000]
        .into_iter()
        .map(|n| Case {
            name: format!("example_ct + {n} capsules"),
            overlays: strokes(&ct, n),
            ct: ct.clone(),
            size: [512, 512],
            preset: "ct-bone",
            quads: None,
        })
        .chain(std::iter::once(Case {
            name: "example_ct + 10 boards 50 text".into(),
            overlays: Vec::new(),
            quads: Some(QuadScene::new(&ct, 10, 50)),
            ct: ct.clone(),
            size: [512, 512],
            preset: "ct-bone",
        }))
        .collect();
    let mut cases = vec![
        Case {
            name: "example_ct 122x101x112 3mm".into(),
            ct: ct.clone(),
            size: [512, 512],
            preset: "ct-bone",
            overlays: Vec::new(),
            quads: None,
        },
        Case {
            name: "example_ct 122x101x112 3mm".into(),
            ct: ct.clone(),
            size: [1024, 1024],
            preset: "ct-bone",
            overlays: Vec::new(),
            quads: None,
        },
        Case {
            name: "example_ct MIP".into(),
            ct: ct.clone(),
            size: [512, 512],
            preset: "mip",
            overlays: Vec::new(),
            quads: None,
        },
        Case {
            name: "synthetic 256^3 1mm".into(),
            ct: sphere_shell(256),
            size: [512, 512],
            preset: "ct-bone",
            overlays: Vec::new(),
            quads: None,
        },
    ];
    if !quick {
        cases.push(Case {
            name: "synthetic 512^3 1mm".into(),
            ct: sphere_shell(512),
            size: [512, 512],
            preset: "ct-bone",
            overlays: Vec::new(),
            quads: None,
        });
    }
    if overlays_only {
        cases.clear();
    }
    cases.extend(overlay_cases);
    // `TWINRAY_BENCH_CASES=text`: only the cases whose name contains it.
    if let Ok(only) = std::env::var("TWINRAY_BENCH_CASES") {
        cases.retain(|c| c.name.contains(&only) && c.size == [512, 512]);
    }
    let mut renderer = VolumeRenderer::new(
        ctx.clone(),
        &TransferFunction::new(Preset::load("ct-bone")?),
    )?;
    println!(
        "{:<30} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8} {:>14} {:>10}",
        "case",
        "size",
        "preset",
        "median ms",
        "min ms",
        "CPU ms",
        "step mm",
        "samples/frame",
        "Msamples/s"
    );
    let mut example_512 = None;
    let mut synthetic_256 = None;
    let mut mip_512 = None;
    for case in &cases {
        let fig = run_case(&mut renderer, case)?;
        let ms = (fig.median_ms, fig.min_ms);
        if case.preset == "mip" {
            mip_512 = Some(ms);
        }
        println!(
            "{:<30} {:>9} {:>8} {:>10.1} {:>8.1} {:>8.0} {:>8.2} {:>14} {:>10.0}   (upload {:.0} ms)",
            case.name,
            format!("{}x{}", case.size[0], case.size[1]),
            case.preset,
            fig.median_ms,
            fig.min_ms,
            fig.cpu_ms,
            fig.step_mm,
            fig.samples,
            fig.samples as f64 / fig.median_ms / 1e3,
            fig.upload_ms
        );
        if case.preset == "ct-bone"
            && case.size == [512, 512]
            && case.overlays.is_empty()
            && case.quads.is_none()
        {
            // The first such case (the "+ 0 capsules" overlay case renders the same frame).
            if case.name.starts_with("example_ct") {
                example_512.get_or_insert(ms);
            } else if case.name.contains("256") {
                synthetic_256.get_or_insert(ms);
            }
        }
    }
    if !overlays_only && std::env::var("TWINRAY_BENCH_CASES").is_err() {
        let (drag, refined) = studio_frames(&ctx)?;
        println!(
            "studio (FrameRenderer, demo case + labels, bone): 640x400 at step 1 voxel (drag) {drag:.1} ms \
             (goal <= 100 ms); 1280x800 at step 0.5 (refined) {refined:.1} ms (goal <= 500 ms)"
        );
    }
    // Device memory of a 512^3 CT with labels and normals (the textures set_volume allocates).
    let dims = [512; 3];
    let factor = twinray_renderer::normal_factor(dims, true);
    println!(
        "device memory, 512^3 CT + labels + normals (1/{factor} resolution): {:.0} MiB (budget {} MiB)",
        twinray_renderer::volume_bytes(dims, true, factor) as f64 / 1048576.0,
        twinray_renderer::VOLUME_MEMORY_BUDGET / 1048576
    );
    // The VTK GPU mapper is slow on llvmpipe; it is run for the shaded cases only.
    for (label, input, tf, both, ours) in [
        (
            "example_ct, bone, shaded, 512x512",
            demo.clone(),
            "bone",
            true,
            example_512,
        ),
        (
            "synthetic 256^3, bone, shaded, 512x512",
            PathBuf::from("synthetic-256"),
            "bone",
            true,
            synthetic_256,
        ),
        (
            "example_ct, MIP, 512x512",
            demo.clone(),
            "mip",
            false,
            mip_512,
        ),
    ] {
        let Some((ours, ours_min)) = ours else {
            continue;
        };
        // Medians against medians, and fastest against fastest frames: when other users load
        // the machine during one side's frames, the two ratios disagree, and the fastest
        // frames are the fairer pair.
        let Some(((cpu, cpu_min), gpu)) = vtk_peer(&input, tf, both) else {
            continue;
        };
        let gpu_text = gpu.map_or_else(String::new, |(gpu, gpu_min)| {
            format!(
                "; VTK GPU mapper {gpu:.1} ms (fastest {gpu_min:.1}), speed-up over it {:.2}x",
                gpu / ours
            )
        });
        println!(
            "peer, same run: {label}: VTK CPU ray caster {cpu:.1} ms (fastest {cpu_min:.1}); \
             twinray {ours:.1} ms (fastest {ours_min:.1}); speed-up over VTK CPU {:.2}x by medians, \
             {:.2}x by fastest frames (above 1: twinray faster; goal 3x){gpu_text}",
            cpu / ours,
            cpu_min / ours_min
        );
    }
    Ok(())
}
