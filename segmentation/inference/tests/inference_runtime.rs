//! A missing or unusable ONNX Runtime library gives an error that says what to do, never a
//! panic. Its own test binary (process): once a process has loaded ONNX Runtime it keeps it, so
//! these must run before any successful load.

use std::path::Path;

use twinray_segmentation::find_library;
use twinray_segmentation::{InferenceError, Runtime};

fn load_error(path: &Path) -> String {
    let e = Runtime::load(Some(path)).expect_err("must not load");
    assert!(
        matches!(
            e,
            InferenceError::RuntimeMissing { .. } | InferenceError::RuntimeLoad { .. }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("make setup") && text.contains("TWINRAY_ORT_LIB"),
        "the message says how to fix it: {text}"
    );
    text
}

#[test]
fn a_missing_or_foreign_library_is_a_clear_error() {
    let missing = Path::new("/nonexistent/libonnxruntime.so");
    let text = load_error(missing);
    assert!(text.contains("/nonexistent/libonnxruntime.so"), "{text}");

    // A file that is not a shared library at all.
    let dir = std::env::temp_dir().join(format!("twinray-ort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let text_file = dir.join("libonnxruntime.so");
    std::fs::write(&text_file, "not a library").expect("write");
    let text = load_error(&text_file);
    assert!(text.contains("cannot use"), "{text}");

    // A real shared library that is not ONNX Runtime.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.exists());
    if let Some(libc) = libc {
        let text = load_error(libc);
        assert!(text.contains("OrtGetApiBase"), "{text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_explicit_path_wins_over_the_environment() {
    let e = find_library(Some(Path::new("/nonexistent/explicit.so"))).expect_err("missing");
    assert!(e.to_string().contains("--ort-lib"), "{e}");
}
