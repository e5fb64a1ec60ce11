//! `twinray studio`: the desktop window (winit + egui through `egui_winit_vulkano`).
//!
//! The window's Vulkan device (graphics + present, from `vulkano-util`) only draws egui. The
//! volume is ray-marched by the renderer on its own compute device in a worker thread, and each
//! frame is shown as an egui texture: the renderer's `GpuContext` keeps its device private and
//! compute-only, and at lavapipe's ~1 s per frame the copy through the CPU costs nothing worth
//! sharing a device for. While the user drags, frames are rendered at a third of the view's
//! size; once input has been still for a moment the full-size frame replaces it.

mod screenshot;
pub mod ui;
mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use egui::{ColorImage, TextureOptions};
use egui_winit_vulkano::{Gui, GuiConfig};
use twinray_renderer::DevicePreference;
use vulkano::format::Format;
use vulkano::image::ImageUsage;
use vulkano_util::context::{VulkanoConfig, VulkanoContext};
use vulkano_util::window::{VulkanoWindows, WindowDescriptor};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::WindowId;

use crate::app::case::OpenCase;
use crate::app::mpr::{self, MprPlane};
use crate::app::{Action, App};
use ui::{Textures, UiState};
use worker::{RenderRequest, RenderWorker};

/// Input must be still this long before the full-size frame is rendered.
const REFINE_AFTER: Duration = Duration::from_millis(250);
/// Previews are rendered at this fraction of the view's size.
const PREVIEW_SCALE: u32 = 3;
/// Longest side of a refined frame: bounds lavapipe's frame time on large screens.
const MAX_RENDER_SIDE: u32 = 1024;

/// What the window opens with; the CLI's `twinray studio` fills it in.
#[derive(Debug)]
pub struct StudioOptions {
    /// The case to author on, or the one a lesson replays on.
    pub case: OpenCase,
    /// A lesson to replay.
    pub lesson: Option<PathBuf>,
    /// Open the replayed lesson at this many seconds from its start.
    pub at_s: Option<f64>,
    /// Start recording a lesson into this file as soon as the window opens.
    pub record: Option<PathBuf>,
    /// Save the whole window to this PNG once the refined 3D frame is on screen, then exit.
    pub screenshot: Option<PathBuf>,
    /// Window size in logical pixels.
    pub size: [f32; 2],
    /// The device the volume is rendered on.
    pub device: DevicePreference,
    /// The lesson library ("Save to library", search); `None`: `TWINRAY_LIBRARY` or the
    /// user's data folder.
    pub library: Option<twinray_library::Location>,
}

/// Opens the window and runs until it is closed.
pub fn run(options: StudioOptions) -> Result<()> {
    let StudioOptions {
        case,
        lesson,
        at_s,
        record,
        screenshot,
        size: [width, height],
        device,
        library,
    } = options;
    let mut app = App::new(case);
    if library.is_some() {
        app.library_root = library;
    }
    if let Some(path) = lesson {
        // The front end chose the case by the lesson policy (and --force-case) already.
        app.apply(Action::OpenLessonOnThisCase(path))?;
        if let (Some(seconds), Some(replay)) = (at_s, &app.replay) {
            let t = replay.range_ns.0 + (seconds * 1e9) as i64;
            app.apply(Action::Seek(t))?;
        }
    }
    if let Some(path) = record {
        app.apply(Action::StartRecording(path))?;
    }
    let worker = RenderWorker::start(
        device,
        app.case.ct.clone(),
        app.case.intensity,
        app.frame_labels(),
    )?;
    let event_loop = EventLoop::new().context("opening the display (is DISPLAY set?)")?;
    let mut studio = Studio {
        app,
        ui: UiState::default(),
        textures: Textures::default(),
        worker,
        context: None,
        windows: VulkanoWindows::default(),
        gui: None,
        last_input: Instant::now(),
        requested: (0, false),
        shown: None,
        mpr_revision: 0,
        size: [width, height],
        screenshot,
        frames_since_refined: 0,
        error: None,
    };
    event_loop
        .run_app(&mut studio)
        .context("running the window's event loop")?;
    // Whatever ended the loop, a recording in progress is finalised.
    let stopped = studio.app.stop_recording();
    if let Some(e) = studio.error.take() {
        stopped?;
        return Err(e);
    }
    if let Some(report) = stopped? {
        eprintln!(
            "lesson saved: {} ({} events, {} bytes)",
            report.path.display(),
            report.event_count,
            report.bytes_written
        );
    }
    Ok(())
}

struct Studio {
    app: App,
    ui: UiState,
    textures: Textures,
    worker: RenderWorker,
    context: Option<VulkanoContext>,
    windows: VulkanoWindows,
    gui: Option<Gui>,
    last_input: Instant,
    /// The newest request sent: (view revision, refined?).
    requested: (u64, bool),
    /// The frame on screen: (view revision, refined?).
    shown: Option<(u64, bool)>,
    mpr_revision: u64,
    size: [f32; 2],
    screenshot: Option<PathBuf>,
    frames_since_refined: u32,
    error: Option<anyhow::Error>,
}

impl Studio {
    fn fail(&mut self, event_loop: &ActiveEventLoop, error: anyhow::Error) {
        self.error = Some(error);
        event_loop.exit();
    }

    fn now_ns(&self) -> i64 {
        i64::try_from(self.app.epoch.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }

    /// Sends render requests: a preview at once after a change, the refined frame when idle.
    fn schedule_renders(&mut self) {
        let revision = self.app.view_revision;
        let [w, h] = self.ui.view_size_px;
        let scale = f64::from(MAX_RENDER_SIDE) / f64::from(w.max(h));
        let full = if scale < 1.0 {
            [
                ((f64::from(w) * scale) as u32).max(1),
                ((f64::from(h) * scale) as u32).max(1),
            ]
        } else {
            [w, h]
        };
        let idle = self.last_input.elapsed() >= REFINE_AFTER;
        let want = if self.requested.0 != revision {
            Some(!idle && self.screenshot.is_none())
        } else if !self.requested.1 && idle {
            Some(false)
        } else {
            None
        };
        let Some(preview) = want else {
            return;
        };
        let size = if preview {
            full.map(|n| (n / PREVIEW_SCALE).max(16))
        } else {
            full
        };
        let frame = self.app.frame(size);
        let (labels_key, labels) = self.app.frame_labels();
        for warning in self.app.take_scene_warnings() {
            self.app.notice = Some(format!("warning: {warning}"));
        }
        self.worker.request(RenderRequest {
            revision,
            preview,
            tf: frame.transfer_function,
            options: frame.options,
            camera: frame.camera,
            size,
            overlays: {
                let mut capsules = frame.overlays.all();
                capsules.extend_from_slice(&frame.annotations.capsules);
                capsules
            },
            labels_key,
            labels,
            annotations: frame.annotations,
            boards: frame.boards,
        });
        self.requested = (revision, !preview);
    }

    fn collect_renders(&mut self, ctx: &egui::Context) {
        for result in self.worker.finished() {
            match result.image {
                Ok(image) => {
                    let colour = ColorImage::from_rgba_unmultiplied(
                        [image.width as usize, image.height as usize],
                        &image.pixels,
                    );
                    match &mut self.textures.view {
                        Some(t) => t.set(colour, TextureOptions::LINEAR),
                        None => {
                            self.textures.view =
                                Some(ctx.load_texture("3d-view", colour, TextureOptions::LINEAR));
                        }
                    }
                    if !result.preview {
                        self.textures.last_frame =
                            Some((image.width, image.height, image.pixels.clone()));
                    }
                    self.shown = Some((result.revision, !result.preview));
                    self.frames_since_refined = 0;
                    if !result.preview {
                        self.ui.status = format!(
                            "frame {}×{} in {:.0} ms on {}",
                            image.width,
                            image.height,
                            result.elapsed.as_secs_f64() * 1e3,
                            self.worker
                                .device_name
                                .lock()
                                .map_or_else(|_| String::new(), |n| n.clone())
                        );
                    }
                }
                Err(e) => self.ui.status = format!("render failed: {e}"),
            }
        }
    }

    fn update_mpr(&mut self, ctx: &egui::Context) {
        if self.mpr_revision == self.app.mpr_revision && !self.textures.mpr.is_empty() {
            return;
        }
        self.mpr_revision = self.app.mpr_revision;
        let crosshair = self.app.crosshair_mm();
        let wl = self.app.window_level();
        self.textures.mpr = MprPlane::ALL
            .iter()
            .map(|&plane| {
                let slice = mpr::slice(&self.app.case.ct, plane, crosshair, wl);
                let image = ColorImage::from_gray([slice.width, slice.height], &slice.grey);
                let texture = ctx.load_texture(plane.name(), image, TextureOptions::LINEAR);
                (slice, texture)
            })
            .collect();
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop, window_id: WindowId) -> Result<()> {
        let now_ns = self.now_ns();
        self.app.apply(Action::Tick { now_ns })?;
        if let Some(notice) = self.app.notice.take() {
            self.ui.status = notice;
        }
        let Some(ctx) = self.gui.as_ref().map(Gui::context) else {
            return Ok(());
        };
        self.collect_renders(&ctx);
        self.update_mpr(&ctx);
        let Some(gui) = self.gui.as_mut() else {
            return Ok(());
        };
        let mut actions = Vec::new();
        let (app, ui_state, textures) = (&self.app, &mut self.ui, &self.textures);
        gui.immediate_ui(|gui| {
            actions = ui::draw(&gui.context(), app, ui_state, textures);
        });
        if !actions.is_empty() {
            self.last_input = Instant::now();
        }
        for action in actions {
            let stop = action == Action::StopRecording;
            match self.app.apply(action) {
                Ok(()) if stop => {
                    if let Some(r) = &self.app.last_recording {
                        self.ui.status = format!(
                            "lesson saved: {} ({} events, {} bytes)",
                            r.path.display(),
                            r.event_count,
                            r.bytes_written
                        );
                    }
                }
                Ok(()) => {}
                Err(e) => self.ui.status = format!("{e:#}"),
            }
        }
        self.schedule_renders();

        let Some(renderer) = self.windows.get_renderer_mut(window_id) else {
            return Ok(());
        };
        let Some(gui) = self.gui.as_mut() else {
            return Ok(());
        };
        let refined_on_screen = self.shown == Some((self.app.view_revision, true));
        let capture =
            self.screenshot.is_some() && refined_on_screen && self.frames_since_refined >= 2;
        match renderer.acquire(Some(Duration::from_secs(1)), |_| {}) {
            Ok(future) => {
                let target = renderer.swapchain_image_view();
                let after = gui.draw_on_image(future, target.clone());
                if capture {
                    let context = self.context.as_ref().context("no Vulkan context")?;
                    let (after, readback) = screenshot::copy_after(context, after, &target)?;
                    renderer.present(after, true);
                    if let Some(path) = self.screenshot.take() {
                        screenshot::save(
                            &readback,
                            target.image().extent(),
                            renderer.swapchain_format(),
                            &path,
                        )?;
                        eprintln!("screenshot saved: {}", path.display());
                        event_loop.exit();
                    }
                } else {
                    renderer.present(after, false);
                }
            }
            Err(vulkano::VulkanError::OutOfDate) => renderer.resize(),
            Err(e) => bail!("acquiring the next window image: {e}"),
        }
        if refined_on_screen {
            self.frames_since_refined += 1;
        }
        Ok(())
    }
}

impl ApplicationHandler for Studio {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gui.is_some() {
            return;
        }
        // vulkano-util panics when Vulkan is missing; turn that into an error message.
        let Ok(context) =
            std::panic::catch_unwind(|| VulkanoContext::new(VulkanoConfig::default()))
        else {
            self.fail(
                event_loop,
                anyhow::anyhow!(
                    "no Vulkan device can draw the window (install mesa-vulkan-drivers for lavapipe)"
                ),
            );
            return;
        };
        let descriptor = WindowDescriptor {
            width: self.size[0],
            height: self.size[1],
            title: format!("twinray studio — {}", self.app.case.name),
            ..WindowDescriptor::default()
        };
        self.windows
            .create_window(event_loop, &context, &descriptor, |ci| {
                ci.image_format = Format::B8G8R8A8_UNORM;
                ci.min_image_count = ci.min_image_count.max(2);
                // The screenshot copies the finished window image.
                ci.image_usage |= ImageUsage::TRANSFER_SRC;
            });
        let Some(renderer) = self.windows.get_primary_renderer_mut() else {
            self.fail(
                event_loop,
                anyhow::anyhow!("the window could not be created"),
            );
            return;
        };
        self.gui = Some(Gui::new(
            event_loop,
            renderer.surface(),
            renderer.graphics_queue(),
            renderer.swapchain_format(),
            GuiConfig::default(),
        ));
        self.context = Some(context);
    }

    fn window_event(
        &mut self,
        event_loop: &ActiveEventLoop,
        window_id: WindowId,
        event: WindowEvent,
    ) {
        if let Some(gui) = self.gui.as_mut() {
            gui.update(&event);
        }
        match event {
            WindowEvent::Resized(_) | WindowEvent::ScaleFactorChanged { .. } => {
                if let Some(r) = self.windows.get_renderer_mut(window_id) {
                    r.resize();
                }
                self.app.view_revision += 1;
            }
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::RedrawRequested => {
                if let Err(e) = self.redraw(event_loop, window_id) {
                    self.fail(event_loop, e);
                }
            }
            _ => {
                if let Some(r) = self.windows.get_renderer(window_id) {
                    r.window().request_redraw();
                }
            }
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        // Frames from the worker, replay playback and the recording clock need redraws without
        // input; otherwise the loop sleeps until the next event.
        let busy = self.worker.busy()
            || self.app.replay.as_ref().is_some_and(|r| r.playing)
            || self.app.recording.is_some()
            || self.app.segmentation.is_some()
            || self.requested != (self.app.view_revision, true)
            || self.screenshot.is_some();
        if busy {
            event_loop.set_control_flow(ControlFlow::WaitUntil(
                Instant::now() + Duration::from_millis(30),
            ));
            if let Some(r) = self.windows.get_primary_renderer() {
                r.window().request_redraw();
            }
        } else {
            event_loop.set_control_flow(ControlFlow::Wait);
        }
    }
}
