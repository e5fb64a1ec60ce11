//! `twinray radiograph FILE`: a radiograph as an X-ray board shows it (size, spacing, patient
//! orientation, window) and, with `--out`, the displayed picture as a PNG.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use twinray_io::dicom::load_radiograph;

/// Arguments of `twinray radiograph`.
#[derive(Debug, Args)]
#[command(after_help = "\
The picture is the one a viewer shows: the first VOI window (DICOM's LINEAR function) or the
image's own range, MONOCHROME1 inverted. Size: Pixel Spacing when present (at the patient), else
Imager Pixel Spacing (size at the detector), else unknown.

Example:
  twinray radiograph chest.dcm --out chest.png")]
pub struct RadiographArgs {
    /// A single-frame greyscale DICOM image (CR, DX, …).
    #[arg(value_name = "FILE.dcm")]
    file: PathBuf,
    /// Write the displayed picture to this PNG (never over an existing file).
    #[arg(long, value_name = "PNG")]
    out: Option<PathBuf>,
}

/// Runs `twinray radiograph`.
pub fn run(args: &RadiographArgs) -> Result<()> {
    let r = load_radiograph(&args.file)?;
    println!("{}", args.file.display());
    println!("  pixels       {} × {}", r.width, r.height);
    println!("  spacing      {}", r.spacing.describe());
    if let Some((w, h)) = r.size_mm() {
        println!("  size         {w:.1} × {h:.1} mm");
    }
    match &r.patient_orientation {
        Some((rows, columns)) => println!(
            "  orientation  rows towards {rows}, columns towards {columns} (PatientOrientation)"
        ),
        None => println!("  orientation  not in the file"),
    }
    match r.window {
        Some((c, w)) => println!("  window       centre {c}, width {w} (LINEAR)"),
        None => println!("  window       the image's own range"),
    }
    if r.inverted {
        println!("  grey scale   inverted (minimum is white)");
    }
    if let Some(out) = &args.out {
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(out)
            .with_context(|| format!("creating {} (it is never overwritten)", out.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), r.width, r.height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let written = encoder
            .write_header()
            .and_then(|mut w| w.write_image_data(&r.display));
        if let Err(e) = written {
            let _ = std::fs::remove_file(out);
            return Err(e).with_context(|| format!("writing {}", out.display()));
        }
        println!("  wrote        {}", out.display());
    }
    Ok(())
}
