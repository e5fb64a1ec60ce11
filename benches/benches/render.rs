//! Frame time of the ray-marcher, measured the way `shared/peers/vtk_volume_render.py` measures
//! VTK: 512×512 (and 1024×1024), step 0.5 voxel, the bone transfer function with shading, the
//! camera orbiting 2° per frame, 2 warm-up frames excluded, each frame finished and read back
//! before the clock stops. Prints medians, the device, the step and the samples per frame; when
//! the peer venv exists, runs VTK's CPU ray caster in the same run and prints the ratio.
//!
//! `cargo bench -p twinray-benches --bench render` (`-- --quick` for fewer cases,
//! `TWINRAY_DEVICE=gpu|cpu` to choose the device, `TWINRAY_BENCH_PEER=0` to skip VTK).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use glam::DVec3;
use twinray_renderer::{
    Camera, DevicePreference, Frustum, GpuContext, RenderOptions, VolumeRenderer,
};
use twinray_segmentation::read_ct;
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
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) * 0.5
    }
}

fn run_case(renderer: &mut VolumeRenderer, case: &Case) -> Result<(f64, f64, u64, f32)> {
    renderer.set_transfer_function(&TransferFunction::new(Preset::load(case.preset)?))?;
    let upload = Instant::now();
    renderer.set_volume(&case.ct, None)?;
    let upload_ms = upload.elapsed().as_secs_f64() * 1e3;
    let g = case.ct.geometry();
    let distance = g.bounding_radius_mm() / 15f64.to_radians().sin();
    let aspect = f64::from(case.size[0]) / f64::from(case.size[1]);
    let mut times = Vec::new();
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
        let t = Instant::now();
        let (_, stats) = renderer.render(&camera, &RenderOptions::default(), case.size)?;
        if frame > WARMUP {
            times.push(t.elapsed().as_secs_f64() * 1e3);
            samples.push(stats.samples as f64);
        }
        step_mm = stats.step_mm;
    }
    Ok((median(times), upload_ms, median(samples) as u64, step_mm))
}

/// Runs the VTK peer on the same input when its venv exists; returns its CPU and GPU medians.
fn vtk_peer(volume: &Path) -> Option<(f64, f64)> {
    if std::env::var("TWINRAY_BENCH_PEER").is_ok_and(|v| v == "0") {
        return None;
    }
    let home = std::env::var("HOME").ok()?;
    let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
    let python =
        PathBuf::from(std::env::var("PEER_VENV").unwrap_or(format!("{cache}/twinray-peers/venv")))
            .join("bin/python");
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
        .args(["--warmup", "2", "--mapper", "both"]);
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
    let find = |mapper: &str| json["results"][mapper]["render"]["median_ms"].as_f64();
    Some((find("cpu")?, find("gpu")?))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let ctx = GpuContext::new(DevicePreference::from_env()?)?;
    println!("device: {}", ctx.device_name());
    let demo = repo_root().join("data/demo/example_ct.nii.gz");
    let ct = read_ct(&demo).with_context(|| format!("loading {}", demo.display()))?;
    let mut cases = vec![
        Case {
            name: "example_ct 122x101x112 3mm".into(),
            ct: ct.clone(),
            size: [512, 512],
            preset: "ct-bone",
        },
        Case {
            name: "example_ct 122x101x112 3mm".into(),
            ct: ct.clone(),
            size: [1024, 1024],
            preset: "ct-bone",
        },
        Case {
            name: "example_ct MIP".into(),
            ct: ct.clone(),
            size: [512, 512],
            preset: "mip",
        },
        Case {
            name: "synthetic 256^3 1mm".into(),
            ct: sphere_shell(256),
            size: [512, 512],
            preset: "ct-bone",
        },
    ];
    if !quick {
        cases.push(Case {
            name: "synthetic 512^3 1mm".into(),
            ct: sphere_shell(512),
            size: [512, 512],
            preset: "ct-bone",
        });
    }
    let mut renderer = VolumeRenderer::new(
        ctx.clone(),
        &TransferFunction::new(Preset::load("ct-bone")?),
    )?;
    println!(
        "{:<30} {:>9} {:>8} {:>12} {:>9} {:>14} {:>10}",
        "case", "size", "preset", "median ms", "step mm", "samples/frame", "Msamples/s"
    );
    let mut example_512 = None;
    let mut synthetic_256 = None;
    for case in &cases {
        let (ms, upload_ms, samples, step) = run_case(&mut renderer, case)?;
        println!(
            "{:<30} {:>9} {:>8} {:>12.1} {:>9.2} {:>14} {:>10.0}   (upload {:.0} ms)",
            case.name,
            format!("{}x{}", case.size[0], case.size[1]),
            case.preset,
            ms,
            step,
            samples,
            samples as f64 / ms / 1e3,
            upload_ms
        );
        if case.preset == "ct-bone" && case.size == [512, 512] {
            if case.name.starts_with("example_ct") {
                example_512 = Some(ms);
            } else if case.name.contains("256") {
                synthetic_256 = Some(ms);
            }
        }
    }
    for (label, input, ours) in [
        (
            "example_ct, bone, shaded, 512x512",
            demo.clone(),
            example_512,
        ),
        (
            "synthetic 256^3, bone, shaded, 512x512",
            PathBuf::from("synthetic-256"),
            synthetic_256,
        ),
    ] {
        if let (Some(ours), Some((cpu, gpu))) = (ours, vtk_peer(&input)) {
            println!(
                "peer, same run: {label}: VTK CPU ray caster {cpu:.1} ms, VTK GPU mapper {gpu:.1} ms; \
                 twinray {ours:.1} ms; speed-up over VTK CPU {:.2}x, over VTK GPU {:.2}x (above 1: twinray faster)",
                cpu / ours,
                gpu / ours
            );
        }
    }
    Ok(())
}
