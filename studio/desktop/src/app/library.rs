//! The lesson library from the studio: "Save to library" after a recording (a de-identified
//! bundle of the lesson, its case and a thumbnail of the view, added to the library), search,
//! and opening a hit at its time.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use twinray_library::{Hit, Library, Location};
use twinray_scene::bundle::{make_bundle, BundleRequest};

use super::case::OpenCase;

/// Results shown for one search.
pub const SEARCH_LIMIT: usize = 20;

/// Bundles `lesson` (taught on `case`) and adds it to the library at `root`. Returns the
/// title it was stored under and the library's id for it.
///
/// # Errors
/// If the bundle cannot be written or the library cannot store it.
pub fn save(
    root: &Location,
    lesson: &Path,
    case: &OpenCase,
    title: &str,
    thumbnail_png: Option<Vec<u8>>,
) -> Result<(String, String)> {
    let scene_case = twinray_scene::Case {
        ct: (*case.ct).clone(),
        intensity: case.intensity,
        labels: case.labels.as_deref().cloned(),
        case_ref: case.case_ref.clone(),
        origin: case.name.clone(),
    };
    let request = BundleRequest {
        title: (!title.trim().is_empty()).then(|| title.trim().to_owned()),
        author: String::new(),
        description: String::new(),
        thumbnail_png,
        label_names: case.label_names.clone(),
        deidentification: twinray_bundle::Deidentification {
            source: "twinray studio".to_owned(),
            ..twinray_bundle::Deidentification::default()
        },
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
    };
    let mut library =
        Library::open_at(root).with_context(|| format!("opening the library at {root}"))?;
    // Written to a private file, then stored by the library (which copies what it keeps) and
    // removed: a crash leaves at most this file, never a half-added lesson.
    let staging = std::env::temp_dir().join(format!(
        ".twinray-studio-save-{}.twlesson",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&staging);
    make_bundle(lesson, &scene_case, &request, &staging)
        .with_context(|| format!("bundling {}", lesson.display()))?;
    let added = library.add(&staging);
    let _ = std::fs::remove_file(&staging);
    let row = added.with_context(|| format!("adding {} to the library", lesson.display()))?;
    Ok((row.title, row.id))
}

/// Searches the library at `root`.
///
/// # Errors
/// If the library cannot be opened or the query is not one it understands.
pub fn search(root: &Location, query: &str) -> Result<Vec<Hit>> {
    let mut library =
        Library::open_at(root).with_context(|| format!("opening the library at {root}"))?;
    library
        .search(query, SEARCH_LIMIT)
        .with_context(|| format!("searching the library for '{query}'"))
}

/// The thumbnail of a library lesson as `(width, height, RGBA8)`, if it has one.
#[must_use]
pub fn thumbnail(root: &Location, id: &str) -> Option<(usize, usize, Vec<u8>)> {
    let png = Library::open_at(root)
        .ok()?
        .member(id, twinray_bundle::THUMBNAIL)
        .ok()??;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let (w, h) = (info.width as usize, info.height as usize);
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf[..w * h * 4].to_vec(),
        png::ColorType::Rgb => buf[..w * h * 3]
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        _ => return None,
    };
    Some((w, h, rgba))
}

/// The lesson of a library lesson, copied where the studio opens lessons from, when it was
/// taught on the open case.
///
/// # Errors
/// If it cannot be read, or it was taught on another case (the message says how to open it
/// there).
pub fn lesson_for_open_case(
    root: &Location,
    id: &str,
    case: &OpenCase,
    at_s: f64,
) -> Result<PathBuf> {
    let mut library =
        Library::open_at(root).with_context(|| format!("opening the library at {root}"))?;
    let row = library.get(id)?;
    if !case.is_named_by(&row.case_ref) {
        let bundle = library.bundle_file(&row.id)?;
        bail!(
            "this lesson was taught on another case ({}); open it with its own case: `twinray studio {} --at {at_s:.1}`",
            row.case_ref,
            bundle.display()
        );
    }
    let bytes = library
        .member(&row.id, twinray_bundle::LESSON)?
        .with_context(|| format!("library lesson {id} has no lesson member"))?;
    let dir = std::env::temp_dir().join(format!("twinray-studio-library-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.lesson", &row.id[..12]));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
