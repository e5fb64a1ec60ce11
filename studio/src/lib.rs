//! The twinray application as a library: the command line (`twinray`), the desktop studio
//! ([`app`] state and its [`window`]), the embedded demo case, and the [`scene`] module that
//! turns lesson state into render inputs for the replayer, the desktop window and VR alike. The `twinray` binary only calls [`cli::main`].

pub mod app;
pub mod case;
pub mod cli;
pub mod demo_cmd;
pub mod dicom_cmd;
pub mod lesson_cmd;
pub mod render_cmd;
pub mod replay_cmd;
pub mod scene;
pub mod segment_cmd;
pub mod surface;
pub mod vr_cmd;
pub mod window;
pub mod xr;
