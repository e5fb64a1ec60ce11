//! The 4D lesson timeline: what the studio records while an instructor teaches on a patient's
//! digital twin, and what learners replay.
//!
//! - [`event`]: the event model (head, hands, controllers, gestures, strokes, scene changes,
//!   chapters/viewpoints/notes, reserved audio), times in session nanoseconds, positions in
//!   millimetres in a named space.
//! - [`quant`], [`chunk`], [`format`], [`encoder`]: pure (sans-IO) codecs — quantisation,
//!   the chunk payload, the file layout and the incremental encoder. `FORMAT.md` documents
//!   the bytes.
//! - [`recorder`]: crash-safe recording; the producing thread never blocks.
//! - [`state`]: scene state, keyframes and [`state::LessonState`], the state at one instant;
//!   `LessonState::apply` folds live events by the same rule the encoder and player use.
//! - [`reader`], [`player`]: opening (footer or scan) and `state_at(t)`.
//! - [`tools`]: `info`, `verify`, `recover`, `dump`, as used by `twinray lesson`.
//! - `synthetic`, `bench_support` (with the `generators` feature): a synthetic instructor
//!   and the benchmark. They are test and bench tooling, so the studio does not compile them.
//!
//! This crate knows nothing of Vulkan, OpenXR or the UI; the studio wires it in.
//!
//! ```no_run
//! use twinray_lessons::{event::*, format::LessonHeader, player::Player, recorder::*};
//! # fn main() -> Result<(), twinray_lessons::error::LessonError> {
//! let recorder = Recorder::create("a.lesson", &LessonHeader::new("sha256:…", 0), RecorderOptions::default())?;
//! recorder.record(Event::new(0, Payload::Head(Pose::IDENTITY)));
//! recorder.finish()?;
//! let mut player = Player::open("a.lesson")?;
//! let state = player.state_at(0);
//! # Ok(()) }
//! ```

#[cfg(feature = "generators")]
pub mod bench_support;
pub mod chunk;
pub mod encoder;
pub mod error;
pub mod event;
pub mod format;
pub mod player;
pub mod quant;
pub mod reader;
pub mod recorder;
pub mod state;
#[cfg(feature = "generators")]
pub mod synthetic;
pub mod tools;
pub mod voice;
mod wire;

pub use error::{DecodeError, LessonError};
