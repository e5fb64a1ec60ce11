//! What the commands share: `--device` and `TWINRAY_DEVICE`, and loading a case with a
//! progress line and its warnings on stderr.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use clap::ValueEnum;
use twinray_io::{CaseOptions, LoadedCase, SliceProgress};
use twinray_lessons::player::Player;
use twinray_renderer::DevicePreference;
use twinray_scene::lesson::CaseChoice;
use twinray_scene::Case;

/// Device kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    /// Best available: discrete GPU, integrated GPU, then CPU.
    Auto,
    /// A hardware GPU only.
    Gpu,
    /// The CPU renderer (lavapipe) only.
    Cpu,
}

impl DeviceArg {
    /// The renderer's preference; without a flag, `TWINRAY_DEVICE` or auto.
    pub fn resolve(arg: Option<Self>) -> Result<DevicePreference> {
        let flag = arg.map(|a| match a {
            Self::Auto => DevicePreference::Auto,
            Self::Gpu => DevicePreference::Gpu,
            Self::Cpu => DevicePreference::Cpu,
        });
        Ok(twinray_scene::device::device_preference(flag)?)
    }
}

/// A progress line on stderr while a long DICOM series decodes (only series of 50 slices or
/// more, in steps of 10 %), for [`twinray_io::load_case`] and friends.
pub struct SliceProgressLine {
    last_shown: AtomicUsize,
}

impl SliceProgressLine {
    /// Nothing shown yet.
    pub fn new() -> Self {
        Self {
            last_shown: AtomicUsize::new(usize::MAX),
        }
    }

    /// Shows `done` of `total` slices.
    pub fn show(&self, done: usize, total: usize) {
        if total < 50 {
            return;
        }
        let pct = done * 100 / total / 10 * 10;
        if self.last_shown.swap(pct, Ordering::Relaxed) != pct {
            eprint!("\rdecoding {total} slices: {pct:3}%");
            if done == total {
                eprintln!();
            }
        }
    }
}

/// Prints warnings as `warning: …` lines on stderr.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Runs `load` with a progress line on stderr for long DICOM series, then prints the
/// warnings it returns: how every command loads a case.
fn loading<T>(load: impl FnOnce(SliceProgress<'_>) -> Result<(T, Vec<String>)>) -> Result<T> {
    let line = SliceProgressLine::new();
    let progress = |done, total| line.show(done, total);
    let (loaded, warnings) = load(&progress)?;
    print_warnings(&warnings);
    Ok(loaded)
}

/// `--modality` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModalityArg {
    /// Computed tomography: values in Hounsfield units.
    Ct,
    /// Magnetic resonance: values in scanner units.
    Mr,
}

impl From<ModalityArg> for twinray_io::Modality {
    fn from(m: ModalityArg) -> Self {
        match m {
            ModalityArg::Ct => Self::Ct,
            ModalityArg::Mr => Self::Mr,
        }
    }
}

/// The image options every command that opens an image shares: which DICOM series, and what
/// the image is when the file does not say (a NIfTI).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImageArgs {
    /// What the image is: ct (values in HU) or mr (scanner units). Default: a DICOM series'
    /// own Modality; for a NIfTI, which does not say, 3D Slicer's rule (a value range under
    /// 1500 is MR-like, a wider one CT-like).
    #[arg(long, value_enum)]
    pub modality: Option<ModalityArg>,
    /// The DICOM SeriesNumber to open (`twinray info DIR` lists the series with their
    /// descriptions); default: the series with the most slices.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub series: Option<i64>,
}

/// Loads a CT or MR image and its labels, with its content hash.
pub fn load_case(ct: &Path, labels: Option<&Path>) -> Result<Case> {
    load_case_as(ct, labels, &ImageArgs::default())
}

/// [`load_case`] with the modality or DICOM series chosen.
pub fn load_case_as(ct: &Path, labels: Option<&Path>, image: &ImageArgs) -> Result<Case> {
    loading(|progress| {
        let options = CaseOptions {
            progress: Some(progress),
            modality: image.modality.map(Into::into),
            series_number: image.series,
        };
        Ok(Case::load_with(ct, labels, &options)?)
    })
}

/// Loads the volumes alone (no content hash), for commands that name no lesson.
pub fn load_volumes(ct: &Path, labels: Option<&Path>) -> Result<LoadedCase> {
    load_volumes_as(ct, labels, &ImageArgs::default())
}

/// [`load_volumes`] with the modality or DICOM series chosen.
pub fn load_volumes_as(ct: &Path, labels: Option<&Path>, image: &ImageArgs) -> Result<LoadedCase> {
    loading(|progress| {
        let options = CaseOptions {
            progress: Some(progress),
            modality: image.modality.map(Into::into),
            series_number: image.series,
        };
        let mut loaded = twinray_io::load_case_with(ct, labels, &options)?;
        let warnings = std::mem::take(&mut loaded.warnings);
        Ok((loaded, warnings))
    })
}

/// Opens a lesson or a `.twlesson` bundle with the case it is shown on
/// ([`twinray_scene::lesson::open_with_case`]: a bundle's own case, the demo, or the given case
/// when its hash matches or `force` is set).
pub fn open_with_case(
    lesson: &Path,
    ct: Option<&Path>,
    labels: Option<&Path>,
    force: bool,
) -> Result<(Player, Case)> {
    loading(|progress| {
        let choice = CaseChoice {
            ct,
            labels,
            force,
            progress: Some(progress),
        };
        let (player, case, warnings) = twinray_scene::lesson::open_with_case(lesson, choice)?;
        Ok(((player, case), warnings))
    })
}

/// Parses `WIDTHxHEIGHT` (1 to 16384 pixels a side), for `--size`.
pub fn parse_size(text: &str) -> Result<[u32; 2], String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("'{text}' is not WIDTHxHEIGHT, e.g. 512x512"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|&v| (1..=16384).contains(&v))
            .ok_or_else(|| format!("'{s}' is not a size between 1 and 16384 pixels"))
    };
    Ok([parse(w)?, parse(h)?])
}

/// Refuses an output whose folder does not exist, before minutes of work are spent on it.
pub fn check_output_folder(out: &Path) -> Result<()> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            anyhow::bail!(
                "cannot write {}: folder {} does not exist",
                out.display(),
                parent.display()
            );
        }
    }
    Ok(())
}

/// A new folder of this process under the temporary directory, created afresh (never one that
/// already exists, so nothing placed there beforehand is followed or reused).
pub fn private_temp_dir(what: &str) -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1000 {
        let dir = base.join(format!("twinray-{what}-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("creating {}", dir.display()));
            }
        }
    }
    anyhow::bail!("cannot create a new temporary folder in {}", base.display())
}
