//! The render thread: owns the GPU renderer so that a slow frame (lavapipe takes ~0.3–1 s at
//! 512²) never blocks the window. It always renders the newest request and drops older ones.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use twinray_io::{CtVolume, Intensity, LabelVolume};
use twinray_renderer::{Camera, Capsule, DevicePreference, GpuContext, RenderOptions, RgbaImage};
use twinray_transfer_functions::{DensityRange, TransferFunction};

use crate::app::LabelsKey;
use twinray_scene::annotations::Annotations;
use twinray_scene::boards::BoardFrames;
use twinray_scene::FrameRenderer;

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// The app's view revision this frame shows.
    pub revision: u64,
    /// A reduced-size frame for interaction (false: the refined one).
    pub preview: bool,
    /// Transfer function.
    pub tf: TransferFunction,
    /// Clip, crop, step.
    pub options: RenderOptions,
    /// Camera.
    pub camera: Camera,
    /// Pixels.
    pub size: [u32; 2],
    /// Strokes and the instructor's avatar, composited by depth.
    pub overlays: Vec<Capsule>,
    /// Names `labels`: when it differs from the uploaded one, `labels` replace the
    /// renderer's (a segmentation finished, a replayed lesson shows another map). Carried by
    /// every request because the worker drops all but the newest.
    pub labels_key: LabelsKey,
    /// The label map to show.
    pub labels: Option<Arc<LabelVolume>>,
    /// Measurement values and other texts, drawn facing the camera.
    pub annotations: Annotations,
    /// The X-ray boards shown.
    pub boards: BoardFrames,
}

/// A rendered frame, or why there is none.
#[derive(Debug)]
pub struct RenderResult {
    /// The request's revision.
    pub revision: u64,
    /// Whether it was a preview.
    pub preview: bool,
    /// The frame.
    pub image: Result<RgbaImage, String>,
    /// Time the frame took.
    pub elapsed: Duration,
}

/// Handle of the render thread.
#[derive(Debug)]
pub struct RenderWorker {
    requests: Option<Sender<RenderRequest>>,
    results: Receiver<RenderResult>,
    thread: Option<JoinHandle<()>>,
    /// The device's name, once the thread has opened it.
    pub device_name: Arc<std::sync::Mutex<String>>,
    last_sent: Option<(u64, bool)>,
    last_done: Option<(u64, bool)>,
}

impl RenderWorker {
    /// Starts the thread; the device is opened and the volume uploaded there with `labels`
    /// ([`crate::app::App::frame_labels`]).
    pub fn start(
        preference: DevicePreference,
        ct: Arc<CtVolume>,
        intensity: Intensity,
        (labels_key, labels): (LabelsKey, Option<Arc<LabelVolume>>),
    ) -> Result<Self> {
        let (request_tx, request_rx) = channel::<RenderRequest>();
        let (result_tx, result_rx) = channel::<RenderResult>();
        let device_name = Arc::new(std::sync::Mutex::new(String::from("starting…")));
        let name = device_name.clone();
        let thread = std::thread::Builder::new()
            .name("render-worker".to_owned())
            .spawn(move || {
                let setup = || -> Result<FrameRenderer, String> {
                    let ctx = GpuContext::new(preference).map_err(|e| e.to_string())?;
                    if let Ok(mut n) = name.lock() {
                        *n = ctx.device_name();
                    }
                    FrameRenderer::new(ctx, &ct, labels.as_deref(), &intensity)
                        .map_err(|e| e.to_string())
                };
                let mut renderer = setup();
                let mut uploaded_labels = labels_key;
                while let Some(request) = newest(&request_rx) {
                    let started = Instant::now();
                    let image = match renderer.as_mut() {
                        Err(e) => Err(e.clone()),
                        Ok(r) => {
                            let upload = if request.labels_key == uploaded_labels {
                                Ok(())
                            } else {
                                uploaded_labels = request.labels_key;
                                r.renderer_mut()
                                    .set_volume(
                                        &ct,
                                        request.labels.as_deref(),
                                        DensityRange::of(&intensity),
                                    )
                                    .map_err(|e| e.to_string())
                            };
                            let upload = upload.and_then(|()| {
                                r.show_boards_and_texts(
                                    &request.camera,
                                    &request.annotations,
                                    &request.boards,
                                )
                                .map_err(|e| e.to_string())
                            });
                            upload.and_then(|()| {
                                r.render_view(
                                    &request.tf,
                                    &request.camera,
                                    &request.options,
                                    &request.overlays,
                                    request.size,
                                )
                                .map(|(image, _)| image)
                                .map_err(|e| e.to_string())
                            })
                        }
                    };
                    let result = RenderResult {
                        revision: request.revision,
                        preview: request.preview,
                        image,
                        elapsed: started.elapsed(),
                    };
                    if result_tx.send(result).is_err() {
                        break;
                    }
                }
            })
            .context("starting the render thread")?;
        Ok(Self {
            requests: Some(request_tx),
            results: result_rx,
            thread: Some(thread),
            device_name,
            last_sent: None,
            last_done: None,
        })
    }

    /// Queues a frame (older queued ones are skipped).
    pub fn request(&mut self, request: RenderRequest) {
        if let Some(tx) = &self.requests {
            let key = (request.revision, request.preview);
            if tx.send(request).is_ok() {
                self.last_sent = Some(key);
            }
        }
    }

    /// Frames finished since the last call.
    pub fn finished(&mut self) -> Vec<RenderResult> {
        let results: Vec<RenderResult> = self.results.try_iter().collect();
        if let Some(last) = results.last() {
            self.last_done = Some((last.revision, last.preview));
        }
        results
    }

    /// Whether the newest request has not been answered yet (the worker answers only the
    /// newest of those queued, so older ones never are).
    pub fn busy(&self) -> bool {
        self.last_sent.is_some() && self.last_sent != self.last_done
    }
}

impl Drop for RenderWorker {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            // A panicked render thread has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

/// Blocks for one request, then takes the newest of those queued behind it.
fn newest(rx: &Receiver<RenderRequest>) -> Option<RenderRequest> {
    let mut request = rx.recv().ok()?;
    loop {
        match rx.try_recv() {
            Ok(newer) => request = newer,
            Err(TryRecvError::Empty) => return Some(request),
            Err(TryRecvError::Disconnected) => return Some(request),
        }
    }
}
