//! Virtual reality: the OpenXR session, stereo rendering, input and the comfort budget.
//!
//! Everything that decides something lives in code fed by the [`source::XrSource`] trait, so it
//! runs (and is tested) headless from [`source::SimulatedXr`]; [`openxr_glue`] only translates
//! between OpenXR and that trait.
//!
//! - [`source`]: what the runtime gives per frame; the simulated headset.
//! - [`stereo`]: per-eye cameras in the patient frame.
//! - [`input`]: controllers and hands to lesson events (strokes, grabbing the twin, recording).
//! - [`comfort`]: sample step and resolution chosen to fit the display period.
//! - [`panel`]: the learner's controls in the headset (play, scrub, chapters, follow, speed,
//!   volume).
//! - [`session`]: the frame loop shared by the headset and the simulation.

pub mod comfort;
pub mod input;
pub mod openxr_glue;
pub mod panel;
pub mod session;
pub mod source;
pub mod stereo;

/// What can stop a VR session.
#[derive(Debug, thiserror::Error)]
pub enum XrError {
    /// No OpenXR loader, or the loader found no runtime.
    #[error("no OpenXR runtime found (install SteamVR or Monado and start it, or use --simulate){}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    NoRuntime {
        /// What the loader or runtime said, when it said something.
        detail: Option<String>,
    },
    /// The runtime lacks something the studio needs.
    #[error("the OpenXR runtime {runtime} does not support {what}")]
    Unsupported {
        /// The runtime's name.
        runtime: String,
        /// What is missing.
        what: String,
    },
    /// An OpenXR call failed.
    #[error("OpenXR error while {context}: {result}")]
    Runtime {
        /// What the studio was doing.
        context: &'static str,
        /// The runtime's result code.
        result: String,
    },
    /// Recording the session's lesson failed.
    #[error("{action}: {source}")]
    Lesson {
        /// What the session was doing.
        action: String,
        /// Why it failed.
        source: twinray_lessons::LessonError,
    },
    /// A label map cannot be shown or recorded.
    #[error("label map: {0}")]
    Labels(String),
    /// Rendering into the runtime's device failed.
    #[error(transparent)]
    Render(#[from] twinray_renderer::RenderError),
}

/// Prints one line of `twinray vr`'s own output to stderr in a single write. An OpenXR runtime
/// loaded into this process writes its log to the same stderr, and `eprintln!` writes a
/// formatted line piece by piece, so a runtime's line could land inside ours (seen: a test
/// failing to read the frame count out of "vr: <runtime text>60 frames …").
pub fn say_line(line: &str) {
    use std::io::Write;
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `eprintln!` for `twinray vr`'s own lines, written whole ([`say_line`]).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say_line(&format!($($arg)*))
    };
}
