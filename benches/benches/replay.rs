//! Lesson replay on the demo case: the time from opening a lesson to its first frame, and the
//! frame time while replaying, at 1280×720 on the chosen device (lavapipe unless
//! `TWINRAY_DEVICE` says otherwise). Each frame includes `state_at`, building the scene
//! (transfer function, camera, overlay capsules), the render and its read-back.
//!
//! `cargo bench -p twinray-benches --bench replay` (`--profile dev` works too; `-- --quick`
//! renders fewer frames).

use std::time::Instant;
use twinray_benches::median;

use anyhow::{Context, Result};
use twinray_lessons::player::Player;
use twinray_renderer::GpuContext;
use twinray_scene::builder::{FrameRenderer, LearnerView, OrbitView, SceneBuilder};
use twinray_scene::demo::record_demo;
use twinray_scene::lesson::{case_for, CaseChoice};
use twinray_scene::Case;

const SIZE: [u32; 2] = [1280, 720];

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let frames = if quick { 4 } else { 12 };
    let path = std::env::temp_dir().join(format!("twinray-bench-{}.lesson", std::process::id()));
    let started = Instant::now();
    let report = record_demo(&Case::demo()?, &path)?;
    println!(
        "demo lesson: {} events, {} bytes, recorded in {:.0} ms (including loading the case)",
        report.event_count,
        report.bytes_written,
        started.elapsed().as_secs_f64() * 1e3
    );

    // Cold start: everything a replayer does from the file name to pixels.
    let t0 = Instant::now();
    let mut player = Player::open(&path).context("open the demo lesson")?;
    let t_open = t0.elapsed();
    let case_ref = player.reader().header().lesson.case_ref.clone();
    let choice = CaseChoice {
        ct: None,
        labels: None,
        force: false,
        progress: None,
    };
    let (case, _) = case_for(&path, &case_ref, choice)?;
    let t_case = t0.elapsed();
    let ctx = GpuContext::new(twinray_scene::device::device_preference(None)?)?;
    let mut renderer =
        FrameRenderer::new(ctx.clone(), &case.ct, case.labels.as_ref(), &case.intensity)?;
    let t_upload = t0.elapsed();
    let mut builder = SceneBuilder::for_case(&case);
    let view = LearnerView::Orbit(OrbitView {
        azimuth_deg: 40.0,
        elevation_deg: 10.0,
        zoom: 1.0,
        ..OrbitView::default()
    });
    let state = player.state_at(22_000_000_000);
    let frame = builder.frame(&state, &view, SIZE);
    renderer.render(&frame, SIZE)?;
    let t_first = t0.elapsed();
    println!("device: {}", ctx.device_name());
    println!(
        "open to first frame ({}x{}): {:.0} ms  (open lesson {:.1} ms, embedded case + hash {:.0} ms, device + upload {:.0} ms, state + scene + first render {:.0} ms)",
        SIZE[0],
        SIZE[1],
        t_first.as_secs_f64() * 1e3,
        t_open.as_secs_f64() * 1e3,
        (t_case - t_open).as_secs_f64() * 1e3,
        (t_upload - t_case).as_secs_f64() * 1e3,
        (t_first - t_upload).as_secs_f64() * 1e3,
    );

    // Replay: frames spread over the lesson (every chapter, strokes, the clip plane).
    for (name, view) in [
        ("orbit az 40 el 10", view),
        (
            "following the instructor",
            LearnerView::FollowInstructor(OrbitView::default()),
        ),
    ] {
        let mut times = Vec::with_capacity(frames);
        let mut state_ms = Vec::with_capacity(frames);
        let mut capsules = 0;
        for i in 0..frames {
            let t_ns = 1_000_000_000 + i as i64 * 48_000_000_000 / frames as i64;
            let start = Instant::now();
            let state = player.state_at(t_ns);
            let frame = builder.frame(&state, &view, SIZE);
            state_ms.push(start.elapsed().as_secs_f64() * 1e3);
            renderer.render(&frame, SIZE)?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            capsules = capsules.max(frame.overlays.all().len());
        }
        println!(
            "replay frame {}x{} ({name}): median {:.0} ms ({:.2} fps; goal >= 5) over {frames} frames (min {:.0}, max {:.0}); state + scene median {:.2} ms; up to {capsules} overlay capsules",
            SIZE[0],
            SIZE[1],
            median(times.clone()),
            1e3 / median(times.clone()),
            times.iter().copied().fold(f64::INFINITY, f64::min),
            times.iter().copied().fold(0.0, f64::max),
            median(state_ms),
        );
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
