//! `twinray info DIR` and `twinray convert DIR --out ct.nii.gz`: DICOM folders from the command
//! line.
//!
//! Nothing here prints a patient-identifying field: the library never reads names, IDs, dates
//! or institutions, and only technical attributes reach the output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use twinray_io::dicom::{self, GeometryPolicy, LoadOptions};
use twinray_io::{write_ct, CtVolume};

use crate::shared::{print_warnings, SliceProgressLine};

/// Arguments of `twinray info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A folder of DICOM files (searched recursively) or a single DICOM file.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Arguments of `twinray convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A folder of DICOM files (searched recursively) or a single (multi-frame) DICOM file.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// SeriesNumber to convert (see `twinray info`); default: the series with most slices.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub series: Option<i64>,
    /// Output NIfTI file (.nii or .nii.gz).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Refuse tilted or irregularly spaced series instead of resampling them onto a regular grid.
    #[arg(long)]
    pub no_resample: bool,
}

/// Loads a DICOM series with a progress line on stderr and its warnings printed there.
fn load_dicom(path: &Path, series: Option<i64>, policy: GeometryPolicy) -> Result<CtVolume> {
    let line = SliceProgressLine::new();
    let progress = |done, total| line.show(done, total);
    let options = LoadOptions {
        series_number: series,
        policy,
        progress: Some(&progress),
    };
    let loaded = dicom::load_series(path, &options)
        .with_context(|| format!("loading the DICOM series in {}", path.display()))?;
    print_warnings(&loaded.warnings);
    Ok(loaded.ct)
}

/// `twinray info`: every series found, with geometry and warnings, and every skipped file.
pub fn info(args: &InfoArgs) -> Result<()> {
    let scan =
        dicom::scan(&args.dir).with_context(|| format!("scanning {}", args.dir.display()))?;
    println!(
        "{}: {} series, {} skipped files",
        args.dir.display(),
        scan.series.len(),
        scan.skipped.len()
    );
    for series in &scan.series {
        println!();
        println!("series {}", series.label());
        println!("  modality:          {}", series.modality);
        println!("  slices:            {}", series.slices.len());
        println!(
            "  transfer syntaxes: {}",
            series.transfer_syntaxes().join(", ")
        );
        match series.plan(GeometryPolicy::Resample) {
            Ok(plan) => {
                let g = plan.geometry;
                let s = g.spacing_mm();
                println!(
                    "  dimensions:        {} x {} x {}",
                    g.dims[0], g.dims[1], g.dims[2]
                );
                println!(
                    "  spacing:           {:.4} x {:.4} x {:.4} mm (slice step from positions)",
                    s[0], s[1], s[2]
                );
                println!("  gantry tilt:       {:.2}°", plan.tilt_deg);
                for w in &plan.warnings {
                    println!("  warning:           {w}");
                }
            }
            Err(e) => println!("  cannot be loaded:  {e}"),
        }
    }
    if !scan.skipped.is_empty() {
        println!();
        println!("skipped files:");
        for s in &scan.skipped {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
    Ok(())
}

/// `twinray convert`: one series to NIfTI.
pub fn convert(args: &ConvertArgs) -> Result<()> {
    let policy = if args.no_resample {
        GeometryPolicy::Refuse
    } else {
        GeometryPolicy::Resample
    };
    let ct = load_dicom(&args.dir, args.series, policy)?;
    write_ct(&args.out, &ct).with_context(|| format!("writing {}", args.out.display()))?;
    let g = ct.geometry();
    let s = g.spacing_mm();
    eprintln!(
        "wrote {} ({}x{}x{} voxels, {:.3}x{:.3}x{:.3} mm)",
        args.out.display(),
        g.dims[0],
        g.dims[1],
        g.dims[2],
        s[0],
        s[1],
        s[2]
    );
    Ok(())
}
