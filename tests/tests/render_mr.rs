//! An MR end to end: the real abdominal MR (TotalSegmentator's example, no HU) with its
//! reference `total_mr` labels, loaded, placed and rendered as every front end does.

use std::path::PathBuf;

use twinray_lessons::state::{LabelState, LessonState, SceneState};
use twinray_scene::{Case, FrameRenderer, LearnerView, OrbitView, SceneBuilder};
use twinray_tests::{
    assert_matches_golden, covered_centroid, covered_pixels, gpu, gpu_lock, repo_root,
};
use twinray_transfer_functions::DensityRange;
use twinray_volume::Modality;

const SIZE: [u32; 2] = [256, 256];

/// `total_mr`'s liver.
const LIVER: u32 = 5;

fn mr_case() -> Case {
    let dir: PathBuf = repo_root().join("data/mr/totalsegmentator");
    let (case, warnings) = Case::load(
        &dir.join("example_mr_sm.nii.gz"),
        Some(&dir.join("example_seg_mr.nii.gz")),
        None,
    )
    .expect("the MR and its labels");
    assert!(warnings.is_empty(), "{warnings:?}");
    case
}

fn anterior() -> LearnerView {
    LearnerView::Orbit(OrbitView::default())
}

#[test]
fn the_abdominal_mr_renders_with_its_default_preset_and_the_liver_on_the_patients_right() {
    let case = mr_case();
    assert_eq!(case.intensity.modality, Modality::Mr);
    let mut builder = SceneBuilder::for_case(&case);
    let frame = builder.frame(&LessonState::new(SceneState::default()), &anterior(), SIZE);
    let tf = &frame.transfer_function;
    assert_eq!(
        tf.preset.name, "mr-default",
        "3D Slicer's rule: MR-Default on an MR"
    );
    assert_eq!(
        tf.range,
        DensityRange {
            low: -47.0,
            high: 833.0
        },
        "the image's own range"
    );
    assert!(builder.take_warnings().is_empty());
    let _guard = gpu_lock();
    let mut renderer = FrameRenderer::new(gpu(), &case.ct, case.labels.as_ref(), &case.intensity)
        .expect("renderer");
    let (image, _) = renderer.render(&frame, SIZE).expect("render");
    // Both goldens are compared (and blessed) in one run; failures are reported together.
    let mut failures = Vec::new();
    let mut check = |name: &str, image: &twinray_renderer::RgbaImage| {
        if let Err(e) = std::panic::catch_unwind(|| assert_matches_golden(name, image)) {
            failures.push(e.downcast_ref::<String>().cloned().unwrap_or_default());
        }
    };
    check("mr-abdomen-default-anterior", &image);

    // The labelled anatomy alone (unlabelled tissue hidden), in the `total_mr` colours.
    let mut organs = LessonState::new(SceneState::default());
    organs.scene.labels.insert(
        0,
        LabelState {
            visible: false,
            ..LabelState::default()
        },
    );
    let frame = builder.frame(&organs, &anterior(), SIZE);
    let (image, _) = renderer.render(&frame, SIZE).expect("render");
    check("mr-abdomen-labels-anterior", &image);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Only the liver: every other label and the unlabelled tissue hidden.
    let mut state = LessonState::new(SceneState::default());
    for id in (0..=255u32).filter(|&id| id != LIVER) {
        state.scene.labels.insert(
            id,
            LabelState {
                visible: false,
                ..LabelState::default()
            },
        );
    }
    let liver = builder.frame(&state, &anterior(), SIZE);
    let (image, _) = renderer.render(&liver, SIZE).expect("render");
    assert!(
        covered_pixels(&image, 30) > 2000,
        "the liver shows: {} pixels",
        covered_pixels(&image, 30)
    );
    let at = covered_centroid(&image, 30).expect("liver visible");
    // Anterior view: the patient's right is on the viewer's left.
    assert!(at[0] < 0.4 * f64::from(SIZE[0]), "liver at {at:?}");
}

#[test]
fn a_ct_preset_on_the_mr_warns_and_an_mr_preset_is_placed_on_its_window() {
    let case = mr_case();
    let mut builder = SceneBuilder::for_case(&case);
    let scene = |preset: &str| {
        LessonState::new(SceneState {
            preset: Some(preset.to_owned()),
            ..SceneState::default()
        })
    };
    builder.frame(&scene("ct-bone"), &anterior(), SIZE);
    let warnings = builder.take_warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("ct-bone") && w.contains("made for CT") && w.contains("MR")),
        "{warnings:?}"
    );
    // MR-MIP's grey ramp runs from the window's low end (fraction 0) to its high end.
    let mip = builder
        .frame(&scene("mr-mip"), &anterior(), SIZE)
        .transfer_function;
    let [low, high] = case.intensity.window;
    assert_eq!(mip.preset.opacity[0].hu, low);
    assert_eq!(mip.preset.opacity[1].hu, high);
    assert!(builder.take_warnings().is_empty());
}

#[test]
fn a_bundle_of_an_mr_lesson_carries_the_mr_default_and_the_total_mr_names() {
    use twinray_lessons::format::LessonHeader;
    use twinray_lessons::recorder::{Recorder, RecorderOptions};
    use twinray_scene::bundle::{make_bundle, open_bundle, BundleRequest};

    let case = mr_case();
    let dir = twinray_tests::scratch_dir("mr-bundle");
    let lesson = dir.join("mr.lesson");
    let out = dir.join("mr.twlesson");
    let _ = std::fs::remove_file(&lesson);
    let _ = std::fs::remove_file(&out);
    let header = LessonHeader::new(case.case_ref.clone(), 1_700_000_000_000_000_000);
    Recorder::create(&lesson, &header, RecorderOptions::default())
        .expect("recorder")
        .finish()
        .expect("an empty lesson on the MR");
    make_bundle(&lesson, &case, &BundleRequest::default(), &out).expect("bundle");
    let mut bundle = twinray_bundle::Bundle::open(&out).expect("open");
    assert!(
        bundle.has("presets/mr-default.toml"),
        "the MR's default preset travels"
    );
    let names =
        String::from_utf8(bundle.read(twinray_bundle::LABEL_NAMES).expect("names")).expect("utf-8");
    assert!(names.contains("23\taorta\n"), "total_mr ids: {names}");
    // The case comes back as an MR (its NIfTI does not say; its range does).
    let opened = open_bundle(&out).expect("open with its case");
    assert_eq!(opened.case.intensity.modality, Modality::Mr);
    assert_eq!(opened.label_names.id_of("aorta"), Some(23));
    std::fs::remove_dir_all(&dir).ok();
}
