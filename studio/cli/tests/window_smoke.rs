//! Starts the real studio window under Xvfb, lets it draw the refined 3D frame, saves a
//! screenshot of the whole window and checks that it shows panels and the demo spine, and that
//! the recording it was making is finalised when the window closes.
//!
//! Needs `xvfb-run` (scripts/setup.sh installs it) and a Vulkan driver that presents to X11
//! (lavapipe does). Fails, rather than skips, when either is missing.

use std::path::PathBuf;
use std::process::Command;

/// Width, height and RGB pixels.
fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the screenshot exists"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Rgb => buf,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, rgb)
}

#[test]
fn the_window_draws_panels_and_the_demo_volume() {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let shot = out_dir.join("studio-window.png");
    let _ = std::fs::remove_file(&shot);
    let lesson = out_dir.join("studio-window.lesson");
    let _ = std::fs::remove_file(&lesson);
    let runtime = std::env::temp_dir().join("twinray-runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    let output = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_twinray"))
        .args([
            "studio",
            "--size",
            "1200x760",
            "--device",
            "cpu",
            "--screenshot",
        ])
        .arg(&shot)
        .arg("--record")
        .arg(&lesson)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("xvfb-run runs (install it with scripts/setup.sh)");
    assert!(
        output.status.success(),
        "twinray studio failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The window closed while recording: the lesson is finalised (index and footer written).
    let info = twinray_lessons::tools::info(&lesson).expect("the recorded lesson opens");
    assert!(
        info.has_footer,
        "closing the window must finalise the recording"
    );
    assert!(
        info.streams.iter().any(|s| s.name == "head"),
        "the desktop camera is recorded as the instructor's head: {info}"
    );
    let (w, h, pixels) = read_png(&shot);
    assert!(w >= 1000 && h >= 600, "window {w}x{h}");
    let px = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    // Not blank: many distinct grey levels across the window (text, panels, MPR, volume).
    let mut levels = [false; 256];
    for y in (0..h).step_by(3) {
        for x in (0..w).step_by(3) {
            levels[usize::from(px(x, y)[1])] = true;
        }
    }
    let distinct = levels.iter().filter(|&&b| b).count();
    assert!(distinct > 40, "only {distinct} grey levels: a blank window");
    // The volume, in the middle of the 3D view (between the 300-point label panel and the
    // 240-point MPR panel, on a black background): lit pixels, some of them the warm white of
    // ct-bone (the pelvis), some in the saturated palette colours of the vertebra labels.
    let (x0, x1) = (w * 40 / 100, w * 62 / 100);
    let (y0, y1) = (h * 25 / 100, h * 75 / 100);
    let (mut total, mut lit, mut bone, mut labelled) = (0u32, 0u32, 0u32, 0u32);
    for y in y0..y1 {
        for x in x0..x1 {
            let [r, g, b] = px(x, y).map(u32::from);
            total += 1;
            lit += u32::from(r + g + b > 150);
            bone += u32::from(r > 110 && r >= b && g >= b && r + g + b > 360);
            labelled += u32::from(r.max(g).max(b) - r.min(g).min(b) > 60);
        }
    }
    let shot = shot.display();
    assert!(
        lit * 20 > total,
        "{lit} of {total} pixels lit in the 3D view ({shot})"
    );
    assert!(
        bone * 200 > total,
        "{bone} of {total} pixels look like bone ({shot})"
    );
    assert!(
        labelled * 500 > total,
        "{labelled} of {total} pixels show label colours ({shot})"
    );
}
