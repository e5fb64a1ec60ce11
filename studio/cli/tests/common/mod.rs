//! What every test of the `twinray` binary needs: the repository, a scratch folder, running the
//! binary on lavapipe unless told otherwise, and reading what it wrote.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace folder above `studio/cli/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `name` in a scratch folder of this test binary and process, emptied on first use: process
/// ids repeat across runs and the CLI never overwrites a lesson or bundle, so files left by an
/// earlier run must not meet this one.
pub fn scratch(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "twinray-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    });
    dir.join(name)
}

/// Runs `twinray ARGS` on the CPU renderer unless `TWINRAY_DEVICE` says otherwise.
pub fn twinray(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twinray"));
    if std::env::var_os("TWINRAY_DEVICE").is_none() {
        cmd.env("TWINRAY_DEVICE", "cpu");
    }
    cmd.args(args).output().expect("twinray runs")
}

/// The command's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Width and height of a PNG file.
pub fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("png exists"),
    ));
    let reader = decoder.read_info().expect("valid png");
    (reader.info().width, reader.info().height)
}
