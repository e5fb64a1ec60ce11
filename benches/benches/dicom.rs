//! DICOM series → HU volume: median load time and peak memory for a synthetic uncompressed
//! 512×512×200 series, the same in JPEG 2000, and the real 20-slice TotalSegmentator series,
//! printed beside pydicom (one thread, and a thread per core) and SimpleITK loading the same
//! folders in the same run, with the same number of timed loads on both sides.
//!
//! The synthetic series come from `../shared/peers/make_series.py` (see
//! `../shared/peers/README.md`), written to `~/.cache/twinray-peers/data`; missing ones are
//! reported and skipped. Peer figures need the peer venv (`~/.cache/twinray-peers/venv`).
//! Prints figures only; no timing asserts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use twinray_benches::{median, peak_rss_mib, peers_cache_dir, peers_python, reset_peak_rss};
use twinray_io::dicom::{load_series, LoadOptions};

struct Ours {
    median_ms: f64,
    min_hu: f64,
    max_hu: f64,
    mean_hu: f64,
    peak_mib: Option<f64>,
}

fn time_ours(folder: &Path, repeats: usize) -> Result<Ours> {
    reset_peak_rss();
    let warm = load_series(folder, &LoadOptions::default())?;
    let voxels = warm.ct.voxels();
    let (min_hu, max_hu) = voxels
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(f64::from(v)), b.max(f64::from(v)))
        });
    let mean_hu = voxels.iter().map(|&v| f64::from(v)).sum::<f64>() / voxels.len() as f64;
    drop(warm);
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let loaded = load_series(folder, &LoadOptions::default())?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(loaded);
    }
    Ok(Ours {
        median_ms: median(times),
        min_hu,
        max_hu,
        mean_hu,
        peak_mib: peak_rss_mib(),
    })
}

/// Runs `dicom_load.py` and returns its last stdout line as JSON.
fn run_peers(python: &Path, folder: &Path, repeats: usize) -> Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/dicom_load.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(folder)
        .args([
            "--methods",
            "pydicom,pydicom_mt,sitk",
            "--repeats",
            &repeats.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("dicom_load.py printed nothing")?;
    serde_json::from_str(last).context("dicom_load.py's last line is not JSON")
}

/// "2.3x faster" or "1.4x slower": twinray's time against the peer's, said the way round that
/// reads as a ratio above one.
fn speed_ratio(peer_ms: f64, ours_ms: f64) -> String {
    if peer_ms >= ours_ms {
        format!("{:.1}x faster", peer_ms / ours_ms)
    } else {
        format!("{:.1}x slower", ours_ms / peer_ms)
    }
}

fn main() -> Result<()> {
    let cache = peers_cache_dir();
    let python = peers_python();
    let have_peers = python.exists();
    let real =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ct/totalsegmentator/example_ct_dicom");
    let series: [(&str, PathBuf, usize); 3] = [
        (
            "synthetic 512x512x200, explicit VR LE",
            cache.join("data/series_512x512x200"),
            7,
        ),
        (
            "synthetic 512x512x200, JPEG 2000 lossless",
            cache.join("data/series_512x512x200_j2k"),
            3,
        ),
        ("real example_ct_dicom, 20 x 512x512 JPEG 2000", real, 7),
    ];
    println!(
        "dicom load (median of N after one warm-up; warm page cache; {} threads)",
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    );
    for (name, folder, repeats) in series {
        if !folder.exists() {
            println!(
                "{name}: missing {} (make it with ../shared/peers/make_series.py, see ../shared/peers/README.md)",
                folder.display()
            );
            continue;
        }
        let ours = time_ours(&folder, repeats)?;
        println!(
            "{name}: twinray {:.0} ms (n={repeats}), peak RSS {} MiB, HU {}..{} mean {:.3}",
            ours.median_ms,
            ours.peak_mib
                .map_or_else(|| "?".into(), |m| format!("{m:.0}")),
            ours.min_hu,
            ours.max_hu,
            ours.mean_hu
        );
        if !have_peers {
            println!(
                "  peers: no venv at {} (run ../shared/peers/setup.sh)",
                python.display()
            );
            continue;
        }
        // The same number of timed loads on both sides.
        let peer_repeats = repeats;
        match run_peers(&python, &folder, peer_repeats) {
            Ok(json) => {
                let results = json
                    .get("results")
                    .or_else(|| json.pointer("/result/results"))
                    .cloned()
                    .unwrap_or_default();
                for method in ["pydicom", "pydicom_mt", "sitk"] {
                    let Some(r) = results.get(method) else {
                        continue;
                    };
                    let ms = r
                        .pointer("/load/median_ms")
                        .and_then(serde_json::Value::as_f64);
                    let mean = r.get("hu_mean").and_then(serde_json::Value::as_f64);
                    if let Some(ms) = ms {
                        let agree = mean.map_or("?".to_owned(), |m| {
                            if (m - ours.mean_hu).abs() < 0.01 {
                                "same HU mean".to_owned()
                            } else {
                                format!("HU mean differs: {m}")
                            }
                        });
                        let threads = r
                            .get("threads")
                            .and_then(serde_json::Value::as_u64)
                            .map_or_else(String::new, |t| format!(", {t} threads"));
                        println!(
                            "  {method}: {ms:.0} ms (n={peer_repeats}{threads}) -> twinray is {}; {agree}",
                            speed_ratio(ms, ours.median_ms)
                        );
                    }
                }
            }
            Err(e) => println!("  peers failed: {e:#}"),
        }
    }
    Ok(())
}
