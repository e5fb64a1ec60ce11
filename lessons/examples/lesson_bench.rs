//! Runs the lesson benchmark and prints its figures (the same code as
//! `cargo bench -p twinray-benches --bench lessons`).
//!
//! `cargo run --release -p twinray-lessons --example lesson_bench [hours]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = twinray_lessons::bench_support::BenchConfig::default();
    if let Some(hours) = std::env::args().nth(1) {
        let hours: f64 = hours.parse()?;
        // Whole nanoseconds of a few hours fit i64 easily.
        #[allow(clippy::cast_possible_truncation)]
        let ns = (hours * 3.6e12) as i64;
        config.lesson_duration_ns = ns;
    }
    let dir = std::env::temp_dir().join(format!("twinray-lesson-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let report = twinray_lessons::bench_support::run(config, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", report?);
    Ok(())
}
