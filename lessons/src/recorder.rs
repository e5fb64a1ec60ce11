//! The crash-safe recorder: a producer hands events over a bounded channel without ever
//! blocking; a named writer thread encodes them, and writes and flushes every closed chunk.
//!
//! A crash (even SIGKILL) loses at most the open chunk: every closed chunk is already in the
//! file, self-framed with its checksums, and [`crate::tools::recover`] rebuilds the index.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::encoder::{EncoderOptions, LessonEncoder};
use crate::error::LessonError;
use crate::event::Event;
use crate::format::LessonHeader;

/// Recorder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderOptions {
    /// Chunking, keyframes and compression.
    pub encoder: EncoderOptions,
    /// Events the channel holds before [`Recorder::record`] starts dropping. At 90 Hz with
    /// head, two hands and two controllers (450 events/s), the default is about nine seconds
    /// of slack for a slow disk.
    pub channel_capacity: usize,
    /// `fsync` each chunk after writing it. Without it a chunk survives a process crash (it
    /// is in the OS) but maybe not a power cut.
    pub sync_each_chunk: bool,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        Self {
            encoder: EncoderOptions::default(),
            channel_capacity: 4096,
            sync_each_chunk: true,
        }
    }
}

/// What a finished recording reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingReport {
    /// The file.
    pub path: PathBuf,
    /// Chunks written.
    pub chunk_count: usize,
    /// Events written.
    pub event_count: u64,
    /// Events dropped because the channel was full (the writer fell behind).
    pub dropped_event_count: u64,
    /// Events refused for being over the size limit.
    pub oversized_event_count: u64,
    /// File size in bytes.
    pub bytes_written: u64,
}

enum Message {
    Event(Event),
    Finish,
}

struct WriterSummary {
    chunk_count: usize,
    event_count: u64,
    oversized_event_count: u64,
    bytes_written: u64,
}

/// Records a lesson to a file. See the module docs.
pub struct Recorder {
    path: PathBuf,
    sender: Option<Sender<Message>>,
    dropped: AtomicU64,
    writer: Option<JoinHandle<Result<WriterSummary, LessonError>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates the file (truncating an existing one), writes and flushes its header, and
    /// starts the writer thread.
    ///
    /// # Errors
    /// If the file cannot be created or written, or the header cannot be encoded.
    pub fn create(
        path: impl AsRef<Path>,
        header: &LessonHeader,
        options: RecorderOptions,
    ) -> Result<Self, LessonError> {
        let path = path.as_ref().to_path_buf();
        let (encoder, header_bytes) = LessonEncoder::new(header, options.encoder).map_err(|e| {
            LessonError::WriterStopped {
                path: path.clone(),
                reason: crate::error::full_message(&e),
            }
        })?;
        let mut file = File::create(&path).map_err(|e| LessonError::io(&path, "creating", e))?;
        file.write_all(&header_bytes)
            .and_then(|()| file.flush())
            .map_err(|e| LessonError::io(&path, "writing the header", e))?;
        let (sender, receiver) = crossbeam_channel::bounded(options.channel_capacity.max(1));
        let thread_path = path.clone();
        let writer = std::thread::Builder::new()
            .name("lesson-writer".to_owned())
            .spawn(move || {
                let mut w = Writer {
                    path: thread_path,
                    file,
                    encoder,
                    options,
                    event_count: 0,
                };
                w.run(&receiver)
            })
            .map_err(|e| LessonError::io(&path, "starting the writer thread", e))?;
        Ok(Self {
            path,
            sender: Some(sender),
            dropped: AtomicU64::new(0),
            writer: Some(writer),
        })
    }

    /// Hands an event to the writer thread. Never blocks: if the channel is full (or the
    /// writer has stopped) the event is dropped, counted, and `false` is returned.
    pub fn record(&self, event: Event) -> bool {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|s| match s.try_send(Message::Event(event)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Hands an event over, waiting while the channel is full. For producers that are not
    /// real-time (importers, converters, benchmarks), where back-pressure beats dropping.
    ///
    /// # Errors
    /// If the writer thread has stopped.
    pub fn record_blocking(&self, event: Event) -> Result<(), LessonError> {
        let stopped = || LessonError::WriterStopped {
            path: self.path.clone(),
            reason: "the writer thread has exited; finish() reports why".to_owned(),
        };
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        sender.send(Message::Event(event)).map_err(|_| stopped())
    }

    /// Events dropped so far because the channel was full or the writer had stopped.
    #[must_use]
    pub fn dropped_event_count(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The file being recorded.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the last chunk, writes the footer index and waits for the writer thread.
    ///
    /// # Errors
    /// If the writer thread failed (disk full, ...) at any point, or panicked.
    pub fn finish(mut self) -> Result<RecordingReport, LessonError> {
        if let Some(sender) = self.sender.take() {
            // Blocking is fine here: finishing is not on the real-time path.
            let _ = sender.send(Message::Finish);
        }
        let summary = self.join()?;
        Ok(RecordingReport {
            path: self.path.clone(),
            chunk_count: summary.chunk_count,
            event_count: summary.event_count,
            dropped_event_count: self.dropped_event_count(),
            oversized_event_count: summary.oversized_event_count,
            bytes_written: summary.bytes_written,
        })
    }

    fn join(&mut self) -> Result<WriterSummary, LessonError> {
        let Some(handle) = self.writer.take() else {
            return Err(LessonError::WriterStopped {
                path: self.path.clone(),
                reason: "already joined".to_owned(),
            });
        };
        handle.join().map_err(|_| LessonError::WriterStopped {
            path: self.path.clone(),
            reason: "the writer thread panicked".to_owned(),
        })?
    }
}

impl Drop for Recorder {
    /// Dropping without [`Recorder::finish`] closes the channel; the writer writes the open
    /// chunk and exits without a footer. The file is then like a crashed one minus the loss:
    /// readers rebuild the index by scanning, and `recover` adds the footer.
    fn drop(&mut self) {
        self.sender.take();
        if self.writer.is_some() {
            let _ = self.join();
        }
    }
}

struct Writer {
    path: PathBuf,
    file: File,
    encoder: LessonEncoder,
    options: RecorderOptions,
    event_count: u64,
}

impl Writer {
    fn run(&mut self, receiver: &Receiver<Message>) -> Result<WriterSummary, LessonError> {
        let max_age = Duration::from_nanos(
            u64::try_from(self.options.encoder.chunk_max_duration_ns).unwrap_or(1_000_000_000),
        );
        let mut opened_at: Option<Instant> = None;
        loop {
            // Close the open chunk by wall-clock age too, so a paused producer does not
            // leave events unwritten for longer than a chunk.
            let timeout = opened_at.map_or(max_age, |t| max_age.saturating_sub(t.elapsed()));
            match receiver.recv_timeout(timeout) {
                Ok(Message::Event(event)) => {
                    self.event_count += 1;
                    let frame = self.encoder.push(event).map_err(|e| self.stopped(&e))?;
                    if let Some(frame) = frame {
                        self.write(&frame)?;
                        opened_at = None;
                    }
                    if opened_at.is_none() && self.encoder.has_open_chunk() {
                        opened_at = Some(Instant::now());
                    }
                }
                Ok(Message::Finish) => {
                    let tail = self.encoder.finish().map_err(|e| self.stopped(&e))?;
                    self.write(&tail)?;
                    return Ok(self.summary());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if opened_at.is_some_and(|t| t.elapsed() >= max_age) {
                        if let Some(frame) =
                            self.encoder.close_chunk().map_err(|e| self.stopped(&e))?
                        {
                            self.write(&frame)?;
                        }
                        opened_at = None;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Dropped without finish: keep what we have, no footer.
                    if let Some(frame) = self.encoder.close_chunk().map_err(|e| self.stopped(&e))? {
                        self.write(&frame)?;
                    }
                    return Ok(self.summary());
                }
            }
        }
    }

    fn summary(&self) -> WriterSummary {
        WriterSummary {
            chunk_count: self.encoder.index().len(),
            event_count: self.event_count,
            oversized_event_count: self.encoder.oversized_events(),
            bytes_written: self.encoder.bytes_written(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LessonError> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.flush())
            .map_err(|e| LessonError::io(&self.path, "writing a chunk", e))?;
        if self.options.sync_each_chunk {
            self.file
                .sync_data()
                .map_err(|e| LessonError::io(&self.path, "syncing a chunk to disk", e))?;
        }
        Ok(())
    }

    fn stopped(&self, e: &crate::encoder::EncodeError) -> LessonError {
        LessonError::WriterStopped {
            path: self.path.clone(),
            reason: crate::error::full_message(&e),
        }
    }
}
