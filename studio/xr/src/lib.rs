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
