//! A paramedian needle path to the L3 lamina on the demo case, and the volume of each vertebra.
//!
//! ```text
//! cargo run -p twinray-measure --example lamina_path
//! ```
//!
//! Reads the demo CT and its vertebra labels from `data/demo/` and prints what
//! `twinray measure trajectory` and `twinray measure stats` print, from the library.

use std::path::Path;

use glam::DVec3;
use twinray_io::{load_case, LabelNames};
use twinray_measure::{analyse_trajectory, label_stats, TrajectoryOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/demo");
    let labels_path = demo.join("spine_report_totalseg_vertebrae.nii.gz");
    let case = load_case(&demo.join("example_ct.nii.gz"), Some(&labels_path), None)?;
    let labels = case.labels.as_ref().ok_or("the demo case has labels")?;
    let names = LabelNames::for_label_map(&labels_path)?;

    for s in label_stats(&case.ct, labels, &names, None)? {
        let mean = s.hu.as_ref().map_or(f64::NAN, |h| h.mean);
        println!("{:<14} {:>6.1} ml  {mean:>6.1} HU", s.name, s.volume_ml);
    }

    let entry = DVec3::new(-16.0, -44.0, 295.0);
    let target = DVec3::new(-11.0, -113.0, 308.0);
    let t = analyse_trajectory(
        &case.ct,
        labels,
        &names,
        entry,
        target,
        &TrajectoryOptions::default(),
    )?;
    println!(
        "\ndepth {:.1} mm, cephalad {:.1}°, medial {:.1}°, angle to the skin normal {:.1}°",
        t.depth_mm,
        t.cephalad_deg,
        t.medial_deg.unwrap_or(f64::NAN),
        t.angle_to_skin_normal_deg.unwrap_or(f64::NAN)
    );
    for c in &t.crossings {
        println!(
            "  {:<14} {:>6.1} … {:>6.1} mm{}",
            c.name,
            c.entry_depth_mm,
            c.exit_depth_mm,
            if c.bone { "  bone" } else { "" }
        );
    }
    if let Some(contact) = &t.first_bone_contact {
        println!("first bone contact at {:.1} mm", contact.depth_mm);
    }
    Ok(())
}
