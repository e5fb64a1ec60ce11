//! Peak memory of reading a float64 NIfTI (issue 14): the voxels are decoded in blocks into
//! the float32 output, so the reader's peak is about the output's size, not the stored bytes
//! plus a float64 copy plus the output (5x the output before). Alone in its own test binary so
//! that the process's peak resident memory is this reader's.

mod common;

use twinray_io::read_ct;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn float64_volume_loads_with_a_peak_near_its_float32_output() {
    let path = std::env::temp_dir().join(format!("twinray-f64-{}.nii.gz", std::process::id()));
    let value = |i: usize, j: usize, k: usize| (i + 3 * j) as f64 * 0.25 - (k % 7) as f64 * 100.0;
    let n = 256;
    common::write_float64_gz(&path, [n as i16; 3], value);
    // Reset the peak (VmHWM) to the current resident size, where the kernel allows it (Linux
    // 4.0+); otherwise the peak so far (the streaming writer's, a few MiB) stays in the figure.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (Some(before), Some(_)) = (status_kib("VmRSS:"), status_kib("VmHWM:")) else {
        eprintln!("skipped: no /proc/self/status here to read peak memory from");
        return;
    };
    let ct = read_ct(&path).expect("float64 NIfTI loads");
    let peak = status_kib("VmHWM:").expect("VmHWM");
    let _ = std::fs::remove_file(&path);
    for (i, j, k) in [(0, 0, 0), (255, 0, 3), (17, 200, 255), (255, 255, 255)] {
        assert_eq!(
            *ct.get(i, j, k).expect("voxel"),
            value(i, j, k) as f32,
            "({i},{j},{k})"
        );
    }
    let output_kib = (n * n * n * 4 / 1024) as u64;
    let used = peak.saturating_sub(before);
    eprintln!(
        "float64 {n}^3: reader peak {} MiB for a {} MiB float32 output",
        used / 1024,
        output_kib / 1024
    );
    // The output, a 1 MiB block, gzip's buffers and allocator slack: well under 1.5x. Before
    // streaming it was the 128 MiB of stored bytes + a 128 MiB float64 copy + the 64 MiB output.
    assert!(
        used <= output_kib * 3 / 2,
        "reading took {} MiB above the {} MiB output",
        used / 1024,
        output_kib / 1024
    );
}
