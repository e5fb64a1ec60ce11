//! Lesson bundles end to end: the demo lesson bundled with its case replays byte-identical
//! frames to the loose lesson + case; one flipped byte in any member is named by `verify`; a
//! truncated or foreign file is a clear error; the case inside carries the lesson's hash and
//! no free text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use twinray_bundle::{verify, Bundle, BundleError};
use twinray_lessons::player::Player;
use twinray_scene::bundle::{make_bundle, open_bundle, BundleRequest};
use twinray_scene::demo::record_demo;
use twinray_scene::lesson::{open_with_case, CaseChoice};
use twinray_scene::{content_hash, Case, FrameRenderer, LearnerView, OrbitView, SceneBuilder};
use twinray_tests::{gpu, gpu_lock};

fn demo_case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| Case::demo().expect("embedded demo case"))
}

fn scratch(name: &str) -> PathBuf {
    twinray_tests::scratch_dir("bundle-test").join(name)
}

/// The demo lesson, recorded once per test binary.
fn demo_lesson() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = scratch("demo.lesson");
        record_demo(demo_case(), &path).expect("record the demo lesson");
        path
    })
}

/// The demo lesson bundled once per test binary (with a small stand-in thumbnail).
fn demo_bundle() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = scratch("demo.twlesson");
        let request = BundleRequest {
            title: Some("Lumbar spine".to_owned()),
            author: "Test Author".to_owned(),
            description: "The scripted demo lesson".to_owned(),
            thumbnail_png: Some(b"\x89PNG stand-in".to_vec()),
            created_unix_s: 1_700_000_000,
            ..BundleRequest::default()
        };
        make_bundle(demo_lesson(), demo_case(), &request, &out).expect("bundle the demo");
        out
    })
}

fn copy_of(src: &Path, name: &str) -> PathBuf {
    let dst = scratch(name);
    let _ = std::fs::remove_file(&dst);
    std::fs::copy(src, &dst).expect("copy");
    dst
}

#[test]
fn the_bundle_holds_the_lessons_own_case_and_manifest() {
    let path = demo_bundle();
    let mut bundle = Bundle::open(path).expect("open");
    let m = bundle.manifest().clone();
    assert_eq!(m.format, twinray_bundle::FORMAT);
    assert_eq!(m.title, "Lumbar spine");
    assert_eq!(m.case_ref, demo_case().case_ref);
    assert!(!m.deidentification.dicom_header_kept);
    for name in [
        "lesson.lesson",
        "case/ct.nii.gz",
        "case/labels.nii.gz",
        "case/labels.tsv",
        "case/palette.tsv",
        "presets/ct-bone.toml",
        "thumbnail.png",
    ] {
        assert!(m.member(name).is_some(), "{name} missing: {:?}", m.members);
    }
    // The lesson goes in as it is.
    let lesson = bundle.read("lesson.lesson").expect("lesson");
    assert_eq!(lesson, std::fs::read(demo_lesson()).expect("loose lesson"));
    // The case read back from the bundle's bytes has the lesson's hash.
    let ct = twinray_io::read_ct_bytes(
        &bundle.read("case/ct.nii.gz").expect("ct"),
        Path::new("ct.nii.gz"),
    )
    .expect("ct reads");
    let labels = twinray_io::read_labels_bytes(
        &bundle.read("case/labels.nii.gz").expect("labels"),
        Path::new("labels.nii.gz"),
    )
    .expect("labels read");
    assert_eq!(content_hash(&ct, Some(&labels)), m.case_ref);
    // No free text in the NIfTI headers.
    for member in ["case/ct.nii.gz", "case/labels.nii.gz"] {
        let fields =
            twinray_bundle::nifti_text_fields(&bundle.read(member).expect("member"), 1 << 32)
                .expect("NIfTI");
        assert_eq!(
            fields,
            twinray_bundle::NiftiTextFields::default(),
            "{member}"
        );
    }
    let opened = open_bundle(path).expect("open as a lesson");
    assert_eq!(opened.case.case_ref, demo_case().case_ref);
    assert_eq!(opened.label_names.get(29), Some("vertebrae_L3"));
}

#[test]
fn a_bundle_replays_byte_identical_frames_to_the_loose_lesson_and_case() {
    let _gpu = gpu_lock();
    let size = [96, 96];
    let view = LearnerView::Orbit(OrbitView {
        azimuth_deg: 30.0,
        elevation_deg: 10.0,
        ..OrbitView::default()
    });
    let render = |mut player: Player, case: &Case, t_s: f64| {
        let mut builder = SceneBuilder::for_case(case);
        let mut renderer =
            FrameRenderer::new(gpu(), &case.ct, case.labels.as_ref(), &case.intensity)
                .expect("renderer");
        let state = player.state_at((t_s * 1e9) as i64);
        let frame = builder.frame(&state, &view, size);
        renderer.render(&frame, size).expect("render").0.pixels
    };
    let choice = CaseChoice {
        ct: None,
        labels: None,
        force: false,
        progress: None,
    };
    for t in [5.0, 22.0] {
        let (player, case, _) = open_with_case(demo_lesson(), choice).expect("loose");
        let loose = render(player, &case, t);
        let (player, case, warnings) = open_with_case(demo_bundle(), choice).expect("bundle");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(case.origin.contains("demo.twlesson"), "{}", case.origin);
        let bundled = render(player, &case, t);
        assert!(loose == bundled, "frames at {t} s differ");
    }
}

#[test]
fn one_flipped_byte_in_any_member_is_named_by_verify() {
    let clean = verify(demo_bundle()).expect("verify");
    assert!(clean.is_clean(), "{:?}", clean.problems);
    let bytes = std::fs::read(demo_bundle()).expect("bundle bytes");
    let manifest = Bundle::open(demo_bundle())
        .expect("open")
        .manifest()
        .clone();
    // Each member's bytes: find them by content (stored members are verbatim in the file).
    let mut bundle = Bundle::open(demo_bundle()).expect("open");
    let mut names: Vec<String> = manifest.members.iter().map(|m| m.name.clone()).collect();
    names.push("manifest.json".to_owned());
    for name in names {
        let content = if name == "manifest.json" {
            serde_like_manifest(&bytes)
        } else {
            bundle.read(&name).expect("member")
        };
        let at = find(&bytes, &content).unwrap_or_else(|| panic!("{name} not stored verbatim"));
        let mut damaged = bytes.clone();
        damaged[at + content.len() / 2] ^= 0x40;
        let path = scratch(&format!("flipped-{}.twlesson", name.replace('/', "_")));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &damaged).expect("write");
        let report = verify(&path).expect("verify the damaged copy");
        let named: Vec<&str> = report.problems.iter().map(|p| p.member.as_str()).collect();
        assert_eq!(named, vec![name.as_str()], "{:?}", report.problems);
    }
}

/// The manifest's bytes: from the first `{` after its name to the matching end.
fn serde_like_manifest(file: &[u8]) -> Vec<u8> {
    let start = find(file, b"manifest.json").expect("name") + "manifest.json".len();
    let open = start + file[start..].iter().position(|&b| b == b'{').expect("{");
    let close = open + find(&file[open..], b"\n}").expect("}") + 2;
    file[open..close].to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_truncated_or_foreign_file_is_a_clear_error_naming_it() {
    let bytes = std::fs::read(demo_bundle()).expect("bundle bytes");
    for cut in [bytes.len() - 10, bytes.len() / 2, 100, 0] {
        let path = scratch(&format!("truncated-{cut}.twlesson"));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let e = Bundle::open(&path).expect_err("truncated");
        let text = e.to_string();
        assert!(matches!(e, BundleError::NotABundle { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("truncated"), "{text}");
        assert!(open_with_case(
            &path,
            CaseChoice {
                ct: None,
                labels: None,
                force: false,
                progress: None
            }
        )
        .is_err());
    }
    let lesson_as_bundle = copy_of(demo_lesson(), "not-a-zip.twlesson");
    let e = Bundle::open(&lesson_as_bundle).expect_err("a lesson is not a bundle");
    assert!(e.to_string().contains("not-a-zip.twlesson"), "{e}");
}

#[test]
fn a_bundle_never_overwrites_and_refuses_another_case() {
    let e = make_bundle(
        demo_lesson(),
        demo_case(),
        &BundleRequest::default(),
        demo_bundle(),
    )
    .expect_err("exists");
    assert!(e.to_string().contains("already exists"), "{e}");
    // The demo CT without its labels is another case than the lesson's.
    let other = Case::new(demo_case().ct.clone(), None, "ct only");
    let out = scratch("other-case.twlesson");
    let e = make_bundle(demo_lesson(), &other, &BundleRequest::default(), &out)
        .expect_err("another case");
    assert!(
        e.to_string()
            .contains("a bundle holds the lesson's own case"),
        "{e}"
    );
    assert!(!out.exists());
}
