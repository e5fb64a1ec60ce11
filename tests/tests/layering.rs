//! The layering rules of ARCHITECTURE.md, checked on the real dependency graph (and, for
//! printing, on the sources).

use std::path::Path;
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

/// The names of `package`'s dependencies among `forbidden`.
fn forbidden_in(package: &str, forbidden: &[&str]) -> Vec<String> {
    let deps = dependencies_of(package);
    assert!(deps.len() > 1, "cargo tree listed nothing for {package}");
    forbidden
        .iter()
        .filter(|f| deps.iter().any(|d| d == *f))
        .map(|f| (*f).to_owned())
        .collect()
}

fn assert_absent(package: &str, forbidden: &[&str]) {
    let found = forbidden_in(package, forbidden);
    assert!(
        found.is_empty(),
        "{package} must not depend on {} (see ARCHITECTURE.md)",
        found.join(", ")
    );
}

/// Every library crate below the front ends: none may know of a window, a command line or
/// an XR runtime.
const BELOW_FRONT_ENDS: [&str; 12] = [
    "twinray-volume",
    "twinray-measure",
    "twinray-bundle",
    "twinray-library",
    "twinray-io",
    "twinray-segmentation",
    "twinray-transfer-functions",
    "twinray-lessons",
    "twinray-shaders",
    "twinray-renderer",
    "twinray-scene",
    "twinray-voice",
];

#[test]
fn gpu_free_crates_know_nothing_of_vulkan() {
    for package in [
        "twinray-volume",
        "twinray-io",
        "twinray-measure",
        "twinray-segmentation",
        "twinray-transfer-functions",
        "twinray-lessons",
        "twinray-bundle",
        "twinray-library",
    ] {
        assert_absent(package, &["vulkano", "twinray-renderer", "twinray-shaders"]);
    }
}

#[test]
fn measurements_need_only_the_volumes_and_their_files() {
    assert_absent(
        "twinray-measure",
        &[
            "twinray-scene",
            "twinray-lessons",
            "twinray-segmentation",
            "ort",
        ],
    );
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
            "twinray-io",
            "twinray-segmentation",
            "dicom-object",
        ],
    );
}

#[test]
fn file_readers_know_nothing_of_inference() {
    assert_absent("twinray-io", &["ort", "twinray-segmentation"]);
}

#[test]
fn only_the_cli_parses_command_lines() {
    for package in BELOW_FRONT_ENDS
        .into_iter()
        .chain(["twinray-xr", "twinray-desktop"])
    {
        assert_absent(package, &["clap"]);
    }
}

#[test]
fn only_the_desktop_crate_opens_windows() {
    for package in BELOW_FRONT_ENDS.into_iter().chain(["twinray-xr"]) {
        assert_absent(
            package,
            &["egui", "winit", "egui_winit_vulkano", "vulkano-util"],
        );
    }
}

#[test]
fn only_the_xr_crate_speaks_openxr() {
    for package in BELOW_FRONT_ENDS.into_iter().chain(["twinray-desktop"]) {
        assert_absent(package, &["openxr"]);
    }
}

#[test]
fn only_the_voice_crate_touches_sound_hardware_and_the_codec() {
    for package in BELOW_FRONT_ENDS
        .into_iter()
        .filter(|p| *p != "twinray-voice")
    {
        assert_absent(package, &["cpal", "opus", "alsa"]);
    }
}

#[test]
fn tests_and_benches_use_the_scene_not_the_front_ends() {
    for package in ["twinray-tests", "twinray-benches"] {
        assert_absent(package, &["twinray-cli", "twinray-desktop", "clap", "egui"]);
    }
}

/// `println!` and friends in non-test code of a crate's `src/`, as `file:line`.
fn prints_in(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            for (n, line) in text.lines().enumerate() {
                // Unit tests sit at the end of a file, after `#[cfg(test)]`.
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                let code = line.split("//").next().unwrap_or("");
                if ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("]
                    .iter()
                    .any(|m| code.contains(m))
                {
                    found.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn nothing_below_the_front_ends_prints() {
    let root = repo_root();
    let mut found = Vec::new();
    for folder in [
        "segmentation/volume",
        "segmentation/io",
        "segmentation/inference",
        "segmentation/measure",
        "transfer-functions",
        "lessons",
        "lessons/bundle",
        "lessons/library",
        "shaders",
        "renderer",
        "studio/scene",
    ] {
        let src = root.join(folder).join("src");
        assert!(src.is_dir(), "{} is missing", src.display());
        found.extend(prints_in(&src));
    }
    assert!(
        found.is_empty(),
        "libraries return what a user should know; the front end prints it: {found:?}"
    );
}
