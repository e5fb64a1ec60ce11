//! A check of a label map against gross anatomy, for results a user should not trust: an organ
//! labelled over a longer head-to-foot span than any adult organ has (a liver reaching into the
//! pelvis, kidneys labelled down the whole scan). It catches a model used far from its training
//! data, not subtle errors.

use twinray_io::{LabelNames, LabelVolume};

/// Head-to-foot spans (mm) beyond which a label is not the organ its name says. Generous upper
/// bounds for adults: a liver spans about 15–20 cm (hepatomegaly rarely above 25), a kidney
/// 10–13 cm, a spleen about 11–13 cm (splenomegaly above 20 is exceptional).
const MAX_SPAN_MM: [(&str, &str, f64); 4] = [
    ("liver", "liver", 280.0),
    ("kidney_left", "kidney", 180.0),
    ("kidney_right", "kidney", 180.0),
    ("spleen", "spleen", 220.0),
];

/// One warning per label of [`MAX_SPAN_MM`] whose head-to-foot span exceeds the bound.
#[must_use]
pub fn implausible_spans(labels: &LabelVolume, names: &LabelNames) -> Vec<String> {
    let checked: Vec<(u16, &str, &str, f64)> = MAX_SPAN_MM
        .iter()
        .filter_map(|(name, organ, max)| names.id_of(name).map(|id| (id, *name, *organ, *max)))
        .collect();
    if checked.is_empty() {
        return Vec::new();
    }
    let geometry = labels.geometry();
    let [nx, ny, _] = geometry.dims;
    let m = geometry.patient_from_voxel;
    // The superior (S) coordinate is linear in the index: S = a·i + b·j + c·k + d (LPS: z).
    let (a, b, c, d) = (m.x_axis.z, m.y_axis.z, m.z_axis.z, m.w_axis.z);
    let mut range: Vec<(f64, f64)> = vec![(f64::INFINITY, f64::NEG_INFINITY); checked.len()];
    for (index, &v) in labels.voxels().iter().enumerate() {
        if v == 0 {
            continue;
        }
        let Some(slot) = checked.iter().position(|(id, ..)| *id == v) else {
            continue;
        };
        let (i, j, k) = (index % nx, index / nx % ny, index / (nx * ny));
        #[allow(clippy::cast_precision_loss)]
        let s = a * i as f64 + b * j as f64 + c * k as f64 + d;
        let r = &mut range[slot];
        r.0 = r.0.min(s);
        r.1 = r.1.max(s);
    }
    checked
        .iter()
        .zip(range)
        .filter(|((.., max), (lo, hi))| hi - lo > *max)
        .map(|((_, name, organ, max), (lo, hi))| {
            format!(
                "'{name}' is labelled over {:.0} mm from head to foot, more than any adult {organ} spans (about {max:.0} mm at most): this part of the result is unreliable; check it, or segment with a full model (--model)",
                hi - lo
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap.
mod tests {
    use super::*;
    use glam::DMat4;
    use twinray_io::Geometry;

    /// A column of 2 mm slices with `label` on slices `from..to`.
    fn column(label: u16, from: usize, to: usize) -> LabelVolume {
        let dims = [2, 2, 200];
        let geometry =
            Geometry::new(dims, DMat4::from_scale(glam::DVec3::new(1.0, 1.0, 2.0))).unwrap();
        let mut voxels = vec![0u16; 800];
        for k in from..to {
            voxels[k * 4] = label;
        }
        LabelVolume::new(geometry, voxels).unwrap()
    }

    #[test]
    fn a_kidney_down_the_whole_scan_is_flagged_and_a_real_one_is_not() {
        let names = LabelNames::totalsegmentator();
        let kidney = names.id_of("kidney_left").unwrap();
        // 60 slices of 2 mm: a 118 mm kidney.
        assert!(implausible_spans(&column(kidney, 20, 80), &names).is_empty());
        // 150 slices: 298 mm.
        let warnings = implausible_spans(&column(kidney, 20, 170), &names);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("298 mm") && warnings[0].contains("kidney"),
            "{warnings:?}"
        );
    }
}
