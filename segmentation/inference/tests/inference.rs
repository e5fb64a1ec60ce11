//! The Rust sliding window against the Python reference (`../shared/peers/onnx_sliding_window.py`,
//! fixtures written by `segmentation/inference/scripts/make_inference_reference.py`), and the errors a
//! model that does not fit its description gets. Needs the ONNX Runtime library (`make setup`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use twinray_io::{read_ct, read_labels};
use twinray_segmentation::{CoreUse, InferenceError, Model, Runtime, SegmentOptions, Segmenter};
use twinray_segmentation::{ModelGrid, Progress};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inference")
}

fn runtime() -> Runtime {
    Runtime::load(None).expect("ONNX Runtime (run `make setup`, or set TWINRAY_ORT_LIB)")
}

fn segmenter() -> Segmenter {
    let model = Model::open(&fixtures().join("tiny_unet3d.json")).expect("fixture model");
    Segmenter::new(&runtime(), &model, CoreUse::Exclusive { threads: Some(1) }).expect("session")
}

fn read_f32_gz(path: &Path) -> Vec<f32> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_end(&mut bytes)
        .expect("gunzip");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Runs one reference case: model-grid logits and labels, then the whole `segment` on the CT.
fn check_case(name: &str, mirror: bool, expected_windows: usize) {
    let dir = fixtures();
    let ct = read_ct(&dir.join(format!("{name}_ct.nii.gz"))).expect("fixture CT");
    let mut seg = segmenter();
    let grid = ModelGrid::new(ct.geometry(), seg.description());
    assert!(
        grid.is_exact(),
        "a 3 mm RAS CT is copied onto the model grid"
    );
    let shape = grid.shape();
    let hu = grid.sample(&ct);
    let options = SegmentOptions {
        mirror_axes: mirror.then(|| vec![0, 1, 2]),
        ..SegmentOptions::default()
    };
    let classes = seg.description().classes.len();
    let plane = classes * shape[1] * shape[2];
    let mut logits = vec![f32::NAN; classes * shape.iter().product::<usize>()];
    let mut planes_seen = Vec::new();
    let mut last = Progress {
        windows_done: 0,
        windows_total: 0,
    };
    let mut sink = |z: usize, values: &[f32]| {
        assert_eq!(values.len(), plane);
        planes_seen.push(z);
        // Sink planes are [channel][y][x]; the reference is [channel][z][y][x].
        let per_channel = shape[1] * shape[2];
        for c in 0..classes {
            logits[(c * shape[0] + z) * per_channel..][..per_channel]
                .copy_from_slice(&values[c * per_channel..][..per_channel]);
        }
    };
    let channels = seg
        .predict(&hu, shape, &options, &mut |p| last = p, Some(&mut sink))
        .expect("predict");
    assert_eq!(planes_seen, (0..shape[0]).collect::<Vec<_>>());
    assert_eq!(
        last,
        Progress {
            windows_done: expected_windows,
            windows_total: expected_windows
        }
    );

    let expected = read_f32_gz(&dir.join(format!("{name}_logits.f32.gz")));
    assert_eq!(expected.len(), logits.len());
    let worst = expected
        .iter()
        .zip(&logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "{name}: logits differ by up to {worst}");

    // Labels: the reference's NIfTI holds channel indices on the CT grid (x fastest = R).
    let reference = read_labels(&dir.join(format!("{name}_labels.nii.gz"))).expect("labels");
    let [nz, ny, nx] = shape;
    let mut mismatches = 0;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let r = *reference.get(x, y, z).expect("in grid");
                if u16::from(channels[(z * ny + y) * nx + x]) != r {
                    mismatches += 1;
                }
            }
        }
    }
    assert_eq!(mismatches, 0, "{name}: labels differ from the reference");

    // The whole pipeline on the CT grid: ids instead of channels, on the same voxels.
    let result = seg.segment(&ct, &options, &mut |_| {}).expect("segment");
    assert!(result.labels.geometry().same_grid(ct.geometry(), 1e-6));
    let ids = seg.description().ids_by_channel();
    for (got, &r) in result.labels.voxels().iter().zip(reference.voxels()) {
        assert_eq!(*got, ids[usize::from(r)]);
    }
    assert_eq!(result.names.get(5), Some("liver"));
    assert_eq!(result.windows, expected_windows);
}

#[test]
fn sliding_window_equals_the_python_reference_with_three_windows_per_axis() {
    check_case("case1", false, 27);
}

#[test]
fn padding_and_mirroring_equal_the_python_reference() {
    check_case("case2", true, 3);
}

#[test]
fn batching_windows_changes_nothing() {
    let dir = fixtures();
    let ct = read_ct(&dir.join("case1_ct.nii.gz")).expect("fixture CT");
    let mut seg = segmenter();
    assert!(seg.dynamic_batch());
    let one = seg
        .segment(&ct, &SegmentOptions::default(), &mut |_| {})
        .expect("batch 1");
    let mut calls = 0;
    let four = seg
        .segment(
            &ct,
            &SegmentOptions {
                batch_size: 4,
                ..SegmentOptions::default()
            },
            &mut |_| calls += 1,
        )
        .expect("batch 4");
    assert_eq!(one.labels, four.labels);
    assert_eq!(
        calls,
        3 * 3,
        "nine y-x positions per z start, four per call: 3 calls each"
    );
}

#[test]
fn cancelling_stops_between_windows() {
    let ct = read_ct(&fixtures().join("case1_ct.nii.gz")).expect("fixture CT");
    let mut seg = segmenter();
    let cancel = Arc::new(AtomicBool::new(false));
    let options = SegmentOptions {
        cancel: Some(cancel.clone()),
        ..SegmentOptions::default()
    };
    let mut seen = 0;
    let result = seg.segment(&ct, &options, &mut |p| {
        seen = p.windows_done;
        if p.windows_done == 5 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(
        matches!(result, Err(InferenceError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(seen, 5);
}

#[test]
fn resampled_ct_lands_back_on_its_own_grid() {
    // A 2 mm CT stored LPS: reoriented and resampled to 3 mm for the model, labels come back on
    // the CT's grid and agree with the 3 mm result where the grids coincide in spirit: the same
    // classes appear.
    use twinray_io::{CtVolume, Geometry, Volume};
    let g =
        Geometry::axis_aligned([30, 27, 21], [2.0, 2.0, 2.0], [10.0, -20.0, 5.0]).expect("grid");
    let ct: CtVolume = Volume::from_fn(g, |i, j, k| {
        let d = ((i as f32 - 15.0).powi(2) + (j as f32 - 13.0).powi(2) + (k as f32 - 10.0).powi(2))
            .sqrt();
        if d < 8.0 {
            400.0
        } else {
            -50.0 + (i * 7 % 13) as f32
        }
    });
    let mut seg = segmenter();
    let grid = ModelGrid::new(ct.geometry(), seg.description());
    assert!(!grid.is_exact());
    assert_eq!(grid.shape(), [14, 18, 20]);
    let result = seg
        .segment(&ct, &SegmentOptions::default(), &mut |_| {})
        .expect("segment");
    assert_eq!(result.labels.geometry(), ct.geometry());
    assert_eq!(result.model_shape, [14, 18, 20]);
    let ids = seg.description().ids_by_channel();
    assert!(result.labels.voxels().iter().all(|v| ids.contains(v)));
}

#[test]
fn memory_over_the_limit_is_refused_before_allocating() {
    let ct = read_ct(&fixtures().join("case1_ct.nii.gz")).expect("fixture CT");
    let mut seg = segmenter();
    let options = SegmentOptions {
        max_memory_bytes: 100_000,
        ..SegmentOptions::default()
    };
    let e = seg
        .segment(&ct, &options, &mut |_| {})
        .expect_err("too large");
    assert!(matches!(e, InferenceError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("MiB"), "{e}");
}

// --- Models that do not fit their description -------------------------------------------

/// A scratch folder with the fixture description (edited by `edit`) beside `onnx`.
fn model_with(name: &str, onnx: &[u8], edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twinray-inference-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("m.onnx"), onnx).expect("write onnx");
    let text = std::fs::read_to_string(fixtures().join("tiny_unet3d.json")).expect("json");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["onnx"] = "m.onnx".into();
    edit(&mut json);
    let path = dir.join("m.json");
    std::fs::write(&path, serde_json::to_string(&json).expect("json")).expect("write json");
    path
}

fn open_error(path: &Path) -> InferenceError {
    let model = Model::open(path).expect("description is valid");
    Segmenter::new(&runtime(), &model, CoreUse::Exclusive { threads: Some(1) })
        .expect_err("the model must be refused")
}

fn tiny_onnx() -> Vec<u8> {
    std::fs::read(fixtures().join("tiny_unet3d.onnx")).expect("fixture onnx")
}

#[test]
fn a_file_that_is_not_onnx_is_refused() {
    let path = model_with("garbage", b"this is not a protobuf model at all", |_| {});
    let e = open_error(&path);
    assert!(matches!(e, InferenceError::NotOnnx { .. }), "{e}");
    assert!(e.to_string().contains("m.onnx"), "{e}");
}

#[test]
fn output_channels_must_match_the_classes() {
    let path = model_with("classes", &tiny_onnx(), |j| {
        j["classes"]
            .as_array_mut()
            .expect("classes")
            .push(serde_json::json!({"channel": 3, "id": 7, "name": "stomach"}));
    });
    let e = open_error(&path);
    assert!(
        matches!(
            e,
            InferenceError::OutputChannels {
                channels: 3,
                classes: 4,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn unknown_input_names_are_refused() {
    let path = model_with("name", &tiny_onnx(), |j| j["input_name"] = "image".into());
    let e = open_error(&path);
    assert!(matches!(e, InferenceError::NoSuchTensor { .. }), "{e}");
    assert!(e.to_string().contains("input"), "{e}");
}

fn fixture_onnx(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).expect("fixture onnx")
}

#[test]
fn a_patch_that_does_not_fit_a_fixed_model_is_refused() {
    let fixed = fixture_onnx("fixed16.onnx");
    let path = model_with("fixed", &fixed, |_| {});
    let e = open_error(&path);
    assert!(matches!(e, InferenceError::PatchMismatch { .. }), "{e}");
    assert!(e.to_string().contains("[12, 12, 16]"), "{e}");
    // The same model with a matching patch loads.
    let ok = model_with("fixed-ok", &fixed, |j| {
        j["patch_size"] = serde_json::json!([16, 16, 16]);
    });
    let model = Model::open(&ok).expect("valid");
    let seg =
        Segmenter::new(&runtime(), &model, CoreUse::Exclusive { threads: Some(1) }).expect("fits");
    assert!(!seg.dynamic_batch());
}

#[test]
fn wrong_input_rank_is_refused() {
    let path = model_with("rank", &fixture_onnx("bad_rank4.onnx"), |_| {});
    let e = open_error(&path);
    assert!(
        matches!(e, InferenceError::WrongRank { kind: "input", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("rank 4"), "{e}");
}

#[test]
fn two_input_channels_are_refused() {
    let path = model_with("channels", &fixture_onnx("bad_channels2.onnx"), |_| {});
    let e = open_error(&path);
    assert!(
        matches!(e, InferenceError::InputChannels { channels: 2, .. }),
        "{e}"
    );
}

#[test]
fn an_onnx_file_without_description_is_refused() {
    let dir = std::env::temp_dir().join(format!("twinray-inference-{}-bare", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let onnx = dir.join("bare.onnx");
    std::fs::write(&onnx, tiny_onnx()).expect("write");
    let e = Model::open(&onnx).expect_err("no description");
    assert!(
        matches!(e, InferenceError::DescriptionMissing { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("bare.json"), "{e}");
    // With the description beside it (same name), the .onnx path works.
    let text = std::fs::read_to_string(fixtures().join("tiny_unet3d.json"))
        .expect("json")
        .replace("tiny_unet3d.onnx", "bare.onnx");
    std::fs::write(dir.join("bare.json"), text).expect("write");
    assert!(Model::open(&onnx).is_ok());
}

#[test]
fn the_builtin_model_loads_from_memory_or_says_it_is_absent() {
    match twinray_segmentation::BUILTIN_MODEL {
        None => {
            let e = Model::builtin().expect_err("no built-in model in this build");
            assert!(matches!(e, InferenceError::NoBuiltinModel), "{e}");
            assert!(e.to_string().contains("--model"), "{e}");
        }
        Some(_) => {
            let model = Model::builtin().expect("the built-in description is valid");
            let mut seg =
                Segmenter::new(&runtime(), &model, CoreUse::Exclusive { threads: Some(1) })
                    .expect("loads from memory");
            let ct = read_ct(&fixtures().join("case2_ct.nii.gz")).expect("fixture CT");
            let result = seg
                .segment(&ct, &SegmentOptions::default(), &mut |_| {})
                .expect("segments");
            assert_eq!(result.labels.geometry(), ct.geometry());
        }
    }
}
