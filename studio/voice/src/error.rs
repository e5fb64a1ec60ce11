//! Errors of the narration crate.

use std::path::PathBuf;

use twinray_lessons::error::LessonError;

/// What went wrong with the narration.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// No input device, or it could not be opened.
    #[error("no microphone: {0}")]
    NoInput(String),
    /// No output device, or it could not be opened.
    #[error("no sound output: {0}")]
    NoOutput(String),
    /// The source has no more sound.
    #[error("the sound source ended: {0}")]
    SourceEnded(String),
    /// The codec refused.
    #[error("Opus {what}: {message}")]
    Codec {
        /// What was being done.
        what: &'static str,
        /// The codec's words.
        message: String,
    },
    /// The resampler refused.
    #[error("resampling from {from_hz} Hz: {message}")]
    Resample {
        /// Source rate.
        from_hz: u32,
        /// The resampler's words.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An audio file is not what it should be.
    #[error("{path}: {reason}")]
    BadAudio {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words a user can act on.
        reason: String,
    },
    /// The lesson could not be read or written.
    #[error(transparent)]
    Lesson(#[from] LessonError),
    /// The request does not fit the lesson.
    #[error("{0}")]
    Invalid(String),
}

impl VoiceError {
    pub(crate) fn codec(what: &'static str, e: &opus::Error) -> Self {
        Self::Codec {
            what,
            message: e.to_string(),
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        what: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            path: path.into(),
            what: what.into(),
            source,
        }
    }
}
