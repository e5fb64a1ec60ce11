//! The lesson library: the demo lesson and a second one added, found by title, chapter and the
//! anatomy drawn on (opening the hit at its time shows that chapter and the stroke); the index
//! rebuilt from the bundles gives the same results; two writers at once corrupt nothing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use twinray_lessons::event::{Chapter, Event, Note, Payload};
use twinray_lessons::format::LessonHeader;
use twinray_lessons::recorder::{Recorder, RecorderOptions};
use twinray_library::{EntryKind, Library};
use twinray_scene::bundle::{make_bundle, open_bundle, BundleRequest};
use twinray_scene::demo::record_demo;
use twinray_scene::Case;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twinray-library-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

fn demo_case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| Case::demo().expect("embedded demo case"))
}

fn bundle(lesson: &Path, title: &str, description: &str, out: &Path) {
    let request = BundleRequest {
        title: Some(title.to_owned()),
        author: "Test Author".to_owned(),
        description: description.to_owned(),
        ..BundleRequest::default()
    };
    make_bundle(lesson, demo_case(), &request, out).expect("bundle");
}

/// The demo bundle and a second, short lesson on the same case.
fn bundles() -> &'static (PathBuf, PathBuf) {
    static B: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    B.get_or_init(|| {
        let dir = scratch();
        let demo = dir.join("demo.lesson");
        record_demo(demo_case(), &demo).expect("demo lesson");
        let demo_bundle = dir.join("demo.twlesson");
        bundle(
            &demo,
            "Lumbar spine",
            "The scripted demo lesson",
            &demo_bundle,
        );

        let second = dir.join("second.lesson");
        let recorder = Recorder::create(
            &second,
            &LessonHeader::new(demo_case().case_ref.clone(), 0),
            RecorderOptions::default(),
        )
        .expect("recorder");
        for (t, payload) in [
            (
                0,
                Payload::Chapter(Chapter {
                    title: "Psoas and the kidneys".to_owned(),
                }),
            ),
            (
                3_000_000_000,
                Payload::Note(Note {
                    text: "retroperitoneal relations".to_owned(),
                }),
            ),
        ] {
            recorder
                .record_blocking(Event::new(t, payload))
                .expect("event");
        }
        recorder.finish().expect("finish");
        let second_bundle = dir.join("second.twlesson");
        bundle(
            &second,
            "Abdominal wall",
            "Muscles behind the abdomen",
            &second_bundle,
        );
        (demo_bundle, second_bundle)
    })
}

fn fresh_library(name: &str) -> Library {
    let root = scratch().join(name);
    let _ = std::fs::remove_dir_all(&root);
    let mut lib = Library::open(&root).expect("library");
    let (a, b) = bundles();
    lib.add(a).expect("add the demo");
    lib.add(b).expect("add the second");
    lib.add(a).expect("adding again changes nothing");
    lib
}

fn summary(lib: &Library, q: &str) -> Vec<(String, String, String)> {
    lib.search(q, 10)
        .expect("search")
        .into_iter()
        .map(|h| {
            (
                h.lesson.title,
                h.kind.name().to_owned(),
                format!("{:.3}", h.time_s),
            )
        })
        .collect()
}

#[test]
fn lessons_are_found_by_title_chapter_note_and_anatomy_and_open_at_the_hit() {
    let lib = fresh_library("search");
    assert_eq!(lib.list().expect("list").len(), 2);
    assert_eq!(
        std::fs::read_dir(lib.root().join("bundles"))
            .expect("store")
            .count(),
        2,
        "each bundle stored once"
    );

    let by_title = lib.search("abdominal", 10).expect("search");
    assert_eq!(by_title.len(), 1);
    assert_eq!(by_title[0].lesson.title, "Abdominal wall");

    let by_chapter = lib.search("spinous processes", 10).expect("search");
    assert_eq!(by_chapter[0].lesson.title, "Lumbar spine");
    assert_eq!(by_chapter[0].kind, EntryKind::Chapter);

    let by_note = lib.search("retroperitoneal", 10).expect("search");
    assert_eq!(by_note[0].lesson.title, "Abdominal wall");
    assert!((by_note[0].time_s - 3.0).abs() < 1e-9);

    for q in ["L3", "vertebrae_L3", "vertebrae L3"] {
        let hits = lib.search(q, 10).expect("search");
        assert_eq!(hits.len(), 1, "{q}: {hits:?}");
        let hit = &hits[0];
        assert_eq!(hit.kind, EntryKind::Anatomy, "{q}");
        assert_eq!(hit.text, "vertebrae_L3");
        assert_eq!(hit.chapter, "Spinous processes");
        // Open the hit at its time: the chapter is the one named, and a stroke is being
        // drawn whose newest point lies on L3.
        let mut opened = open_bundle(&hit.lesson.file).expect("open the hit");
        let state = opened.player.state_at((hit.time_s * 1e9).round() as i64);
        assert_eq!(state.chapter.as_deref(), Some("Spinous processes"));
        let labels = opened.case.labels.as_ref().expect("labels");
        let l3 = opened.label_names.id_of("vertebrae_L3").expect("L3 id");
        let on_l3 = state.strokes.iter().flat_map(|s| &s.points).any(|p| {
            let v = labels
                .geometry()
                .voxel_from_patient()
                .transform_point3(p.position_mm.as_dvec3());
            let near = |d: [i64; 3]| {
                let ijk = [
                    v.x.round() as i64 + d[0],
                    v.y.round() as i64 + d[1],
                    v.z.round() as i64 + d[2],
                ];
                ijk.iter().all(|&c| c >= 0)
                    && labels.get(ijk[0] as usize, ijk[1] as usize, ijk[2] as usize) == Some(&l3)
            };
            (-2..=2).any(|i| (-2..=2).any(|j| (-2..=2).any(|k| near([i, j, k]))))
        });
        assert!(on_l3, "no stroke point on L3 at {} s", hit.time_s);
    }
    assert!(lib.search("L6", 10).expect("search").is_empty());
}

#[test]
fn the_index_is_a_cache_reindex_gives_the_same_results() {
    let lib = fresh_library("reindex");
    let queries = [
        "L3",
        "L5",
        "lumbar",
        "psoas",
        "spine",
        "Test Author",
        "summary",
    ];
    let before: Vec<_> = queries.iter().map(|q| summary(&lib, q)).collect();
    let root = lib.root().to_path_buf();
    drop(lib);
    for name in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(root.join(name));
    }
    let mut lib = Library::open(&root).expect("reopen");
    assert!(lib.list().expect("list").is_empty());
    let (count, skipped) = lib.reindex().expect("reindex");
    assert_eq!((count, skipped.len()), (2, 0));
    let after: Vec<_> = queries.iter().map(|q| summary(&lib, q)).collect();
    assert_eq!(before, after);
    assert!(lib.verify().expect("verify").is_empty());
}

#[test]
fn two_writers_adding_at_once_corrupt_nothing() {
    let root = scratch().join("concurrent");
    let _ = std::fs::remove_dir_all(&root);
    let (a, b) = bundles();
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|first| {
            let root = root.clone();
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut lib = Library::open(&root).expect("library");
                for i in 0..6 {
                    let which = if i % 2 == 0 {
                        &first
                    } else if first == a {
                        &b
                    } else {
                        &a
                    };
                    lib.add(which).expect("add while another adds");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let lib = Library::open(&root).expect("library");
    assert_eq!(lib.list().expect("list").len(), 2);
    assert!(lib.verify().expect("verify").is_empty());
    assert_eq!(lib.search("L3", 10).expect("search").len(), 1);
    let integrity: String = rusqlite_integrity(&root);
    assert_eq!(integrity, "ok");
}

fn rusqlite_integrity(root: &Path) -> String {
    let db = rusqlite::Connection::open(root.join("index.sqlite")).expect("db");
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity")
}
