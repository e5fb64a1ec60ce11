//! Shared helpers for the benchmarks: the median they quote, peak memory, and where the peer
//! tools of `../shared/peers` keep their venv and data.

use std::path::PathBuf;

/// The median of `v` (the mean of the middle two for an even count); NaN when `v` is empty.
#[must_use]
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) * 0.5
    }
}

/// Resets the kernel's peak-RSS counter (VmHWM) so the next measurement gets its own peak.
pub fn reset_peak_rss() {
    // Not every kernel allows it; then the peak covers the whole process, which is still a
    // bound, so the failure is ignored.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], MiB.
#[must_use]
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time this process (all its threads, lavapipe's included) has used, in ms; 10 ms
/// resolution (the kernel's clock ticks, 100 per second on Linux). On a shared machine a frame's
/// wall time grows with other users' load, its CPU time much less, so an A/B of shader changes
/// compares this.
#[must_use]
pub fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// `$XDG_CACHE_HOME/twinray-peers` (default `~/.cache/twinray-peers`): where
/// `../shared/peers/setup.sh` makes its venv and `run_all.sh` writes generated data.
#[must_use]
pub fn peers_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
        PathBuf::from,
    );
    base.join("twinray-peers")
}

/// The peers' Python: `$PEER_VENV/bin/python`, else the venv in [`peers_cache_dir`]. It may
/// not exist; callers say how to make it when it does not.
#[must_use]
pub fn peers_python() -> PathBuf {
    std::env::var_os("PEER_VENV")
        .map_or_else(|| peers_cache_dir().join("venv"), PathBuf::from)
        .join("bin/python")
}
