//! The layering rules of ARCHITECTURE.md, checked on the real dependency graph.

use std::process::Command;

use twinray_tests::repo_root;

/// Normal (non-dev) dependencies of a workspace crate, by package name.
fn dependencies_of(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}",
            "-p",
        ])
        .arg(package)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn assert_absent(package: &str, forbidden: &[&str]) {
    let deps = dependencies_of(package);
    assert!(deps.len() > 1, "cargo tree listed nothing for {package}");
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{package} must not depend on {f} (see ARCHITECTURE.md)"
        );
    }
}

#[test]
fn gpu_free_crates_know_nothing_of_vulkan() {
    for package in [
        "twinray-volume",
        "twinray-segmentation",
        "twinray-transfer-functions",
        "twinray-lessons",
    ] {
        assert_absent(package, &["vulkano", "twinray-renderer", "twinray-shaders"]);
    }
}

#[test]
fn the_renderer_knows_nothing_of_ui_xr_lessons_or_inference() {
    assert_absent(
        "twinray-renderer",
        &[
            "egui",
            "winit",
            "openxr",
            "ort",
            "twinray-lessons",
            "twinray-segmentation",
            "dicom-object",
        ],
    );
}
