//! Lesson benchmark: size per hour per stream, time to open, `state_at` latency in a
//! two-hour lesson and the producer's cost per frame. Prints figures; asserts nothing.
//!
//! The measuring code lives in `twinray_lessons::bench_support` so that
//! `cargo run --release -p twinray-lessons --example lesson_bench` prints the same figures
//! without building the renderer.

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("twinray-lesson-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let report = twinray_lessons::bench_support::run(
        twinray_lessons::bench_support::BenchConfig::default(),
        &dir,
    );
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", report?);
    Ok(())
}
