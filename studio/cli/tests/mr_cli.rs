//! `twinray info`, `twinray render` and `twinray segment` on MR images, as a user runs them.

mod common;

use common::{png_size, repo, scratch, stderr, twinray};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn info_on_an_mr_says_mr_and_no_hu() {
    let nifti = repo().join("data/mr/totalsegmentator/example_mr_sm.nii.gz");
    let out = twinray(&["info", nifti.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("MR, scanner units (no HU"), "{text}");
    assert!(!text.contains("Hounsfield"), "{text}");
    assert!(text.contains("display window:    -13.0 … 742.1"), "{text}");

    // A DICOM study with two MR series: both listed with their descriptions.
    let study = repo().join("segmentation/io/tests/fixtures/dicom/mr/mr_study");
    let out = twinray(&["info", study.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("2 series"), "{text}");
    assert!(text.contains("series 5 \"t1_vibe_abdomen\""), "{text}");
    assert!(text.contains("series 6 \"t2_haste_abdomen\""), "{text}");
    assert_eq!(
        text.matches("MR, scanner units (no HU").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("window:            centre 400, width 800"),
        "{text}"
    );
}

#[test]
fn render_picks_the_mr_default_and_warns_on_a_ct_preset() {
    let dir = repo().join("data/mr/totalsegmentator");
    let ct = dir.join("example_mr_sm.nii.gz");
    let labels = dir.join("example_seg_mr.nii.gz");
    let png = scratch("mr.png");
    let render = |extra: &[&str]| {
        let mut args = vec![
            "render",
            "--ct",
            ct.to_str().expect("utf-8"),
            "--labels",
            labels.to_str().expect("utf-8"),
            "--size",
            "96x96",
            "--device",
            "cpu",
            "--out",
            png.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        twinray(&args)
    };
    let out = render(&["--hide-label", "liver"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("(MR,") && err.contains("'mr-default'"),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(png_size(&png), (96, 96));

    let out = render(&["--preset", "ct-bone"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: preset 'ct-bone' is made for CT") && err.contains("mr-default"),
        "{err}"
    );
    std::fs::remove_file(&png).ok();
}

#[test]
fn preset_show_says_an_mr_preset_is_placed_on_the_window() {
    let out = twinray(&["preset", "show", "mr-mip", "--at", "0,0.5,1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("fractions of the image's display window"),
        "{text}"
    );
    assert!(
        text.contains("made for MR images (scanner units)"),
        "{text}"
    );
    // A grey ramp over the window: half way is mid grey, and no value is marked as outside.
    assert!(
        text.contains("0.5  0.500000  0.500000  0.500000  0.500000"),
        "{text}"
    );
    assert!(!text.contains('*'), "{text}");
    let out = twinray(&["preset", "show", "ct-bone", "--at", "500"]);
    assert!(
        stdout(&out).contains("made for CT images (HU)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn segment_warns_when_the_models_normalisation_does_not_fit_the_modality() {
    let fixtures = repo().join("segmentation/inference/tests/fixtures/inference");
    let mr = fixtures.join("nnunet_tiny_mr_case.nii.gz");
    let ct = fixtures.join("case1_ct.nii.gz");
    let ct_model = fixtures.join("tiny_unet3d.json");
    let mr_model = fixtures.join("nnunet_tiny_mr.json");
    let out_labels = scratch("mr-seg-labels.nii.gz");
    let segment = |image: &std::path::Path, model: &std::path::Path| {
        let out = twinray(&[
            "segment",
            image.to_str().expect("utf-8"),
            "--model",
            model.to_str().expect("utf-8"),
            "--out",
            out_labels.to_str().expect("utf-8"),
            "--threads",
            "1",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    // A CT model (scheme "ct") on an MR: warned.
    let err = segment(&mr, &ct_model);
    assert!(
        err.contains("(MR): the model normalises CT Hounsfield units"),
        "{err}"
    );
    // An MR model (scheme "zscore") on an MR: no modality warning.
    let err = segment(&mr, &mr_model);
    assert!(!err.contains("normalises"), "{err}");
    // The z-score model on a CT: warned that it is likely an MR model.
    let err = segment(&ct, &mr_model);
    assert!(
        err.contains("(CT): the model normalises each image") && err.contains("MR model"),
        "{err}"
    );
    // The CT model on a CT: no modality warning.
    let err = segment(&ct, &ct_model);
    assert!(!err.contains("normalises"), "{err}");
    std::fs::remove_file(&out_labels).ok();
}

#[test]
fn info_reports_the_philips_scale_slope_and_how_to_get_floating_point_values() {
    let folder = repo().join("segmentation/io/tests/fixtures/dicom/mr/philips_mr");
    let out = twinray(&["info", folder.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // RescaleSlope 1.5, RescaleIntercept -10, MR Scale Slope 0.25 (make_mr_dicom_fixtures.py).
    assert!(text.contains("value = stored × 1.5 + -10"), "{text}");
    assert!(
        text.contains(
            "Philips scale:     scale slope 0.25, scale intercept 0: floating-point value \
             = value / (1.5 × 0.25) = value × 2.666667"
        ),
        "{text}"
    );
    // A series without the private scale says nothing about it.
    let study = repo().join("segmentation/io/tests/fixtures/dicom/mr/mr_study");
    let out = twinray(&["info", study.to_str().expect("utf-8")]);
    assert!(!stdout(&out).contains("Philips"), "{}", stdout(&out));
}
