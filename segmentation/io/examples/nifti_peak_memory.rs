//! Peak memory and time of reading a float64 NIfTI CT, the case issue 14 measured.
//!
//! ```text
//! cargo run --release -p twinray-io --example nifti_peak_memory -- make /tmp/ct512_f64.nii.gz 512
//! cargo run --release -p twinray-io --example nifti_peak_memory -- read /tmp/ct512_f64.nii.gz
//! ```
//!
//! `make` writes an N³ float64 phantom (air, a soft-tissue cylinder with a slow ramp, a bone
//! rod), streaming it through gzip so that writing never holds the volume. `read` loads it with
//! [`twinray_io::read_ct`] in a fresh process and prints the load time and the process's peak
//! resident memory (VmHWM from /proc/self/status, Linux only), so the figure is the reader's.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn make(path: &Path, n: usize) -> std::io::Result<()> {
    let mut h = vec![0u8; 352];
    let mut put = |offset: usize, data: &[u8]| h[offset..offset + data.len()].copy_from_slice(data);
    put(0, &348i32.to_le_bytes());
    let side = i16::try_from(n).map_err(|_| std::io::Error::other("side too large"))?;
    for (i, d) in [3i16, side, side, side, 1, 1, 1, 1].iter().enumerate() {
        put(40 + 2 * i, &d.to_le_bytes());
    }
    put(70, &64i16.to_le_bytes()); // float64
    put(72, &64i16.to_le_bytes());
    for (i, p) in [1f32, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0].iter().enumerate() {
        put(76 + 4 * i, &p.to_le_bytes());
    }
    put(108, &352f32.to_le_bytes());
    put(112, &1f32.to_le_bytes());
    put(123, &[2]);
    put(254, &1i16.to_le_bytes());
    for (row, offset, v) in [(0, 280, 0.8f32), (1, 296, 0.8), (2, 312, 1.0)] {
        let mut r = [0f32; 4];
        r[row] = v;
        for (c, x) in r.iter().enumerate() {
            put(offset + 4 * c, &x.to_le_bytes());
        }
    }
    put(344, b"n+1\0");
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(&h)?;
    let c = n as f64 / 2.0;
    let mut plane = Vec::with_capacity(n * n * 8);
    for k in 0..n {
        plane.clear();
        for j in 0..n {
            for i in 0..n {
                let (x, y) = (i as f64 - c, j as f64 - c);
                let r = x.hypot(y);
                let bone = (x - 0.15 * n as f64).hypot(y) < 0.08 * n as f64;
                let v = if bone {
                    700.0
                } else if r < 0.42 * n as f64 {
                    40.0 + 0.25 * (k % 8) as f64
                } else {
                    -1000.0
                };
                plane.extend_from_slice(&f64::to_le_bytes(v));
            }
        }
        gz.write_all(&plane)?;
    }
    gz.finish()?.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..).unwrap_or_default() {
        [cmd, path, n] if cmd == "make" => {
            make(Path::new(path), n.parse()?)?;
            let bytes = std::fs::metadata(path)?.len();
            println!("wrote {path}: {:.1} MB gzip", bytes as f64 / 1e6);
        }
        [cmd, path] if cmd == "read" => {
            let start = Instant::now();
            let ct = twinray_io::read_ct(Path::new(path))?;
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "read {:?} voxels in {seconds:.2} s; peak RSS {:.0} MiB",
                ct.geometry().dims,
                peak_rss_mib().unwrap_or(f64::NAN)
            );
        }
        _ => return Err("usage: nifti_peak_memory make PATH N | read PATH".into()),
    }
    Ok(())
}
