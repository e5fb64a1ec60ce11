//! AI segmentation of the open case on a background thread, so that the window keeps drawing
//! while the model runs; the app polls it on every tick and can cancel it through the
//! segmenter's own cancel flag.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use twinray_io::{CtVolume, LabelNames, LabelVolume};
use twinray_segmentation::{
    CoreUse, InferenceError, Model, Normalization, Runtime, SegmentOptions, Segmenter,
};

/// What a finished job hands back.
#[derive(Debug)]
pub enum JobOutcome {
    /// The labels on the CT's grid and the model's names for them.
    Done {
        /// Label map on the CT's grid.
        labels: LabelVolume,
        /// Names of the model's classes.
        names: LabelNames,
    },
    /// The cancel flag stopped it.
    Cancelled,
    /// Why it failed (ONNX Runtime missing, a model that does not load, ...).
    Failed(String),
}

/// A segmentation running on its own thread.
#[derive(Debug)]
pub struct SegmentationJob {
    /// The model's name (from its description), for messages and the lesson note.
    pub model_name: String,
    /// Where the model came from (a path or "built-in ...").
    pub model_origin: String,
    /// Whether it is the built-in demonstrator (the studio says what that is worth).
    pub builtin: bool,
    /// The model's intensity normalisation, to warn when it does not fit the case's modality.
    pub normalization: Normalization,
    cancel: Arc<AtomicBool>,
    windows_done: Arc<AtomicUsize>,
    windows_total: Arc<AtomicUsize>,
    result: Receiver<JobOutcome>,
    thread: Option<JoinHandle<()>>,
}

impl SegmentationJob {
    /// Opens the model here (a bad path fails at once) and starts the thread that loads ONNX
    /// Runtime and segments `ct`. `model`: a description or ONNX file; the built-in model when
    /// `None`.
    pub fn start(ct: Arc<CtVolume>, model: Option<&Path>) -> Result<Self> {
        let model = match model {
            Some(path) => Model::open(path)
                .with_context(|| format!("opening the model {}", path.display()))?,
            None => Model::builtin().context("opening the built-in model")?,
        };
        let model_name = model.description().name.clone();
        let model_origin = model.origin().to_owned();
        let builtin = model.is_builtin();
        let normalization = model.description().normalization;
        let cancel = Arc::new(AtomicBool::new(false));
        let windows_done = Arc::new(AtomicUsize::new(0));
        let windows_total = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        let (flag, done, total) = (cancel.clone(), windows_done.clone(), windows_total.clone());
        let thread = std::thread::Builder::new()
            .name("segmentation".to_owned())
            .spawn(move || {
                let outcome = run(&ct, &model, flag, &done, &total);
                // The app may have dropped the job (closed window): nobody to tell then.
                let _ = tx.send(outcome);
            })
            .context("starting the segmentation thread")?;
        Ok(Self {
            model_name,
            model_origin,
            builtin,
            normalization,
            cancel,
            windows_done,
            windows_total,
            result: rx,
            thread: Some(thread),
        })
    }

    /// Windows done and in all (0 in all until the model is loaded and the grid planned).
    pub fn progress(&self) -> (usize, usize) {
        (
            self.windows_done.load(Ordering::Relaxed),
            self.windows_total.load(Ordering::Relaxed),
        )
    }

    /// Asks the thread to stop at the next window.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether cancelling was asked for.
    pub fn is_cancelling(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The outcome once the thread has finished; never blocks.
    pub fn poll(&mut self) -> Option<JobOutcome> {
        let outcome = match self.result.try_recv() {
            Ok(outcome) => outcome,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => {
                JobOutcome::Failed("the segmentation thread stopped without a result".to_owned())
            }
        };
        if let Some(thread) = self.thread.take() {
            // It has sent its result, so it is returning.
            if thread.join().is_err() {
                return Some(JobOutcome::Failed(
                    "the segmentation thread panicked".to_owned(),
                ));
            }
        }
        Some(outcome)
    }
}

impl Drop for SegmentationJob {
    fn drop(&mut self) {
        // Do not leave a model running for nobody (the thread ends at its next window).
        self.cancel();
    }
}

fn run(
    ct: &CtVolume,
    model: &Model,
    cancel: Arc<AtomicBool>,
    done: &AtomicUsize,
    total: &AtomicUsize,
) -> JobOutcome {
    let result = (|| -> Result<_, InferenceError> {
        let runtime = Runtime::load(None)?;
        let mut segmenter = Segmenter::new(&runtime, model, CoreUse::Shared)?;
        let options = SegmentOptions {
            cancel: Some(cancel),
            ..SegmentOptions::default()
        };
        segmenter.segment(ct, &options, &mut |p| {
            total.store(p.windows_total, Ordering::Relaxed);
            done.store(p.windows_done, Ordering::Relaxed);
        })
    })();
    match result {
        Ok(s) => JobOutcome::Done {
            labels: s.labels,
            names: s.names,
        },
        Err(InferenceError::Cancelled) => JobOutcome::Cancelled,
        Err(e) => JobOutcome::Failed(format!("segmentation with {} failed: {e}", model.origin())),
    }
}

/// The model argument as typed in the panel: empty means the built-in model.
pub fn model_arg(text: &str) -> Option<PathBuf> {
    let t = text.trim();
    (!t.is_empty()).then(|| PathBuf::from(t))
}
