//! `twinray render`: a CT (and its labels) to a PNG, headless.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use glam::DVec3;
use twinray_io::{LabelNames, LoadedCase};
use twinray_lessons::state::SceneState;
use twinray_renderer::{ClipPlane, CropBox, GpuContext, RenderOptions, VolumeRenderer};
use twinray_scene::{OrbitView, SceneBuilder};
use twinray_transfer_functions::{Blend, Preset};

use crate::shared::{
    check_output_folder, load_volumes_as, parse_size, print_warnings, DeviceArg, ImageArgs,
};

/// Arguments of `twinray render`.
#[derive(Debug, Args)]
#[command(after_help = "\
Orientation: azimuth 0, elevation 0 is the anterior view radiologists use (camera in front of the
patient, head up, the patient's left on the viewer's right). Positive azimuth orbits towards the
patient's left, positive elevation towards the head.

Examples:
  twinray render --ct ct.nii.gz --labels vertebrae.nii.gz --preset ct-bone --azimuth 30 \\
                 --elevation 15 --size 512x512 --out spine.png
  twinray render --ct ct.nii.gz --mode mip --out mip.png
  twinray render --ct ct.nii.gz --clip-plane 0,1,0,0 --out posterior-half.png
  twinray render --ct mr.nii.gz --labels mr-labels.nii.gz --out mr.png   (MR: mr-default)")]
pub struct RenderArgs {
    /// The image: a CT or MR NIfTI file (.nii or .nii.gz), or a DICOM folder or file (the
    /// series with the most slices unless --series; `twinray info DIR` lists them).
    #[arg(long, visible_alias = "image", value_name = "FILE")]
    pub ct: PathBuf,
    /// Which DICOM series, and what the image is when its file does not say.
    #[command(flatten)]
    pub image: ImageArgs,
    /// Label map on the image's own grid (NIfTI, integer ids 0..=255; 0 = no label), or a
    /// DICOM SEG. Without a `.tsv` sidecar its ids are TotalSegmentator's: `total` on a CT,
    /// `total_mr` on an MR.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Transfer function: a built-in preset (CT: ct-bone, ct-soft-tissue, ct-lung, ct-vessels,
    /// mip; MR: mr-default, mr-angio, mr-mip, mr-t2-brain, placed on the image's window), a
    /// preset .toml file, or a 3D Slicer preset: FILE.xml:NAME (e.g. presets.xml:CT-Bone), a
    /// .vp.json or .vp file (`twinray preset list FILE` names them). Default: ct-bone on a
    /// CT, mr-default on an MR.
    #[arg(long, value_name = "NAME|FILE")]
    pub preset: Option<String>,
    /// Camera azimuth in degrees around the patient's head-feet axis.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub azimuth: f64,
    /// Camera elevation in degrees towards the head.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub elevation: f64,
    /// Zoom factor (2 = twice as close).
    #[arg(long, default_value_t = 1.0)]
    pub zoom: f64,
    /// Image size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "512x512", value_parser = parse_size)]
    pub size: [u32; 2],
    /// Output PNG file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Hide a label by id or name (repeatable), e.g. --hide-label 32 --hide-label vertebrae_L1.
    #[arg(long = "hide-label", value_name = "ID|NAME")]
    pub hide_label: Vec<String>,
    /// Blend mode; defaults to the preset's (composite for all but `mip`).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Clip plane nx,ny,nz,d in patient axes (x = left, y = posterior, z = head) and mm from the
    /// volume's centre: keeps points p with n·(p − centre) ≥ d.
    #[arg(long, value_name = "NX,NY,NZ,D", value_parser = parse_clip, allow_hyphen_values = true)]
    pub clip_plane: Option<[f64; 4]>,
    /// Crop box as fractions of the volume along its voxel axes: x0,x1,y0,y1,z0,z1 in [0, 1].
    #[arg(long, value_name = "X0,X1,Y0,Y1,Z0,Z1", value_parser = parse_crop)]
    pub crop: Option<CropBox>,
    /// Sample step in voxels (of the smallest spacing).
    #[arg(long, default_value_t = 0.5)]
    pub step: f32,
    /// Render on a GPU, on the CPU (lavapipe) or on the best available; overrides TWINRAY_DEVICE.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
    /// Turn off the per-pixel jitter of ray starts (shows step-aligned rings).
    #[arg(long)]
    pub no_jitter: bool,
}

/// Blend modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Front-to-back compositing with shading.
    Composite,
    /// Maximum-intensity projection.
    Mip,
}

fn parse_numbers<const N: usize>(text: &str, what: &str) -> Result<[f64; N], String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not {N} comma-separated numbers ({what})"))?;
    let array: [f64; N] = values
        .try_into()
        .map_err(|_| format!("'{text}' needs exactly {N} comma-separated numbers ({what})"))?;
    if array.iter().any(|v| !v.is_finite()) {
        return Err(format!("'{text}' contains a non-finite number"));
    }
    Ok(array)
}

fn parse_clip(text: &str) -> Result<[f64; 4], String> {
    let v = parse_numbers::<4>(text, "nx,ny,nz,d")?;
    if v[..3].iter().all(|&c| c == 0.0) {
        return Err("the clip plane's normal nx,ny,nz must not be zero".into());
    }
    Ok(v)
}

fn parse_crop(text: &str) -> Result<CropBox, String> {
    let v = parse_numbers::<6>(text, "x0,x1,y0,y1,z0,z1")?;
    if v.iter().any(|c| !(0.0..=1.0).contains(c)) || v[0] >= v[1] || v[2] >= v[3] || v[4] >= v[5] {
        return Err(format!(
            "crop '{text}' must be fractions in [0, 1] with each lower bound below its upper bound"
        ));
    }
    Ok(CropBox {
        min: [v[0], v[2], v[4]].map(|c| c as f32),
        max: [v[1], v[3], v[5]].map(|c| c as f32),
    })
}

/// Parses `--hide-label` values: ids, or names (from the label map's `.tsv` sidecar when it has
/// one, else TotalSegmentator's).
fn label_id(text: &str, names: &LabelNames) -> Result<u8> {
    if let Ok(id) = text.trim().parse::<u16>() {
        return u8::try_from(id)
            .with_context(|| format!("--hide-label {id}: label ids go up to 255"));
    }
    let id = names
        .id_of(text.trim())
        .with_context(|| format!("--hide-label '{text}': no label of that name (use an id, or a TotalSegmentator name such as vertebrae_L1)"))?;
    u8::try_from(id).with_context(|| format!("--hide-label '{text}': id {id} is above 255"))
}

/// Runs `twinray render`.
pub fn run(args: &RenderArgs) -> Result<()> {
    // A preset named on the command line is checked before the (slow) load.
    if let Some(name) = &args.preset {
        Preset::load(name)?;
    }
    check_output_folder(&args.out)?;
    let started = Instant::now();
    let LoadedCase {
        ct,
        labels,
        intensity,
        ..
    } = load_volumes_as(&args.ct, args.labels.as_deref(), &args.image)?;
    let loaded = started.elapsed();
    let modality = intensity.modality;
    // The scene's one definition of a transfer function on this image: the default preset
    // for its modality, window-placed presets placed, its range, its label table's colours,
    // and a warning for a preset made for another modality.
    let mut builder = SceneBuilder::with_intensity(*ct.geometry(), intensity);
    let mut tf = builder.transfer_function(&SceneState {
        preset: args.preset.clone(),
        ..SceneState::default()
    });
    print_warnings(&builder.take_warnings());
    let names = match &args.labels {
        Some(path) => LabelNames::for_label_map_on(path, modality)?,
        None => LabelNames::totalsegmentator_for(modality),
    };
    for label in &args.hide_label {
        tf.labels.set_visible(label_id(label, &names)?, false);
    }

    let ctx = GpuContext::new(DeviceArg::resolve(args.device)?)?;
    let mut renderer = VolumeRenderer::new(ctx.clone(), &tf)?;
    renderer.set_volume(&ct, labels.as_ref(), tf.range)?;
    let uploaded = started.elapsed();

    let centre = ct.geometry().centre_mm();
    let options = RenderOptions {
        step_voxels: args.step,
        jitter_seed: if args.no_jitter {
            None
        } else {
            RenderOptions::default().jitter_seed
        },
        blend: args.mode.map(|m| match m {
            Mode::Composite => Blend::Composite,
            Mode::Mip => Blend::Mip,
        }),
        clip_plane: args.clip_plane.map(|[nx, ny, nz, d]| {
            let n = DVec3::new(nx, ny, nz).normalize();
            ClipPlane {
                normal: n,
                offset_mm: -n.dot(centre) - d,
            }
        }),
        crop: args.crop.unwrap_or_default(),
        ..RenderOptions::default()
    };
    let camera = twinray_scene::builder::orbit_camera(
        ct.geometry(),
        &OrbitView {
            azimuth_deg: args.azimuth,
            elevation_deg: args.elevation,
            zoom: args.zoom,
            ..OrbitView::default()
        },
        args.size,
    );
    let (image, stats) = renderer.render(&camera, &options, args.size)?;
    let rendered = started.elapsed();
    image.write_png(&args.out)?;
    let g = ct.geometry();
    let spacing = g.spacing_mm();
    eprintln!(
        "rendered {} ({modality}, {}x{}x{} voxels, {:.2}x{:.2}x{:.2} mm) with '{}' on {} in \
         {:.0} ms (load {:.0} ms, upload {:.0} ms, frame {:.0} ms, step {:.2} mm) -> {}",
        args.ct.display(),
        g.dims[0],
        g.dims[1],
        g.dims[2],
        spacing[0],
        spacing[1],
        spacing[2],
        tf.preset.name,
        ctx.device_name(),
        rendered.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3,
        (uploaded - loaded).as_secs_f64() * 1e3,
        (rendered - uploaded).as_secs_f64() * 1e3,
        stats.step_mm,
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_planes_and_crops() {
        assert_eq!(parse_size("640x480"), Ok([640, 480]));
        assert!(parse_size("640").is_err());
        assert!(parse_size("0x10").is_err());
        assert_eq!(parse_clip("0,-1,0,12.5"), Ok([0.0, -1.0, 0.0, 12.5]));
        assert!(parse_clip("0,0,0,1").is_err());
        assert!(parse_clip("1,2,3").is_err());
        let crop = parse_crop("0,0.5,0,1,0.25,1").expect("valid crop");
        assert_eq!(crop.max[0], 0.5);
        assert!(parse_crop("0.6,0.5,0,1,0,1").is_err());
    }

    #[test]
    fn hide_label_accepts_ids_and_names() {
        let p = LabelNames::totalsegmentator();
        assert_eq!(label_id("32", &p).expect("id"), 32);
        assert_eq!(label_id("vertebrae_T12", &p).expect("name"), 32);
        assert!(label_id("vertebra_T13", &p).is_err());
        assert!(label_id("300", &p).is_err());
    }
}
