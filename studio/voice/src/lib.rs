//! The instructor's narration: captured from a microphone (or a simulated source), resampled
//! to 48 kHz, coded with Opus in 20 ms packets and timed on the lesson clock with a sync
//! point about once a second; played back in sync with a lesson at any time; exported as Ogg
//! Opus; imported from WAV as a voice-over. The lesson format's side (voice blocks, sync
//! records, the time map) is `twinray_lessons::voice`; this crate owns the codec and the
//! sound hardware, and is the only one that uses cpal or libopus.

pub mod capture;
pub mod clock;
pub mod codec;
pub mod device;
pub mod error;
pub mod import;
pub mod narration;
pub mod ogg_export;
pub mod output;
pub mod playback;
pub mod resample;
pub mod source;
pub mod wav;

pub use error::VoiceError;
