//! Per-label statistics: voxel count, volume and HU mean, SD, median, min and max.
//!
//! The definitions are 3D Slicer's Segment Statistics (its scalar-volume plugin):
//! - volume = voxel count × voxel volume (here the absolute determinant of the voxel axes,
//!   which is the product of the spacings on the usual orthogonal grids);
//! - mean over the label's voxels; SD is the *sample* standard deviation (divided by n − 1, as
//!   `vtkImageAccumulate` computes it); min and max are the extreme voxel values;
//! - median: the middle value, or the mean of the two middle values when the count is even
//!   (NumPy's `median`). Slicer reads its median off a histogram
//!   (`vtkImageHistogramStatistics`), which on integer HU can differ by less than one HU.
//!
//! Differences, on purpose: with a single voxel the SD is undefined and reported as `None`
//! (Slicer shows 0); voxels whose CT value is not finite (NaN in a float NIfTI) count towards
//! the volume but not the HU statistics.

use twinray_io::LabelNames;
use twinray_volume::{CtVolume, Geometry, LabelVolume};

use crate::{check_same_grid, MeasureError};

/// HU statistics of one label's voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct HuStats {
    /// Mean HU.
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for a single voxel.
    pub sd: Option<f64>,
    /// Median HU (the mean of the two middle values for an even count).
    pub median: f64,
    /// Lowest HU.
    pub min: f64,
    /// Highest HU.
    pub max: f64,
}

/// Statistics of one label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelStats {
    /// Label id.
    pub id: u16,
    /// Its name (from the map's names, or `label N` when it has none).
    pub name: String,
    /// Voxels carrying the label.
    pub voxel_count: u64,
    /// Volume in millilitres (voxel count × voxel volume).
    pub volume_ml: f64,
    /// HU statistics; `None` when the label has no voxel with a finite CT value.
    pub hu: Option<HuStats>,
}

/// Volume of one voxel in millilitres: the absolute determinant of the voxel axes in mm³ / 1000.
#[must_use]
pub fn voxel_volume_ml(geometry: &Geometry) -> f64 {
    let m = geometry.patient_from_voxel;
    let axes = glam::DMat3::from_cols(
        m.x_axis.truncate(),
        m.y_axis.truncate(),
        m.z_axis.truncate(),
    );
    axes.determinant().abs() / 1000.0
}

/// The label ids present in a map (0, "no label", left out), ascending.
#[must_use]
pub fn present_labels(labels: &LabelVolume) -> Vec<u16> {
    let mut seen = vec![false; usize::from(u16::MAX) + 1];
    for &id in labels.voxels() {
        seen[usize::from(id)] = true;
    }
    (1..=u16::MAX).filter(|&id| seen[usize::from(id)]).collect()
}

/// The display name of a label id.
pub(crate) fn label_name(names: &LabelNames, id: u16) -> String {
    names
        .get(id)
        .map_or_else(|| format!("label {id}"), str::to_owned)
}

/// The id a user means by `text`: a name from `names`, or a number. An unknown name is an
/// [`MeasureError::UnknownLabel`] listing the labels present in the map.
///
/// # Errors
/// When `text` is neither a known name nor an id.
pub fn resolve_label(
    text: &str,
    names: &LabelNames,
    labels: &LabelVolume,
) -> Result<u16, MeasureError> {
    let text = text.trim();
    if let Some(id) = names.id_of(text) {
        return Ok(id);
    }
    if let Ok(id) = text.parse::<u16>() {
        return Ok(id);
    }
    Err(MeasureError::UnknownLabel {
        name: text.to_owned(),
        available: present_labels(labels)
            .into_iter()
            .map(|id| label_name(names, id))
            .collect(),
    })
}

/// Statistics of the labels `ids` (in that order, each once; a label without voxels gets a
/// count of 0), or of every label present in the map when `ids` is `None` (ascending ids).
///
/// # Errors
/// When the label map is not on the CT's grid.
pub fn label_stats(
    ct: &CtVolume,
    labels: &LabelVolume,
    names: &LabelNames,
    ids: Option<&[u16]>,
) -> Result<Vec<LabelStats>, MeasureError> {
    check_same_grid(ct.geometry(), labels.geometry())?;
    let mut ids: Vec<u16> = ids.map_or_else(|| present_labels(labels), <[u16]>::to_vec);
    // A label asked for twice is reported once, where it was first asked for.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    // Slot of each wanted id in `values` (usize::MAX: not wanted).
    let mut slot = vec![usize::MAX; usize::from(u16::MAX) + 1];
    for (n, &id) in ids.iter().enumerate() {
        slot[usize::from(id)] = n;
    }
    let mut counts = vec![0u64; ids.len()];
    for &id in labels.voxels() {
        let s = slot[usize::from(id)];
        if s != usize::MAX {
            counts[s] += 1;
        }
    }
    let mut values: Vec<Vec<f32>> = counts
        .iter()
        .map(|&n| Vec::with_capacity(usize::try_from(n).unwrap_or(0)))
        .collect();
    for (&id, &hu) in labels.voxels().iter().zip(ct.voxels()) {
        let s = slot[usize::from(id)];
        if s != usize::MAX && hu.is_finite() {
            values[s].push(hu);
        }
    }
    let voxel_ml = voxel_volume_ml(ct.geometry());
    Ok(ids
        .iter()
        .zip(counts)
        .zip(values)
        .map(|((&id, count), mut v)| LabelStats {
            id,
            name: label_name(names, id),
            voxel_count: count,
            volume_ml: count as f64 * voxel_ml,
            hu: hu_stats(&mut v),
        })
        .collect())
}

/// Mean, sample SD, median, min and max of `values` (reordered in place); `None` when empty.
fn hu_stats(values: &mut [f32]) -> Option<HuStats> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    // Two passes (mean, then squared deviations) keep the SD exact for large HU offsets.
    let sd = (values.len() > 1).then(|| {
        let ss: f64 = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
        (ss / (n - 1.0)).sqrt()
    });
    let (min, max) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let odd = values.len() % 2 == 1;
    let (below, upper, _) = values.select_nth_unstable_by(values.len() / 2, f32::total_cmp);
    let upper = f64::from(*upper);
    let median = if odd {
        upper
    } else {
        // The lower middle value is the largest of those below the upper one.
        let lower = below.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (f64::from(lower) + upper) / 2.0
    };
    Some(HuStats {
        mean,
        sd,
        median,
        min: f64::from(min),
        max: f64::from(max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinray_volume::{Geometry, Volume};

    fn case(hu: &[f32], ids: &[u16], spacing: [f64; 3]) -> (CtVolume, LabelVolume) {
        let g = Geometry::axis_aligned([hu.len(), 1, 1], spacing, [0.0; 3]).expect("grid");
        (
            Volume::new(g, hu.to_vec()).expect("ct"),
            Volume::new(g, ids.to_vec()).expect("labels"),
        )
    }

    #[test]
    fn small_sets_match_hand_computed_values() {
        // Label 1: 1, 2, 3, 4 -> mean 2.5, sample SD sqrt(5/3), median 2.5.
        // Label 2: 10 alone -> SD undefined. Label 7: NaN only -> volume but no HU.
        let (ct, labels) = case(
            &[4.0, 10.0, 1.0, -5.0, 3.0, 2.0, f32::NAN],
            &[1, 2, 1, 0, 1, 1, 7],
            [0.5, 2.0, 4.0],
        );
        let names = LabelNames::totalsegmentator();
        let s = label_stats(&ct, &labels, &names, None).expect("stats");
        assert_eq!(s.iter().map(|l| l.id).collect::<Vec<_>>(), [1, 2, 7]);
        assert_eq!(s[0].name, "spleen");
        assert_eq!(s[0].voxel_count, 4);
        assert!((s[0].volume_ml - 4.0 * 0.004).abs() < 1e-15);
        let hu = s[0].hu.as_ref().expect("hu");
        assert!((hu.mean - 2.5).abs() < 1e-12);
        assert!((hu.sd.expect("sd") - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((hu.median, hu.min, hu.max), (2.5, 1.0, 4.0));
        assert_eq!(s[1].hu.as_ref().expect("hu").sd, None);
        assert_eq!(s[1].hu.as_ref().expect("hu").median, 10.0);
        assert_eq!((s[2].voxel_count, s[2].hu.as_ref()), (1, None));
    }

    #[test]
    fn asked_for_labels_come_in_order_even_when_absent() {
        let (ct, labels) = case(&[1.0, 2.0, 3.0], &[5, 5, 1], [1.0; 3]);
        let names = LabelNames::totalsegmentator();
        let s = label_stats(&ct, &labels, &names, Some(&[52, 5, 52])).expect("stats");
        assert_eq!(s.len(), 2, "asked twice, reported once");
        assert_eq!((s[0].name.as_str(), s[0].voxel_count), ("aorta", 0));
        assert_eq!(s[0].hu, None);
        assert_eq!((s[1].name.as_str(), s[1].voxel_count), ("liver", 2));
        assert_eq!(s[1].hu.as_ref().expect("hu").median, 1.5);
    }

    #[test]
    fn unknown_names_list_the_labels_present() {
        let (_, labels) = case(&[0.0; 3], &[5, 1, 300], [1.0; 3]);
        let names = LabelNames::totalsegmentator();
        assert_eq!(resolve_label("liver", &names, &labels), Ok(5));
        assert_eq!(resolve_label("52", &names, &labels), Ok(52));
        let e = resolve_label("livr", &names, &labels).expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "no label 'livr'; labels in this map: spleen, liver, label 300"
        );
    }

    #[test]
    fn other_grids_are_refused() {
        let (ct, _) = case(&[0.0; 3], &[0; 3], [1.0; 3]);
        let (_, labels) = case(&[0.0; 4], &[0; 4], [1.0; 3]);
        let e = label_stats(&ct, &labels, &LabelNames::default(), None).expect_err("grid");
        assert!(matches!(e, MeasureError::OtherGrid { .. }));
    }
}
