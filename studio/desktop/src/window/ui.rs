//! The studio's egui panels. They read the [`App`] and return [`Action`]s; they never change
//! the app themselves, so what the UI does is what `App::apply` does (and what gets recorded).

use egui::{
    Color32, ComboBox, Context, PointerButton, Pos2, Rect, Sense, Stroke, TextureHandle, Ui, Vec2,
};
use glam::{DVec3, Vec3};
use twinray_lessons::event::{ClipPlane as SceneClip, CropBox as SceneCrop};
use twinray_lessons::state::WindowLevel;
use twinray_lessons::tools::format_time_ns;
use twinray_transfer_functions::{Lut, Preset, TransferFunction};

use crate::app::mpr::SliceImage;
use crate::app::{scene_bridge, Action, App, MeasureTool, PenStyle, VoiceInput};
use twinray_renderer::surface;

/// Panel state that is not part of the app (text being typed, the tool in hand).
#[derive(Debug, Clone)]
pub struct UiState {
    /// Title of the next chapter mark.
    pub chapter_title: String,
    /// Where the next recording goes.
    pub record_path: String,
    /// Lesson to open.
    pub lesson_path: String,
    /// The pen is the active tool (drags draw instead of orbiting).
    pub pen_tool: bool,
    /// Selected curve point.
    pub selected_point: Option<usize>,
    /// Curve point being dragged.
    dragging_point: Option<usize>,
    /// While a board is dragged by hand (Shift + drag on it): its width factor since the grab,
    /// which the wheel changes.
    board_drag_scale: Option<f32>,
    /// Size of the 3D view in physical pixels (the render size follows it).
    pub view_size_px: [u32; 2],
    /// Last message (errors of actions, recording reports).
    pub status: String,
    /// Model for "Segment (AI)": a description or ONNX file; empty for the built-in model.
    pub segment_model: String,
    /// Image for "Add board": a DICOM radiograph, PNG or JPEG file.
    pub board_image: String,
    /// The lookup table the pen last picked with and the transfer function it was baked from:
    /// a drag picks on every pointer move, and baking 256 × 1024 texels each time would stall
    /// the UI thread.
    pen_lut: Option<(TransferFunction, Lut)>,
    /// The input devices listed for the microphone chooser (listing asks ALSA, so it is
    /// done when the chooser opens, not every frame).
    input_devices: Option<Vec<String>>,
    /// Title for "Save to library".
    pub library_title: String,
    /// The library search box.
    pub library_query: String,
    /// Thumbnails of library hits, by lesson id (decoded once).
    library_thumbnails: Thumbnails,
}

/// Decoded library thumbnails by lesson id (`None`: the bundle has none).
#[derive(Clone, Default)]
struct Thumbnails(std::collections::HashMap<String, Option<TextureHandle>>);

impl std::fmt::Debug for Thumbnails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} thumbnails", self.0.len())
    }
}

impl UiState {
    /// The baked table of `tf`, re-baked only when `tf` changed since the last pick.
    fn pen_lut(&mut self, tf: TransferFunction) -> &Lut {
        let entry = self
            .pen_lut
            .take()
            .filter(|(cached, _)| *cached == tf)
            .unwrap_or_else(|| {
                let lut = tf.bake();
                (tf, lut)
            });
        &self.pen_lut.insert(entry).1
    }
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            chapter_title: "Chapter 1".to_owned(),
            record_path: "studio.lesson".to_owned(),
            lesson_path: String::new(),
            pen_tool: false,
            selected_point: None,
            dragging_point: None,
            board_drag_scale: None,
            view_size_px: [512, 512],
            status: String::new(),
            segment_model: String::new(),
            board_image: String::new(),
            pen_lut: None,
            input_devices: None,
            library_title: String::new(),
            library_query: String::new(),
            library_thumbnails: Thumbnails::default(),
        }
    }
}

/// Textures the window keeps up to date.
#[derive(Default)]
pub struct Textures {
    /// The ray-marched frame.
    pub view: Option<TextureHandle>,
    /// The MPR slices and their images.
    pub mpr: Vec<(SliceImage, TextureHandle)>,
    /// The last refined frame (width, height, RGBA8): "Save to library" makes the thumbnail
    /// from it.
    pub last_frame: Option<(u32, u32, Vec<u8>)>,
}

/// Draws every panel; returns what the user asked for this frame.
pub fn draw(ctx: &Context, app: &App, state: &mut UiState, textures: &Textures) -> Vec<Action> {
    let mut actions = Vec::new();
    egui::TopBottomPanel::top("record-bar")
        .show(ctx, |ui| record_bar(ui, app, state, &mut actions));
    egui::TopBottomPanel::bottom("status").show(ctx, |ui| {
        ui.label(if state.status.is_empty() {
            "ready"
        } else {
            &state.status
        });
    });
    if app.replay.is_some() {
        egui::TopBottomPanel::bottom("replay-bar")
            .show(ctx, |ui| replay_bar(ui, app, &mut actions));
    }
    egui::SidePanel::left("left")
        .default_width(300.0)
        .show(ctx, |ui| {
            // A replayed lesson's scene is the instructor's: shown, not edited.
            if app.replay.is_some() {
                ui.disable();
            }
            egui::ScrollArea::vertical().show(ui, |ui| {
                egui::CollapsingHeader::new("Labels")
                    .default_open(true)
                    .show(ui, |ui| label_panel(ui, app, state, &mut actions));
                egui::CollapsingHeader::new("Transfer function")
                    .default_open(true)
                    .show(ui, |ui| transfer_panel(ui, app, state, &mut actions));
                egui::CollapsingHeader::new("Tools")
                    .default_open(true)
                    .show(ui, |ui| tools_panel(ui, app, state, &mut actions));
            });
        });
    egui::SidePanel::right("mpr")
        .default_width(240.0)
        .show(ctx, |ui| {
            mpr_panel(ui, app, textures, &mut actions);
            egui::CollapsingHeader::new("Library")
                .default_open(false)
                .show(ui, |ui| {
                    library_panel(ui, app, state, textures, &mut actions);
                });
        });
    egui::CentralPanel::default()
        .frame(egui::Frame::NONE.fill(Color32::BLACK))
        .show(ctx, |ui| view_3d(ui, app, state, textures, &mut actions));
    actions
}

fn record_bar(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.strong(format!("twinray studio — {}", app.case.name));
        ui.separator();
        if ui.button("Reset view").clicked() {
            actions.push(Action::ResetView);
        }
        ui.separator();
        let replaying = app.replay.is_some();
        match &app.recording {
            None => {
                ui.add_enabled_ui(!replaying, |ui| {
                    ui.add(egui::TextEdit::singleline(&mut state.record_path).desired_width(140.0))
                        .on_hover_text("lesson file to record into");
                    if ui.button("⏺ Record").clicked() {
                        actions.push(Action::StartRecording(state.record_path.clone().into()));
                    }
                    microphone_chooser(ui, app, state, actions);
                });
            }
            Some(rec) => {
                let t = rec.lesson_time_ns(app.now_ns);
                ui.colored_label(
                    Color32::RED,
                    format!(
                        "{} {}",
                        if rec.is_paused() {
                            "⏸ paused"
                        } else {
                            "⏺ recording"
                        },
                        format_time_ns(t)
                    ),
                );
                if rec.is_paused() {
                    if ui.button("Resume").clicked() {
                        actions.push(Action::ResumeRecording);
                    }
                } else if ui.button("Pause").clicked() {
                    actions.push(Action::PauseRecording);
                }
                if ui.button("⏹ Stop").clicked() {
                    actions.push(Action::StopRecording);
                }
                voice_meter(ui, app, rec, actions);
                ui.add(egui::TextEdit::singleline(&mut state.chapter_title).desired_width(120.0));
                if ui.button("Mark chapter").clicked() {
                    actions.push(Action::AddChapter(state.chapter_title.clone()));
                }
            }
        }
        ui.separator();
        if replaying {
            if ui.button("Close lesson").clicked() {
                actions.push(Action::CloseLesson);
            }
        } else {
            ui.add_enabled_ui(app.recording.is_none(), |ui| {
                ui.add(egui::TextEdit::singleline(&mut state.lesson_path).desired_width(140.0))
                    .on_hover_text("lesson file to replay");
                if ui.button("Open lesson").clicked() {
                    actions.push(Action::OpenLesson(state.lesson_path.clone().into()));
                }
            });
        }
    });
}

/// "Save to library" for the last recording; search; the hits with their thumbnails, chapter
/// and time, each opened at that time.
fn library_panel(
    ui: &mut Ui,
    app: &App,
    state: &mut UiState,
    textures: &Textures,
    actions: &mut Vec<Action>,
) {
    let Some(root) = &app.library_root else {
        ui.label("no library: start the studio with --library DIR or set TWINRAY_LIBRARY");
        return;
    };
    ui.label(format!("in {root}"));
    if let (None, Some(last)) = (&app.recording, &app.last_recording) {
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut state.library_title).hint_text("title"))
                .on_hover_text(format!("title for {}", last.path.display()));
            if ui.button("Save to library").clicked() {
                let thumbnail_png = textures
                    .last_frame
                    .as_ref()
                    .and_then(|(w, h, rgba)| thumbnail_png(*w, *h, rgba));
                actions.push(Action::SaveToLibrary {
                    title: state.library_title.clone(),
                    thumbnail_png,
                });
            }
        });
    }
    ui.horizontal(|ui| {
        let response = ui.add(
            egui::TextEdit::singleline(&mut state.library_query).hint_text("search: L3 spinous"),
        );
        let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Search").clicked() || enter {
            actions.push(Action::SearchLibrary(state.library_query.clone()));
        }
    });
    for hit in &app.library_hits {
        ui.separator();
        let texture = state
            .library_thumbnails
            .0
            .entry(hit.lesson.id.clone())
            .or_insert_with(|| {
                crate::app::library::thumbnail(root, &hit.lesson.id).map(|(w, h, rgba)| {
                    ui.ctx().load_texture(
                        format!("thumb-{}", hit.lesson.id),
                        egui::ColorImage::from_rgba_unmultiplied([w, h], &rgba),
                        egui::TextureOptions::LINEAR,
                    )
                })
            });
        ui.horizontal(|ui| {
            if let Some(t) = texture {
                ui.image((t.id(), Vec2::new(64.0, 64.0 * t.aspect_ratio().recip())));
            }
            ui.vertical(|ui| {
                ui.strong(&hit.lesson.title);
                ui.label(format!(
                    "{} at {:.1} s{}",
                    hit.text,
                    hit.time_s,
                    if hit.chapter.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", hit.chapter)
                    }
                ));
                if ui.button("Open here").clicked() {
                    actions.push(Action::OpenFromLibrary {
                        id: hit.lesson.id.clone(),
                        at_s: hit.time_s,
                    });
                }
            });
        });
    }
}

/// A PNG of at most 256 pixels on its longer side, for a library thumbnail.
fn thumbnail_png(width: u32, height: u32, rgba: &[u8]) -> Option<Vec<u8>> {
    let step = (width.max(height) / 256).max(1);
    let (w, h) = (width / step, height / step);
    let mut pixels = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let i = ((y * step * width + x * step) * 4) as usize;
            pixels.extend_from_slice(rgba.get(i..i + 4)?);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&pixels).ok()?;
    }
    Some(out)
}

/// The microphone for the next recording: the default input, a listed device, or none.
fn microphone_chooser(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    let label = match &app.voice_input {
        VoiceInput::Off => "🎤 off".to_owned(),
        VoiceInput::Default => "🎤 default input".to_owned(),
        VoiceInput::Device(name) => format!("🎤 {name}"),
    };
    let response = ComboBox::from_id_salt("microphone")
        .selected_text(label)
        .show_ui(ui, |ui| {
            let devices = state
                .input_devices
                .get_or_insert_with(twinray_voice::device::input_device_names);
            for (input, text) in [
                (VoiceInput::Default, "default input".to_owned()),
                (VoiceInput::Off, "no voice".to_owned()),
            ]
            .into_iter()
            .chain(
                devices
                    .iter()
                    .map(|d| (VoiceInput::Device(d.clone()), d.clone())),
            ) {
                if ui
                    .selectable_label(app.voice_input == input, text)
                    .clicked()
                {
                    actions.push(Action::SetVoiceInput(input));
                }
            }
        });
    if response.response.clicked() {
        // Devices come and go: list them again whenever the chooser is opened.
        state.input_devices = None;
    }
}

/// While recording: the microphone's level, mute, and what is recorded (or why nothing is).
fn voice_meter(ui: &mut Ui, app: &App, rec: &crate::app::Recording, actions: &mut Vec<Action>) {
    if rec.has_voice() {
        if let Some(problem) = rec.voice_problem() {
            ui.colored_label(Color32::YELLOW, "🎤 stopped")
                .on_hover_text(format!("recording goes on without voice: {problem}"));
        } else {
            ui.add(
                egui::ProgressBar::new(rec.voice_level())
                    .desired_width(60.0)
                    .desired_height(10.0),
            )
            .on_hover_text(format!("microphone level: {}", rec.voice_status));
        }
        let mut muted = app.voice_muted;
        if ui.checkbox(&mut muted, "mute").changed() {
            actions.push(Action::SetVoiceMuted(muted));
        }
    } else {
        ui.colored_label(Color32::YELLOW, "no voice")
            .on_hover_text(rec.voice_status.clone());
    }
}

fn replay_bar(ui: &mut Ui, app: &App, actions: &mut Vec<Action>) {
    let Some(replay) = &app.replay else {
        return;
    };
    ui.horizontal(|ui| {
        if replay.playing {
            if ui.button("⏸ Pause").clicked() {
                actions.push(Action::Pause);
            }
        } else if ui.button("▶ Play").clicked() {
            actions.push(Action::Play);
        }
        ComboBox::from_id_salt("speed")
            .selected_text(format!("{}×", replay.speed))
            .show_ui(ui, |ui| {
                for speed in [0.25, 0.5, 1.0, 2.0, 4.0] {
                    if ui
                        .selectable_label(replay.speed == speed, format!("{speed}×"))
                        .clicked()
                    {
                        actions.push(Action::SetSpeed(speed));
                    }
                }
            });
        let mut follow = replay.follow_instructor;
        if ui.checkbox(&mut follow, "Follow instructor").changed() {
            actions.push(Action::SetFollowInstructor(follow));
        }
        if let Some(status) = &replay.narration_status {
            let mut volume = app.narration_volume;
            if ui
                .add(egui::Slider::new(&mut volume, 0.0..=1.0).text("🔊"))
                .on_hover_text(status.clone())
                .changed()
            {
                actions.push(Action::SetNarrationVolume(volume));
            }
            let mut muted = app.narration_muted;
            if ui.checkbox(&mut muted, "mute").changed() {
                actions.push(Action::SetNarrationMuted(muted));
            }
            if status.starts_with("narration not played") || status.contains("voice lost") {
                ui.colored_label(Color32::YELLOW, "⚠ narration")
                    .on_hover_text(status.clone());
            }
        }
        ui.label(format!(
            "{} / {}",
            format_time_ns(replay.time_ns - replay.range_ns.0),
            format_time_ns(replay.range_ns.1 - replay.range_ns.0)
        ));
        if let Some(chapter) = &replay.state.chapter {
            ui.label(format!("— {chapter}"));
        }
        let problems = replay.problems();
        if !problems.is_empty() {
            ui.colored_label(
                Color32::YELLOW,
                format!("{} damaged part(s) skipped", problems.len()),
            )
            .on_hover_text(problems.join("\n"));
        }
    });
    // The timeline: chapters as ticks, the playhead as a line; click or drag to scrub.
    let (rect, response) = ui.allocate_exact_size(
        Vec2::new(ui.available_width(), 28.0),
        Sense::click_and_drag(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(40));
    let (t0, t1) = replay.range_ns;
    let span = (t1 - t0).max(1) as f32;
    let x_of = |t: i64| rect.left() + (t - t0) as f32 / span * rect.width();
    for chapter in &replay.chapters {
        let x = x_of(chapter.time_ns);
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(2.0, Color32::YELLOW),
        );
        painter.text(
            Pos2::new(x + 3.0, rect.top() + 2.0),
            egui::Align2::LEFT_TOP,
            &chapter.title,
            egui::FontId::proportional(11.0),
            Color32::YELLOW,
        );
    }
    let x = x_of(replay.time_ns);
    painter.line_segment(
        [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
        Stroke::new(2.0, Color32::WHITE),
    );
    if let Some(pos) = response.interact_pointer_pos() {
        if response.clicked() || response.dragged() {
            let f = ((pos.x - rect.left()) / rect.width()).clamp(0.0, 1.0);
            actions.push(Action::Seek(t0 + (f64::from(f) * f64::from(span)) as i64));
        }
    }
    ui.horizontal_wrapped(|ui| {
        for (i, chapter) in replay.chapters.iter().enumerate() {
            if ui.button(&chapter.title).clicked() {
                actions.push(Action::JumpToChapter(i));
            }
        }
    });
}

/// "Segment (AI)" with its model field, or the running job's progress and Cancel.
/// "Add board" with its image path: an X-ray beside the twin.
fn board_row(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    // Each board: move it (10 mm steps in the room: left/right, down/up, towards/away from
    // the patient's front), resize it, or take it away.
    for (&board_id, board) in &app.scene.boards {
        ui.horizontal_wrapped(|ui| {
            ui.label(&board.title);
            let step = 10.0;
            let moves = [
                (
                    "◀",
                    Vec3::new(-step, 0.0, 0.0),
                    1.0,
                    "towards the patient's right",
                ),
                (
                    "▶",
                    Vec3::new(step, 0.0, 0.0),
                    1.0,
                    "towards the patient's left",
                ),
                ("▼", Vec3::new(0.0, 0.0, -step), 1.0, "towards the feet"),
                ("▲", Vec3::new(0.0, 0.0, step), 1.0, "towards the head"),
                (
                    "front",
                    Vec3::new(0.0, -step, 0.0),
                    1.0,
                    "towards the patient's front",
                ),
                (
                    "back",
                    Vec3::new(0.0, step, 0.0),
                    1.0,
                    "towards the patient's back",
                ),
                ("−", Vec3::ZERO, 1.0 / 1.1, "smaller"),
                ("+", Vec3::ZERO, 1.1, "larger"),
            ];
            for (text, offset_mm, scale, hover) in moves {
                if ui.small_button(text).on_hover_text(hover).clicked() {
                    actions.push(Action::MoveBoard {
                        board_id,
                        offset_mm,
                        scale,
                    });
                }
            }
            if ui.small_button("hide").clicked() {
                actions.push(Action::HideBoard(board_id));
            }
        });
    }
    ui.horizontal(|ui| {
        let path = state.board_image.trim();
        if ui
            .add_enabled(!path.is_empty(), egui::Button::new("Add board"))
            .on_hover_text("Put a radiograph (DICOM, PNG or JPEG) beside the twin; recorded")
            .clicked()
        {
            actions.push(Action::AddBoard(std::path::PathBuf::from(path)));
        }
        ui.add(
            egui::TextEdit::singleline(&mut state.board_image)
                .hint_text("X-ray image path (.dcm, .png, .jpg)"),
        );
    });
    ui.separator();
}

fn segmentation_row(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    if let Some(job) = &app.segmentation {
        let (done, total) = job.progress();
        let text = if job.is_cancelling() {
            "cancelling…".to_owned()
        } else if total == 0 {
            format!("loading {}…", job.model_name)
        } else {
            format!("{} {done}/{total} windows", job.model_name)
        };
        let fraction = if total == 0 {
            0.0
        } else {
            done as f32 / total as f32
        };
        ui.add(egui::ProgressBar::new(fraction).text(text));
        if ui
            .add_enabled(!job.is_cancelling(), egui::Button::new("Cancel"))
            .clicked()
        {
            actions.push(Action::CancelSegmentation);
        }
    } else {
        ui.horizontal(|ui| {
            if ui
                .button("Segment (AI)")
                .on_hover_text("Segment the CT with the model; its labels replace these")
                .clicked()
            {
                actions.push(Action::StartSegmentation {
                    model: crate::app::segment_job::model_arg(&state.segment_model),
                });
            }
            ui.add(
                egui::TextEdit::singleline(&mut state.segment_model)
                    .hint_text("built-in model, or a .json / .onnx path"),
            );
        });
    }
    ui.separator();
}

fn label_panel(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    segmentation_row(ui, app, state, actions);
    board_row(ui, app, state, actions);
    let mut search = app.label_search.clone();
    ui.horizontal(|ui| {
        ui.label("Search");
        if ui.text_edit_singleline(&mut search).changed() {
            actions.push(Action::SetLabelSearch(search.clone()));
        }
    });
    if ui.button("Show all").clicked() {
        actions.push(Action::ShowAllLabels);
    }
    let listed = app.listed_labels();
    if listed.is_empty() {
        ui.label("no label matches");
    }
    for label in listed {
        let style = app.label_state(label);
        let name = app.label_name(label);
        ui.horizontal(|ui| {
            let mut visible = style.visible;
            if ui.checkbox(&mut visible, &name).changed() {
                actions.push(Action::SetLabelVisible { label, visible });
            }
            let mut colour = app.label_colour(label);
            // Unlabelled tissue keeps the preset's colours; only labels are recoloured.
            if label != 0 && egui::color_picker::color_edit_button_srgb(ui, &mut colour).changed() {
                actions.push(Action::SetLabelColour {
                    label,
                    colour_rgb: colour,
                });
            }
            let mut opacity = style.opacity;
            if ui
                .add(
                    egui::DragValue::new(&mut opacity)
                        .range(0.0..=1.0)
                        .speed(0.01),
                )
                .on_hover_text(format!("opacity of {name}"))
                .changed()
            {
                actions.push(Action::SetLabelOpacity { label, opacity });
            }
            if ui
                .small_button("isolate")
                .on_hover_text(format!("show only {name}"))
                .clicked()
            {
                actions.push(Action::Isolate(label));
            }
        });
    }
}

fn transfer_panel(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    let current = app
        .shown_scene()
        .preset
        .clone()
        .unwrap_or_else(|| scene_bridge::DEFAULT_PRESET.to_owned());
    ComboBox::from_label("preset")
        .selected_text(&current)
        .show_ui(ui, |ui| {
            for name in Preset::BUILT_IN_NAMES {
                if ui.selectable_label(current == name, name).clicked() {
                    actions.push(Action::SetPreset(name.to_owned()));
                }
            }
        });
    ui.label("Drag points; double-click adds one, right-click removes it.");
    curve_editor(ui, app, state, actions);
    let curve = app.curve();
    if let Some(i) = state.selected_point.filter(|&i| i < curve.len()) {
        let p = curve[i];
        ui.horizontal(|ui| {
            ui.label(format!(
                "point {i}: {:.0} HU, opacity {:.2}",
                p.density_hu, p.rgba[3]
            ));
            let mut rgb = [p.rgba[0], p.rgba[1], p.rgba[2]];
            if egui::color_picker::color_edit_button_rgb(ui, &mut rgb).changed() {
                actions.push(Action::SetCurvePointColour { index: i, rgb });
            }
        });
    }
}

/// HU range the curve editor spans.
const EDITOR_HU: (f32, f32) = (-1024.0, 2000.0);

/// The values the curve editor spans: [`EDITOR_HU`] on a CT (air to dense bone), the image's
/// whole range on an MR.
fn editor_range(app: &App) -> (f32, f32) {
    match app.case.intensity.modality {
        twinray_io::Modality::Ct => EDITOR_HU,
        twinray_io::Modality::Mr => (app.case.range.low, app.case.range.high),
    }
}

fn curve_editor(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    let (rect, response) = ui.allocate_exact_size(
        Vec2::new(ui.available_width(), 140.0),
        Sense::click_and_drag(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(25));
    let editor = editor_range(app);
    let x_of = |hu: f32| rect.left() + (hu - editor.0) / (editor.1 - editor.0) * rect.width();
    let hu_of = |x: f32| editor.0 + (x - rect.left()) / rect.width() * (editor.1 - editor.0);
    let y_of = |a: f32| rect.bottom() - a * rect.height();
    // The histogram, log-scaled so that bone shows next to the huge air and soft-tissue peaks.
    let max = app.case.histogram.iter().copied().max().unwrap_or(1).max(1) as f32;
    for (bin, &count) in app.case.histogram.iter().enumerate() {
        let hu = app.case.histogram_value(bin);
        if !(editor.0..editor.1).contains(&hu) || count == 0 {
            continue;
        }
        let h = (count as f32).ln_1p() / max.ln_1p();
        let x = x_of(hu);
        painter.line_segment(
            [
                Pos2::new(x, rect.bottom()),
                Pos2::new(x, rect.bottom() - h * rect.height()),
            ],
            Stroke::new(2.0, Color32::from_gray(70)),
        );
    }
    let curve = app.curve();
    let points: Vec<Pos2> = curve
        .iter()
        .map(|p| Pos2::new(x_of(p.density_hu), y_of(p.rgba[3])))
        .collect();
    painter.add(egui::Shape::line(
        points.clone(),
        Stroke::new(1.5, Color32::WHITE),
    ));
    for (i, (pos, p)) in points.iter().zip(&curve).enumerate() {
        let fill = Color32::from_rgb(
            (p.rgba[0].clamp(0.0, 1.0) * 255.0) as u8,
            (p.rgba[1].clamp(0.0, 1.0) * 255.0) as u8,
            (p.rgba[2].clamp(0.0, 1.0) * 255.0) as u8,
        );
        let selected = state.selected_point == Some(i);
        painter.circle(
            *pos,
            if selected { 6.0 } else { 4.5 },
            fill,
            Stroke::new(
                1.0,
                if selected {
                    Color32::YELLOW
                } else {
                    Color32::BLACK
                },
            ),
        );
    }
    let nearest = |pos: Pos2| {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.distance(pos)))
            .filter(|(_, d)| *d < 10.0)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    };
    if let Some(pos) = response.interact_pointer_pos() {
        if response.drag_started_by(PointerButton::Primary) || response.clicked() {
            state.dragging_point = nearest(pos);
            if state.dragging_point.is_some() {
                state.selected_point = state.dragging_point;
            }
        }
        if response.dragged_by(PointerButton::Primary) {
            if let Some(index) = state.dragging_point {
                actions.push(Action::MoveCurvePoint {
                    index,
                    density_hu: hu_of(pos.x),
                    opacity: ((rect.bottom() - pos.y) / rect.height()).clamp(0.0, 1.0),
                });
            }
        }
        if response.double_clicked() && nearest(pos).is_none() {
            actions.push(Action::AddCurvePoint {
                density_hu: hu_of(pos.x),
            });
        }
        if response.secondary_clicked() {
            if let Some(i) = nearest(pos) {
                actions.push(Action::RemoveCurvePoint(i));
                state.selected_point = None;
            }
        }
    }
    if response.drag_stopped() {
        state.dragging_point = None;
    }
}

fn tools_panel(ui: &mut Ui, app: &App, state: &mut UiState, actions: &mut Vec<Action>) {
    let scene = app.shown_scene();
    let volume = scene_bridge::volume_box_mm(app.case.ct.geometry());
    // Clip plane: one of the six patient directions, and a position along it.
    ui.strong("Clip plane");
    let mut on = scene.clip_plane.is_some();
    let plane = scene.clip_plane.unwrap_or(SceneClip {
        normal: Vec3::Y,
        distance_mm: app.case.ct.geometry().centre_mm().y as f32,
    });
    if ui.checkbox(&mut on, "clip").changed() {
        actions.push(Action::SetClipPlane(on.then_some(plane)));
    }
    if on {
        let directions = [
            ("keep right (−L)", Vec3::X),
            ("keep left", Vec3::NEG_X),
            ("keep anterior", Vec3::Y),
            ("keep posterior", Vec3::NEG_Y),
            ("keep feet", Vec3::Z),
            ("keep head", Vec3::NEG_Z),
        ];
        let current = directions
            .iter()
            .find(|(_, n)| n.distance(plane.normal) < 1e-3)
            .map_or("custom", |(name, _)| name);
        ComboBox::from_id_salt("clip-direction")
            .selected_text(current)
            .show_ui(ui, |ui| {
                for (name, normal) in directions {
                    if ui.selectable_label(current == name, name).clicked() {
                        let centre = app.case.ct.geometry().centre_mm().as_vec3();
                        actions.push(Action::SetClipPlane(Some(SceneClip {
                            normal,
                            distance_mm: normal.dot(centre),
                        })));
                    }
                }
            });
        let extent = |n: Vec3| {
            let (a, b) = (n.dot(volume.min_mm), n.dot(volume.max_mm));
            (a.min(b), a.max(b))
        };
        let (lo, hi) = extent(plane.normal);
        let mut d = plane.distance_mm;
        if ui
            .add(egui::Slider::new(&mut d, lo..=hi).text("mm"))
            .changed()
        {
            actions.push(Action::SetClipPlane(Some(SceneClip {
                distance_mm: d,
                ..plane
            })));
        }
    }
    ui.separator();
    ui.strong("Crop box");
    let mut on = scene.crop_box.is_some();
    if ui.checkbox(&mut on, "crop").changed() {
        actions.push(Action::SetCropBox(on.then_some(volume)));
    }
    if let Some(crop) = scene.crop_box {
        let mut edited = crop;
        for (axis, name) in ["x (R→L)", "y (A→P)", "z (F→H)"].iter().enumerate() {
            let (lo, hi) = (volume.min_mm[axis], volume.max_mm[axis]);
            ui.add(
                egui::Slider::new(&mut edited.min_mm[axis], lo..=hi).text(format!("{name} min")),
            );
            ui.add(
                egui::Slider::new(&mut edited.max_mm[axis], lo..=hi).text(format!("{name} max")),
            );
            edited.max_mm[axis] = edited.max_mm[axis].max(edited.min_mm[axis]);
        }
        if edited != crop {
            actions.push(Action::SetCropBox(Some(SceneCrop { ..edited })));
        }
    }
    ui.separator();
    ui.strong("MPR window/level");
    let wl = app.window_level();
    let (mut c, mut w) = (wl.centre_hu, wl.width_hu);
    let a = ui.add(egui::Slider::new(&mut c, -1000.0..=2000.0).text("level HU"));
    let b = ui.add(egui::Slider::new(&mut w, 1.0..=4000.0).text("window HU"));
    if a.changed() || b.changed() {
        actions.push(Action::SetWindowLevel(WindowLevel {
            centre_hu: c,
            width_hu: w,
        }));
    }
    ui.separator();
    ui.strong("3D pen");
    ui.checkbox(
        &mut state.pen_tool,
        "draw with the mouse (instead of orbiting)",
    );
    let mut pen = app.pen;
    let mut colour = Color32::from_rgba_unmultiplied(
        pen.colour_rgba[0],
        pen.colour_rgba[1],
        pen.colour_rgba[2],
        pen.colour_rgba[3],
    );
    let c = ui.color_edit_button_srgba(&mut colour);
    let w = ui.add(egui::Slider::new(&mut pen.width_mm, 0.5..=10.0).text("width mm"));
    if c.changed() || w.changed() {
        pen.colour_rgba = colour.to_srgba_unmultiplied();
        actions.push(Action::SetPenStyle(PenStyle { ..pen }));
    }
    ui.separator();
    ui.strong("Measure (click on the anatomy)");
    ui.horizontal_wrapped(|ui| {
        for tool in std::iter::once(None).chain(MeasureTool::ALL.map(Some)) {
            let name = tool.map_or("off", MeasureTool::name);
            if ui
                .selectable_label(app.measure_tool == tool, name)
                .clicked()
            {
                actions.push(Action::SetMeasureTool(tool));
            }
        }
    });
    if let Some(tool) = app.measure_tool {
        ui.label(format!(
            "{}: {} of {} points",
            tool.name(),
            app.measure_points.len(),
            tool.points_needed()
        ));
    }
    if ui.button("Clear measurements").clicked() {
        actions.push(Action::ClearMeasurements);
    }
}

fn mpr_panel(ui: &mut Ui, app: &App, textures: &Textures, actions: &mut Vec<Action>) {
    let crosshair = app.crosshair_mm();
    ui.label(format!(
        "crosshair {:.0}, {:.0}, {:.0} mm",
        crosshair.x, crosshair.y, crosshair.z
    ));
    for (slice, texture) in &textures.mpr {
        ui.label(slice.plane.name());
        let width = ui.available_width();
        let size = Vec2::new(
            width,
            width * slice.height as f32 / slice.width.max(1) as f32,
        );
        let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
        let painter = ui.painter_at(rect);
        painter.image(
            texture.id(),
            rect,
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
        let scale = rect.width() / slice.width.max(1) as f32;
        let [cx, cy] = slice.pixel_of(crosshair);
        let (x, y) = (
            rect.left() + cx as f32 * scale,
            rect.top() + cy as f32 * scale,
        );
        let line = Stroke::new(1.0, Color32::from_rgb(0, 200, 255));
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            line,
        );
        painter.line_segment(
            [Pos2::new(rect.left(), y), Pos2::new(rect.right(), y)],
            line,
        );
        if let Some(pos) = response.interact_pointer_pos() {
            if response.clicked() || response.dragged() {
                let px = f64::from((pos.x - rect.left()) / scale);
                let py = f64::from((pos.y - rect.top()) / scale);
                actions.push(Action::SetCrosshair(slice.patient_at(px, py)));
            }
        }
    }
}

fn view_3d(
    ui: &mut Ui,
    app: &App,
    state: &mut UiState,
    textures: &Textures,
    actions: &mut Vec<Action>,
) {
    let rect = ui.available_rect_before_wrap();
    let response = ui.allocate_rect(rect, Sense::click_and_drag());
    let ppp = ui.ctx().pixels_per_point();
    state.view_size_px = [
        ((rect.width() * ppp).round() as u32).max(1),
        ((rect.height() * ppp).round() as u32).max(1),
    ];
    let painter = ui.painter_at(rect);
    match &textures.view {
        Some(texture) => {
            painter.image(
                texture.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        None => {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "rendering…",
                egui::FontId::proportional(16.0),
                Color32::GRAY,
            );
        }
    }

    let view_size_px = state.view_size_px;
    let to_pixel = |pos: Pos2| {
        [
            f64::from((pos.x - rect.left()) / rect.width()) * f64::from(view_size_px[0]),
            f64::from((pos.y - rect.top()) / rect.height()) * f64::from(view_size_px[1]),
        ]
    };
    // Shift + drag on a board moves it in the plane facing the camera (the wheel resizes it
    // meanwhile); recorded a few times a second and at release, its strokes going with it.
    if response.drag_started_by(PointerButton::Primary)
        && ui.input(|i| i.modifiers.shift)
        && app.replay.is_none()
    {
        if let Some(pos) = response.interact_pointer_pos() {
            let camera = app.camera(view_size_px);
            let (origin, dir) = surface::pixel_ray(&camera, view_size_px, to_pixel(pos));
            if let Some((board_id, t, _)) = app.board_frames().hit(origin, dir) {
                actions.push(Action::GrabBoard {
                    board_id,
                    grip_mm: origin + dir * t,
                });
                state.board_drag_scale = Some(1.0);
            }
        }
    }
    let moving_board = state.board_drag_scale.is_some();
    if let Some(scale) = state.board_drag_scale.as_mut() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        *scale = (*scale * (scroll * 0.003).exp()).clamp(0.05, 20.0);
        if let Some(pos) = response.interact_pointer_pos() {
            let camera = app.camera(view_size_px);
            let (ray_origin_mm, ray_dir) = surface::pixel_ray(&camera, view_size_px, to_pixel(pos));
            actions.push(Action::DragBoard {
                ray_origin_mm,
                ray_dir,
                scale: *scale,
            });
        }
        if response.drag_stopped_by(PointerButton::Primary) || !response.dragged() {
            actions.push(Action::ReleaseBoard);
            state.board_drag_scale = None;
        }
    }
    let measuring = app.measure_tool.is_some() && app.replay.is_none() && !moving_board;
    let drawing = state.pen_tool && !measuring && app.replay.is_none() && !moving_board;
    let mut pick_at = |pos: Pos2| -> Option<DVec3> {
        let size = view_size_px;
        let camera = app.camera(size);
        surface::pick(
            &app.case.ct,
            app.case.labels.as_deref(),
            state.pen_lut(app.transfer_function()),
            &camera,
            &app.render_options(),
            size,
            to_pixel(pos),
        )
    };
    if measuring && response.clicked_by(PointerButton::Primary) {
        if let Some(pos) = response.interact_pointer_pos() {
            // A board in front of the anatomy takes the click (a Cobb angle on a radiograph).
            let camera = app.camera(view_size_px);
            let (origin, dir) = surface::pixel_ray(&camera, view_size_px, to_pixel(pos));
            let surface = pick_at(pos);
            let on_board = app
                .board_frames()
                .hit(origin, dir)
                .filter(|(_, t, _)| surface.is_none_or(|p| (p - origin).length() > *t));
            actions.push(match on_board {
                Some((board_id, _, point_mm)) => Action::MeasurePointOnBoard { board_id, point_mm },
                None => Action::MeasurePoint(surface),
            });
        }
    }
    if drawing {
        if let Some(pos) = response.interact_pointer_pos() {
            // A board in front of the anatomy takes the pen: strokes on it are stored in its
            // own millimetres, so they follow it.
            let camera = app.camera(view_size_px);
            let (origin, dir) = surface::pixel_ray(&camera, view_size_px, to_pixel(pos));
            let surface = pick_at(pos);
            let on_board = app
                .board_frames()
                .hit(origin, dir)
                .filter(|(_, t, _)| surface.is_none_or(|p| (p - origin).length() > *t));
            let started = response.drag_started_by(PointerButton::Primary);
            if started || response.dragged_by(PointerButton::Primary) {
                actions.push(match (on_board, started) {
                    (Some((board_id, _, point_mm)), true) => {
                        Action::PenDownOnBoard { board_id, point_mm }
                    }
                    (Some((board_id, _, point_mm)), false) => {
                        Action::PenMoveOnBoard { board_id, point_mm }
                    }
                    (None, true) => Action::PenDown(surface),
                    (None, false) => Action::PenMove(surface),
                });
            }
        }
        if response.drag_stopped_by(PointerButton::Primary) {
            actions.push(Action::PenUp);
        }
    }
    // The name of the labelled structure under the pointer (and under the pen while it draws),
    // beside the pointer: a learner hovering over a replay sees what the instructor points at.
    if let Some(pos) = response.hover_pos() {
        if let Some(name) = pick_at(pos).and_then(|p| app.structure_at(p)) {
            painter.text(
                pos + egui::vec2(14.0, 10.0),
                egui::Align2::LEFT_TOP,
                name,
                egui::FontId::proportional(14.0),
                Color32::WHITE,
            );
        }
    }
    if !drawing && !moving_board && response.dragged_by(PointerButton::Primary) {
        let d = response.drag_delta();
        actions.push(Action::Orbit {
            d_azimuth_deg: -f64::from(d.x) * 0.4,
            d_elevation_deg: f64::from(d.y) * 0.4,
        });
    }
    if response.dragged_by(PointerButton::Secondary) || response.dragged_by(PointerButton::Middle) {
        let d = response.drag_delta();
        let h = rect.height().max(1.0);
        actions.push(Action::Pan {
            right: -f64::from(d.x / h),
            up: f64::from(d.y / h),
        });
    }
    if response.hovered() && !moving_board {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            actions.push(Action::Zoom {
                factor: f64::from(scroll * 0.003).exp(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    use super::*;
    use crate::app::case::OpenCase;

    #[test]
    fn the_pen_rebakes_its_table_only_when_the_transfer_function_changes() {
        let bone = TransferFunction::new(Preset::load("ct-bone").expect("built-in preset"));
        let soft = TransferFunction::new(Preset::load("ct-soft-tissue").expect("built-in preset"));
        let mut ui = UiState::default();
        let first = ui.pen_lut(bone.clone()).clone();
        assert_eq!(first, bone.bake());
        assert_eq!(
            *ui.pen_lut(bone.clone()),
            first,
            "same function, same table"
        );
        let changed = ui.pen_lut(soft.clone()).clone();
        assert_eq!(changed, soft.bake(), "a new function gets its own table");
        assert_ne!(changed, first);
    }

    struct Fixture {
        app: App,
        ui: UiState,
        actions: Vec<Action>,
    }

    fn harness() -> Harness<'static, Fixture> {
        let case = OpenCase::demo().expect("demo case");
        let fixture = Fixture {
            app: App::new(case),
            ui: UiState::default(),
            actions: Vec::new(),
        };
        let mut harness = Harness::builder()
            .with_size(Vec2::new(1280.0, 900.0))
            .build_state(
                |ctx, f: &mut Fixture| {
                    let actions = draw(ctx, &f.app, &mut f.ui, &Textures::default());
                    f.actions.extend(actions);
                },
                fixture,
            );
        harness.run();
        harness
    }

    /// Applies what the panels asked for, as the window does.
    fn apply_all(harness: &mut Harness<'static, Fixture>) -> Vec<Action> {
        let f = harness.state_mut();
        let actions = std::mem::take(&mut f.actions);
        for a in &actions {
            f.app.apply(a.clone()).expect("the action applies");
        }
        harness.run();
        actions
    }

    #[test]
    fn segment_button_starts_a_job_that_shows_progress_and_cancels() {
        let mut harness = harness();
        let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../segmentation/inference/tests/fixtures/inference/tiny_unet3d.json");
        harness.state_mut().ui.segment_model = model.display().to_string();
        harness.get_by_label("Segment (AI)").click();
        harness.run();
        let actions = apply_all(&mut harness);
        assert_eq!(
            actions,
            vec![Action::StartSegmentation { model: Some(model) }]
        );
        assert!(harness.state().app.segmentation.is_some());
        harness.get_by_label("Cancel").click();
        harness.run();
        assert_eq!(apply_all(&mut harness), vec![Action::CancelSegmentation]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while harness.state().app.segmentation.is_some() {
            assert!(std::time::Instant::now() < deadline, "the job did not end");
            std::thread::sleep(std::time::Duration::from_millis(10));
            let now_ns = harness.state().app.now_ns + 10_000_000;
            harness
                .state_mut()
                .app
                .apply(Action::Tick { now_ns })
                .expect("tick");
        }
        assert_eq!(
            harness.state().app.case.present_labels,
            (26..=33).collect::<Vec<u16>>()
        );
        harness.run();
        // Back to the button once the job has ended.
        harness.get_by_label("Segment (AI)");
    }

    #[test]
    fn unticking_a_label_hides_it() {
        let mut harness = harness();
        harness.get_by_label("vertebrae_L1").click();
        harness.run();
        let actions = apply_all(&mut harness);
        assert!(actions.contains(&Action::SetLabelVisible {
            label: 31,
            visible: false
        }));
        assert!(!harness.state().app.label_state(31).visible);
        harness.get_by_label("Show all").click();
        harness.run();
        apply_all(&mut harness);
        assert!(harness.state().app.label_state(31).visible);
    }

    #[test]
    fn record_and_stop_buttons_drive_the_recorder() {
        let mut harness = harness();
        let path = std::env::temp_dir().join(format!("twinray-ui-{}.lesson", std::process::id()));
        // A file left by an earlier run (process ids repeat) would move this recording aside.
        let _ = std::fs::remove_file(&path);
        harness.state_mut().ui.record_path = path.display().to_string();
        harness.run();
        harness.get_by_label("⏺ Record").click();
        harness.run();
        apply_all(&mut harness);
        assert!(harness.state().app.recording.is_some());
        harness.get_by_label("Mark chapter").click();
        harness.run();
        harness.get_by_label("⏹ Stop").click();
        harness.run();
        let actions = apply_all(&mut harness);
        assert!(actions.contains(&Action::AddChapter("Chapter 1".into())));
        assert!(actions.contains(&Action::StopRecording));
        let info = twinray_lessons::tools::info(&path).expect("a finalised lesson");
        assert_eq!(info.chapters.len(), 1);
        assert!(info.has_footer, "Stop writes the index");
    }
}
