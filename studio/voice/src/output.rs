//! The narration of a replayed lesson through the speakers, following the replay's playhead:
//! the front end says where the playhead is (and whether it plays, and how fast) on each
//! frame; the audio callback extrapolates from that to the instant it fills, so sound and
//! picture stay together without the front end ever waiting for audio.
//!
//! At speeds other than 1× the narration is muted (no pitch-preserving time stretch yet).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use twinray_lessons::reader::LessonReader;

use crate::device::OutputSink;
use crate::error::VoiceError;
use crate::playback::NarrationPlayer;

#[derive(Debug, Clone, Copy)]
struct Playhead {
    time_ns: i64,
    at: Instant,
    playing: bool,
    speed: f64,
}

/// Plays a lesson's narration on the default output. See the module docs.
#[derive(Debug)]
pub struct NarrationOutput {
    sink: OutputSink,
    playhead: Arc<Mutex<Playhead>>,
    volume: f32,
    muted: bool,
}

impl NarrationOutput {
    /// Opens the speakers for the narration of the lesson `reader` reads; `Ok(None)` when
    /// the lesson has none.
    ///
    /// # Errors
    /// [`VoiceError::NoOutput`] when there is no usable output device.
    pub fn open(reader: LessonReader) -> Result<Option<Self>, VoiceError> {
        let player = NarrationPlayer::new(reader)?;
        if !player.has_voice() {
            return Ok(None);
        }
        Self::with_player(player).map(Some)
    }

    /// Opens the speakers for `player`'s narration (its index already read: a caller that
    /// also wants to say what was lost reads the lesson's voice once).
    ///
    /// # Errors
    /// [`VoiceError::NoOutput`] when there is no usable output device.
    pub fn with_player(mut player: NarrationPlayer) -> Result<Self, VoiceError> {
        let playhead = Arc::new(Mutex::new(Playhead {
            time_ns: 0,
            at: Instant::now(),
            playing: false,
            speed: 1.0,
        }));
        let shared = Arc::clone(&playhead);
        let sink = OutputSink::open(Box::new(move |out: &mut [f32], latency: Duration| {
            let head = *shared.lock().unwrap_or_else(PoisonError::into_inner);
            if !head.playing || (head.speed - 1.0).abs() > 1e-6 {
                out.fill(0.0);
                return;
            }
            // The lesson time at which this buffer will be heard, not at which it is filled.
            let since = Instant::now().saturating_duration_since(head.at) + latency;
            let t = head
                .time_ns
                .saturating_add(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX));
            if player.render(t, out).is_err() {
                out.fill(0.0);
            }
        }))?;
        Ok(Self {
            sink,
            playhead,
            volume: 1.0,
            muted: false,
        })
    }

    /// Where the replay is now: call on every frame, after a seek, on play and pause.
    pub fn update(&self, time_ns: i64, playing: bool, speed: f64) {
        *self.playhead.lock().unwrap_or_else(PoisonError::into_inner) = Playhead {
            time_ns,
            at: Instant::now(),
            playing,
            speed,
        };
    }

    /// Volume, 0 to 1.
    pub fn set_volume(&mut self, volume: f32) {
        self.volume = volume.clamp(0.0, 1.0);
        self.apply_gain();
    }

    /// Mutes or unmutes (the volume is kept).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
        self.apply_gain();
    }

    fn apply_gain(&self) {
        self.sink
            .set_volume(if self.muted { 0.0 } else { self.volume });
    }

    /// The output device's name.
    #[must_use]
    pub fn device_name(&self) -> &str {
        self.sink.name()
    }
}
