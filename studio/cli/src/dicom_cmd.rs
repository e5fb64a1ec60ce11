//! `twinray info DIR` and `twinray convert DIR --out ct.nii.gz`: DICOM folders from the command
//! line.
//!
//! Nothing here prints a patient-identifying field: the library never reads names, IDs, dates
//! or institutions, and only technical attributes reach the output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use twinray_io::dicom::{self, DicomSeries, GeometryPolicy, LoadOptions};
use twinray_io::{is_nifti, write_ct, CtVolume, Intensity, Modality, WindowSource};

use crate::shared::{load_volumes_as, print_warnings, ImageArgs, SliceProgressLine};

/// Arguments of `twinray info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A folder of DICOM files (searched recursively), a single DICOM file, or a NIfTI image.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// For a NIfTI: what the image is (it does not say; default: 3D Slicer's range rule).
    #[arg(long, value_enum)]
    pub modality: Option<crate::shared::ModalityArg>,
}

/// What an image's values are, for `info`: `CT, Hounsfield units` or `MR, scanner units (no
/// HU)`.
fn values_line(modality: Option<Modality>, raw: &str) -> String {
    match modality {
        Some(Modality::Ct) => "CT, Hounsfield units".to_owned(),
        Some(Modality::Mr) => {
            "MR, scanner units (no HU: MR has no physical intensity scale)".to_owned()
        }
        None => format!("'{raw}', shown as its value range suggests"),
    }
}

/// The display window line: `low … high (from the DICOM window | 0.1–99.9th percentiles)`.
fn window_line(intensity: &Intensity) -> String {
    let [low, high] = intensity.window;
    let source = match intensity.window_source {
        WindowSource::Dicom => "the DICOM window",
        WindowSource::Percentiles => "the 0.1–99.9th percentiles",
    };
    format!(
        "{low:.1} … {high:.1} {} (from {source})",
        intensity.modality.unit()
    )
}

/// The DICOM window and rescale of a series' first image, when they say something.
fn series_values(series: &DicomSeries) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(first) = series.slices.first() else {
        return lines;
    };
    if first.rescale_slope != 1.0 || first.rescale_intercept != 0.0 {
        lines.push(format!(
            "rescale:           value = stored × {} + {}",
            first.rescale_slope, first.rescale_intercept
        ));
    }
    if let Some([centre, width]) = first.window {
        lines.push(format!("window:            centre {centre}, width {width}"));
    }
    match series.philips_scale() {
        Ok(None) => {}
        Ok(Some(scale)) => lines.push(philips_line(&scale)),
        Err(scales) => {
            let slopes: Vec<String> = scales
                .iter()
                .map(|s| format!("{} (rescale slope {})", s.scale_slope, s.rescale_slope))
                .collect();
            lines.push(format!(
                "Philips scale:     differs between slices: scale slopes {} (floating-point \
                 value = value / (rescale slope × scale slope), per slice); values shown are \
                 the displayed values",
                slopes.join(", ")
            ));
        }
    }
    lines
}

/// Philips' private scale: what it is and how a user gets the scanner's floating-point values.
fn philips_line(scale: &dicom::PhilipsScale) -> String {
    let intercept = if scale.scale_intercept == 0.0 {
        String::new()
    } else {
        " (not applied: Philips' formula has none)".to_owned()
    };
    format!(
        "Philips scale:     scale slope {}, scale intercept {}{intercept}: floating-point value \
         = value / ({} × {}) = value × {}; values shown are the displayed values",
        scale.scale_slope,
        scale.scale_intercept,
        scale.rescale_slope,
        scale.scale_slope,
        six_digits(scale.factor())
    )
}

/// `x` to six decimals, in scientific notation when that would hide its digits.
fn six_digits(x: f64) -> String {
    if (1e-3..1e6).contains(&x.abs()) {
        format!("{x:.6}")
    } else {
        format!("{x:.6e}")
    }
}

/// `twinray info` on a NIfTI image: grid, modality and values.
fn nifti_info(args: &InfoArgs) -> Result<()> {
    let image = ImageArgs {
        modality: args.modality,
        series: None,
    };
    let loaded = load_volumes_as(&args.dir, None, &image)?;
    let g = loaded.ct.geometry();
    let s = g.spacing_mm();
    let i = &loaded.intensity;
    println!("{}: NIfTI image", args.dir.display());
    println!(
        "  modality:          {}{}",
        values_line(Some(i.modality), ""),
        if args.modality.is_some() {
            " (as given)"
        } else {
            " (NIfTI does not say: from its value range; --modality to choose)"
        }
    );
    println!(
        "  dimensions:        {} x {} x {}",
        g.dims[0], g.dims[1], g.dims[2]
    );
    println!(
        "  spacing:           {:.4} x {:.4} x {:.4} mm",
        s[0], s[1], s[2]
    );
    println!(
        "  values:            {:.1} … {:.1} {}",
        i.range[0],
        i.range[1],
        i.modality.unit()
    );
    println!("  display window:    {}", window_line(i));
    Ok(())
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

/// `twinray info`: every series found, with geometry and warnings, and every skipped file;
/// or a NIfTI image's grid and values.
pub fn info(args: &InfoArgs) -> Result<()> {
    if args.dir.is_file() && is_nifti(&args.dir) {
        return nifti_info(args);
    }
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
        println!(
            "  modality:          {}",
            values_line(Modality::from_dicom(&series.modality), &series.modality)
        );
        for line in series_values(series) {
            println!("  {line}");
        }
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
