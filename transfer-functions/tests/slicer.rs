//! 3D Slicer presets: every quirk of the formats, CT-Bone against Slicer's own definition of
//! it, round trips through twinray's TOML, and errors that name the file and the problem.
//!
//! Expected values are worked out by hand from the points in `tests/data/slicer/` (Slicer's
//! functions are linear between points and constant beyond the ends), never by the code under
//! test.

use std::path::{Path, PathBuf};

use twinray_transfer_functions::slicer::{Format, Interpolation, SlicerFile};
use twinray_transfer_functions::{Preset, PresetError};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/slicer")
        .join(name)
}

fn spec(file: &str, name: &str) -> String {
    format!("{}:{name}", data(file).display())
}

/// A scratch file with `text`, unique to this test run.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twinray-slicer-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scratch file");
    path
}

fn assert_close(what: &str, got: f32, want: f64, tolerance: f64) {
    assert!(
        (f64::from(got) - want).abs() <= tolerance,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn ct_bone_gives_slicers_opacity_and_colour_at_a_dozen_values() {
    // Slicer's CT-Bone scalar opacity: (-3024, 0) (-16.4458, 0) (641.385, 0.715686)
    // (3071, 0.705882), per 1 mm, linear between points and constant beyond the ends.
    let rise = |hu: f64| 0.715686 * (hu + 16.4458) / (641.385 + 16.4458);
    let fall = |hu: f64| 0.715686 + (0.705882 - 0.715686) * (hu - 641.385) / (3071.0 - 641.385);
    let expected = [
        (-3100.0, 0.0), // below the first point: its value
        (-3024.0, 0.0),
        (-1000.0, 0.0),
        (-16.4458, 0.0),
        (0.0, 0.017_892_2), // rise(0)
        (100.0, 0.126_687),
        (200.0, 0.235_481_9),
        (300.0, 0.344_276_7),
        (500.0, 0.561_866_4),
        (641.385, 0.715_686),
        (1000.0, 0.714_238_9), // fall(1000)
        (2000.0, 0.710_203_7),
        (3071.0, 0.705_882),
        (4000.0, 0.705_882), // beyond the last point: its value
    ];
    // The hand-computed table agrees with the formulas it came from.
    assert!((rise(300.0) - 0.344_276_7).abs() < 1e-6 && (fall(2000.0) - 0.710_203_7).abs() < 1e-6);

    let preset = Preset::load(&spec("presets.xml", "CT-Bone")).expect("CT-Bone imports");
    assert_eq!(preset.name, "CT-Bone");
    assert_eq!(
        preset.opacity_unit_mm,
        Some(1.0),
        "Slicer's opacity is per 1 mm"
    );
    for (hu, want) in expected {
        assert_close(
            &format!("opacity at {hu} HU"),
            preset.opacity_at(hu as f32),
            want,
            2e-6,
        );
    }
    // Colour: (-16.4458: 0.729412 0.254902 0.301961) to (641.385: 0.905882 0.815686 0.552941)
    // to (3071: 1 1 1).
    for (hu, want) in [
        (300.0, [0.814_301_9, 0.524_664, 0.422_693_5]),
        (1500.0, [0.939_142_9, 0.880_821_7, 0.710_929_6]),
        (-3100.0, [0.0, 0.0, 0.0]),
    ] {
        let got = preset.colour_at(hu);
        for c in 0..3 {
            assert_close(&format!("colour {c} at {hu} HU"), got[c], want[c], 2e-6);
        }
    }
    assert!(preset.shading.enabled);
    assert_close("ambient", preset.shading.ambient, 0.1, 1e-7);
    assert_close("diffuse", preset.shading.diffuse, 0.9, 1e-7);
    assert_close("specular", preset.shading.specular, 0.2, 1e-7);
    assert_close("specular power", preset.shading.specular_power, 10.0, 1e-7);

    // Slicer's own definition, evaluated on the property as read (double precision).
    let file = SlicerFile::read(&data("presets.xml")).expect("presets.xml reads");
    let bone = file.property(Some("CT-Bone")).expect("CT-Bone");
    for (hu, want) in expected {
        assert!(
            (bone.scalar_opacity_per_mm_at(hu) - want).abs() < 1e-6,
            "{hu}"
        );
    }
    assert_eq!(bone.effective_range(), [-16.4458, 641.385]);
    assert!(
        bone.not_reproduced().is_empty(),
        "CT-Bone's gradient opacity is constant 1 and its interpolation linear: {:?}",
        bone.not_reproduced()
    );
    assert!(bone.notes.is_empty(), "{:?}", bone.notes);
}

#[test]
fn every_quirk_is_read_as_slicer_reads_it() {
    let file = SlicerFile::read(&data("presets.xml")).expect("presets.xml reads");
    assert_eq!(file.names(), ["CT-Bone", "Quirks", "X-Ray-Like", "MR-Like"]);

    // scalarOpacity="12 -1000 0 100 0 200 0 200 0.8 300 0.5 250.0.0 0.7 ": a repeated x (a
    // step at 200), an x lower than the one before (250 after 300, with junk after it) and a
    // trailing space.
    let quirks = file.property(Some("Quirks")).expect("Quirks");
    let xs: Vec<f64> = quirks.scalar_opacity.points.iter().map(|p| p.x).collect();
    assert_eq!(xs.len(), 6);
    assert!(xs.windows(2).all(|w| w[0] < w[1]), "x increasing: {xs:?}");
    // The shift: the repeated 200 moves just above 200, the 250 just above 300.
    assert!(xs[3] > 200.0 && xs[3] < 200.001, "{xs:?}");
    assert!(xs[5] > 300.0 && xs[5] < 300.001, "{xs:?}");
    assert_eq!(quirks.scalar_opacity.points[5].value, [0.7]);

    let preset = Preset::load(&spec("presets.xml", "Quirks")).expect("Quirks imports");
    let expected = [
        (-5000.0, 0.0), // clamped to the first point
        (150.0, 0.0),   // the step's first point (0 at 200) holds: no ramp towards 0.8
        (200.0, 0.0),
        (200.01, 0.8), // after the step: 0.8 − 0.3 × 0.01 / 100, within 5e-5 of 0.8
        (250.0, 0.65), // halfway from (200, 0.8) to (300, 0.5)
        (300.0, 0.5),
        (400.0, 0.7),  // the shifted point is the last one: 0.7 from just after 300 on
        (3000.0, 0.7), // clamped to the last point
    ];
    for (hu, want) in expected {
        assert_close(
            &format!("opacity at {hu} HU"),
            preset.opacity_at(hu),
            want,
            5e-5,
        );
    }
    // colorTransfer="8 -1000 0 0 0 1000 1 0.5 0.25 " (trailing space): at 0, halfway.
    let c = preset.colour_at(0.0);
    assert_close("red", c[0], 0.5, 1e-6);
    assert_close("green", c[1], 0.25, 1e-6);
    assert_close("blue", c[2], 0.125, 1e-6);
    assert!(!preset.shading.enabled, "shade=\"0\"");

    // effectiveRange="0 -1" is not set: Slicer computes it from the functions and 0.
    assert_eq!(quirks.effective_range_stored, [0.0, -1.0]);
    assert_eq!(quirks.effective_range(), [-1000.0, 1000.0]);
    let notes = quirks.notes.join("\n");
    for expect in ["'250.0.0' read as 250", "shifted to", "is not set"] {
        assert!(notes.contains(expect), "notes lack '{expect}':\n{notes}");
    }
    // What twinray does not reproduce: its gradient opacity and nearest interpolation.
    let lost = quirks.not_reproduced().join("\n");
    assert!(
        lost.contains("gradient opacity") && lost.contains("nearest"),
        "{lost}"
    );
    assert_eq!(quirks.interpolation, Interpolation::Nearest);

    // effectiveRange="-250.0.0 1550.0": Slicer's stream reader stops at the second '.' and
    // reads ".0" next, so the range is -250 0 there (and only its editor uses it).
    let xray = file.property(Some("X-Ray-Like")).expect("X-Ray-Like");
    assert_eq!(xray.effective_range_stored, [-250.0, 0.0]);
    let notes = xray.notes.join("\n");
    assert!(notes.contains("reads as -250 0"), "{notes}");
    // "8 … 3071 0.05 9 9": numbers beyond the 8 announced are ignored.
    assert_eq!(xray.scalar_opacity.points.len(), 4);
    assert!(
        notes.contains("2 number(s) after the 8 announced"),
        "{notes}"
    );
    assert!((xray.scalar_opacity_per_mm_at(650.0) - 0.025).abs() < 1e-12);

    // Names match ignoring case when only one does.
    assert_eq!(
        file.property(Some("ct-bone")).expect("ct-bone").name,
        "CT-Bone"
    );
}

#[test]
fn vp_json_and_legacy_vp_files_import_as_slicer_reads_them() {
    let path = data("Bone-Json.vp.json");
    let file = SlicerFile::read(&path).expect("vp.json reads");
    assert_eq!(file.names(), ["Bone-Json"]);
    let property = file.property(None).expect("the only preset");
    assert_eq!(property.scalar_opacity_unit_mm, 2.0);
    assert_eq!(property.effective_range(), [100.0, 1200.0]);
    // Points are sorted by x first, keeping the order of the two at 300 (0 then 0.6: a step).
    let xs: Vec<f64> = property.scalar_opacity.points.iter().map(|p| p.x).collect();
    assert_eq!(xs[..2], [100.0, 300.0]);
    assert!(xs[2] > 300.0 && xs[2] < 300.001 && xs[3] == 700.0, "{xs:?}");

    let preset = Preset::load(path.to_str().expect("utf-8")).expect("imports");
    assert_eq!(
        preset.opacity_unit_mm,
        Some(2.0),
        "the file's unit distance is kept"
    );
    // (300+, 0.6) to (700, 0.4); from 700 a step (sharpness 1) at the midpoint, 1100, to 0.8.
    for (hu, want) in [
        (200.0, 0.0),
        (300.0, 0.0),
        (500.0, 0.5),
        (1000.0, 0.4),
        (1099.0, 0.4),
        (1101.0, 0.8),
        (2000.0, 0.8),
    ] {
        assert_close(
            &format!("opacity at {hu}"),
            preset.opacity_at(hu),
            want,
            1e-4,
        );
    }
    // Per 1 mm: 0.5 per 2 mm lets through √0.5 per mm.
    assert!((property.scalar_opacity_per_mm_at(500.0) - (1.0 - 0.5f64.sqrt())).abs() < 1e-4);
    // Colour from (400: 0.9 0.8 0.6) with midpoint 0.25 to (1200: 1 1 0.9): halfway at 600;
    // at 500, an eighth of the way, a quarter of the change.
    let c = preset.colour_at(600.0);
    assert_close("red at 600", c[0], 0.95, 1e-6);
    assert_close("blue at 600", c[2], 0.75, 1e-6);
    let c = preset.colour_at(500.0);
    assert_close("green at 500", c[1], 0.85, 1e-6);
    assert_close("ambient", preset.shading.ambient, 0.15, 1e-7);
    assert_close("specular power", preset.shading.specular_power, 20.0, 1e-7);

    let legacy = Preset::load(data("Legacy.vp").to_str().expect("utf-8")).expect("vp imports");
    assert_eq!(legacy.name, "Legacy");
    assert_close("legacy opacity", legacy.opacity_at(675.0), 0.45, 1e-6);
    assert_close("legacy diffuse", legacy.shading.diffuse, 0.9, 1e-7);
    assert_close("legacy ambient", legacy.shading.ambient, 0.1, 1e-7);
    assert!(legacy.shading.enabled);
    assert_eq!(Format::of(Path::new("x.vp"), ""), Some(Format::Vp));
    assert_eq!(Format::of(Path::new("x.toml"), "<"), None);
    assert_eq!(Format::of(Path::new("x"), " {"), Some(Format::Json));
}

#[test]
fn presets_round_trip_through_twinrays_own_format() {
    let mut presets: Vec<Preset> = ["CT-Bone", "Quirks", "X-Ray-Like", "MR-Like"]
        .iter()
        .map(|n| Preset::load(&spec("presets.xml", n)).expect("imports"))
        .collect();
    for file in ["Bone-Json.vp.json", "Legacy.vp"] {
        presets.push(Preset::load(data(file).to_str().expect("utf-8")).expect("imports"));
    }
    presets.extend(Preset::BUILT_IN_NAMES.map(|n| Preset::load(n).expect("built in")));
    for preset in presets {
        let toml = preset.to_toml();
        let back = Preset::parse(&toml, "round trip").expect("twinray reads what it wrote");
        assert_eq!(back, preset, "{toml}");
        for hu in (-1100..3200).step_by(7) {
            let hu = hu as f32;
            assert_eq!(back.opacity_at(hu), preset.opacity_at(hu));
            assert_eq!(back.colour_at(hu), preset.colour_at(hu));
        }
        // And as a file, the way a user keeps one.
        let path = scratch(&format!("{}.toml", preset.name), &toml);
        let loaded = Preset::load(path.to_str().expect("utf-8")).expect("loads");
        assert_eq!(loaded, preset);
    }
}

#[test]
fn bad_files_give_errors_naming_the_file_and_the_problem() {
    let broken = data("broken.xml");
    let file = SlicerFile::read(&broken).expect("the file as a whole is XML");
    assert_eq!(file.names().len(), 7);
    assert!(
        file.property(Some("Fine")).is_ok(),
        "one bad preset does not hide the others"
    );
    for (name, problem) in [
        ("Count-Too-Big", "announces 10 numbers but has 4"),
        ("Odd-Count", "not 2 per point"),
        ("Not-A-Number", "'bone' is not a number"),
        ("No-Colour", "no colorTransfer attribute"),
        ("Bad-Shade", "shade=\"yes\" is not an integer"),
        ("Empty-Opacity", "scalarOpacity has no points"),
    ] {
        let err = Preset::load(&spec("broken.xml", name)).expect_err(name);
        let text = err.to_string();
        assert!(
            text.contains("broken.xml") && text.contains(name) && text.contains(problem),
            "{name}: {text}"
        );
    }

    let err = Preset::load(&spec("presets.xml", "CT-Banana")).expect_err("no such preset");
    assert!(matches!(err, PresetError::NotInFile { .. }), "{err}");
    assert!(err.to_string().contains("CT-Banana") && err.to_string().contains("CT-Bone, Quirks"));
    let err = Preset::load(data("presets.xml").to_str().expect("utf-8")).expect_err("which one");
    assert!(err.to_string().contains("holds 4 presets"), "{err}");
    let err = Preset::load("/nonexistent/presets.xml:CT-Bone").expect_err("missing");
    assert!(
        err.to_string().contains("/nonexistent/presets.xml"),
        "{err}"
    );

    for (name, text, problem) in [
        (
            "mismatched.xml",
            "<MRML><VolumeProperty name=\"a\"></MRML>",
            "not valid XML",
        ),
        (
            "cut.xml",
            "<MRML><VolumeProperty name=\"a\"",
            "no VolumeProperty element",
        ),
        ("empty.xml", "<MRML></MRML>", "no VolumeProperty element"),
        ("bad.vp.json", "{ \"volumeProperties\": [", "not valid JSON"),
        (
            "other.vp.json",
            "{ \"colours\": [] }",
            "no \"volumeProperties\"",
        ),
        (
            "no-y.vp.json",
            r#"{"volumeProperties":[{"components":[{"scalarOpacity":{"points":[{"x":1}]}}]}]}"#,
            "scalarOpacity.points[0] has no number \"y\"",
        ),
        (
            "bad-midpoint.vp.json",
            r#"{"volumeProperties":[{"components":[{"scalarOpacity":{"points":[{"x":1,"y":0,"midpoint":2}]}}]}]}"#,
            "midpoint is not a number in [0, 1]",
        ),
        (
            "short.vp",
            "1\n1\n",
            "line 7 (scalar opacity) has no points",
        ),
    ] {
        let path = scratch(name, text);
        let err = Preset::load(path.to_str().expect("utf-8")).expect_err(name);
        let message = err.to_string();
        assert!(
            message.contains(name) && message.contains(problem),
            "{name}: {message}"
        );
    }
}

#[test]
fn no_cut_or_garbled_file_panics() {
    let text = std::fs::read_to_string(data("presets.xml")).expect("read");
    let json = std::fs::read_to_string(data("Bone-Json.vp.json")).expect("read");
    let vp = std::fs::read_to_string(data("Legacy.vp")).expect("read");
    for (source, format) in [
        (&text, Format::Xml),
        (&json, Format::Json),
        (&vp, Format::Vp),
    ] {
        for cut in (0..source.len()).step_by(13) {
            let mut garbled = source[..cut].to_owned();
            garbled.push_str(" 9e999 -0x10 nan , ");
            garbled.push_str(&source[cut..]);
            for candidate in [&source[..cut], garbled.as_str()] {
                if let Ok(file) = SlicerFile::parse(candidate, Path::new("x.vp.json"), format) {
                    for name in file.names() {
                        if let Ok(p) = file.property(Some(&name)) {
                            let preset = p.to_preset(Path::new("x"));
                            let _ = preset.opacity_at(100.0);
                            let _ = p.not_reproduced();
                        }
                    }
                }
            }
        }
    }
}
