//! `twinray measure stats|trajectory`: the studio's measurements, headless, for scripts and QA.
//!
//! The numbers come from `twinray_measure`; this module loads the case, resolves label names,
//! and prints tab-separated text (with a header) or JSON on stdout.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use glam::DVec3;
use serde_json::{json, Value};
use twinray_io::{LabelNames, LoadedCase};
use twinray_measure::{
    analyse_trajectory, label_stats, read_markups, resolve_label, voxel_volume_ml, write_markups,
    ContactBy, ControlPoint, LabelStats, Markup, MarkupKind, MarkupValue, Trajectory,
    TrajectoryOptions,
};

use crate::shared::load_volumes;

/// `twinray measure` subcommands.
#[derive(Debug, Subcommand)]
pub enum MeasureCommand {
    /// Per label: voxel count, volume (ml) and HU mean, SD, median, min and max.
    #[command(after_help = "\
Definitions (3D Slicer's Segment Statistics): volume = voxel count × voxel volume; SD is the
sample standard deviation (n − 1); median = the middle value (the mean of the two middle ones
for an even count). Label names come from the label map's .tsv sidecar, else TotalSegmentator's
117 classes.

Examples:
  twinray measure stats --ct dicom-folder/ --labels seg.nii.gz
  twinray measure stats --ct ct.nii.gz --labels seg.nii.gz --label liver --label aorta --json")]
    Stats(StatsArgs),
    /// A needle path: depth, angle to the skin normal, cephalad and medial angles, and the
    /// labelled structures crossed in order with their entry and exit depths.
    #[command(after_help = "\
Points are patient coordinates in mm, DICOM's LPS (x towards the patient's left, y posterior,
z towards the head), as `twinray info` and 3D Slicer (which shows RAS: negate x and y) give them.
Depths are measured from the entry point. Angles: cephalad (+) / caudal (−) in the sagittal
plane and medial (+) / lateral (−) in the axial plane, both from the anteroposterior axis; the
skin normal is the body/air boundary's (HU −500) averaged over 10 mm. Bone is a bone label
(vertebrae_*, sacrum, rib_*, …) or an unlabelled voxel at or above --bone-hu.

Example:
  twinray measure trajectory --ct ct.nii.gz --labels vertebrae.nii.gz \\
          --entry 1.2,-46.2,295.3 --target 2.0,-118.0,289.0")]
    Trajectory(TrajectoryArgs),
    /// The points, lines, angles and curves of a 3D Slicer markups file (.mrk.json), in
    /// patient LPS mm, with each line's length, each angle and each curve's length.
    #[command(after_help = "\
A file in RAS (Slicer's screen convention) has x and y negated to LPS; a file that names no
coordinate system is read as LPS, as Slicer reads it. `twinray measure trajectory
--markups-out FILE` writes a path as a Slicer line.

Example:
  twinray measure markups cobb.mrk.json")]
    Markups(MarkupsArgs),
}

/// Arguments of `twinray measure markups`.
#[derive(Debug, Args)]
pub struct MarkupsArgs {
    /// The markups file.
    #[arg(value_name = "FILE.mrk.json")]
    file: PathBuf,
    /// Print JSON instead of tab-separated text.
    #[arg(long)]
    json: bool,
}

/// The case both subcommands read.
#[derive(Debug, Args)]
pub struct CaseArgs {
    /// CT volume: a NIfTI file in HU, or a DICOM folder or file (the series with the most slices).
    #[arg(long, value_name = "FILE|DIR")]
    pub ct: PathBuf,
    /// Label map on the CT's own grid (NIfTI, or a DICOM SEG).
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Print JSON instead of tab-separated text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `twinray measure stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    case: CaseArgs,
    /// Only this label, by name or id (repeatable); without it, every label in the map.
    #[arg(long, value_name = "NAME|ID")]
    label: Vec<String>,
}

/// Arguments of `twinray measure trajectory`.
#[derive(Debug, Args)]
pub struct TrajectoryArgs {
    #[command(flatten)]
    case: CaseArgs,
    /// Entry point on the skin, X,Y,Z in patient LPS mm.
    #[arg(long, value_name = "X,Y,Z", value_parser = parse_point, allow_hyphen_values = true)]
    entry: DVec3,
    /// Target point, X,Y,Z in patient LPS mm.
    #[arg(long, value_name = "X,Y,Z", value_parser = parse_point, allow_hyphen_values = true)]
    target: DVec3,
    /// CT value (HU) at or above which an unlabelled voxel counts as bone.
    #[arg(long, default_value_t = 400.0, allow_negative_numbers = true)]
    bone_hu: f64,
    /// Sample step along the path in mm (default: a quarter of the smallest voxel spacing).
    #[arg(long, value_name = "MM", value_parser = parse_step)]
    step: Option<f64>,
    /// Also write the path (entry, target) as a 3D Slicer line to this new .mrk.json file.
    #[arg(long, value_name = "FILE.mrk.json")]
    markups_out: Option<PathBuf>,
}

/// Parses `X,Y,Z` (three finite numbers).
fn parse_point(text: &str) -> Result<DVec3, String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not X,Y,Z (three comma-separated numbers, mm)"))?;
    match values[..] {
        [x, y, z] if values.iter().all(|v| v.is_finite()) => Ok(DVec3::new(x, y, z)),
        [_, _, _] => Err(format!("'{text}' contains a non-finite number")),
        _ => Err(format!(
            "'{text}' needs exactly 3 comma-separated numbers (X,Y,Z in mm)"
        )),
    }
}

/// Parses `--step`: a positive number of mm.
fn parse_step(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("'{text}' is not a positive step in mm"))
}

/// Runs `twinray measure …`.
pub fn run(command: MeasureCommand) -> Result<()> {
    let text = match command {
        MeasureCommand::Stats(args) => stats(&args)?,
        MeasureCommand::Trajectory(args) => trajectory(&args)?,
        MeasureCommand::Markups(args) => markups(&args)?,
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `twinray measure stats … | head` closes the pipe early: not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

/// Loads the CT and labels, and the labels' names (sidecar, else TotalSegmentator's).
fn load(case: &CaseArgs) -> Result<(LoadedCase, twinray_io::LabelVolume, LabelNames)> {
    let names = LabelNames::for_label_map(&case.labels)?;
    let mut loaded = load_volumes(&case.ct, Some(&case.labels))?;
    let labels = loaded
        .labels
        .take()
        .with_context(|| format!("{}: no labels were read", case.labels.display()))?;
    Ok((loaded, labels, names))
}

fn stats(args: &StatsArgs) -> Result<String> {
    let (loaded, labels, names) = load(&args.case)?;
    let ids = args
        .label
        .iter()
        .map(|text| {
            resolve_label(text, &names, &labels).with_context(|| {
                format!(
                    "--label '{text}' in {} (names from {})",
                    args.case.labels.display(),
                    names_source(&args.case.labels)
                )
            })
        })
        .collect::<Result<Vec<u16>>>()?;
    let selection = (!ids.is_empty()).then_some(ids.as_slice());
    let stats = label_stats(&loaded.ct, &labels, &names, selection).with_context(|| {
        format!(
            "measuring {} on {}",
            args.case.labels.display(),
            args.case.ct.display()
        )
    })?;
    Ok(if args.case.json {
        let body = json!({
            "voxel_volume_ml": voxel_volume_ml(loaded.ct.geometry()),
            "labels": stats.iter().map(stats_json).collect::<Vec<_>>(),
        });
        format!("{body:#}\n")
    } else {
        stats_table(&stats)
    })
}

/// Where the names came from, for error messages.
fn names_source(labels: &Path) -> String {
    let sidecar = LabelNames::sidecar_path(labels);
    if sidecar.is_file() {
        sidecar.display().to_string()
    } else {
        "TotalSegmentator's 117 classes".to_owned()
    }
}

fn stats_json(s: &LabelStats) -> Value {
    let hu = s.hu.as_ref();
    json!({
        "id": s.id,
        "name": s.name,
        "voxels": s.voxel_count,
        "volume_ml": s.volume_ml,
        "hu_mean": hu.map(|h| h.mean),
        "hu_sd": hu.and_then(|h| h.sd),
        "hu_median": hu.map(|h| h.median),
        "hu_min": hu.map(|h| h.min),
        "hu_max": hu.map(|h| h.max),
    })
}

/// Tab-separated, one label a line under a header; `-` where a value is undefined.
fn stats_table(stats: &[LabelStats]) -> String {
    let mut out =
        String::from("label\tid\tvoxels\tvolume_ml\thu_mean\thu_sd\thu_median\thu_min\thu_max\n");
    for s in stats {
        let hu = s.hu.as_ref();
        let fixed = |v: Option<f64>, places: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.places$}"))
        };
        let exact = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{:.3}\t{}\t{}\t{}\t{}\t{}",
            s.name,
            s.id,
            s.voxel_count,
            s.volume_ml,
            fixed(hu.map(|h| h.mean), 2),
            fixed(hu.and_then(|h| h.sd), 2),
            exact(hu.map(|h| h.median)),
            exact(hu.map(|h| h.min)),
            exact(hu.map(|h| h.max)),
        );
    }
    out
}

fn trajectory(args: &TrajectoryArgs) -> Result<String> {
    let (loaded, labels, names) = load(&args.case)?;
    let options = TrajectoryOptions {
        step_mm: args.step,
        bone_hu: args.bone_hu,
        ..TrajectoryOptions::default()
    };
    let t = analyse_trajectory(
        &loaded.ct,
        &labels,
        &names,
        args.entry,
        args.target,
        &options,
    )
    .with_context(|| format!("measuring the trajectory in {}", args.case.ct.display()))?;
    if let Some(out) = &args.markups_out {
        let path = Markup {
            kind: MarkupKind::Line,
            name: "trajectory".to_owned(),
            points: [("entry", args.entry), ("target", args.target)]
                .into_iter()
                .map(|(label, p)| ControlPoint {
                    label: label.to_owned(),
                    position_lps_mm: p,
                })
                .collect(),
        };
        write_markups(out, &[path])?;
    }
    Ok(if args.case.json {
        format!("{:#}\n", trajectory_json(&t))
    } else {
        trajectory_text(&t)
    })
}

fn markups(args: &MarkupsArgs) -> Result<String> {
    let markups = read_markups(&args.file)?;
    let value = |m: &Markup| match m.value() {
        Some(MarkupValue::LengthMm(l)) => ("length_mm", Some(l)),
        Some(MarkupValue::AngleDeg(a)) => ("angle_deg", Some(a)),
        None => ("", None),
    };
    if args.json {
        let list: Vec<_> = markups
            .iter()
            .map(|m| {
                let (key, v) = value(m);
                let mut o = json!({
                    "type": m.kind.slicer_name(),
                    "name": m.name,
                    "points_lps_mm": m.points.iter().map(|c| json!({
                        "label": c.label,
                        "position": [c.position_lps_mm.x, c.position_lps_mm.y, c.position_lps_mm.z],
                    })).collect::<Vec<_>>(),
                });
                if let Some(v) = v {
                    o[key] = json!(v);
                }
                o
            })
            .collect();
        return Ok(format!("{:#}\n", json!({ "markups": list })));
    }
    let mut out = String::new();
    for m in &markups {
        let (key, v) = value(m);
        let shown = v.map_or_else(String::new, |v| format!("\t{key}\t{v:.2}"));
        let _ = writeln!(out, "{}\t{}{shown}", m.kind.slicer_name(), m.name);
        for c in &m.points {
            let _ = writeln!(out, "\t{}\t{}", c.label, point(c.position_lps_mm));
        }
    }
    Ok(out)
}

fn point(p: DVec3) -> String {
    format!("{:.2},{:.2},{:.2}", p.x, p.y, p.z)
}

fn contact_text(by: &ContactBy) -> String {
    match by {
        ContactBy::Label { name, .. } => name.clone(),
        ContactBy::Hu { threshold_hu } => format!("unlabelled, HU >= {threshold_hu}"),
    }
}

/// `key<TAB>value` lines, a blank line, then the structures crossed as a table.
fn trajectory_text(t: &Trajectory) -> String {
    let opt = |v: Option<f64>, places: usize| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.places$}"))
    };
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key}\t{value}");
    };
    line("entry_mm", point(t.entry_mm));
    line("target_mm", point(t.target_mm));
    line("depth_mm", format!("{:.2}", t.depth_mm));
    line("skin_depth_mm", opt(t.skin.map(|s| s.depth_mm), 2));
    line(
        "skin_normal",
        t.skin.and_then(|s| s.outward_normal).map_or_else(
            || "-".to_owned(),
            |n| format!("{:.3},{:.3},{:.3}", n.x, n.y, n.z),
        ),
    );
    line(
        "angle_to_skin_normal_deg",
        opt(t.angle_to_skin_normal_deg, 1),
    );
    line("cephalad_deg", format!("{:.1}", t.cephalad_deg));
    line("medial_deg", opt(t.medial_deg, 1));
    line("leftward_deg", format!("{:.1}", t.leftward_deg));
    line("midline_x_mm", opt(t.midline_x_mm, 1));
    line(
        "first_bone_contact",
        t.first_bone_contact.as_ref().map_or_else(
            || "none".to_owned(),
            |c| format!("{:.2} mm ({})", c.depth_mm, contact_text(&c.by)),
        ),
    );
    out.push_str("\nstructure\tid\tentry_depth_mm\texit_depth_mm\tbone\n");
    for c in &t.crossings {
        let _ = writeln!(
            out,
            "{}\t{}\t{:.2}\t{:.2}\t{}",
            c.name,
            c.id,
            c.entry_depth_mm,
            c.exit_depth_mm,
            if c.bone { "yes" } else { "no" }
        );
    }
    out
}

fn trajectory_json(t: &Trajectory) -> Value {
    let v = |p: DVec3| json!([p.x, p.y, p.z]);
    json!({
        "entry_mm": v(t.entry_mm),
        "target_mm": v(t.target_mm),
        "depth_mm": t.depth_mm,
        "direction": v(t.direction),
        "step_mm": t.step_mm,
        "skin": t.skin.map(|s| json!({
            "depth_mm": s.depth_mm,
            "point_mm": v(s.point_mm),
            "outward_normal": s.outward_normal.map(v),
        })),
        "angle_to_skin_normal_deg": t.angle_to_skin_normal_deg,
        "cephalad_deg": t.cephalad_deg,
        "medial_deg": t.medial_deg,
        "leftward_deg": t.leftward_deg,
        "midline_x_mm": t.midline_x_mm,
        "first_bone_contact": t.first_bone_contact.as_ref().map(|c| json!({
            "depth_mm": c.depth_mm,
            "point_mm": v(c.point_mm),
            "by": match &c.by {
                ContactBy::Label { id, name } => json!({"label": name, "id": id}),
                ContactBy::Hu { threshold_hu } => json!({"hu_at_least": threshold_hu}),
            },
        })),
        "structures": t.crossings.iter().map(|c| json!({
            "name": c.name,
            "id": c.id,
            "entry_depth_mm": c.entry_depth_mm,
            "exit_depth_mm": c.exit_depth_mm,
            "bone": c.bone,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse_with_negative_coordinates() {
        assert_eq!(
            parse_point("-1.5, 2,-300"),
            Ok(DVec3::new(-1.5, 2.0, -300.0))
        );
        assert!(parse_point("1,2").is_err());
        assert!(parse_point("1,2,x").is_err());
        assert!(parse_point("1,2,inf").is_err());
        assert_eq!(parse_step("0.5"), Ok(0.5));
        assert!(parse_step("0").is_err() && parse_step("-1").is_err());
    }
}
