//! Which labels a frame shows: the case's own, or a map a segmentation made during the lesson
//! (recorded once by hash, shown by `SceneChange::LabelMap`). One place for the rule, used by
//! every player — the desktop studio, `twinray replay` and VR — so a lesson replays the labels
//! the instructor saw wherever it is opened.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use twinray_lessons::event::{LabelMapBlob, LabelMapHash};
use twinray_lessons::player::Player;
use twinray_volume::{Geometry, LabelVolume};

/// The label maps a player can show, decoded on first use and kept (scrubbing back and forth
/// decodes each once).
#[derive(Debug)]
pub struct LabelMaps {
    /// The case's grid: a map on another grid is refused.
    grid: Geometry,
    /// The case's own labels.
    case: Option<Arc<LabelVolume>>,
    /// Maps decoded so far, or made live, by hash.
    decoded: HashMap<LabelMapHash, Arc<LabelVolume>>,
    /// Maps made during a live session, compressed, to record again when a new recording
    /// starts while one is shown.
    live: HashMap<LabelMapHash, LabelMapBlob>,
    /// Maps that could not be shown, each said once.
    failed: HashSet<LabelMapHash>,
}

/// The labels to show for a wanted map.
#[derive(Debug, Clone)]
pub struct ShownLabels {
    /// The map shown: `None` for the case's own labels (also when the wanted map failed).
    pub hash: Option<LabelMapHash>,
    /// Its voxels.
    pub labels: Option<Arc<LabelVolume>>,
    /// Why the wanted map is not shown, said the first time only.
    pub warning: Option<String>,
}

impl LabelMaps {
    /// The maps of a case on `grid` whose own labels are `case`.
    #[must_use]
    pub fn new(grid: Geometry, case: Option<Arc<LabelVolume>>) -> Self {
        Self {
            grid,
            case,
            decoded: HashMap::new(),
            live: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    /// Keeps a map made now (a segmentation during a live session) and returns it encoded, for
    /// the recorder: `LabelMapBlob::into_events` gives the two events that store and show it.
    ///
    /// # Errors
    /// When the map is not on the case's grid, or outside the format's limits.
    pub fn add_live(&mut self, labels: LabelVolume) -> Result<LabelMapBlob, String> {
        let dims = labels.geometry().dims;
        if dims != self.grid.dims {
            return Err(format!(
                "the new labels are on a {dims:?} grid, the case on {:?}",
                self.grid.dims
            ));
        }
        let to_u32 = |d: [usize; 3]| d.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let blob =
            LabelMapBlob::encode(to_u32(dims), labels.voxels()).map_err(|e| e.to_string())?;
        self.decoded.insert(blob.hash, Arc::new(labels));
        self.live.insert(blob.hash, blob.clone());
        Ok(blob)
    }

    /// A map made live, to record again in a new recording.
    #[must_use]
    pub fn live_blob(&self, hash: &LabelMapHash) -> Option<&LabelMapBlob> {
        self.live.get(hash)
    }

    /// The labels `wanted` names (`None`: the case's own), decoding the map from `player`'s
    /// lesson on first use. A map that cannot be read (a damaged chunk, another grid) is
    /// reported once and the case's labels are shown in its place.
    pub fn resolve(
        &mut self,
        wanted: Option<LabelMapHash>,
        player: Option<&mut Player>,
    ) -> ShownLabels {
        let mut warning = None;
        let wanted = wanted.filter(|h| !self.failed.contains(h));
        if let Some(hash) = wanted {
            if !self.decoded.contains_key(&hash) {
                let decoded = player
                    .ok_or_else(|| "it was not given to this session".to_owned())
                    .and_then(|p| {
                        p.label_map(&hash)
                            .ok_or_else(|| "its chunk is missing or damaged".to_owned())
                    })
                    .and_then(|blob| blob.voxels().map_err(|e| e.to_string()))
                    .and_then(|voxels| {
                        LabelVolume::new(self.grid, voxels).map_err(|e| e.to_string())
                    });
                match decoded {
                    Ok(v) => {
                        self.decoded.insert(hash, Arc::new(v));
                    }
                    Err(why) => {
                        self.failed.insert(hash);
                        warning = Some(format!(
                            "the lesson's label map {} cannot be shown ({why}); showing the \
                             case's labels",
                            &LabelMapBlob::hash_hex(&hash)[..12]
                        ));
                    }
                }
            }
        }
        let hash = wanted.filter(|h| self.decoded.contains_key(h));
        let labels = match hash {
            Some(h) => self.decoded.get(&h).cloned(),
            None => self.case.clone(),
        };
        ShownLabels {
            hash,
            labels,
            warning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::DMat4;

    fn grid(dims: [usize; 3]) -> Geometry {
        Geometry::new(dims, DMat4::IDENTITY).expect("geometry")
    }

    #[test]
    fn a_live_map_is_shown_by_its_hash_and_none_shows_the_case() {
        let g = grid([2, 2, 2]);
        let case = Arc::new(LabelVolume::new(g, vec![1; 8]).expect("case"));
        let mut maps = LabelMaps::new(g, Some(case));
        let blob = maps
            .add_live(LabelVolume::new(g, vec![7; 8]).expect("map"))
            .expect("fits");
        let shown = maps.resolve(Some(blob.hash), None);
        assert_eq!(shown.hash, Some(blob.hash));
        assert_eq!(shown.labels.expect("labels").voxels()[0], 7);
        let case_shown = maps.resolve(None, None);
        assert_eq!(case_shown.hash, None);
        assert_eq!(case_shown.labels.expect("labels").voxels()[0], 1);
    }

    #[test]
    fn an_unknown_map_falls_back_to_the_case_and_warns_once() {
        let g = grid([2, 2, 2]);
        let mut maps = LabelMaps::new(g, None);
        let first = maps.resolve(Some([3; 32]), None);
        assert!(first.hash.is_none() && first.labels.is_none());
        assert!(first.warning.expect("warned").contains("030303030303"));
        assert!(maps.resolve(Some([3; 32]), None).warning.is_none());
    }

    #[test]
    fn a_map_on_another_grid_is_refused() {
        let mut maps = LabelMaps::new(grid([2, 2, 2]), None);
        let other = LabelVolume::new(grid([2, 2, 1]), vec![1; 4]).expect("map");
        assert!(maps.add_live(other).expect_err("refused").contains("grid"));
    }
}
