//! Sliding-window segmentation: seconds per window and in total, and peak memory, for twinray
//! (`twinray_segmentation::Segmenter`) beside `../shared/peers/onnx_sliding_window.py` (nnU-Net's
//! algorithm on onnxruntime, the same library version) run on the same array in the same run.
//!
//! Models: the peer's tiny random 3D U-Net at patch 64 (`make_unet_onnx.py`, written to a
//! temporary folder; the peer published 27 windows, 4.0 s on example_ct) and the shipped
//! `segmentation/inference/models/twinray-abdomen-3mm` when present. Volumes: `data/demo/example_ct.nii.gz`
//! (3 mm, 27 windows at patch 64) and the real DICOM series `example_ct_dicom` (resampled to the
//! model's spacing; the peer is given that resampled array as NIfTI, since it does no
//! resampling). Peer figures need the peer venv (`~/.cache/twinray-peers/venv`). Prints figures
//! only; no timing asserts.
//!
//! twinray and the peer are timed in alternation ([`ROUNDS`] rounds of one twinray pass, then
//! one peer process with one timed pass), and the ratio is of their medians: run one after the
//! other on a shared machine, a burst of someone else's load lands on one side only, and the
//! ratio swung from 0.72x to 1.81x between runs. Each pass's CPU time (all threads) is printed
//! beside its wall time: it grows far less with other users' load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use twinray_benches::{median, peak_rss_mib, peers_python, process_cpu_ms, reset_peak_rss};
use twinray_io::dicom::{load_series, LoadOptions};
use twinray_io::{read_ct, write_ct, CtVolume, Volume};
use twinray_segmentation::{CoreUse, Model, ModelGrid, Runtime, SegmentOptions, Segmenter};

/// The bench times what `twinray segment` does: a job with the machine to itself, as the peer is.
const EXCLUSIVE: CoreUse = CoreUse::Exclusive { threads: None };

const REPEATS: usize = 3;
/// Alternating twinray / peer rounds for the comparison.
const ROUNDS: usize = 3;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Ours {
    total_s: f64,
    per_window_s: f64,
    windows: usize,
    peak_mib: Option<f64>,
}

/// Times `segment` (resampling, normalisation, windows, arg-max, labels back on the CT grid):
/// one warm-up, then the median of [`REPEATS`].
fn time_ours(seg: &mut Segmenter, ct: &CtVolume, batch: usize) -> Result<Ours> {
    let options = SegmentOptions {
        batch_size: batch,
        ..SegmentOptions::default()
    };
    reset_peak_rss();
    seg.segment(ct, &options, &mut |_| {})?;
    let mut totals = Vec::new();
    let mut steps = Vec::new();
    let mut windows = 0;
    for _ in 0..REPEATS {
        let start = Instant::now();
        let mut last = Instant::now();
        let r = seg.segment(ct, &options, &mut |p| {
            let now = Instant::now();
            // Per model call; divided by the windows it ran.
            let per = (now - last).as_secs_f64() / batch.min(p.windows_done).max(1) as f64;
            steps.push(per);
            last = now;
        })?;
        totals.push(start.elapsed().as_secs_f64());
        windows = r.windows;
    }
    Ok(Ours {
        total_s: median(totals),
        per_window_s: median(steps),
        windows,
        peak_mib: peak_rss_mib(),
    })
}

/// Runs the peer on a NIfTI holding the model-grid array; returns its JSON and peak RSS (MiB).
fn run_peer(
    python: &Path,
    onnx: &Path,
    nifti: &Path,
    model: &Model,
    repeats: usize,
) -> Result<(serde_json::Value, Option<f64>, Option<f64>)> {
    let d = model.description();
    // The peer knows only the CT scheme; the benchmark's own model uses it.
    let twinray_segmentation::Normalization::Ct {
        clip_low,
        clip_high,
        mean,
        std,
    } = d.normalization
    else {
        bail!("the peer reference normalises CT only; this model uses another scheme");
    };
    let script = repo().join("../shared/peers/onnx_sliding_window.py");
    let patch = d.patch_size.map(|p| p.to_string()).join("x");
    // Run the peer's main() and print its peak RSS after its own JSON line: VmHWM, which belongs
    // to the process image (getrusage's ru_maxrss would include this process's RSS at fork).
    // The peer logs once after its warm-up and once after each timed pass: the process CPU time
    // (all threads) at those logs gives the timed passes' CPU time, without session creation,
    // warm-up or Python's start.
    let code = format!(
        "import json, os, runpy, sys, time\nsys.argv = {argv}\n\
         sys.path.insert(0, os.path.dirname(sys.argv[0]))\nimport peerlib\n\
         cpu = []\nlog = peerlib.log\n\
         def logged(*a, **k):\n    cpu.append(time.process_time())\n    return log(*a, **k)\n\
         peerlib.log = logged\n\
         runpy.run_path(sys.argv[0], run_name='__main__')\n\
         hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n\
         passes = cpu[-1] - cpu[-1 - {repeats}] if len(cpu) > {repeats} else None\n\
         print(json.dumps({{'maxrss_kib': float(hwm[0].split()[1]) if hwm else None, \
         'cpu_s_per_pass': passes / {repeats} if passes is not None else None}}))",
        argv = serde_json::to_string(&[
            script.to_string_lossy().into_owned(),
            "--model".into(),
            onnx.to_string_lossy().into_owned(),
            "--volume".into(),
            nifti.to_string_lossy().into_owned(),
            "--patch".into(),
            patch,
            "--step".into(),
            d.step_fraction.to_string(),
            format!("--ct-norm={clip_low},{clip_high},{mean},{std}"),
            "--repeats".into(),
            repeats.to_string(),
        ])?
    );
    let out = Command::new(python)
        .args(["-c", &code])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "the peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let [.., result, rss] = lines.as_slice() else {
        bail!("the peer printed too little");
    };
    let result: serde_json::Value = serde_json::from_str(result).context("peer JSON")?;
    let rss: serde_json::Value = serde_json::from_str(rss).context("peer RSS")?;
    Ok((
        result,
        rss["maxrss_kib"].as_f64().map(|k| k / 1024.0),
        rss["cpu_s_per_pass"].as_f64(),
    ))
}

/// The peer's tiny U-Net (base 16, 4 classes, seed 0) with a description at patch 64.
fn tiny_unet(python: &Path, dir: &Path) -> Result<PathBuf> {
    let onnx = dir.join("tiny_unet3d.onnx");
    let status = Command::new(python)
        .arg(repo().join("../shared/peers/make_unet_onnx.py"))
        .arg("--out")
        .arg(&onnx)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("make_unet_onnx.py failed");
    }
    let json = dir.join("tiny_unet3d.json");
    std::fs::write(
        &json,
        r#"{"format": "twinray-segmentation-model", "version": 1, "name": "peer-tiny-unet3d",
            "onnx": "tiny_unet3d.onnx", "axes": ["S", "A", "R"], "spacing_mm": [3, 3, 3],
            "patch_size": [64, 64, 64], "step_fraction": 0.5,
            "normalization": {"scheme": "ct", "clip_low": -1024, "clip_high": 1500, "mean": 0, "std": 500},
            "classes": [{"channel": 0, "id": 0, "name": "c0"}, {"channel": 1, "id": 1, "name": "c1"},
                        {"channel": 2, "id": 2, "name": "c2"}, {"channel": 3, "id": 3, "name": "c3"}],
            "description": "random weights, for timing"}"#,
    )?;
    Ok(json)
}

fn main() -> Result<()> {
    let runtime = Runtime::load(None)?;
    let python = Some(peers_python()).filter(|p| p.exists());
    let scratch =
        std::env::temp_dir().join(format!("twinray-bench-segment-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut models = Vec::new();
    match &python {
        Some(py) => models.push(tiny_unet(py, &scratch)?),
        None => println!("tiny U-Net: no peer venv to write it (run ../shared/peers/setup.sh)"),
    }
    let shipped = repo().join("segmentation/inference/models/twinray-abdomen-3mm.json");
    if shipped.exists() {
        models.push(shipped);
    } else {
        println!("shipped model: {} is absent", shipped.display());
    }
    let dicom = repo().join("data/ct/totalsegmentator/example_ct_dicom");
    let volumes: [(&str, CtVolume); 2] = [
        (
            "example_ct",
            read_ct(&repo().join("data/demo/example_ct.nii.gz"))?,
        ),
        (
            "example_ct_dicom",
            load_series(&dicom, &LoadOptions::default())?.ct,
        ),
    ];
    println!(
        "segment: median of {REPEATS} after a warm-up; ONNX Runtime {} from {}; {} cores; ORT default threads",
        twinray_segmentation::runtime::ORT_VERSION,
        runtime.library().display(),
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    );
    for json in &models {
        let model = Model::open(json)?;
        let dynamic_batch = Segmenter::new(&runtime, &model, EXCLUSIVE)?.dynamic_batch();
        let d = model.description().clone();
        for (name, ct) in &volumes {
            let grid = ModelGrid::new(ct.geometry(), &d);
            let mut batches = vec![1];
            if dynamic_batch {
                batches.push(4);
            }
            for &batch in &batches {
                // A fresh session per configuration: ONNX Runtime's CPU arena keeps what an
                // earlier run (a batch of 4, say) grew it to, and that would count as this
                // run's peak.
                let mut seg = Segmenter::new(&runtime, &model, EXCLUSIVE)?;
                let ours = time_ours(&mut seg, ct, batch)?;
                drop(seg);
                println!(
                    "{} on {name} ({:?} model grid, patch {:?}, batch {batch}): twinray {:.2} s total, {:.3} s/window, {} windows, peak RSS {} MiB",
                    d.name,
                    grid.shape(),
                    d.patch_size,
                    ours.total_s,
                    ours.per_window_s,
                    ours.windows,
                    ours.peak_mib.map_or_else(|| "?".into(), |m| format!("{m:.0}"))
                );
                if batch != 1 {
                    continue;
                }
                let Some(py) = &python else {
                    println!("  peer: no venv");
                    continue;
                };
                // The peer reads NIfTI and does not resample: give it the model-grid array.
                let nifti = scratch.join(format!("{name}-model-grid.nii.gz"));
                write_ct(&nifti, &Volume::new(grid.geometry()?, grid.sample(ct))?)?;
                let onnx = json
                    .parent()
                    .unwrap_or_else(|| Path::new("."))
                    .join(&d.onnx);
                let mut seg = Segmenter::new(&runtime, &model, EXCLUSIVE)?;
                let options = SegmentOptions::default();
                seg.segment(ct, &options, &mut |_| {})?;
                let (mut ours_wall, mut ours_cpu) = (Vec::new(), Vec::new());
                let (mut peer_wall, mut peer_cpu) = (Vec::new(), Vec::new());
                let mut peer_line = String::new();
                for _ in 0..ROUNDS {
                    let (start, cpu0) = (Instant::now(), process_cpu_ms());
                    seg.segment(ct, &options, &mut |_| {})?;
                    ours_wall.push(start.elapsed().as_secs_f64());
                    if let (Some(a), Some(b)) = (cpu0, process_cpu_ms()) {
                        ours_cpu.push((b - a) / 1000.0);
                    }
                    match run_peer(py, &onnx, &nifti, &model, 1) {
                        Ok((peer, peer_rss, cpu)) => {
                            peer_wall.push(peer["total_s_median"].as_f64().unwrap_or(f64::NAN));
                            peer_cpu.extend(cpu);
                            peer_line = format!(
                                "{} windows, {:.3} s/window, peak RSS {} MiB",
                                peer["windows"],
                                peer["s_per_window_median"].as_f64().unwrap_or(f64::NAN),
                                peer_rss.map_or_else(|| "?".into(), |m| format!("{m:.0}"))
                            );
                        }
                        Err(e) => {
                            peer_line = format!("{e:#}");
                            break;
                        }
                    }
                }
                drop(seg);
                if peer_wall.is_empty() {
                    println!("  peer: {peer_line}");
                    continue;
                }
                let list = |v: &[f64]| {
                    v.iter()
                        .map(|x| format!("{x:.2}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let cpu_median = |v: &[f64]| {
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        median(v.to_vec())
                    }
                };
                println!(
                    "  alternating {ROUNDS} rounds, s per pass (wall | CPU): twinray {} | {}, peer onnx_sliding_window.py {} | {} ({peer_line}); medians twinray/peer: wall {:.2}x, CPU {:.2}x",
                    list(&ours_wall),
                    list(&ours_cpu),
                    list(&peer_wall),
                    list(&peer_cpu),
                    median(ours_wall.clone()) / median(peer_wall.clone()),
                    cpu_median(&ours_cpu) / cpu_median(&peer_cpu)
                );
            }
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    Ok(())
}
