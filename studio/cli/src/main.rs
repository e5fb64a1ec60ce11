//! `twinray`: the command line. Each `*_cmd` module parses one command's arguments and calls
//! the crates that do the work (io, segmentation, measure, scene, xr, desktop); [`cli`]
//! dispatches and turns errors into one line on stderr and exit status 2.

mod bundle_cmd;
mod cli;
mod demo_cmd;

mod dicom_cmd;
mod lesson_cmd;
mod library_cmd;
mod measure_cmd;
mod preset_cmd;
mod radiograph_cmd;
mod render_cmd;
mod replay_cmd;
mod segment_cmd;
mod shared;
mod studio_cmd;
mod vr_cmd;

fn main() -> std::process::ExitCode {
    cli::main()
}
