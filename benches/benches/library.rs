//! Bundles and the library: seconds to bundle the demo lesson with its case, milliseconds to
//! open the bundle (lesson + case, checked) beside opening the plain lesson, `library search`
//! latency (median, p95) over 10,000 synthetic lessons on SQLite and on PostgreSQL (started
//! here on 127.0.0.1), and de-identifying import of a DICOM series in slices per second.
//! Prints figures; asserts nothing.

use std::time::Instant;

use twinray_library::{Entry, EntryKind, LessonRow, Library, Location};
use twinray_scene::bundle::{make_bundle, open_bundle, BundleRequest};
use twinray_scene::demo::record_demo;
use twinray_scene::lesson::open_lesson;
use twinray_scene::Case;
use twinray_tests::services::{Postgres, S3Server};

const LESSONS: usize = 10_000;
const WORDS: [&str; 16] = [
    "lumbar", "thoracic", "cervical", "sacrum", "pelvis", "kidney", "liver", "spleen", "aorta",
    "psoas", "femur", "rib", "sternum", "heart", "lung", "vertebra",
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The demo case resampled (nearest neighbour) to a full-size 512×512×300 grid over the same
/// extent: the size the issue asks bundles to be measured at.
fn full_size(case: &Case) -> anyhow::Result<Case> {
    let g = case.ct.geometry();
    let new_dims = [512usize, 512, 300];
    let scale: Vec<f64> = (0..3)
        .map(|a| (g.dims[a] as f64 - 1.0) / (new_dims[a] as f64 - 1.0))
        .collect();
    let m = g.patient_from_voxel
        * glam::DMat4::from_scale(glam::DVec3::new(scale[0], scale[1], scale[2]));
    let geometry = twinray_volume::Geometry::new(new_dims, m)?;
    let source_index = |i: usize, j: usize, k: usize| {
        let at = |v: usize, a: usize| ((v as f64 * scale[a]).round() as usize).min(g.dims[a] - 1);
        at(i, 0) + g.dims[0] * (at(j, 1) + g.dims[1] * at(k, 2))
    };
    let mut ct = Vec::with_capacity(512 * 512 * 300);
    let mut labels = Vec::with_capacity(512 * 512 * 300);
    let (src_ct, src_labels) = (
        case.ct.voxels(),
        case.labels.as_ref().map(twinray_volume::Volume::voxels),
    );
    for k in 0..new_dims[2] {
        for j in 0..new_dims[1] {
            for i in 0..new_dims[0] {
                let s = source_index(i, j, k);
                ct.push(src_ct[s]);
                labels.push(src_labels.map_or(0, |l| l[s]));
            }
        }
    }
    Ok(Case::new(
        twinray_volume::Volume::new(geometry, ct)?,
        Some(twinray_volume::Volume::new(geometry, labels)?),
        "the demo case at 512x512x300",
    ))
}

/// Bundle and open a 512×512×300 case: seconds to write, and milliseconds to the first frame
/// from the bundle beside from the plain lesson with its case already in memory.
fn full_size_bundle(dir: &std::path::Path, demo: &Case) -> anyhow::Result<()> {
    let case = full_size(demo)?;
    let lesson = dir.join("full.lesson");
    record_demo(&case, &lesson)?;
    let out = dir.join("full.twlesson");
    let t = Instant::now();
    make_bundle(&lesson, &case, &BundleRequest::default(), &out)?;
    println!(
        "bundle a 512x512x300 case with the demo lesson: {:.2} s, {:.1} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&out)?.len() as f64 / 1e6
    );
    let ctx = twinray_renderer::GpuContext::new(twinray_scene::device::device_preference(None)?)?;
    let size = [512, 512];
    let first_frame =
        |player: &mut twinray_lessons::player::Player, case: &Case| -> anyhow::Result<()> {
            let mut renderer = twinray_scene::FrameRenderer::new(
                ctx.clone(),
                &case.ct,
                case.labels.as_ref(),
                &case.intensity,
            )?;
            let mut builder = twinray_scene::SceneBuilder::for_case(case);
            let state = player.state_at(29_500_000_000);
            let frame = builder.frame(
                &state,
                &twinray_scene::LearnerView::Orbit(Default::default()),
                size,
            );
            std::hint::black_box(renderer.render(&frame, size)?);
            Ok(())
        };
    let t = Instant::now();
    let mut plain = open_lesson(&lesson)?;
    first_frame(&mut plain, &case)?;
    let plain_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut opened = open_bundle(&out)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    first_frame(&mut opened.player, &opened.case)?;
    let bundle_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "first 512x512 frame at 29.5 s: from the plain lesson (case in memory) {plain_ms:.0} ms; from the bundle {bundle_ms:.0} ms ({open_ms:.0} ms of it reading, decompressing and hash-checking the case), so the bundle adds {:.0} ms",
        bundle_ms - plain_ms
    );
    Ok(())
}

/// Fills an index with [`LESSONS`] synthetic lessons and times searches.
fn search_latency(lib: &mut Library, name: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    for i in 0..LESSONS {
        let w = |k: usize| WORDS[(i * 7 + k * 13) % WORDS.len()];
        let row = LessonRow {
            id: format!("{i:064x}"),
            title: format!("{} {} lesson {i}", w(0), w(1)),
            author: format!("Instructor {}", i % 97),
            description: format!("A lesson on the {} and the {}", w(2), w(3)),
            case_ref: format!("sha256:{i:064x}"),
            duration_s: 600.0,
        };
        let mut entries = vec![Entry {
            kind: EntryKind::Title,
            time_s: 0.0,
            chapter: String::new(),
            text: row.title.clone(),
        }];
        for c in 0..6 {
            let chapter = format!("{} chapter {c}", w(c + 4));
            entries.push(Entry {
                kind: EntryKind::Chapter,
                time_s: c as f64 * 60.0,
                chapter: chapter.clone(),
                text: chapter.clone(),
            });
            entries.push(Entry {
                kind: EntryKind::Anatomy,
                time_s: c as f64 * 60.0 + 12.5,
                chapter,
                text: format!("vertebrae_L{}", 1 + (i + c) % 5),
            });
        }
        lib.insert(&row, &entries)?;
    }
    println!(
        "{name}: indexed {LESSONS} synthetic lessons (13 entries each) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let queries = [
        "L3",
        "lumbar",
        "psoas chapter",
        "vertebrae_L5",
        "kidney liver",
        "Instructor 42",
    ];
    let mut times = Vec::new();
    for round in 0..40 {
        for q in queries {
            let t = Instant::now();
            let hits = lib.search(q, 10)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            if round == 0 {
                println!("  '{q}': {} hits shown", hits.len());
            }
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name}: library search over {LESSONS} lessons: median {:.2} ms, p95 {:.2} ms ({} searches)",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times.len()
    );
    Ok(())
}

/// De-identifying import of the TotalSegmentator DICOM series, as `twinray bundle --ct DIR`
/// does it: each file's BurnedInAnnotation checked, the series read to voxels and geometry
/// (no header kept). Slices per second.
fn deidentification_rate() -> anyhow::Result<()> {
    let series = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/ct/totalsegmentator/example_ct_dicom");
    let files: Vec<_> = std::fs::read_dir(&series)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let rounds = 5;
    let t = Instant::now();
    for _ in 0..rounds {
        let _status = twinray_scene::bundle::burned_in_status(&series, false)?;
        let _case = twinray_io::load_case(&series, None, None)?;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "de-identifying import of {} ({} slices): {:.0} slices/s",
        series.display(),
        files.len(),
        (files.len() * rounds) as f64 / s
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("twinray-library-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let case = Case::demo()?;
    let lesson = dir.join("demo.lesson");
    record_demo(&case, &lesson)?;
    let out = dir.join("demo.twlesson");
    let t = Instant::now();
    make_bundle(&lesson, &case, &BundleRequest::default(), &out)?;
    println!(
        "bundle the demo lesson + case ({:?} voxels): {:.2} s, {} bytes",
        case.ct.geometry().dims,
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&out)?.len()
    );
    let t = Instant::now();
    let _plain = open_lesson(&lesson)?;
    let plain_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let _opened = open_bundle(&out)?;
    println!(
        "open: plain lesson {plain_ms:.1} ms; bundle with its case read and hash-checked {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    full_size_bundle(&dir, &case)?;

    let mut lib = Library::open(&dir.join("library"))?;
    search_latency(&mut lib, "SQLite")?;
    drop(lib);
    let pg = Postgres::start()?;
    let s3 = S3Server::start(&["bench"])?;
    s3.export_environment();
    let mut lib = Library::open_at(&Location::Institution {
        index_url: pg.create_database("bench")?,
        objects_url: "s3://bench".to_owned(),
    })?;
    search_latency(&mut lib, "PostgreSQL")?;
    drop(lib);

    deidentification_rate()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
