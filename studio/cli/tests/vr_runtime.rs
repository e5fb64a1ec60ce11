//! `twinray vr` against a real OpenXR runtime: Monado, built headless (null compositor and
//! simulated headset) by `../shared/xr-runtime/build.sh` and cached in `~/.cache`, with the
//! OpenXR core validation layer and the Khronos Vulkan validation layer on. Each run must reach
//! FOCUSED, submit its frames, end the session the way the specification says (request exit,
//! STOPPING, end, EXITING), exit 0 and print no validation message; a recording made in the
//! headset must verify.
//!
//! CI always has `../shared` beside the clone. Only when `../shared/xr-runtime` is absent (a
//! clone elsewhere) do these tests skip, saying so on the terminal; any other problem (the
//! runtime does not build, a validation layer is not installed) fails them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{repo, scratch, twinray};

/// Frames each run shows before it ends the session.
const FRAMES: u32 = 60;
/// Longest a run may take (60 frames take about 4 s on lavapipe, under validation).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Writes past the test harness's capture, so that the line shows in `cargo test` output
/// (for the skip notice and the frame rate).
fn tell(line: &str) {
    // Nothing useful to do if the terminal is gone.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The runtime's manifest (`XR_RUNTIME_JSON`), built once per test process; `None` only when
/// `../shared/xr-runtime` does not exist.
fn runtime_json() -> Option<PathBuf> {
    static JSON: OnceLock<Option<PathBuf>> = OnceLock::new();
    JSON.get_or_init(|| {
        let root = repo().canonicalize().expect("the repository");
        let shared = root.join("../shared/xr-runtime");
        let shared = shared.canonicalize().unwrap_or(shared);
        let build = shared.join("build.sh");
        if !shared.exists() {
            tell(&format!(
                "\n*** SKIPPED: the OpenXR runtime tests (vr_runtime.rs) need {} \
                 (CI has ../shared beside the clone); `twinray vr` was NOT tested against a \
                 runtime ***\n",
                shared.display()
            ));
            return None;
        }
        let out = Command::new("bash")
            .arg(&build)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", build.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}; its logs are in ~/.cache/twinray-xr-runtime/): {stdout}{}",
            build.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let json = stdout
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("XR_RUNTIME_JSON="))
            .unwrap_or_else(|| panic!("{} printed no XR_RUNTIME_JSON=: {stdout}", build.display()));
        let json = PathBuf::from(json);
        assert!(
            json.is_file(),
            "{} is missing after the build",
            json.display()
        );
        Some(json)
    })
    .clone()
}

/// The validation layers the runs turn on must be installed (`make setup` installs both).
fn assert_validation_layers_installed() {
    let xr_layers = Path::new("/usr/share/openxr/1/api_layers/explicit.d");
    let has_xr_layer = std::fs::read_dir(xr_layers).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("XrApiLayer_core_validation")
        })
    });
    assert!(
        has_xr_layer,
        "the OpenXR validation layer is missing from {}: apt-get install \
         openxr-layer-corevalidation (make setup does)",
        xr_layers.display()
    );
    let vk_layer = Path::new("/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json");
    assert!(
        vk_layer.exists(),
        "the Vulkan validation layer is missing: apt-get install vulkan-validationlayers (make \
         setup does)"
    );
}

/// The runs share two CPU cores with the rest of the suite: one at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `twinray vr ARGS` on the runtime, validation layers on, every OpenXR call logged by Monado
/// (`xrEndFrame` lines count the frames it received), stdout and stderr piped.
fn spawn_vr(json: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_twinray"))
        .arg("vr")
        .args(args)
        .env("XR_RUNTIME_JSON", json)
        .env("XRT_COMPOSITOR_NULL", "1")
        .env("XR_ENABLE_API_LAYERS", "XR_APILAYER_LUNARG_core_validation")
        .env("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation")
        // The loader names each layer it inserts: proof that validation was on.
        .env("VK_LOADER_DEBUG", "layer")
        .env("OXR_DEBUG_ENTRYPOINTS", "1")
        .env_remove("TWINRAY_DEVICE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twinray runs")
}

/// What a run printed and how it ended.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// `twinray`'s own lines (`vr: …`), for failure messages: the runtime's log is long.
    fn vr_lines(&self) -> String {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("vr:"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `vr: N frames submitted in S s (R per second) on DEVICE, median stereo frame …`.
    fn summary(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("vr: ") && l.contains(" frames submitted in "))
            .unwrap_or_else(|| panic!("no frame summary:\n{}", self.vr_lines()))
    }

    /// Frames submitted and seconds taken, from the summary.
    fn submitted(&self) -> (u64, f64) {
        let words: Vec<&str> = self.summary().split_whitespace().collect();
        let frames = words[1].parse().expect("a frame count");
        let secs = words[5].parse().expect("seconds");
        (frames, secs)
    }

    /// The Vulkan device the frames were rendered on, from the summary.
    fn device(&self) -> &str {
        let summary = self.summary();
        summary
            .split_once(") on ")
            .and_then(|(_, rest)| rest.split_once(", median"))
            .map_or(summary, |(device, _)| device)
    }

    /// The session states `twinray vr` printed, in order.
    fn states(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("vr: session "))
            .collect()
    }
}

/// Waits for `child` (killing it past [`RUN_TIMEOUT`]); `on_stderr_line` sees each stderr
/// line as it comes.
fn finish(mut child: Child, mut on_stderr_line: impl FnMut(&str, u32)) -> Run {
    let mut stdout_pipe = child.stdout.take().expect("piped stdout");
    let stdout_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout_pipe.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr_pipe = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut stderr = String::new();
    let pid = child.id();
    let mut stderr_open = true;
    let status = loop {
        if stderr_open {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    on_stderr_line(&line, pid);
                    stderr.push_str(&line);
                    stderr.push('\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => stderr_open = false,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        } else if let Some(status) = child.try_wait().expect("twinray's status") {
            break status;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            panic!("twinray vr ran past {} s:\n{stderr}", RUN_TIMEOUT.as_secs());
        }
    };
    let stdout = stdout_reader.join().expect("stdout reader");
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Sends `signal` (`TERM`, `INT`) to `pid` through the shell's `kill` (always there).
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .status()
        .expect("sh runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// What every run against the runtime must show: the session reached FOCUSED and went through
/// the specification's shutdown, the runtime received at least `min_frames` frames, both
/// validation layers were on and said nothing, and the command exited 0.
fn assert_clean_session(run: &Run, min_frames: u64) {
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(run.status.success(), "{}: {}", run.status, run.vr_lines());
    let states = run.states();
    let at = |s: &str| states.iter().position(|x| *x == s);
    let (focused, stopping, exiting) = (at("FOCUSED"), at("STOPPING"), at("EXITING"));
    assert!(
        focused.is_some() && focused < stopping && stopping < exiting,
        "states {states:?}:\n{}",
        run.vr_lines()
    );
    assert!(
        run.stderr.contains("vr: requesting the end of the session"),
        "{}",
        run.vr_lines()
    );
    let (frames, _) = run.submitted();
    assert!(frames >= min_frames, "{frames} frames:\n{}", run.vr_lines());
    // Counted as words, not whole lines: the runtime logs from inside our process, and a line
    // another thread writes at the same moment can land inside its line (seen once in CI:
    // 59 whole lines for 60 frames).
    let received = run.stderr.matches("xrEndFrame").count() as u64;
    assert!(
        received >= frames,
        "the runtime logged {received} xrEndFrame calls for {frames} frames"
    );
    // The layers were loaded...
    assert!(
        all.contains("Core Validation output type"),
        "the OpenXR validation layer did not load:\n{}",
        run.vr_lines()
    );
    let vk_layers = all
        .matches("Insert instance layer \"VK_LAYER_KHRONOS_validation\"")
        .count();
    assert!(
        vk_layers >= 2,
        "the Vulkan validation layer should wrap the runtime's instance and the one it makes \
         for twinray; it was inserted {vk_layers} times"
    );
    // ...and said nothing.
    for marker in [
        "VALID_ERROR",
        "VALID_WARNING",
        "VUID-",
        "Validation Error",
        "Validation Warning",
    ] {
        let hits: Vec<&str> = all.lines().filter(|l| l.contains(marker)).take(5).collect();
        assert!(hits.is_empty(), "validation message ({marker}): {hits:#?}");
    }
    // The simulated headset tracks no hands: said once, not an error.
    let hand_notes = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("vr:") && l.contains("hand tracking"))
        .count();
    assert_eq!(hand_notes, 1, "{}", run.vr_lines());
}

/// `twinray lesson verify` passes on `lesson`.
fn assert_verifies(lesson: &Path) {
    let out = twinray(&["lesson", "verify", lesson.to_str().expect("utf-8 path")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("footer ok"),
        "{}: {text}{}",
        lesson.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn report_rate(what: &str, run: &Run) {
    let (frames, secs) = run.submitted();
    tell(&format!(
        "vr_runtime: {what}: {frames} frames submitted in {secs:.2} s = {:.1} frames/s against \
         the headless Monado runtime (its null compositor paces at 20 Hz), on {}, validation on",
        frames as f64 / secs.max(1e-9),
        run.device()
    ));
}

#[test]
fn teaching_on_the_demo_case_in_a_real_runtime_records_a_lesson_that_verifies() {
    let Some(json) = runtime_json() else { return };
    assert_validation_layers_installed();
    let _one = one_at_a_time();
    let lesson = scratch("taught.lesson");
    let frames = FRAMES.to_string();
    let child = spawn_vr(
        &json,
        &[
            "--frames",
            &frames,
            "--record",
            lesson.to_str().expect("utf-8 path"),
        ],
    );
    let run = finish(child, |_, _| {});
    assert_clean_session(&run, u64::from(FRAMES));
    assert_eq!(run.submitted().0, u64::from(FRAMES), "{}", run.vr_lines());
    assert!(
        run.stderr
            .contains(&format!("vr: ended after {FRAMES} frames (--frames)")),
        "{}",
        run.vr_lines()
    );
    assert!(
        run.stderr.contains(&format!("to {}", lesson.display())),
        "{}",
        run.vr_lines()
    );
    assert_verifies(&lesson);
    report_rate("demo case, recording", &run);
}

#[test]
fn the_demo_lesson_replays_in_a_real_runtime() {
    let Some(json) = runtime_json() else { return };
    assert_validation_layers_installed();
    let _one = one_at_a_time();
    let lesson = scratch("demo.lesson");
    let _ = std::fs::remove_file(&lesson);
    let out = twinray(&["demo", "--out", lesson.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = FRAMES.to_string();
    let child = spawn_vr(
        &json,
        &[lesson.to_str().expect("utf-8 path"), "--frames", &frames],
    );
    let run = finish(child, |_, _| {});
    assert_clean_session(&run, u64::from(FRAMES));
    assert_eq!(run.submitted().0, u64::from(FRAMES), "{}", run.vr_lines());
    report_rate("demo lesson, replay", &run);
}

#[test]
fn sigterm_mid_session_ends_it_cleanly_and_finishes_the_recording() {
    let Some(json) = runtime_json() else { return };
    assert_validation_layers_installed();
    let _one = one_at_a_time();
    let lesson = scratch("interrupted.lesson");
    // No frame limit: only the signal ends this session.
    let child = spawn_vr(&json, &["--record", lesson.to_str().expect("utf-8 path")]);
    let mut focused = false;
    let mut frames_after_focus = 0;
    let mut signalled = false;
    let run = finish(child, |line, pid| {
        focused |= line == "vr: session FOCUSED";
        if focused && line.trim() == "xrEndFrame" {
            frames_after_focus += 1;
        }
        // Mid-session: recording, and a few frames into FOCUSED.
        if !signalled && frames_after_focus >= 10 {
            send_signal(pid, "TERM");
            signalled = true;
        }
    });
    assert!(
        signalled,
        "the session never got 10 frames into FOCUSED:\n{}",
        run.vr_lines()
    );
    assert_clean_session(&run, 10);
    assert!(
        run.stderr.contains("vr: ended by a signal"),
        "{}",
        run.vr_lines()
    );
    assert_verifies(&lesson);
}
