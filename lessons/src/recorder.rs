//! The crash-safe recorder: a producer hands events over a bounded channel without ever
//! blocking; a named writer thread encodes them, and writes and flushes every closed chunk.
//!
//! A crash (even SIGKILL) loses at most the open chunk: every closed chunk is already in the
//! file, self-framed with its checksums, and [`crate::tools::recover`] rebuilds the index.
//!
//! A recording never replaces an existing file (it may be an earlier lesson):
//! [`Recorder::create`] refuses one, [`Recorder::create_unique`] picks the next free
//! numbered name.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::encoder::{EncoderOptions, LessonEncoder};
use crate::error::LessonError;
use crate::event::Event;
use crate::format::LessonHeader;

/// How many names [`Recorder::create_unique`] tries: the name asked for, then `-2` up to
/// this number.
const MAX_UNIQUE_NAME: u32 = 10_000;

/// How often the writer thread looks for events. Short against a chunk (1 s); the channel
/// holds seconds of events.
const POLL_PERIOD: Duration = Duration::from_millis(5);

/// Opens a new file for writing; fails with `AlreadyExists` if anything is at `path`.
fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// `path` itself for `n` = 1, else `stem-n.ext` beside it (`stem-n` without an extension).
fn numbered_name(path: &Path, n: u32) -> PathBuf {
    if n <= 1 {
        return path.to_path_buf();
    }
    let mut name = path
        .file_stem()
        .map_or_else(std::ffi::OsString::new, std::ffi::OsStr::to_os_string);
    name.push(format!("-{n}"));
    if let Some(ext) = path.extension() {
        name.push(".");
        name.push(ext);
    }
    path.with_file_name(name)
}

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
    /// Events the writer received, including those the encoder then refused (counted in
    /// `oversized_event_count` and `out_of_range_event_count`); dropped ones are not included.
    pub event_count: u64,
    /// Events dropped because the channel was full (the writer fell behind).
    pub dropped_event_count: u64,
    /// Events refused for being over the size limit.
    pub oversized_event_count: u64,
    /// Events refused for a time outside ±[`crate::format::MAX_TIME_NS`] of session time 0
    /// (a producer's clock bug; a reader would treat their chunk as damaged).
    pub out_of_range_event_count: u64,
    /// File size in bytes.
    pub bytes_written: u64,
}

enum Message {
    Event(Event),
    Finish,
    /// The recorder was dropped without finishing: close the open chunk, no footer.
    Abandon,
}

struct WriterSummary {
    chunk_count: usize,
    event_count: u64,
    oversized_event_count: u64,
    out_of_range_event_count: u64,
    bytes_written: u64,
}

/// Records a lesson to a file. See the module docs.
pub struct Recorder {
    path: PathBuf,
    sender: Option<Sender<Message>>,
    dropped: Arc<AtomicU64>,
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
    /// Creates a new file at `path`, writes and flushes its header, and starts the writer
    /// thread.
    ///
    /// A recording never replaces a file: if `path` exists (an earlier lesson, anything
    /// else, even a dangling symbolic link) this fails with [`LessonError::Exists`] and leaves
    /// it untouched. The check and the creation are one atomic step (`create_new`), so no
    /// other process can slip a file in between. Front ends that want "record again" to just
    /// work use [`Self::create_unique`].
    ///
    /// # Errors
    /// [`LessonError::Exists`] if `path` exists; otherwise if the file cannot be created or
    /// written, or the header cannot be encoded.
    pub fn create(
        path: impl AsRef<Path>,
        header: &LessonHeader,
        options: RecorderOptions,
    ) -> Result<Self, LessonError> {
        let path = path.as_ref().to_path_buf();
        let (encoder, header_bytes) = Self::encoder(&path, header, options)?;
        let file = match create_new(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(LessonError::Exists { path });
            }
            Err(e) => return Err(LessonError::io(&path, "creating", e)),
        };
        Self::start(path, file, encoder, &header_bytes, options)
    }

    /// Like [`Self::create`], but when `path` exists it records to the first free name of
    /// `stem-2.ext`, `stem-3.ext`, ... (`studio.lesson` → `studio-2.lesson`; the extension is
    /// kept) instead of failing. Every name is tried with an atomic `create_new`, so two
    /// recorders started at once never share a file, and no existing file is ever replaced.
    ///
    /// The file may therefore not be the one asked for: front ends must tell the user where
    /// the lesson went, from [`Self::path`] (or [`RecordingReport::path`] after
    /// [`Self::finish`]).
    ///
    /// # Errors
    /// [`LessonError::NoFreeName`] if `path` and the numbered names up to
    /// `stem-10000.ext` all exist; otherwise as [`Self::create`].
    pub fn create_unique(
        path: impl AsRef<Path>,
        header: &LessonHeader,
        options: RecorderOptions,
    ) -> Result<Self, LessonError> {
        let path = path.as_ref();
        if path.file_name().is_none() {
            // "..", "/": no name to number; refuse as `create` does.
            return Self::create(path, header, options);
        }
        let (encoder, header_bytes) = Self::encoder(path, header, options)?;
        for n in 1..=MAX_UNIQUE_NAME {
            let candidate = numbered_name(path, n);
            match create_new(&candidate) {
                Ok(file) => return Self::start(candidate, file, encoder, &header_bytes, options),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(LessonError::io(&candidate, "creating", e)),
            }
        }
        Err(LessonError::NoFreeName {
            path: path.to_path_buf(),
            tried: MAX_UNIQUE_NAME - 1,
            first: numbered_name(path, 2),
            last: numbered_name(path, MAX_UNIQUE_NAME),
        })
    }

    /// The encoder and the header bytes, before any file is created (so bad metadata leaves
    /// no file behind).
    fn encoder(
        path: &Path,
        header: &LessonHeader,
        options: RecorderOptions,
    ) -> Result<(LessonEncoder, Vec<u8>), LessonError> {
        LessonEncoder::new(header, options.encoder).map_err(|e| LessonError::WriterStopped {
            path: path.to_path_buf(),
            reason: crate::error::full_message(&e),
        })
    }

    /// Writes the header into the newly created `file` and starts the writer thread. If
    /// that fails, the file (created by us a moment ago, holding nothing else) is removed.
    fn start(
        path: PathBuf,
        mut file: File,
        encoder: LessonEncoder,
        header_bytes: &[u8],
        options: RecorderOptions,
    ) -> Result<Self, LessonError> {
        let written = file
            .write_all(header_bytes)
            .and_then(|()| file.flush())
            .map_err(|e| LessonError::io(&path, "writing the header", e));
        if let Err(e) = written {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let (sender, receiver) = crossbeam_channel::bounded(options.channel_capacity.max(1));
        let thread_path = path.clone();
        let spawned = std::thread::Builder::new()
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
            });
        let writer = match spawned {
            Ok(writer) => writer,
            Err(e) => {
                // The closure (and the file in it) is gone; only the header was written.
                let _ = std::fs::remove_file(&path);
                return Err(LessonError::io(&path, "starting the writer thread", e));
            }
        };
        Ok(Self {
            path,
            sender: Some(sender),
            dropped: Arc::new(AtomicU64::new(0)),
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

    /// A handle another thread records through (the voice thread), never blocking either.
    /// Events it sends after [`Self::finish`] are dropped and counted: stop the other
    /// producers first.
    #[must_use]
    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle {
            sender: self.sender.clone(),
            dropped: Arc::clone(&self.dropped),
        }
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
            out_of_range_event_count: summary.out_of_range_event_count,
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
        // Other handles may still hold the channel open, so say it rather than wait for
        // every sender to go.
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Message::Abandon);
        }
        if self.writer.is_some() {
            let _ = self.join();
        }
    }
}

/// Records into a [`Recorder`]'s file from another thread. See [`Recorder::handle`].
#[derive(Debug, Clone)]
pub struct RecorderHandle {
    sender: Option<Sender<Message>>,
    dropped: Arc<AtomicU64>,
}

impl RecorderHandle {
    /// Hands an event over without blocking, as [`Recorder::record`] does.
    pub fn record(&self, event: Event) -> bool {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|s| s.try_send(Message::Event(event)).is_ok());
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
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
            // The writer polls instead of sleeping in `recv`: a sender then never has a
            // parked receiver to wake, so `record` stays a few atomic operations on the
            // real-time thread (waking the writer cost the producer tens of µs at p99).
            let mut drained = 0usize;
            loop {
                match receiver.try_recv() {
                    Ok(Message::Event(event)) => {
                        drained += 1;
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
                    Err(TryRecvError::Empty) => break,
                    Ok(Message::Abandon) | Err(TryRecvError::Disconnected) => {
                        // Dropped without finish: keep what we have, no footer.
                        if let Some(frame) =
                            self.encoder.close_chunk().map_err(|e| self.stopped(&e))?
                        {
                            self.write(&frame)?;
                        }
                        return Ok(self.summary());
                    }
                }
            }
            // Close the open chunk by wall-clock age too, so a paused producer does not
            // leave events unwritten for longer than a chunk.
            if opened_at.is_some_and(|t| t.elapsed() >= max_age) {
                if let Some(frame) = self.encoder.close_chunk().map_err(|e| self.stopped(&e))? {
                    self.write(&frame)?;
                }
                opened_at = None;
            }
            // A producer pushing back (record_blocking with a full channel) gets no pause.
            if drained < receiver.capacity().unwrap_or(usize::MAX) / 2 {
                std::thread::sleep(POLL_PERIOD);
            }
        }
    }

    fn summary(&self) -> WriterSummary {
        WriterSummary {
            chunk_count: self.encoder.index().len(),
            event_count: self.event_count,
            oversized_event_count: self.encoder.oversized_events(),
            out_of_range_event_count: self.encoder.out_of_range_events(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap.
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_folder_and_the_extension() {
        let p = Path::new("/lessons/studio.lesson");
        assert_eq!(numbered_name(p, 1), p);
        assert_eq!(numbered_name(p, 2), Path::new("/lessons/studio-2.lesson"));
        assert_eq!(
            numbered_name(Path::new("a.b.lesson"), 10),
            Path::new("a.b-10.lesson")
        );
        assert_eq!(numbered_name(Path::new("take"), 3), Path::new("take-3"));
    }

    #[test]
    fn create_unique_gives_up_after_its_bound_and_touches_nothing() {
        let dir = std::env::temp_dir().join(format!(
            "twinray-lessons-unit-{}-no-free-name",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let asked = dir.join("s.lesson");
        for n in 1..=MAX_UNIQUE_NAME {
            std::fs::write(numbered_name(&asked, n), b"taken").unwrap();
        }
        let header = LessonHeader::new("sha256:test", 0);
        let err = Recorder::create_unique(&asked, &header, RecorderOptions::default()).unwrap_err();
        assert!(
            matches!(&err, LessonError::NoFreeName { tried, .. } if *tried == MAX_UNIQUE_NAME - 1),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("s-10000.lesson"), "{message}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count() as u32,
            MAX_UNIQUE_NAME
        );
        assert_eq!(std::fs::read(numbered_name(&asked, 77)).unwrap(), b"taken");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
