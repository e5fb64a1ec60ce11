//! Untrusted files never panic: real files of every kind the readers take (DICOM in every
//! codec, Enhanced CT, SEG, NIfTI CT and labels), mutated in seeded, repeatable ways (bytes
//! flipped, set to boundary values, runs overwritten with extreme integers, truncated, cut
//! and duplicated), through `read_frames_hu`, `load_series`, `read_seg`, `read_ct_bytes` and
//! `read_labels_bytes`. Every call must return, with a value or an error; a panic fails the test
//! with the seed that reproduces it.
//!
//! `make test` runs a few dozen cases per file; `make fuzz` sets `TWINRAY_FUZZ_CASES` for a
//! longer run. A crash found becomes a regression file in `tests/fixtures/regressions/`.

use std::path::{Path, PathBuf};

use twinray_io::dicom::{load_series, read_frames_hu, read_seg, LoadOptions};
use twinray_io::{read_ct_bytes, read_labels_bytes, Geometry};

/// Cases per seed file in `make test`. Most mutated DICOM files cost well under 0.1 s, but a
/// mutated element length makes dicom-rs's parser reserve and zero up to the declared length
/// (measured: 1.3 GB and about a second for one 39 KB file) before it finds the file too
/// short, so the budget here is small; `make fuzz` runs hundreds.
const DEFAULT_CASES: usize = 8;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn cases() -> usize {
    std::env::var("TWINRAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// xorshift64*: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four mutations of `bytes`, mostly in the first 4 KiB where headers and offsets live.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..=rng.below(4) {
        if out.is_empty() {
            break;
        }
        let span = if rng.below(4) == 0 {
            out.len()
        } else {
            out.len().min(4096)
        };
        let at = rng.below(span);
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)],
            2 => {
                let value: u32 =
                    [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0000, 0xFFFF][rng.below(6)];
                for (i, b) in value.to_le_bytes().iter().enumerate() {
                    if let Some(slot) = out.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => out.truncate(at),
            4 => {
                let len = rng.below(64).min(out.len() - at);
                out.drain(at..at + len);
            }
            _ => {
                let len = rng.below(64).min(out.len() - at);
                let copy: Vec<u8> = out[at..at + len].to_vec();
                out.splice(at..at, copy);
            }
        }
    }
    out
}

/// The process's peak resident memory so far (VmHWM), KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `read` on `cases()` mutations of `seed_file`; returns the panics as `seed: message`.
fn fuzz(seed_file: &Path, salt: u64, read: &dyn Fn(&[u8], &Path)) -> Vec<String> {
    let bytes = std::fs::read(seed_file).expect("seed file");
    let dir = std::env::temp_dir().join(format!("twinray-io-mutation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let name = seed_file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let scratch = dir.join(format!("{salt}-{name}"));
    let mut panics = Vec::new();
    for case in 0..cases() {
        let seed = (salt << 32) ^ (case as u64 + 1);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mutated = mutate(&bytes, &mut rng);
        std::fs::write(&scratch, &mutated).expect("write case");
        let started = std::time::Instant::now();
        let hwm_before = peak_rss_kib();
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read(&mutated, &scratch);
        })) {
            let message = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panics.push(format!("{name} case {case} (seed {seed:#x}): {message}"));
        }
        if std::env::var_os("TWINRAY_FUZZ_VERBOSE").is_some() {
            let grew = peak_rss_kib().saturating_sub(hwm_before);
            let secs = started.elapsed().as_secs_f64();
            if secs > 0.5 || grew > 100_000 {
                eprintln!("{name} case {case} (seed {seed:#x}): {secs:.2} s, peak grew {grew} KiB");
                if let Some(dir) = std::env::var_os("TWINRAY_FUZZ_DUMP") {
                    let _ =
                        std::fs::write(Path::new(&dir).join(format!("{seed:x}-{name}")), &mutated);
                }
            }
        }
    }
    std::fs::remove_file(&scratch).ok();
    panics
}

#[test]
fn mutated_dicom_files_never_panic() {
    // One file per codec and kind: every decoder and every header path.
    let files: Vec<PathBuf> = [
        "data/ct/wg04_codecs/CT1_UNC.dcm",
        "data/ct/wg04_codecs/CT1_RLE.dcm",
        "data/ct/wg04_codecs/CT1_J2KR.dcm",
        "data/ct/wg04_codecs/CT2_JLSL.dcm",
        "data/ct/wg04_codecs/CT2_JPLL.dcm",
        "data/ct/dcmtk_codecs/CT2_deflate.dcm",
        "data/ct/dcmtk_codecs/CT2_jpeg_baseline.dcm",
        "data/ct/misc/CT_small.dcm",
        "data/ct/misc/Philips_S21570_S1000_I10_localizer.dcm",
        "data/ct/dicom2nifti_gantry_tilt/IM-0001-0001.dcm",
        "segmentation/io/tests/fixtures/dicom/enhanced_ct.dcm",
    ]
    .iter()
    .map(|f| repo(f))
    .collect();
    let mut panics = Vec::new();
    for (salt, file) in files.iter().enumerate() {
        panics.extend(fuzz(file, salt as u64, &|_, path| {
            let _ = read_frames_hu(path);
            let _ = load_series(path, &LoadOptions::default());
        }));
    }
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

#[test]
fn mutated_segs_never_panic() {
    let grid = Geometry::axis_aligned([16, 16, 8], [1.0, 1.0, 2.0], [0.0, 0.0, 0.0]).expect("grid");
    let mut panics = Vec::new();
    for (salt, name) in ["seg_binary.dcm", "seg_fractional.dcm"].iter().enumerate() {
        let file = repo(&format!("segmentation/io/tests/fixtures/dicom/{name}"));
        panics.extend(fuzz(&file, 100 + salt as u64, &|_, path| {
            let _ = read_seg(path, &grid);
        }));
    }
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

#[test]
fn mutated_nifti_files_never_panic() {
    let mut panics = Vec::new();
    for (salt, rel) in [
        "data/demo/example_ct.nii.gz",
        "data/demo/spine_report_totalseg_vertebrae.nii.gz",
        "data/ct/totalsegmentator/example_seg.nii.gz",
    ]
    .iter()
    .enumerate()
    {
        // Mutate the decompressed stream too: gzip's CRC rejects most mutated .gz files early.
        let gz = std::fs::read(repo(rel)).expect("seed");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw)
            .expect("gunzip");
        let dir = std::env::temp_dir().join(format!("twinray-io-nifti-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch");
        let plain = dir.join(format!("{salt}.nii"));
        std::fs::write(&plain, &raw).expect("write");
        for seed_file in [repo(rel), plain] {
            panics.extend(fuzz(&seed_file, 200 + salt as u64, &|bytes, path| {
                let _ = read_ct_bytes(bytes, path);
                let _ = read_labels_bytes(bytes, path);
            }));
        }
    }
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
