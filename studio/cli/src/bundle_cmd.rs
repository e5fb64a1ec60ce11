//! `twinray bundle`: one self-contained, de-identified `.twlesson` file per lesson
//! (`lessons/BUNDLE.md`), and `bundle verify` / `bundle info` on one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use twinray_bundle::Deidentification;
use twinray_renderer::GpuContext;
use twinray_scene::bundle::{burned_in_status, make_bundle, BundleRequest};
use twinray_scene::{FrameRenderer, LearnerView, OrbitView, SceneBuilder};

use crate::shared::{open_with_case, DeviceArg};

/// Arguments of `twinray bundle`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "\
Examples:
  twinray bundle demo.lesson --title \"Lumbar spine\" --author \"Dr A\" --out spine.twlesson
  twinray bundle other.lesson --ct ct.nii.gz --labels labels.nii.gz --out other.twlesson
  twinray bundle verify spine.twlesson
  twinray bundle info spine.twlesson
  twinray replay spine.twlesson --at 12 --out frame.png"
)]
pub struct BundleArgs {
    #[command(subcommand)]
    command: Option<BundleCommand>,
    /// The lesson to bundle.
    #[arg(value_name = "LESSON", required = true)]
    lesson: Option<PathBuf>,
    /// The bundle to write (never over an existing file).
    #[arg(long, value_name = "FILE", required = true)]
    out: Option<PathBuf>,
    /// The lesson's CT, when it was not taught on the embedded demo case.
    #[arg(long, value_name = "FILE")]
    ct: Option<PathBuf>,
    /// Its labels.
    #[arg(long, value_name = "FILE", requires = "ct")]
    labels: Option<PathBuf>,
    /// Title (default: the lesson's title, else its file name).
    #[arg(long)]
    title: Option<String>,
    /// Author.
    #[arg(long, default_value = "")]
    author: String,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Bundle a DICOM series even though it is marked BurnedInAnnotation=YES (identifying text
    /// in the pixels, which no header clean-up removes); check the images first.
    #[arg(long)]
    allow_burned_in: bool,
    /// Leave the thumbnail out (no rendering).
    #[arg(long)]
    no_thumbnail: bool,
    /// Render the thumbnail on a GPU, on the CPU (lavapipe) or on the best available.
    #[arg(long, value_enum)]
    device: Option<DeviceArg>,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Check every member against the manifest; names each one whose bytes changed.
    Verify {
        /// The bundle.
        file: PathBuf,
    },
    /// Show a bundle's manifest: title, author, case, de-identification, members.
    Info {
        /// The bundle.
        file: PathBuf,
    },
}

/// Runs `twinray bundle`.
pub fn run(args: &BundleArgs) -> Result<ExitCode> {
    match &args.command {
        Some(BundleCommand::Verify { file }) => verify(file),
        Some(BundleCommand::Info { file }) => info(file).map(|()| ExitCode::SUCCESS),
        None => {
            let lesson = args.lesson.as_deref().context("a lesson to bundle")?;
            let out = args.out.as_deref().context("--out")?;
            write(args, lesson, out).map(|()| ExitCode::SUCCESS)
        }
    }
}

fn write(args: &BundleArgs, lesson: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        bail!(
            "{} already exists; a bundle never overwrites a file (choose another --out)",
            out.display()
        );
    }
    let burned_in = match &args.ct {
        Some(ct) => burned_in_status(ct, args.allow_burned_in)?,
        None => "not DICOM".to_owned(),
    };
    let (mut player, case) =
        open_with_case(lesson, args.ct.as_deref(), args.labels.as_deref(), false)?;
    let source = match &args.ct {
        None => "embedded demo",
        Some(ct) if twinray_io::is_nifti(ct) => "nifti",
        Some(_) => "dicom",
    };
    let thumbnail_png = if args.no_thumbnail {
        None
    } else {
        let ctx = GpuContext::new(DeviceArg::resolve(args.device)?)?;
        let mut renderer =
            FrameRenderer::new(ctx, &case.ct, case.labels.as_ref(), &case.intensity)?;
        let mut builder = SceneBuilder::for_case(&case);
        let (t0, t1) = player.time_range_ns().unwrap_or((0, 0));
        let state = player.state_at(t0 + (t1 - t0) / 2);
        let size = [256, 256];
        let frame = builder.frame(&state, &LearnerView::Orbit(OrbitView::default()), size);
        let (image, _) = renderer.render(&frame, size)?;
        let tmp = std::env::temp_dir().join(format!(
            "twinray-thumbnail-{}-{}.png",
            std::process::id(),
            t1
        ));
        image.write_png(&tmp)?;
        let png = std::fs::read(&tmp).with_context(|| format!("reading {}", tmp.display()));
        let _ = std::fs::remove_file(&tmp);
        Some(png?)
    };
    let request = BundleRequest {
        title: args.title.clone(),
        author: args.author.clone(),
        description: args.description.clone(),
        thumbnail_png,
        label_names: None,
        deidentification: Deidentification {
            source: source.to_owned(),
            burned_in_annotation: burned_in,
            ..Deidentification::default()
        },
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let manifest = make_bundle(lesson, &case, &request, out)?;
    let bytes: u64 = manifest.members.iter().map(|m| m.size).sum();
    eprintln!(
        "bundled {} on {} as \"{}\": {} members, {bytes} bytes -> {}",
        lesson.display(),
        case.origin,
        manifest.title,
        manifest.members.len() + 1,
        out.display()
    );
    Ok(())
}

fn verify(file: &Path) -> Result<ExitCode> {
    let report = twinray_bundle::verify(file)?;
    for p in &report.problems {
        println!("DAMAGED {}: {}", p.member, p.problem);
    }
    if report.is_clean() {
        println!(
            "{}: ok, {} members intact",
            file.display(),
            report.intact.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{}: {} damaged member(s), {} intact",
            file.display(),
            report.problems.len(),
            report.intact.len()
        );
        Ok(ExitCode::from(1))
    }
}

fn info(file: &Path) -> Result<()> {
    let bundle = twinray_bundle::Bundle::open(file)?;
    let m = bundle.manifest();
    println!("{}", file.display());
    println!("  format       {} v{}", m.format, m.format_version);
    println!("  title        {}", m.title);
    println!("  author       {}", m.author);
    println!("  description  {}", m.description);
    println!("  created      {} (Unix seconds)", m.created_unix_s);
    println!("  case         {}", m.case_ref);
    let d = &m.deidentification;
    println!(
        "  de-identification: profile {}, source {}, DICOM header kept: {}, BurnedInAnnotation: {}",
        d.profile, d.source, d.dicom_header_kept, d.burned_in_annotation
    );
    for s in &d.steps {
        println!("    - {s}");
    }
    println!("  members:");
    for e in &m.members {
        println!(
            "    {:>12}  {}  {}",
            e.size,
            &e.blake3[..16.min(e.blake3.len())],
            e.name
        );
    }
    Ok(())
}
