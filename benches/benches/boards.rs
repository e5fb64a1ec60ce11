//! X-ray boards: time to load a radiograph and place it as a board (decode, VOI window, store
//! by hash, default pose), beside pydicom + pylibjpeg decoding and windowing the same file in
//! the same run (what a Python user would do to show it), and the time to upload and draw one
//! on the GPU. Prints figures; asserts nothing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use twinray_benches::{median, peers_python};
use twinray_scene::boards::{default_board_pose, load_board_image};

const REPEATS: usize = 5;

/// The peer: pydicom reads the file, pylibjpeg-openjpeg decodes it, the first VOI window is
/// applied with numpy (what `twinray radiograph` does), median of `REPEATS` runs in ms.
const PEER: &str = r#"
import sys, time, statistics
import numpy as np, pydicom
path, n = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(n):
    t = time.perf_counter()
    ds = pydicom.dcmread(path)
    a = ds.pixel_array.astype(np.float64)
    a = a * float(getattr(ds, 'RescaleSlope', 1)) + float(getattr(ds, 'RescaleIntercept', 0))
    c = float(np.atleast_1d(ds.WindowCenter)[0]); w = float(np.atleast_1d(ds.WindowWidth)[0])
    c, w = c - 0.5, max(w - 1.0, 1e-9)
    d = np.clip(((a - c) / w + 0.5) * 255.0, 0, 255)
    if ds.PhotometricInterpretation == 'MONOCHROME1':
        d = 255.0 - d
    d = np.rint(d).astype(np.uint8)
    times.append((time.perf_counter() - t) * 1000.0)
print(statistics.median(times))
"#;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/xray/wg04");
    let case = twinray_scene::Case::demo()?;
    println!("boards: load and place a radiograph (median of {REPEATS}; peer in the same run)");
    for name in ["RG2_J2KI.dcm", "RG1_J2KI.dcm"] {
        let path = root.join(name);
        let mut times = Vec::new();
        let mut size = (0, 0);
        for _ in 0..REPEATS {
            let t = Instant::now();
            let image = load_board_image(&path)?;
            let _ = default_board_pose(
                case.ct.geometry(),
                &image.blob,
                image.patient_orientation.as_ref(),
            );
            times.push(t.elapsed().as_secs_f64() * 1e3);
            size = (image.blob.width, image.blob.height);
        }
        let ours = median(times);
        let python = peers_python();
        let peer = if python.exists() {
            let out = Command::new(&python)
                .args(["-c", PEER])
                .arg(&path)
                .arg(REPEATS.to_string())
                .output()
                .context("running the pydicom peer")?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        } else {
            None
        };
        match peer {
            Some(p) => println!(
                "  {name} {}×{}: twinray {ours:.0} ms (load, window, hash, store, place), pydicom+pylibjpeg {p:.0} ms (load, window): {:.2}× the peer's time",
                size.0, size.1, ours / p
            ),
            None => println!(
                "  {name} {}×{}: twinray {ours:.0} ms; peer not run (no venv at {})",
                size.0,
                size.1,
                python.display()
            ),
        }
    }
    Ok(())
}
