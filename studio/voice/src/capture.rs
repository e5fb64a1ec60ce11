//! The voice thread of a recording: reads a [`VoiceSource`], runs the
//! [`NarrationEncoder`] on the lesson clock and hands the events to the recorder, off the
//! studio's frame loop. The studio sees a level meter, a mute switch and, when the source
//! fails, a message; it never waits for audio.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use twinray_lessons::event::Event;

use crate::clock::LessonClock;
use crate::error::VoiceError;
use crate::narration::{NarrationEncoder, NarrationStats};
use crate::source::VoiceSource;

/// How long the thread waits for a buffer before looking at its stop flag again.
const POLL: Duration = Duration::from_millis(50);

/// Where the events go (the recorder's handle, a vector in tests).
pub type EventSink = Box<dyn FnMut(Event) + Send>;

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    muted: AtomicBool,
    /// Peak level of the latest buffer, 0..1, as f32 bits.
    level: AtomicU32,
    problem: Mutex<Option<String>>,
}

/// A running voice capture. See the module docs.
#[derive(Debug)]
pub struct VoiceCapture {
    shared: Arc<Shared>,
    source_name: String,
    thread: Option<JoinHandle<Result<NarrationStats, VoiceError>>>,
}

impl VoiceCapture {
    /// Starts capturing from `source` onto `clock`, sending events to `sink`.
    ///
    /// # Errors
    /// If the codec cannot be created or the thread cannot start.
    pub fn start(
        mut source: Box<dyn VoiceSource>,
        clock: LessonClock,
        mut sink: EventSink,
    ) -> Result<Self, VoiceError> {
        let mut pipeline = NarrationEncoder::new(source.sample_rate_hz())?;
        let shared = Arc::new(Shared::default());
        let source_name = source.name().to_owned();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("voice-capture".into())
            .spawn(move || {
                let s = thread_shared;
                let mut live = true;
                while !s.stop.load(Ordering::Acquire) {
                    if !live {
                        std::thread::sleep(POLL);
                        continue;
                    }
                    match source.next_buffer(POLL) {
                        Ok(Some(buffer)) => {
                            let peak = buffer.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                            s.level.store(peak.min(1.0).to_bits(), Ordering::Relaxed);
                            let t = clock.lesson_time_ns(buffer.captured_at);
                            let muted = s.muted.load(Ordering::Relaxed);
                            pipeline.push(&buffer, t, muted, &mut *sink)?;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            // The lesson goes on without voice; the studio shows why.
                            *s.problem.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(e.to_string());
                            s.level.store(0, Ordering::Relaxed);
                            live = false;
                        }
                    }
                }
                pipeline.finish(&mut *sink)
            })
            .map_err(|e| VoiceError::Invalid(format!("starting the voice thread: {e}")))?;
        Ok(Self {
            shared,
            source_name,
            thread: Some(thread),
        })
    }

    /// The source's name.
    #[must_use]
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Mutes (records silence, keeping time) or unmutes.
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed);
    }

    /// Whether muted.
    #[must_use]
    pub fn is_muted(&self) -> bool {
        self.shared.muted.load(Ordering::Relaxed)
    }

    /// Peak level of the latest captured buffer, 0..1 (before muting: the meter shows that
    /// the microphone hears you even when muted).
    #[must_use]
    pub fn level(&self) -> f32 {
        f32::from_bits(self.shared.level.load(Ordering::Relaxed))
    }

    /// Why the source stopped delivering, if it did.
    #[must_use]
    pub fn problem(&self) -> Option<String> {
        self.shared
            .problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops, writes the last packets (the encoder flushed) and reports.
    ///
    /// # Errors
    /// If the codec failed on the way, or the thread panicked.
    pub fn stop(mut self) -> Result<NarrationStats, VoiceError> {
        self.join()
    }

    fn join(&mut self) -> Result<NarrationStats, VoiceError> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| VoiceError::Invalid("the voice thread panicked".into()))?,
            None => Ok(NarrationStats::default()),
        }
    }
}

impl Drop for VoiceCapture {
    fn drop(&mut self) {
        let _ = self.join();
    }
}
