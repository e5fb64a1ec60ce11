//! Stereo VR frame time on the demo lesson at a typical headset resolution (2 × 1832×1920,
//! Quest-class asymmetric frusta, from the simulated headset), at the full-quality sample
//! step, and what the comfort governor picks for a 90 Hz display from that measurement.
//! Each frame includes `state_at`, the scene (transfer function, overlays), both eye renders
//! and their read-back; not the copy into a swapchain (no runtime here).
//!
//! Then what the learner's controls and recorded label maps cost: drawing the panel and
//! compositing it over both eyes (CPU), and compressing, decompressing and re-uploading the
//! demo case's label map (what a label change in a lesson costs at replay).
//!
//! `cargo bench -p twinray-benches --bench vr` (`--profile dev` works too; `-- --quick`
//! renders one frame after the warm-up; `-- --size WxH` another eye size). The device is
//! lavapipe unless `TWINRAY_DEVICE` says otherwise.

use std::time::Instant;
use twinray_benches::median;

use anyhow::{Context, Result};
use glam::Vec3;
use twinray_lessons::event::LabelMapBlob;
use twinray_lessons::player::Player;
use twinray_renderer::{GpuContext, RgbaImage};
use twinray_scene::demo::{demo_twin_pose, record_demo, script as demo_script};
use twinray_scene::Case;
use twinray_scene::FrameRenderer;
use twinray_xr::comfort::{ComfortGovernor, Quality, LADDER};
use twinray_xr::panel::{LearnerPanel, Playback};
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
        case.clone(),
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

    // The learner's panel, summoned in front of the head, over both eyes at this size.
    let frame = xr.frame_at(0.0);
    let mut panel = LearnerPanel::new(
        demo_script::CHAPTERS
            .iter()
            .map(|(t, title)| ((t * 1e9) as i64, (*title).to_owned()))
            .collect(),
        (0, (demo_script::DURATION_S * 1e9) as i64),
    );
    panel.summon(&frame.head);
    let playback = Playback::default();
    let blank = RgbaImage {
        width: eye[0],
        height: eye[1],
        pixels: vec![0; eye[0] as usize * eye[1] as usize * 4],
    };
    let (mut draw_ms, mut composite_ms) = (Vec::new(), Vec::new());
    for _ in 0..frames.max(3) {
        let t = Instant::now();
        let image = panel.draw(&playback, 20_000_000_000);
        draw_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let mut eyes = [blank.clone(), blank.clone()];
        let t = Instant::now();
        for (view, target) in frame.views.iter().zip(&mut eyes) {
            panel.composite(&image, view, target);
        }
        composite_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "learner panel: draw {:.2} ms, composite over 2 x {}x{} {:.1} ms (medians, CPU)",
        median(draw_ms),
        eye[0],
        eye[1],
        median(composite_ms)
    );

    // A label map recorded in a lesson: the demo case's labels.
    let labels = case.labels.as_ref().context("the demo case has labels")?;
    let dims = labels.geometry().dims.map(|d| d as u32);
    let t = Instant::now();
    let blob = LabelMapBlob::encode(dims, labels.voxels())?;
    let encode_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let voxels = blob.voxels()?;
    let decode_ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        voxels == labels.voxels(),
        "the label map did not round-trip"
    );
    let mut other = FrameRenderer::new(ctx.clone(), &case.ct, None, &case.intensity)?;
    let t = Instant::now();
    let range = twinray_transfer_functions::DensityRange::of(&case.intensity);
    other
        .renderer_mut()
        .set_volume(&case.ct, Some(labels), range)?;
    let upload_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "label map of the demo case ({}x{}x{}, {:.1} MB as u16 ids): {:.0} kB stored, \
         compress {:.0} ms, decompress + hash check {:.0} ms, re-upload with the CT {:.0} ms",
        dims[0],
        dims[1],
        dims[2],
        voxels.len() as f64 * 2e-6,
        blob.zstd.len() as f64 * 1e-3,
        encode_ms,
        decode_ms,
        upload_ms
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}
