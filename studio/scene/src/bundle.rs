//! Lesson bundles (`.twlesson`, `lessons/BUNDLE.md`) as the front ends use them: making one
//! from a lesson and the very case it names, and opening one as a player plus that case.
//!
//! The case goes in as NIfTI written by twinray itself, with every free-text field blanked
//! ([`twinray_bundle::deidentify_nifti`]), and is read back before the bundle is written: its
//! content hash must be the lesson's `case_ref`, so a bundle always replays on its own case.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use twinray_bundle::{Bundle, Deidentification, Description, Manifest};
use twinray_io::{
    ct_nifti_bytes, labels_nifti_bytes, read_ct_bytes, read_labels_bytes, LabelNames,
};
use twinray_lessons::chunk::DecodeParts;
use twinray_lessons::event::{Payload, SceneChange};
use twinray_lessons::player::Player;
use twinray_lessons::reader::LessonReader;

use crate::{Case, SceneError, DEFAULT_PRESET};

/// The built-in presets' text, by name, as the transfer-functions crate ships them.
const PRESET_TEXT: [(&str, &str); 9] = [
    (
        "ct-bone",
        include_str!("../../../transfer-functions/presets/ct-bone.toml"),
    ),
    (
        "ct-soft-tissue",
        include_str!("../../../transfer-functions/presets/ct-soft-tissue.toml"),
    ),
    (
        "ct-lung",
        include_str!("../../../transfer-functions/presets/ct-lung.toml"),
    ),
    (
        "ct-vessels",
        include_str!("../../../transfer-functions/presets/ct-vessels.toml"),
    ),
    (
        "mip",
        include_str!("../../../transfer-functions/presets/mip.toml"),
    ),
    (
        "mr-default",
        include_str!("../../../transfer-functions/presets/mr-default.toml"),
    ),
    (
        "mr-angio",
        include_str!("../../../transfer-functions/presets/mr-angio.toml"),
    ),
    (
        "mr-mip",
        include_str!("../../../transfer-functions/presets/mr-mip.toml"),
    ),
    (
        "mr-t2-brain",
        include_str!("../../../transfer-functions/presets/mr-t2-brain.toml"),
    ),
];

/// The label palette (colours) shipped with the transfer functions.
const PALETTE_TSV: &str = include_str!("../../../transfer-functions/palettes/totalsegmentator.tsv");

/// The profile name recorded in every manifest this build writes.
pub const DEID_PROFILE: &str = "twinray-volume-only-v1";

/// The largest uncompressed NIfTI accepted from a bundle (4 GiB).
const MAX_NIFTI_BYTES: u64 = 4 << 30;

/// What goes into a bundle besides the lesson and its case.
#[derive(Debug, Clone, Default)]
pub struct BundleRequest {
    /// Title (default: the lesson's own title, else its file name).
    pub title: Option<String>,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
    /// The thumbnail PNG (the front end renders it).
    pub thumbnail_png: Option<Vec<u8>>,
    /// Label names for `case/labels.tsv` (default: TotalSegmentator's).
    pub label_names: Option<LabelNames>,
    /// What the front end did before (the DICOM source, BurnedInAnnotation); the steps here
    /// are appended to.
    pub deidentification: Deidentification,
    /// Creation time, Unix seconds.
    pub created_unix_s: i64,
}

fn content_err(path: &Path, reason: impl Into<String>) -> SceneError {
    SceneError::BundleContent {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The presets a lesson chooses by name (and the default it starts with), in order.
///
/// # Errors
/// If the lesson cannot be read.
pub fn presets_used(lesson: &Path, bytes: Vec<u8>) -> Result<BTreeSet<String>, SceneError> {
    let mut reader =
        LessonReader::from_bytes(lesson, bytes).map_err(|source| SceneError::OpenLesson {
            path: lesson.to_path_buf(),
            source: Box::new(source),
        })?;
    let mut names = BTreeSet::from([DEFAULT_PRESET.to_owned()]);
    for i in 0..reader.index().len() {
        let Ok(chunk) = reader.read_chunk(i, DecodeParts::EVENTS) else {
            continue;
        };
        if let Some(k) = &chunk.keyframe {
            names.extend(k.scene.preset.clone());
        }
        for e in chunk.events {
            if let Payload::Scene(SceneChange::Preset { name }) = e.payload {
                names.insert(name);
            }
        }
    }
    Ok(names)
}

/// `case` as de-identified gzip NIfTI (CT, and labels when present), in memory.
fn case_members(case: &Case, lesson: &Path) -> Result<(Vec<u8>, Option<Vec<u8>>), SceneError> {
    let member = |bytes: Result<Vec<u8>, twinray_io::NiftiError>, what: &str| {
        let bytes = bytes.map_err(|e| content_err(lesson, e.to_string()))?;
        twinray_bundle::deidentify_nifti(&bytes, MAX_NIFTI_BYTES)
            .map(|(bytes, _)| bytes)
            .map_err(|e| content_err(lesson, format!("the {what} as NIfTI: {e}")))
    };
    let ct = member(ct_nifti_bytes(&case.ct, Path::new("ct.nii")), "CT")?;
    let labels = match &case.labels {
        Some(labels) => Some(member(
            labels_nifti_bytes(labels, Path::new("labels.nii")),
            "labels",
        )?),
        None => None,
    };
    Ok((ct, labels))
}

/// The BurnedInAnnotation record for a CT given as DICOM (a folder or a file): "NO" or
/// "absent" when no image says YES; a series where any image says YES is refused unless
/// `allow` (then "YES (allowed by --allow-burned-in)"). A NIfTI CT gives "not DICOM".
///
/// # Errors
/// If a file cannot be read, or an image is marked YES and `allow` is not set.
pub fn burned_in_status(ct: &Path, allow: bool) -> Result<String, SceneError> {
    if twinray_io::is_nifti(ct) {
        return Ok("not DICOM".to_owned());
    }
    let files: Vec<PathBuf> = if ct.is_dir() {
        let scan = twinray_io::scan(ct).map_err(|e| content_err(ct, e.to_string()))?;
        let mut files: Vec<PathBuf> = scan
            .series
            .iter()
            .flat_map(|s| s.slices.iter().map(|h| h.path.clone()))
            .collect();
        files.sort();
        files.dedup();
        files
    } else {
        vec![ct.to_path_buf()]
    };
    let mut seen_no = false;
    for file in &files {
        match twinray_io::dicom::burned_in_annotation(file)
            .map_err(|e| content_err(file, e.to_string()))?
            .as_deref()
        {
            Some("YES") if !allow => {
                return Err(content_err(
                    file,
                    "is marked BurnedInAnnotation=YES: its pixels carry identifying text that no header clean-up removes; bundle it only after checking the images (--allow-burned-in)",
                ));
            }
            Some("YES") => return Ok("YES (allowed by --allow-burned-in)".to_owned()),
            Some(_) => seen_no = true,
            None => {}
        }
    }
    Ok(if seen_no { "NO" } else { "absent" }.to_owned())
}

/// The case held in NIfTI bytes, as a bundle gives it back.
fn case_from_members(origin: &Path, ct: &[u8], labels: Option<&[u8]>) -> Result<Case, SceneError> {
    let ct = read_ct_bytes(ct, &origin.join(twinray_bundle::CT))
        .map_err(|e| content_err(origin, e.to_string()))?;
    let labels = labels
        .map(|b| read_labels_bytes(b, &origin.join(twinray_bundle::LABELS)))
        .transpose()
        .map_err(|e| content_err(origin, e.to_string()))?;
    Ok(Case::new(
        ct,
        labels,
        format!("the case inside {}", origin.display()),
    ))
}

/// Writes the bundle `out` (never over an existing file): the lesson at `lesson` as it is, the
/// case it names (`case`, which must be that case), label names and palette, the presets it
/// uses, the thumbnail, and the manifest.
///
/// # Errors
/// If the lesson does not read, `case` is not the lesson's case (also after the round trip
/// through NIfTI), or writing fails.
pub fn make_bundle(
    lesson: &Path,
    case: &Case,
    request: &BundleRequest,
    out: &Path,
) -> Result<Manifest, SceneError> {
    if out.exists() {
        return Err(twinray_bundle::BundleError::Exists {
            path: out.to_path_buf(),
        }
        .into());
    }
    let lesson_bytes = std::fs::read(lesson)
        .map_err(|e| content_err(lesson, format!("cannot read the lesson: {e}")))?;
    let reader = LessonReader::from_bytes(lesson, lesson_bytes.clone()).map_err(|source| {
        SceneError::OpenLesson {
            path: lesson.to_path_buf(),
            source: Box::new(source),
        }
    })?;
    let header = reader.header().lesson.clone();
    drop(reader);
    if !case.is_named_by(&header.case_ref) {
        return Err(content_err(
            lesson,
            format!(
                "was recorded on case {}, but the case given ({}) is {}; a bundle holds the lesson's own case",
                header.case_ref, case.origin, case.case_ref
            ),
        ));
    }
    let (ct, labels) = case_members(case, lesson)?;
    let back = case_from_members(lesson, &ct, labels.as_deref())?;
    if !back.is_named_by(&header.case_ref) {
        return Err(content_err(
            lesson,
            format!(
                "the case written as NIfTI reads back as {}, not the lesson's {} (values or placement beyond NIfTI's precision); it cannot be bundled",
                back.case_ref, header.case_ref
            ),
        ));
    }

    let mut members: Vec<(String, Vec<u8>)> = vec![
        (twinray_bundle::LESSON.to_owned(), lesson_bytes.clone()),
        (twinray_bundle::CT.to_owned(), ct),
    ];
    if let Some(labels) = labels {
        members.push((twinray_bundle::LABELS.to_owned(), labels));
        let names = request
            .label_names
            .clone()
            .unwrap_or_else(|| LabelNames::totalsegmentator_for(case.intensity.modality));
        let mut tsv = String::from("id\tname\n");
        for (id, name) in names.iter() {
            tsv.push_str(&format!("{id}\t{name}\n"));
        }
        members.push((twinray_bundle::LABEL_NAMES.to_owned(), tsv.into_bytes()));
        members.push((
            "case/palette.tsv".to_owned(),
            PALETTE_TSV.as_bytes().to_vec(),
        ));
    }
    let mut presets = presets_used(lesson, lesson_bytes)?;
    // The default a lesson on this image starts from (mr-default on an MR).
    presets.insert(
        twinray_transfer_functions::Preset::default_for(case.intensity.modality).to_owned(),
    );
    for name in presets {
        if let Some((_, text)) = PRESET_TEXT.iter().find(|(n, _)| *n == name) {
            members.push((format!("presets/{name}.toml"), text.as_bytes().to_vec()));
        }
    }
    if let Some(png) = &request.thumbnail_png {
        members.push((twinray_bundle::THUMBNAIL.to_owned(), png.clone()));
    }
    let mut deid = request.deidentification.clone();
    deid.profile = DEID_PROFILE.to_owned();
    deid.dicom_header_kept = false;
    if deid.source == "dicom" {
        deid.steps.push(
            "the DICOM series was read for voxels and geometry only; every header attribute (patient, dates, times, UIDs, institution, staff, device, private tags, sequences) was discarded".to_owned(),
        );
    }
    deid.steps.push(
        "case stored as voxels and geometry only (NIfTI-1 written by twinray); no DICOM header or file is kept".to_owned(),
    );
    deid.steps.push(
        "NIfTI free-text fields (data_type, db_name, descrip, aux_file, intent_name) blanked and header extensions removed".to_owned(),
    );
    deid.steps.push(
        "the lesson names its case by content hash only; bundle member times are 1980-01-01"
            .to_owned(),
    );
    let title = request.title.clone().or(header.title).unwrap_or_else(|| {
        lesson
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    });
    let description = Description {
        title,
        author: request.author.clone(),
        description: request.description.clone(),
        case_ref: header.case_ref,
        deidentification: deid,
        created_unix_s: request.created_unix_s,
    };
    Ok(twinray_bundle::write(out, &description, &members)?)
}

/// An opened bundle: its lesson as a player, the case inside it, and the manifest.
#[derive(Debug)]
pub struct OpenedBundle {
    /// The lesson.
    pub player: Player,
    /// The case inside the bundle, checked to be the lesson's.
    pub case: Case,
    /// The manifest.
    pub manifest: Manifest,
    /// Label names from the bundle (empty when unlabelled).
    pub label_names: LabelNames,
}

/// The lesson inside a bundle, for a player (its path in messages: `BUNDLE/lesson.lesson`).
///
/// # Errors
/// If the bundle or its lesson member cannot be read.
pub fn bundle_lesson(path: &Path) -> Result<(Player, Bundle), SceneError> {
    let mut bundle = Bundle::open(path)?;
    let bytes = bundle.read(twinray_bundle::LESSON)?;
    let name: PathBuf = path.join(twinray_bundle::LESSON);
    let reader =
        LessonReader::from_bytes(&name, bytes).map_err(|source| SceneError::OpenLesson {
            path: name.clone(),
            source: Box::new(source),
        })?;
    Ok((Player::new(reader), bundle))
}

/// Opens a bundle: the lesson, and the case inside it, which must be the one the lesson names.
///
/// # Errors
/// If the bundle is damaged, a member does not read, or the case is not the lesson's.
pub fn open_bundle(path: &Path) -> Result<OpenedBundle, SceneError> {
    let (player, mut bundle) = bundle_lesson(path)?;
    let ct = bundle.read(twinray_bundle::CT)?;
    let labels = if bundle.has(twinray_bundle::LABELS) {
        Some(bundle.read(twinray_bundle::LABELS)?)
    } else {
        None
    };
    let label_names = if bundle.has(twinray_bundle::LABEL_NAMES) {
        let text = bundle.read(twinray_bundle::LABEL_NAMES)?;
        parse_label_names(&String::from_utf8_lossy(&text))
    } else {
        LabelNames::default()
    };
    let case = case_from_members(path, &ct, labels.as_deref())?;
    let case_ref = player.reader().header().lesson.case_ref.clone();
    if !case.is_named_by(&case_ref) {
        return Err(content_err(
            path,
            format!(
                "its case is {}, not the lesson's {case_ref}; the bundle is inconsistent",
                case.case_ref
            ),
        ));
    }
    Ok(OpenedBundle {
        player,
        case,
        manifest: bundle.manifest().clone(),
        label_names,
    })
}

/// `id<TAB>name` lines (a header line and malformed lines skipped).
#[must_use]
pub fn parse_label_names(text: &str) -> LabelNames {
    let mut pairs = Vec::new();
    for line in text.lines() {
        if let Some((id, name)) = line.split_once('\t') {
            if let Ok(id) = id.trim().parse::<u16>() {
                pairs.push((id, name.trim().to_owned()));
            }
        }
    }
    pairs.into_iter().collect()
}
