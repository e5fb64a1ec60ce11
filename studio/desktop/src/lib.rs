//! The desktop studio: [`app`] holds the studio's state apart from drawing (every user action
//! goes through `App::apply`, scene edits are recorded as lesson events) and [`window`] shows
//! it with winit and egui, the volume rendered on a worker thread through the scene crate's
//! `FrameRenderer`. The `twinray studio` command opens it with [`window::run`].

pub mod app;
pub mod window;
