//! `twinray`: the command line and (later) the studio application.

fn main() -> std::process::ExitCode {
    twinray_studio::cli::main()
}
