//! Opening a lesson and deciding which case it is shown on: the one policy the replayer, the
//! desktop studio and VR share.
//!
//! A lesson names its case only by [`crate::content_hash`]. It is shown on the embedded demo
//! case when that is the hash and no case is given; on a given case only when the hashes agree,
//! unless the user forces it (then with a warning naming both hashes).

use std::path::Path;

use twinray_io::SliceProgress;
use twinray_lessons::player::Player;
use twinray_lessons::reader::IndexOrigin;
use twinray_lessons::tools::format_time_ns;

use crate::error::mismatch_message;
use crate::{Case, SceneError};

/// Opens a lesson, with an error that names the file when it is not a lesson at all.
///
/// # Errors
/// If the file cannot be read or its header is not a lesson header.
pub fn open_lesson(path: &Path) -> Result<Player, SceneError> {
    Player::open(path).map_err(|source| SceneError::OpenLesson {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Where the case for a lesson comes from.
#[derive(Clone, Copy)]
pub struct CaseChoice<'a> {
    /// The CT the user gave (NIfTI or DICOM); `None`: the embedded demo case.
    pub ct: Option<&'a Path>,
    /// Its labels.
    pub labels: Option<&'a Path>,
    /// Show the lesson on the given case even when its hash differs.
    pub force: bool,
    /// Progress of a DICOM series' decoding.
    pub progress: Option<SliceProgress<'a>>,
}

impl std::fmt::Debug for CaseChoice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseChoice")
            .field("ct", &self.ct)
            .field("labels", &self.labels)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

/// The case the lesson at `lesson` (whose header names `case_ref`) is shown on, with the
/// warnings to show the user (the loader's, and a forced mismatch).
///
/// # Errors
/// If the lesson's case is not the demo and no case is given, if the given case cannot be
/// loaded, or if its hash differs from the lesson's and `force` is not set.
pub fn case_for(
    lesson: &Path,
    case_ref: &str,
    choice: CaseChoice<'_>,
) -> Result<(Case, Vec<String>), SceneError> {
    let Some(ct) = choice.ct else {
        if Case::names_the_demo(case_ref) {
            return Ok((Case::demo()?, Vec::new()));
        }
        return Err(SceneError::NeedsCase {
            lesson: lesson.to_path_buf(),
            case_ref: case_ref.to_owned(),
        });
    };
    let (case, mut warnings) = Case::load(ct, choice.labels, choice.progress)?;
    if !case.is_named_by(case_ref) {
        if !choice.force {
            return Err(SceneError::OtherCase {
                lesson: lesson.to_path_buf(),
                case_ref: case_ref.to_owned(),
                origin: case.origin,
                given_ref: case.case_ref,
            });
        }
        warnings.push(format!(
            "{}; replaying on it anyway (--force-case)",
            mismatch_message(lesson, case_ref, &case.origin, &case.case_ref)
        ));
    }
    Ok((case, warnings))
}

/// Opens a lesson file or a `.twlesson` bundle with the case it is shown on: a bundle's own
/// case (checked against the lesson's hash; a given case is ignored with a warning), else
/// [`case_for`].
///
/// # Errors
/// As [`open_lesson`], [`case_for`] and [`crate::bundle::open_bundle`].
pub fn open_with_case(
    path: &Path,
    choice: CaseChoice<'_>,
) -> Result<(Player, Case, Vec<String>), SceneError> {
    if twinray_bundle::is_bundle_path(path) {
        let opened = crate::bundle::open_bundle(path)?;
        let mut warnings = Vec::new();
        if choice.ct.is_some() {
            warnings.push(format!(
                "{} carries its own case; the case given is not used",
                path.display()
            ));
        }
        return Ok((opened.player, opened.case, warnings));
    }
    let player = open_lesson(path)?;
    let case_ref = player.reader().header().lesson.case_ref.clone();
    let (case, warnings) = case_for(path, &case_ref, choice)?;
    Ok((player, case, warnings))
}

/// What is wrong with an opened lesson, one message per problem (empty when it is intact):
/// a missing footer, damaged regions with the times they held, and chunks that failed to
/// decode while playing.
#[must_use]
pub fn damage_messages(player: &Player) -> Vec<String> {
    let reader = player.reader();
    let mut out = Vec::new();
    if let IndexOrigin::Scan { footer_problem } = reader.index_origin() {
        out.push(format!(
            "no usable footer ({footer_problem}): the recording was not finished or the end is damaged; the chunks were found by scanning"
        ));
    }
    for d in reader.damage() {
        let when = d.frame.as_ref().map_or(String::new(), |h| {
            format!(
                " (lost events from {} to {})",
                format_time_ns(h.t_start_ns),
                format_time_ns(h.t_end_ns)
            )
        });
        out.push(format!(
            "unreadable: {} bytes at byte {}: {}{when}",
            d.len, d.offset, d.reason
        ));
    }
    for (pos, problem) in player.problems() {
        let when = reader.index().get(*pos).map_or(String::new(), |e| {
            format!(
                " (lost events from {} to {})",
                format_time_ns(e.t_start_ns),
                format_time_ns(e.t_end_ns)
            )
        });
        out.push(format!("chunk {pos} could not be decoded: {problem}{when}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::demo_paths;
    use crate::DEMO_CASE_REF;

    fn choice<'a>(ct: Option<&'a Path>, labels: Option<&'a Path>, force: bool) -> CaseChoice<'a> {
        CaseChoice {
            ct,
            labels,
            force,
            progress: None,
        }
    }

    #[test]
    fn a_lesson_on_the_demo_case_replays_on_it_without_a_case() {
        let lesson = Path::new("demo.lesson");
        let (case, warnings) = case_for(lesson, DEMO_CASE_REF, choice(None, None, false))
            .expect("the embedded demo case");
        assert!(case.is_demo());
        assert!(warnings.is_empty());
        // Demo lessons recorded before the hash's second definition name it by the first.
        let (case, _) = case_for(lesson, crate::DEMO_CASE_REF_V1, choice(None, None, false))
            .expect("the embedded demo case, by its first hash");
        assert!(case.is_demo());
    }

    #[test]
    fn another_case_is_asked_for_refused_or_forced_with_a_warning() {
        let lesson = Path::new("spine.lesson");
        let e = case_for(lesson, "sha256:abc", choice(None, None, false))
            .expect_err("no case given for a case that is not the demo");
        assert!(
            matches!(e, SceneError::NeedsCase { .. }) && e.to_string().contains("spine.lesson"),
            "{e}"
        );
        // The demo CT without its labels is another case than the demo lesson's.
        let (ct, _) = demo_paths();
        let e = case_for(lesson, DEMO_CASE_REF, choice(Some(&ct), None, false))
            .expect_err("a case with another hash");
        let text = e.to_string();
        assert!(
            text.contains(DEMO_CASE_REF) && text.contains("--force-case"),
            "{text}"
        );
        let (case, warnings) = case_for(lesson, DEMO_CASE_REF, choice(Some(&ct), None, true))
            .expect("forced onto the case");
        assert!(!case.is_demo());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&case.case_ref), "{warnings:?}");
    }
}
