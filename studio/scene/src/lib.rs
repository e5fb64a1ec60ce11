//! The scene: what every front end (the CLI's replay, the desktop studio, VR) shows, without
//! a window.
//!
//! - [`case`]: a CT with its labels and the content hash lessons name it by; the demo case
//!   embedded in the binary.
//! - [`lesson`]: opening a lesson, describing its damage, and the one policy for which case a
//!   lesson is replayed on.
//! - [`builder`]: lesson state (replayed or live) to render inputs: transfer function, clip and
//!   crop, the learner's camera, overlay capsules; [`FrameRenderer`] renders them.
//! - [`bundle`]: making a `.twlesson` bundle from a lesson and its case, and opening one as a
//!   player and the case inside it (checked against the lesson's `case_ref`).
//! - [`demo`]: the scripted lumbar spine lesson on the demo case.
//! - [`device`]: the Vulkan device the user asked for (flag, then `TWINRAY_DEVICE`).
//! - [`text`]: text labels rasterised as images for the renderer's quads.
//!
//! Nothing here prints: warnings come back to the front end, which decides how to show them.

pub mod annotations;
pub mod boards;
pub mod builder;
pub mod bundle;
pub mod case;
pub mod demo;
pub mod device;
mod error;
pub mod label_maps;
pub mod lesson;
pub mod text;

pub use builder::{
    FrameInputs, FrameRenderer, LearnerView, OrbitView, Overlays, SceneBuilder, DEFAULT_FOV_DEG,
    DEFAULT_PRESET,
};
pub use case::{content_hash, content_hash_as, Case, HashVersion, DEMO_CASE_REF, DEMO_CASE_REF_V1};
pub use error::SceneError;
pub use label_maps::{LabelMaps, ShownLabels};
