//! `twinray preset show|list`: what a transfer-function preset gives at some values, and the
//! presets in a file — twinray's own and 3D Slicer's (`presets.xml`, `.vp.json`, `.vp`), so
//! that an import can be checked against Slicer's volume property editor.

use anyhow::Result;
use clap::{Args, Subcommand};
use twinray_transfer_functions::slicer::{Format, SlicerFile, VolumeProperty};
use twinray_transfer_functions::{Placement, Preset, PresetSource, HU_MAX, HU_MIN};

/// Arguments of `twinray preset`.
#[derive(Debug, Args)]
#[command(after_help = "\
PRESET is what `twinray render --preset` takes: a built-in name (ct-bone, ct-soft-tissue,
ct-lung, ct-vessels, mip), a twinray .toml file, FILE.xml:NAME for one preset of a 3D Slicer
presets.xml (or scene), or a Slicer .vp.json or .vp file.

Examples:
  twinray preset list ~/Slicer/presets.xml
  twinray preset show ~/Slicer/presets.xml:CT-Bone --at 300,500
  twinray preset show ct-bone --at -100,150,1000")]
pub struct PresetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PresetCommand,
}

/// `twinray preset` subcommands.
#[derive(Debug, Subcommand)]
pub enum PresetCommand {
    /// Print a preset's scalar opacity (per 1 mm of ray, as Slicer states it) and colour at
    /// some values, and what twinray does not reproduce of a Slicer preset.
    Show(ShowArgs),
    /// Name the presets in a file (without FILE, the built-in presets).
    List(ListArgs),
}

/// Arguments of `twinray preset show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The preset: a built-in name, a .toml file, FILE.xml:NAME, a .vp.json or .vp file.
    #[arg(value_name = "PRESET")]
    pub preset: String,
    /// Image values (Hounsfield units for CT), comma-separated, e.g. --at -100,300,500.
    #[arg(
        long,
        required = true,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_name = "VALUE,..."
    )]
    pub at: Vec<f32>,
}

/// Arguments of `twinray preset list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// A preset file: a 3D Slicer presets.xml or scene, a .vp.json or .vp file, or a twinray
    /// .toml file.
    #[arg(value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
}

/// Runs `twinray preset …`.
pub fn run(args: &PresetArgs) -> Result<()> {
    match &args.command {
        PresetCommand::Show(show_args) => show(show_args),
        PresetCommand::List(list_args) => list(list_args),
    }
}

/// The Slicer volume property `spec` names, when it names one (for its reading notes).
fn slicer_property(spec: &str) -> Result<Option<VolumeProperty>> {
    let PresetSource::File { path, name } = Preset::source(spec)? else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if Format::of(&path, &text).is_none() {
        return Ok(None);
    }
    let file = SlicerFile::read(&path)?;
    Ok(Some(file.property(name.as_deref())?.clone()))
}

fn show(args: &ShowArgs) -> Result<()> {
    let preset = Preset::load(&args.preset)?;
    let property = slicer_property(&args.preset)?;
    println!("{}: {}", preset.name, preset.description);
    let on_window = preset.placement == Placement::Window;
    if on_window {
        println!(
            "values are fractions of the image's display window (0 = its low end, 1 = its high \
             end; the DICOM window, else the 0.1–99.9th percentiles), placed on each image"
        );
    }
    if let Some(m) = preset.modality {
        println!("made for {m} images ({})", m.unit());
    }
    if preset.opacity_unit_mm.is_some() {
        println!("opacity per 1 mm of ray (Slicer's unit distance); colour RGB in [0, 1]");
    } else {
        println!(
            "opacity per voxel (the volume's smallest spacing; twinray's own presets); colour \
             RGB in [0, 1]"
        );
    }
    println!(
        "{:>10}  {:>8}  {:>8}  {:>8}  {:>8}",
        "value", "opacity", "red", "green", "blue"
    );
    let mut outside = false;
    for &value in &args.at {
        let alpha = preset
            .opacity_per_mm_at(value)
            .unwrap_or_else(|| preset.opacity_at(value));
        let [r, g, b] = preset.colour_at(value);
        // The CT range bounds only values in HU; window fractions and MR values are placed
        // on each image's own range.
        let mark = if on_window
            || preset.modality == Some(twinray_io::Modality::Mr)
            || (HU_MIN..=HU_MAX).contains(&value)
        {
            ""
        } else {
            outside = true;
            " *"
        };
        println!("{value:>10}  {alpha:>8.6}  {r:>8.6}  {g:>8.6}  {b:>8.6}{mark}");
    }
    if outside {
        println!(
            "* outside the renderer's CT range {HU_MIN}…{HU_MAX} HU: on a CT, rendered as the \
             value at its nearer end"
        );
    }
    let s = preset.shading;
    println!(
        "shading {}: ambient {}, diffuse {}, specular {}, specular power {}",
        if s.enabled { "on" } else { "off" },
        s.ambient,
        s.diffuse,
        s.specular,
        s.specular_power
    );
    if let Some(property) = property {
        let [lo, hi] = property.effective_range();
        println!("effective range (Slicer's editor): {lo} to {hi}");
        for note in &property.notes {
            println!("read: {note}");
        }
        for lost in property.not_reproduced() {
            println!("not reproduced: {lost}");
        }
    }
    Ok(())
}

fn list(args: &ListArgs) -> Result<()> {
    let Some(path) = &args.file else {
        for name in Preset::BUILT_IN_NAMES {
            println!("{name}");
        }
        return Ok(());
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if Format::of(path, &text).is_none() {
        // twinray's own TOML: one preset.
        println!("{}", Preset::load_file(path, None)?.name);
        return Ok(());
    }
    let file = SlicerFile::read(path)?;
    for (name, property) in file.entries() {
        match property {
            Ok(_) => println!("{name}"),
            Err(problem) => {
                println!("{name}");
                eprintln!("warning: preset '{name}' cannot be used: {problem}");
            }
        }
    }
    Ok(())
}
