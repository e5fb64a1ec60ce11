//! What a bundle contributes to the index: its manifest's words, chapter titles and notes with
//! their times, and the anatomy touched: every stroke point drawn on the patient, looked up in
//! the bundle's label map, first time per label and chapter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use twinray_bundle::Manifest;
use twinray_io::LabelVolume;
use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::event::{Payload, Space};
use twinray_lessons::reader::LessonReader;

use crate::{LessonRow, LibraryError};

/// What an index entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The title.
    Title,
    /// The author.
    Author,
    /// The description.
    Description,
    /// A chapter title (at the chapter's start).
    Chapter,
    /// A note.
    Note,
    /// A label the instructor drew on (at the first point on it in that chapter).
    Anatomy,
}

impl EntryKind {
    /// The name stored in the index.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Author => "author",
            Self::Description => "description",
            Self::Chapter => "chapter",
            Self::Note => "note",
            Self::Anatomy => "anatomy",
        }
    }

    /// From the stored name (unknown names read as notes).
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "title" => Self::Title,
            "author" => Self::Author,
            "description" => Self::Description,
            "chapter" => Self::Chapter,
            "anatomy" => Self::Anatomy,
            _ => Self::Note,
        }
    }
}

/// One searchable entry of a lesson.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Seconds from the lesson's start.
    pub time_s: f64,
    /// The chapter then (empty before the first).
    pub chapter: String,
    /// The text searched.
    pub text: String,
}

fn label_names(text: &str) -> BTreeMap<u16, String> {
    text.lines()
        .filter_map(|l| {
            let (id, name) = l.split_once('\t')?;
            Some((id.trim().parse().ok()?, name.trim().to_owned()))
        })
        .collect()
}

/// The entries of a lesson (from its events) given its label map and names.
#[must_use]
pub fn lesson_entries(
    reader: &mut LessonReader,
    labels: Option<&LabelVolume>,
    names: &BTreeMap<u16, String>,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut chapter = String::new();
    let mut spaces: BTreeMap<u32, Space> = BTreeMap::new();
    let mut touched: BTreeSet<(u16, String)> = BTreeSet::new();
    let secs = |t: i64| t as f64 * 1e-9;
    for i in 0..reader.index().len() {
        let Ok(chunk) = reader.read_chunk(i, DecodeParts::EVENTS) else {
            continue;
        };
        if let Some(k) = &chunk.keyframe {
            for (id, s) in &k.strokes {
                spaces.insert(*id, s.begin.space);
            }
        }
        for e in chunk.events {
            match e.payload {
                Payload::Chapter(c) => {
                    chapter = c.title.clone();
                    out.push(Entry {
                        kind: EntryKind::Chapter,
                        time_s: secs(e.time_ns),
                        chapter: chapter.clone(),
                        text: c.title,
                    });
                }
                Payload::Note(n) => out.push(Entry {
                    kind: EntryKind::Note,
                    time_s: secs(e.time_ns),
                    chapter: chapter.clone(),
                    text: n.text,
                }),
                Payload::StrokeBegin(b) => {
                    spaces.insert(b.stroke_id, b.space);
                }
                Payload::StrokePoint(p) => {
                    let (Some(labels), Some(Space::Patient)) = (labels, spaces.get(&p.stroke_id))
                    else {
                        continue;
                    };
                    let Some(id) = labels.label_near(p.position_mm.as_dvec3(), 2) else {
                        continue;
                    };
                    if touched.insert((id, chapter.clone())) {
                        let name = names
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| format!("label {id}"));
                        out.push(Entry {
                            kind: EntryKind::Anatomy,
                            time_s: secs(e.time_ns),
                            chapter: chapter.clone(),
                            text: name,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The members [`read_lesson`] asks for.
pub(crate) const INDEXED_MEMBERS: [&str; 3] = [
    twinray_bundle::LESSON,
    twinray_bundle::LABELS,
    twinray_bundle::LABEL_NAMES,
];

/// Gives a member's checked bytes by name, or `None` when the manifest does not list it.
pub(crate) type MemberReader<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, LibraryError> + 'a;

/// A lesson's row and index entries from its manifest and members: `member(name)` gives a
/// member's checked bytes, or `None` when the manifest does not list it. `source` names the
/// bundle in errors.
pub(crate) fn read_lesson(
    id: &str,
    source: &Path,
    manifest: &Manifest,
    member: &mut MemberReader<'_>,
) -> Result<(LessonRow, Vec<Entry>), LibraryError> {
    let lesson_err = |reason: String| LibraryError::Lesson {
        path: source.to_path_buf(),
        reason,
    };
    let lesson = member(twinray_bundle::LESSON)?
        .ok_or_else(|| lesson_err("the manifest lists no lesson".to_owned()))?;
    let mut reader = LessonReader::from_bytes(source.join(twinray_bundle::LESSON), lesson)
        .map_err(|e| lesson_err(e.to_string()))?;
    let labels = match member(twinray_bundle::LABELS)? {
        Some(bytes) => Some(
            twinray_io::read_labels_bytes(&bytes, &source.join(twinray_bundle::LABELS))
                .map_err(|e| lesson_err(e.to_string()))?,
        ),
        None => None,
    };
    let names = member(twinray_bundle::LABEL_NAMES)?
        .map(|b| label_names(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let m = manifest;
    let duration_s = reader
        .time_range_ns()
        .map_or(0.0, |(a, b)| (b - a).max(0) as f64 * 1e-9);
    let mut entries = vec![
        Entry {
            kind: EntryKind::Title,
            time_s: 0.0,
            chapter: String::new(),
            text: m.title.clone(),
        },
        Entry {
            kind: EntryKind::Author,
            time_s: 0.0,
            chapter: String::new(),
            text: m.author.clone(),
        },
        Entry {
            kind: EntryKind::Description,
            time_s: 0.0,
            chapter: String::new(),
            text: m.description.clone(),
        },
    ];
    entries.retain(|e| !e.text.is_empty());
    entries.extend(lesson_entries(&mut reader, labels.as_ref(), &names));
    Ok((
        LessonRow {
            id: id.to_owned(),
            title: m.title.clone(),
            author: m.author.clone(),
            description: m.description.clone(),
            case_ref: m.case_ref.clone(),
            duration_s,
        },
        entries,
    ))
}
