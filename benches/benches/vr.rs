//! Stereo VR frame time on the demo lesson at a typical headset resolution (2 × 1832×1920,
//! Quest-class asymmetric frusta, from the simulated headset), at the full-quality sample
//! step, and what the comfort governor picks for a 90 Hz display from that measurement.
//! Each frame includes `state_at`, the scene (transfer function, overlays), both eye renders
//! and their read-back; not the copy into a swapchain (no runtime here).
//!
//! `cargo bench -p twinray-benches --bench vr` (`--profile dev` works too; `-- --quick`
//! renders one frame after the warm-up; `-- --size WxH` another eye size). The device is
//! lavapipe unless `TWINRAY_DEVICE` says otherwise.

use std::time::Instant;
use twinray_benches::median;

use anyhow::{Context, Result};
use glam::Vec3;
use twinray_lessons::player::Player;
use twinray_renderer::GpuContext;
use twinray_scene::demo::{demo_twin_pose, record_demo};
use twinray_scene::Case;
use twinray_scene::FrameRenderer;
use twinray_xr::comfort::{ComfortGovernor, Quality, LADDER};
use twinray_xr::session::{Content, VrOptions, VrSession};
use twinray_xr::source::{SimulatedXr, PERIOD_90HZ_NS};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let eye = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.split_once('x'))
        .and_then(|(w, h)| Some([w.parse().ok()?, h.parse().ok()?]))
        .unwrap_or([1832u32, 1920]);
    let frames = if quick { 1 } else { 3 };

    let case = Case::demo()?;
    let path = std::env::temp_dir().join(format!("twinray-vr-bench-{}.lesson", std::process::id()));
    record_demo(&case, &path)?;
    let player = Player::open(&path).context("open the demo lesson")?;
    let ctx = GpuContext::new(twinray_scene::device::device_preference(None)?)?;
    let renderer =
        FrameRenderer::new(ctx.clone(), &case.ct, case.labels.as_ref(), &case.intensity)?;
    let twin = demo_twin_pose(case.ct.geometry().centre_mm());
    let full = LADDER[0];
    let mut vr = VrSession::new(
        &case,
        renderer,
        twin,
        Content::Replay(Box::new(player)),
        VrOptions {
            fixed_quality: Some(full),
            ..VrOptions::default()
        },
    );
    let xr = SimulatedXr::new(Vec3::new(0.0, 1200.0, -600.0), eye, 1);
    let mut measure = |quality: Quality, n: usize| -> Result<Vec<f64>> {
        let mut times = Vec::new();
        // Lesson time 42 s: clip plane, strokes and the instructor's pen in view.
        for i in 0..=n {
            let frame = xr.frame_at(42.0 + i as f64 / 90.0);
            vr.set_fixed_quality(Some(quality));
            let t = Instant::now();
            vr.render_frame(&frame, 42_000_000_000 + i as i64 * PERIOD_90HZ_NS, eye)?;
            if i > 0 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(times)
    };
    let times = measure(full, frames)?;
    let full_ms = median(times.clone());
    println!(
        "vr stereo frame, 2 x {}x{} on {}: median {:.0} ms over {} frames ({:?} ms), step {} voxels",
        eye[0],
        eye[1],
        ctx.device_name(),
        full_ms,
        times.len(),
        times.iter().map(|t| t.round()).collect::<Vec<_>>(),
        full.step_voxels
    );
    let mut governor = ComfortGovernor::new();
    let report = governor.frame_done((full_ms * 1e6) as i64, PERIOD_90HZ_NS);
    println!("comfort governor for 90 Hz after that frame: {report}");
    let chosen = report.quality;
    let chosen_ms = median(measure(chosen, frames)?);
    println!(
        "vr stereo frame at the governor's choice (step {} voxels, {}x{} per eye): median {:.0} ms ({:.1} Hz)",
        chosen.step_voxels,
        chosen.eye_size(eye)[0],
        chosen.eye_size(eye)[1],
        chosen_ms,
        1e3 / chosen_ms
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}
