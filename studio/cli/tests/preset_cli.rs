//! `twinray preset show|list` and `--preset FILE:NAME` as a user runs them, on the 3D Slicer
//! preset files of the transfer-functions crate's tests (written in Slicer's formats).

mod common;

use common::{png_size, repo, scratch, stderr, twinray};
use std::path::PathBuf;

fn slicer_data(name: &str) -> PathBuf {
    repo()
        .join("transfer-functions/tests/data/slicer")
        .join(name)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The row `preset show` prints for `value`, split into its numbers.
fn row(text: &str, value: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|words| words.first().map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no row for {value} in:\n{text}"))
}

#[test]
fn show_prints_slicers_opacity_per_mm_and_colour_at_the_values() {
    let spec = format!("{}:CT-Bone", slicer_data("presets.xml").display());
    let out = twinray(&["preset", "show", &spec, "--at", "300,500,-3100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // CT-Bone's opacity from (-16.4458, 0) to (641.385, 0.715686), colour from
    // (0.729412 0.254902 0.301961) to (0.905882 0.815686 0.552941), worked out by hand.
    assert_eq!(
        row(&text, "300"),
        ["300", "0.344277", "0.814302", "0.524664", "0.422694"],
        "{text}"
    );
    assert_eq!(row(&text, "500")[1], "0.561866", "{text}");
    assert_eq!(
        row(&text, "-3100"),
        ["-3100", "0.000000", "0.000000", "0.000000", "0.000000", "*"],
        "values outside the renderer's range are marked: {text}"
    );
    assert!(text.contains("per 1 mm"), "{text}");
    assert!(
        text.contains("shading on: ambient 0.1, diffuse 0.9"),
        "{text}"
    );
    assert!(!text.contains("not reproduced"), "{text}");

    // A file with a unit distance of 2 mm is shown per 1 mm: 0.5 per 2 mm is 1 − √0.5.
    let json = slicer_data("Bone-Json.vp.json");
    let out = twinray(&[
        "preset",
        "show",
        json.to_str().expect("utf-8"),
        "--at",
        "500",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(row(&stdout(&out), "500")[1], "0.292893", "{}", stdout(&out));

    // twinray's own presets are per voxel, and say so.
    let out = twinray(&["preset", "show", "ct-bone", "--at", "675"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("per voxel"), "{}", stdout(&out));
    assert_eq!(row(&stdout(&out), "675")[1], "0.450000");
}

#[test]
fn show_says_how_quirks_were_read_and_what_is_not_reproduced() {
    let spec = format!("{}:Quirks", slicer_data("presets.xml").display());
    let out = twinray(&["preset", "show", &spec, "--at", "250"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(row(&text, "250")[1], "0.650000", "{text}");
    assert!(
        text.contains("read: scalarOpacity: '250.0.0' read as 250"),
        "{text}"
    );
    assert!(
        text.contains("not reproduced: its gradient opacity"),
        "{text}"
    );
    assert!(
        text.contains("effective range (Slicer's editor): -1000 to 1000"),
        "{text}"
    );
}

#[test]
fn list_names_the_presets_of_a_file() {
    let out = twinray(&[
        "preset",
        "list",
        slicer_data("presets.xml").to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["CT-Bone", "Quirks", "X-Ray-Like", "MR-Like"]
    );
    let out = twinray(&["preset", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).lines().any(|l| l == "ct-bone"));
    // A malformed preset is named, and why it cannot be used goes to stderr.
    let out = twinray(&[
        "preset",
        "list",
        slicer_data("broken.xml").to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 7);
    assert!(
        stderr(&out).contains("preset 'Odd-Count' cannot be used"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn render_takes_a_preset_inside_a_slicer_file_and_bad_ones_exit_2() {
    let out_png = scratch("slicer-bone.png");
    let ct = repo().join("data/demo/example_ct.nii.gz");
    let spec = format!("{}:CT-Bone", slicer_data("presets.xml").display());
    let args = |preset: &str| {
        vec![
            "render".to_owned(),
            "--ct".to_owned(),
            ct.to_str().expect("utf-8").to_owned(),
            "--preset".to_owned(),
            preset.to_owned(),
            "--size".to_owned(),
            "96x64".to_owned(),
            "--out".to_owned(),
            out_png.to_str().expect("utf-8").to_owned(),
        ]
    };
    let run = |preset: &str| {
        let a = args(preset);
        twinray(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = run(&spec);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&out_png), (96, 64));
    assert!(stderr(&out).contains("CT-Bone"), "{}", stderr(&out));

    let out = run(&format!(
        "{}:CT-Banana",
        slicer_data("presets.xml").display()
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("presets.xml has no preset named 'CT-Banana'"),
        "{}",
        stderr(&out)
    );
    let out = run(&format!(
        "{}:Odd-Count",
        slicer_data("broken.xml").display()
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("preset 'Odd-Count' in ")
            && stderr(&out).contains("broken.xml: scalarOpacity announces 3 numbers"),
        "{}",
        stderr(&out)
    );
    let out = twinray(&["preset", "show", "ct-bone"]);
    assert_eq!(out.status.code(), Some(2), "--at is required");
}
