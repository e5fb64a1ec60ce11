//! The `twinray` binary as a user runs it: the README's render command, and bad input.

mod common;

use common::{png_size, repo, scratch, stderr, twinray};
use std::path::{Path, PathBuf};
use std::process::Command;

fn demo(name: &str) -> PathBuf {
    repo().join("data/demo").join(name)
}

#[test]
fn renders_the_readme_example_to_a_png() {
    let out_png = scratch("spine.png");
    let ct = demo("example_ct.nii.gz");
    let labels = demo("spine_report_totalseg_vertebrae.nii.gz");
    let out = twinray(&[
        "render",
        "--ct",
        ct.to_str().expect("utf-8 path"),
        "--labels",
        labels.to_str().expect("utf-8 path"),
        "--preset",
        "ct-bone",
        "--azimuth",
        "30",
        "--elevation",
        "15",
        "--size",
        "320x200",
        "--hide-label",
        "vertebrae_L5",
        "--clip-plane",
        "0,1,0,-200",
        "--out",
        out_png.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "render failed: {}", stderr(&out));
    assert_eq!(png_size(&out_png), (320, 200));
    assert!(stderr(&out).contains("llvmpipe") || stderr(&out).contains("GPU"));
}

#[test]
fn bad_input_exits_2_and_names_the_file_and_problem() {
    let out_png = scratch("never.png");
    let out_s = out_png.to_str().expect("utf-8 path");
    let ct = demo("example_ct.nii.gz");
    let ct_s = ct.to_str().expect("utf-8 path");

    let missing = scratch("no-such-ct.nii.gz");
    let out = twinray(&[
        "render",
        "--ct",
        missing.to_str().expect("utf-8"),
        "--out",
        out_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no-such-ct.nii.gz"),
        "{}",
        stderr(&out)
    );

    let text = scratch("readme.nii");
    std::fs::write(&text, "not a nifti file").expect("write");
    let out = twinray(&[
        "render",
        "--ct",
        text.to_str().expect("utf-8"),
        "--out",
        out_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("readme.nii") && stderr(&out).contains("not a NIfTI"),
        "{}",
        stderr(&out)
    );

    // Labels from another grid: the reference segmentation of the DICOM series (512x512x20).
    let other = repo().join("data/ct/totalsegmentator/example_seg_dicom.nii.gz");
    let out = twinray(&[
        "render",
        "--ct",
        ct_s,
        "--labels",
        other.to_str().expect("utf-8"),
        "--out",
        out_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("example_seg_dicom.nii.gz") && stderr(&out).contains("grid"),
        "{}",
        stderr(&out)
    );

    let out = twinray(&[
        "render", "--ct", ct_s, "--preset", "ct-bones", "--out", out_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown preset 'ct-bones'"),
        "{}",
        stderr(&out)
    );

    let out = twinray(&["render", "--ct", ct_s, "--size", "big", "--out", out_s]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2 too");
    assert!(!out_png.exists(), "no output after a failure");
}

#[test]
fn help_explains_orientation_and_flags() {
    let out = twinray(&["render", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--hide-label",
        "--clip-plane",
        "--device",
        "anterior",
        "patient's left",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn renders_a_dicom_series_with_a_label_map_stored_in_another_axis_order() {
    // The reference segmentation is LAS (rows flipped against the DICOM series): the same
    // points, so it is reordered onto the CT's grid rather than refused.
    let series = repo().join("data/ct/totalsegmentator/example_ct_dicom");
    let seg = repo().join("data/ct/totalsegmentator/example_seg_dicom.nii.gz");
    let out_png = scratch("dicom.png");
    let out = twinray(&[
        "render",
        "--ct",
        series.to_str().expect("utf-8"),
        "--labels",
        seg.to_str().expect("utf-8"),
        "--size",
        "96x96",
        "--out",
        out_png.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&out_png), (96, 96));

    let out = twinray(&["info", series.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("512 x 512 x 20"), "{text}");
    assert!(text.contains("JPEG 2000"), "{text}");
}

#[test]
fn lesson_tools_verify_recover_and_dump_the_committed_fixtures() {
    let fixtures = repo().join("lessons/tests/fixtures");
    let clean = fixtures.join("v1.lesson");
    let crashed = fixtures.join("v1-unfinished.lesson");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_owned();

    let out = twinray(&["lesson", "verify", &s(&clean)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = twinray(&["lesson", "verify", &s(&crashed)]);
    assert_eq!(out.status.code(), Some(1), "a crashed recording is damaged");

    let fixed = scratch("fixed.lesson");
    let _ = std::fs::remove_file(&fixed);
    let out = twinray(&["lesson", "recover", &s(&crashed), "--out", &s(&fixed)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = twinray(&["lesson", "verify", &s(&fixed)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the recovered file verifies clean"
    );

    let out = twinray(&["lesson", "dump", &s(&clean)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() > 100, "one JSON line per event");
    assert!(text.lines().all(|l| l.starts_with('{') && l.ends_with('}')));

    let out = twinray(&["lesson", "info", &s(&repo().join("README.md"))]);
    assert_eq!(out.status.code(), Some(2), "not a lesson: an error");
    assert!(stderr(&out).contains("README.md"), "{}", stderr(&out));
}

#[test]
fn renders_without_vulkan_validation_errors() {
    // The Khronos validation layer checks every Vulkan call of a real render (upload, LUT
    // update, dispatch, read-back) and prints "Validation Error" on misuse.
    let layer = Path::new("/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json");
    assert!(
        layer.exists(),
        "the Vulkan validation layer is missing: apt-get install vulkan-validationlayers (make test does)"
    );
    let out_png = scratch("validated.png");
    let ct = demo("example_ct.nii.gz");
    let labels = demo("spine_report_totalseg_vertebrae.nii.gz");
    for mode in ["composite", "mip"] {
        let out = Command::new(env!("CARGO_BIN_EXE_twinray"))
            .env("TWINRAY_DEVICE", "cpu")
            .env("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation")
            .args(["render", "--ct"])
            .arg(&ct)
            .arg("--labels")
            .arg(&labels)
            .args([
                "--mode",
                mode,
                "--hide-label",
                "31",
                "--clip-plane",
                "1,0,0,-30",
            ])
            .args(["--size", "64x48", "--out"])
            .arg(&out_png)
            .output()
            .expect("twinray runs");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{all}");
        assert!(!all.contains("Validation Error"), "{all}");
    }
}

// --- twinray segment ----------------------------------------------------------------------

fn inference_fixture(name: &str) -> PathBuf {
    repo()
        .join("segmentation/inference/tests/fixtures/inference")
        .join(name)
}

#[test]
fn segments_a_small_ct_writes_labels_on_its_grid_with_names_and_renders_them() {
    let ct = inference_fixture("case1_ct.nii.gz");
    let model = inference_fixture("tiny_unet3d.json");
    let out_labels = scratch("seg-labels.nii.gz");
    let out = twinray(&[
        "segment",
        ct.to_str().expect("utf-8"),
        "--model",
        model.to_str().expect("utf-8"),
        "--out",
        out_labels.to_str().expect("utf-8"),
        "--threads",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("27/27 windows"), "progress bar: {err}");
    assert!(err.contains("liver ("), "summary names the labels: {err}");

    let ct_volume = twinray_io::read_ct(&ct).expect("ct");
    let labels = twinray_io::read_labels(&out_labels).expect("labels written");
    assert!(labels.geometry().same_grid(ct_volume.geometry(), 1e-4));
    // The reference labels (channel indices) mapped to the model's ids: 0, 5, 31.
    let reference =
        twinray_io::read_labels(&inference_fixture("case1_labels.nii.gz")).expect("ref");
    let ids = [0u16, 5, 31];
    assert!(labels
        .voxels()
        .iter()
        .zip(reference.voxels())
        .all(|(&got, &channel)| got == ids[usize::from(channel)]));
    let names_path = scratch("seg-labels.tsv");
    let names = std::fs::read_to_string(&names_path).expect("names sidecar");
    assert!(
        names.contains("5\tliver\n") && names.contains("31\tvertebrae_L1\n"),
        "{names}"
    );

    // The renderer takes the output, and --hide-label finds names in the sidecar.
    let png = scratch("seg.png");
    let out = twinray(&[
        "render",
        "--ct",
        ct.to_str().expect("utf-8"),
        "--labels",
        out_labels.to_str().expect("utf-8"),
        "--hide-label",
        "liver",
        "--size",
        "64x64",
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&png), (64, 64));
    // Passing the sidecar instead of the map is a clear error.
    let out = twinray(&[
        "render",
        "--ct",
        ct.to_str().expect("utf-8"),
        "--labels",
        names_path.to_str().expect("utf-8"),
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("label names"), "{}", stderr(&out));
}

#[test]
fn segment_errors_name_the_problem() {
    let ct = inference_fixture("case1_ct.nii.gz");
    let ct_s = ct.to_str().expect("utf-8");
    let out_labels = scratch("never-labels.nii.gz");
    let out_s = out_labels.to_str().expect("utf-8");

    // A bare ONNX file without its description.
    let bare = scratch("bare-model.onnx");
    std::fs::copy(inference_fixture("tiny_unet3d.onnx"), &bare).expect("copy");
    let out = twinray(&[
        "segment",
        ct_s,
        "--model",
        bare.to_str().expect("utf-8"),
        "--out",
        out_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bare-model.json") && stderr(&out).contains("description"),
        "{}",
        stderr(&out)
    );

    // No ONNX Runtime where TWINRAY_ORT_LIB points.
    let out = Command::new(env!("CARGO_BIN_EXE_twinray"))
        .env("TWINRAY_ORT_LIB", "/nonexistent/libonnxruntime.so")
        .args([
            "segment",
            ct_s,
            "--model",
            inference_fixture("tiny_unet3d.json")
                .to_str()
                .expect("utf-8"),
            "--out",
            out_s,
        ])
        .output()
        .expect("twinray runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("make setup") && stderr(&out).contains("TWINRAY_ORT_LIB"),
        "{}",
        stderr(&out)
    );

    // A model file that is not ONNX.
    let dir = scratch("garbage-model");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("tiny_unet3d.onnx"), "not onnx").expect("write");
    std::fs::copy(inference_fixture("tiny_unet3d.json"), dir.join("m.json")).expect("copy");
    let out = twinray(&[
        "segment",
        ct_s,
        "--model",
        dir.join("m.json").to_str().expect("utf-8"),
        "--out",
        out_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not an ONNX model"),
        "{}",
        stderr(&out)
    );
    assert!(!out_labels.exists(), "no output after a failure");
}

#[test]
fn segment_without_model_uses_the_builtin_one_or_says_it_is_absent() {
    let ct = inference_fixture("case2_ct.nii.gz");
    let out_labels = scratch("builtin-labels.nii.gz");
    let out = twinray(&[
        "segment",
        ct.to_str().expect("utf-8"),
        "--out",
        out_labels.to_str().expect("utf-8"),
    ]);
    if twinray_segmentation::BUILTIN_MODEL.is_some() {
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(out_labels.exists());
        // The user is told what the built-in model is worth.
        assert!(
            stderr(&out).contains("demonstrator trained on two abdominal CT scans")
                && stderr(&out).contains("--model"),
            "{}",
            stderr(&out)
        );
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("no built-in segmentation model")
                && stderr(&out).contains("--model"),
            "{}",
            stderr(&out)
        );
    }
}

/// Dice of two masks.
fn dice(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let total = a.iter().filter(|x| **x).count() + b.iter().filter(|x| **x).count();
    if total == 0 {
        1.0
    } else {
        2.0 * both as f64 / total as f64
    }
}

#[test]
fn the_shipped_model_finds_liver_and_vertebrae_on_the_dicom_series() {
    let model = repo().join("segmentation/inference/models/twinray-abdomen-3mm.json");
    if !model.exists() {
        eprintln!(
            "\n\n*** SKIPPED: {} is absent: the shipped model's Dice test did not run ***\n\n",
            model.display()
        );
        return;
    }
    let series = repo().join("data/ct/totalsegmentator/example_ct_dicom");
    let seg = repo().join("data/ct/totalsegmentator/example_seg_dicom.nii.gz");
    let out_labels = scratch("dicom-seg.nii.gz");
    let out = twinray(&[
        "segment",
        series.to_str().expect("utf-8"),
        "--model",
        model.to_str().expect("utf-8"),
        "--out",
        out_labels.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let predicted = twinray_io::read_labels(&out_labels).expect("labels");
    // The reference is stored LAS for an LPS-read series: the same voxels, reordered.
    let reference = twinray_io::read_labels(&seg)
        .expect("reference")
        .reindexed_onto(predicted.geometry(), 0.01)
        .expect("the reference is on the series' grid");
    let names = twinray_io::LabelNames::read_tsv(&scratch("dicom-seg.tsv")).expect("names sidecar");
    let total = twinray_io::LabelNames::totalsegmentator();
    let mut scores = std::collections::BTreeMap::new();
    for (id, name) in names.iter() {
        let pred: Vec<bool> = predicted.voxels().iter().map(|&v| v == id).collect();
        // Merged vertebrae compare with all of TotalSegmentator's vertebrae_* labels.
        let truth: Vec<bool> = if name.starts_with("vertebra") {
            reference
                .voxels()
                .iter()
                .map(|&v| total.get(v).is_some_and(|n| n.starts_with("vertebrae_")))
                .collect()
        } else {
            let Some(ref_id) = total.id_of(name) else {
                continue;
            };
            reference.voxels().iter().map(|&v| v == ref_id).collect()
        };
        if !truth.contains(&true) {
            eprintln!("{name}: not in the reference");
            continue;
        }
        let d = dice(&pred, &truth);
        eprintln!("Dice {name}: {d:.3}");
        scores.insert(name.to_owned(), d);
    }
    for class in ["liver", "vertebrae"] {
        let d = scores.get(class).copied().unwrap_or(0.0);
        assert!(d >= 0.7, "Dice for {class} is {d:.3} (< 0.7): {scores:?}");
    }

    // Where the classes land, through the reorient-and-resample path: the liver on the patient's
    // right (LPS −x) of the body, the vertebrae behind it (LPS +y).
    let ct = twinray_io::load_series(&series, &twinray_io::LoadOptions::default())
        .expect("the series")
        .ct;
    let g = predicted.geometry();
    let centroid = |keep: &dyn Fn(usize) -> bool| {
        let [ni, nj, nk] = g.dims;
        let (mut sum, mut n) = (glam::DVec3::ZERO, 0usize);
        for k in 0..nk {
            for j in 0..nj {
                for i in 0..ni {
                    if keep(g.linear_index(i, j, k)) {
                        sum += g.patient_from_index(glam::DVec3::new(i as f64, j as f64, k as f64));
                        n += 1;
                    }
                }
            }
        }
        sum / n.max(1) as f64
    };
    let body = centroid(&|v| ct.voxels()[v] > -300.0);
    let id = |name| names.id_of(name).expect("a class of the model");
    let (liver_id, vertebrae_id) = (id("liver"), id("vertebrae"));
    let liver = centroid(&|v| predicted.voxels()[v] == liver_id);
    let vertebrae = centroid(&|v| predicted.voxels()[v] == vertebrae_id);
    assert!(
        liver.x < body.x - 40.0,
        "liver at {liver}, body at {body}: not on the right"
    );
    assert!(
        vertebrae.y > body.y + 20.0,
        "vertebrae at {vertebrae}, body at {body}: not posterior"
    );
    assert!(
        (vertebrae.x - body.x).abs() < 20.0,
        "vertebrae at {vertebrae}: off the midline"
    );

    // The whole output, pinned: CPU inference is deterministic (two runs here agree to the
    // voxel), so any change to the recipe (resampling, normalisation, windows, arg-max, the way
    // back onto the CT's grid) shows. After an intended change, replace the counts with the
    // ones this assertion prints.
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for &v in predicted.voxels() {
        *counts.entry(v).or_default() += 1;
    }
    let counts: Vec<(u16, usize)> = counts.into_iter().collect();
    eprintln!("voxels per label id: {counts:?}");
    assert_eq!(
        counts, PINNED_COUNTS,
        "the shipped model's output on the DICOM series changed"
    );
}

/// Voxels per label id of the shipped model on `example_ct_dicom` (512 × 512 × 20).
const PINNED_COUNTS: &[(u16, usize)] = &[
    (0, 4_704_133),
    (1, 126_853),
    (5, 366_421),
    (52, 11_595),
    (200, 33_878),
];

#[test]
fn vr_without_an_openxr_runtime_fails_clearly() {
    // With or without the loader, a machine without an OpenXR runtime gets a command that
    // says what to do and fails, not a crash. XR_RUNTIME_JSON names no runtime so that a
    // developer's own SteamVR or Monado is not started by the test (vr_runtime.rs runs one).
    let out = Command::new(env!("CARGO_BIN_EXE_twinray"))
        .arg("vr")
        .env(
            "XR_RUNTIME_JSON",
            repo().join("no-such-openxr-runtime.json"),
        )
        .output()
        .expect("twinray runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "no OpenXR runtime found (install SteamVR or Monado and start it, or use --simulate)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn vr_simulate_writes_both_eyes_and_the_recording_the_menu_button_started() {
    let dir = scratch("vr-sim");
    let out = twinray(&[
        "vr",
        "--simulate",
        "--frames",
        "12",
        "--eye-size",
        "64x68",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for eye in ["left", "right"] {
        let first = dir.join(format!("frame-00000-{eye}.png"));
        // The first frame renders at full quality; later ones at the governor's choice.
        assert_eq!(png_size(&first), (64, 68));
        assert!(dir.join(format!("frame-00011-{eye}.png")).is_file());
    }
    assert!(!dir.join("frame-00012-left.png").exists());
    // The scripted right menu press at 0.05 s starts recording.
    assert!(dir.join("vr.lesson").is_file());
    assert!(stderr(&out).contains("comfort:"), "{}", stderr(&out));
}

/// `twinray vr --board FILE` reads each image before the headset starts: a usable one is
/// announced (the Y button places it), a file that cannot be a board fails at once naming it,
/// and a replayed lesson takes none (it is not changed).
#[test]
fn vr_board_images_are_read_before_the_session_starts() {
    let xray = repo().join("data/xray/wg04/RG3_J2KI.dcm");
    let out = twinray(&[
        "vr",
        "--simulate",
        "--frames",
        "1",
        "--eye-size",
        "16x16",
        "--board",
        xray.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("vr: board image 1 ready (") && stderr(&out).contains("Y button"),
        "{}",
        stderr(&out)
    );

    let missing = scratch("vr-board").join("no-such-xray.png");
    let out = twinray(&[
        "vr",
        "--simulate",
        "--frames",
        "1",
        "--board",
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-xray.png"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("frames submitted"),
        "{}",
        stderr(&out)
    );

    let lesson = scratch("vr-board").join("replayed.lesson");
    let out = twinray(&[
        "vr",
        lesson.to_str().expect("utf-8"),
        "--simulate",
        "--board",
        xray.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a replayed lesson is not changed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_output_in_a_missing_folder_is_refused_before_any_work() {
    let ct = demo("example_ct.nii.gz");
    let missing = scratch("no-such-folder").join("out.png");
    for args in [
        vec!["render", "--ct", ct.to_str().expect("utf-8"), "--out"],
        vec!["segment", ct.to_str().expect("utf-8"), "--out"],
    ] {
        let mut args = args;
        args.push(missing.to_str().expect("utf-8"));
        let out = twinray(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("does not exist") && stderr(&out).contains("no-such-folder"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn radiograph_shows_spacing_orientation_and_writes_the_displayed_picture() {
    let chest = repo().join("data/xray/wg04/RG1_J2KI.dcm");
    let out = twinray(&["radiograph", chest.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("1841 × 1955"), "{text}");
    assert!(text.contains("unknown spacing"), "{text}");
    assert!(text.contains("rows towards L, columns towards F"), "{text}");
    assert!(text.contains("inverted"), "{text}");

    let pelvis = repo().join("data/xray/wg04/RG2_J2KI.dcm");
    let png = scratch("pelvis.png");
    let _ = std::fs::remove_file(&png);
    let out = twinray(&[
        "radiograph",
        pelvis.to_str().expect("utf-8"),
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("352.0 × 428.0 mm"), "{text}");
    assert_eq!(png_size(&png), (1760, 2140));
    let again = twinray(&[
        "radiograph",
        pelvis.to_str().expect("utf-8"),
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    assert!(!again.status.success(), "never over a file");
}
