//! What can go wrong in the scene crate. Every variant names the file or case it is about, so a
//! front end can show the message as it is.

use std::path::PathBuf;

use twinray_io::{CaseError, NiftiError};
use twinray_lessons::LessonError;

/// Why a case, a lesson or the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The CT or its labels could not be loaded (boxed: DICOM errors are large, and every
    /// scene result would carry their size).
    #[error(transparent)]
    Case(Box<CaseError>),
    /// The demo case embedded in the binary did not read (a build problem, not a user's).
    #[error("reading the embedded demo {what}: {source}")]
    EmbeddedDemo {
        /// "CT" or "labels".
        what: &'static str,
        /// Why.
        source: NiftiError,
    },
    /// A lesson file could not be opened.
    #[error("cannot replay {}: {source}", path.display())]
    OpenLesson {
        /// The lesson.
        path: PathBuf,
        /// Why (boxed: lesson errors are large, and every scene result would carry their size).
        source: Box<LessonError>,
    },
    /// A lesson recorded on another case than the demo, and no case given.
    #[error("{} was recorded on case {case_ref}, which is not the embedded demo case ({}); pass that case with --ct (and --labels)", lesson.display(), crate::DEMO_CASE_REF)]
    NeedsCase {
        /// The lesson.
        lesson: PathBuf,
        /// The case it names.
        case_ref: String,
    },
    /// The given case is not the one the lesson was recorded on.
    #[error(
        "{} (use --force-case to replay on it anyway)",
        mismatch_message(lesson, case_ref, origin, given_ref)
    )]
    OtherCase {
        /// The lesson.
        lesson: PathBuf,
        /// The case it names.
        case_ref: String,
        /// Where the given case came from.
        origin: String,
        /// The given case's hash.
        given_ref: String,
    },
    /// An image for a board could not be read or stored (the message names the file).
    #[error("{0}")]
    Board(String),
    /// The case cannot carry the scripted demo lesson (it lacks the lumbar labels).
    #[error("{0}")]
    DemoCase(String),
    /// `TWINRAY_DEVICE` holds something other than cpu, gpu or auto.
    #[error("TWINRAY_DEVICE is '{value}'; use cpu, gpu or auto")]
    BadDeviceEnv {
        /// The variable's value.
        value: String,
    },
    /// Writing a lesson failed.
    #[error("{action} the lesson {}: {source}", path.display())]
    Recording {
        /// "creating", "recording into" or "finishing".
        action: &'static str,
        /// The lesson file.
        path: PathBuf,
        /// Why (boxed: lesson errors are large, and every scene result would carry their size).
        source: Box<LessonError>,
    },
    /// A bundle could not be written, read or verified.
    #[error(transparent)]
    Bundle(#[from] twinray_bundle::BundleError),
    /// A bundle's content does not make a replayable lesson (its case is not the lesson's, a
    /// volume does not read, the lesson does not read), or a bundle cannot be made.
    #[error("{}: {reason}", path.display())]
    BundleContent {
        /// The bundle (or the lesson being bundled).
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<CaseError> for SceneError {
    fn from(error: CaseError) -> Self {
        Self::Case(Box::new(error))
    }
}

/// "LESSON was recorded on case A, but ORIGIN is case B: …", shared by the refusal and the
/// warning given when the user forces the case.
pub(crate) fn mismatch_message(
    lesson: &std::path::Path,
    case_ref: &str,
    origin: &str,
    given_ref: &str,
) -> String {
    format!(
        "{} was recorded on case {case_ref}, but {origin} is case {given_ref}: not the same volume and labels",
        lesson.display()
    )
}
