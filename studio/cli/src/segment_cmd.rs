//! `twinray segment`: a CT in, a label map on the CT's own grid and its names out.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use twinray_io::{write_labels, LabelNames};
use twinray_segmentation::{CoreUse, Model, Progress, Runtime, SegmentOptions, Segmenter};

use crate::shared::{check_output_folder, load_volumes};

/// Arguments of `twinray segment`.
#[derive(Debug, Args)]
#[command(after_help = "\
Writes OUT (a NIfTI label map on the CT's grid, TotalSegmentator ids) and, beside it, the names
of its labels (OUT without .nii.gz, plus .tsv: one 'id<TAB>name' line per label).

The model is a description (.json, see segmentation/inference/models/FORMAT.md) with its ONNX file, or an
.onnx file with its description beside it (same name, .json). ONNX Runtime is loaded from
--ort-lib, TWINRAY_ORT_LIB, ORT_DYLIB_PATH, or where `make setup` installs it.

Examples:
  twinray segment ct.nii.gz --out labels.nii.gz
  twinray segment dicom-folder/ --model my-model.json --mirror --out labels.nii.gz")]
pub struct SegmentArgs {
    /// CT: a NIfTI file (.nii, .nii.gz) in HU, or a DICOM folder or file.
    #[arg(value_name = "DIR_OR_NIFTI")]
    pub ct: PathBuf,
    /// Model description (.json) or ONNX file with its .json beside it; the built-in model
    /// when absent.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Output label map (.nii.gz).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Window step as a fraction of the patch (default: the model's, nnU-Net uses 0.5).
    #[arg(long, value_name = "FRACTION")]
    pub step: Option<f64>,
    /// Test-time mirroring (nnU-Net's flips: up to 8 times slower, slightly better).
    #[arg(long)]
    pub mirror: bool,
    /// ONNX Runtime threads (default: ONNX Runtime's choice, one per core). They spin between
    /// operators, as ONNX Runtime's do by default: the job expects the machine to itself.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Windows per model call, for models with a dynamic batch size.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,
    /// The ONNX Runtime library (libonnxruntime.so).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

/// A one-line progress bar on stderr: windows done / total and the time left.
struct ProgressBar {
    started: Instant,
    last_drawn: Option<Instant>,
}

impl ProgressBar {
    fn draw(&mut self, p: Progress) {
        let now = Instant::now();
        let finished = p.windows_done == p.windows_total;
        if !finished && self.last_drawn.is_some_and(|t| (now - t).as_millis() < 200) {
            return;
        }
        self.last_drawn = Some(now);
        let elapsed = (now - self.started).as_secs_f64();
        let fraction = p.windows_done as f64 / p.windows_total.max(1) as f64;
        let width = 30;
        let filled = (fraction * width as f64).round() as usize;
        let eta = if p.windows_done > 0 {
            format!("ETA {:.0} s", elapsed / fraction - elapsed)
        } else {
            "ETA ?".into()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rsegmenting [{}{}] {}/{} windows, {:.0} s, {eta}   ",
            "#".repeat(filled),
            ".".repeat(width - filled),
            p.windows_done,
            p.windows_total,
            elapsed
        );
        if finished {
            let _ = writeln!(err);
        }
    }
}

/// Runs `twinray segment`.
pub fn run(args: &SegmentArgs) -> Result<()> {
    check_output_folder(&args.out)?;
    let model = match &args.model {
        Some(path) => Model::open(path)?,
        None => Model::builtin()?,
    };
    if model.is_builtin() {
        eprintln!("note: {}", twinray_segmentation::BUILTIN_MODEL_NOTICE);
    }
    let runtime = Runtime::load(args.ort_lib.as_deref())?;
    let mut segmenter = Segmenter::new(
        &runtime,
        &model,
        CoreUse::Exclusive {
            threads: args.threads,
        },
    )?;
    let started = Instant::now();
    let loaded_case = load_volumes(&args.ct, None)?;
    let modality = loaded_case.intensity.modality;
    if let Some(why) = segmenter
        .description()
        .normalization
        .modality_warning(modality)
    {
        eprintln!("warning: {} ({modality}): {why}", args.ct.display());
    }
    let ct = loaded_case.ct;
    let loaded = started.elapsed();
    let options = SegmentOptions {
        step_fraction: args.step,
        mirror_axes: args
            .mirror
            .then(|| SegmentOptions::mirrored_as(segmenter.description())),
        batch_size: args.batch,
        ..SegmentOptions::default()
    };
    let mut bar = ProgressBar {
        started: Instant::now(),
        last_drawn: None,
    };
    let result = segmenter
        .segment(&ct, &options, &mut |p| bar.draw(p))
        .with_context(|| format!("segmenting {}", args.ct.display()))?;
    write_labels(&args.out, &result.labels)?;
    for warning in
        twinray_segmentation::plausibility::implausible_spans(&result.labels, &result.names)
    {
        eprintln!("warning: {}: {warning}", args.ct.display());
    }
    let names_path = LabelNames::sidecar_path(&args.out);
    result.names.write_tsv(&names_path)?;
    let total = started.elapsed();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for &v in result.labels.voxels() {
        *counts.entry(v).or_default() += 1;
    }
    let found: Vec<String> = counts
        .iter()
        .filter(|(id, _)| **id != 0)
        .map(|(id, n)| format!("{} ({n})", result.names.get(*id).unwrap_or("unnamed")))
        .collect();
    let d = segmenter.description();
    eprintln!(
        "segmented {} with '{}' ({} windows of {:?} on a {:?} grid at {:?} mm) in {:.1} s (load {:.1} s) -> {} and {}; voxels per label: {}",
        args.ct.display(),
        d.name,
        result.windows,
        d.patch_size,
        result.model_shape,
        d.spacing_mm,
        total.as_secs_f64(),
        loaded.as_secs_f64(),
        args.out.display(),
        names_path.display(),
        if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        }
    );
    Ok(())
}
