//! Label names: which anatomy each label id stands for.
//!
//! The one place names come from. A label map written by twinray has a `.tsv` sidecar (`id`,
//! tab, `name`) beside it; any other map (a TotalSegmentator output, say) is read with
//! TotalSegmentator's 117-class table, the one the renderer's palette is built from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use twinray_transfer_functions::Palette;
use twinray_volume::Modality;

/// Label ids and their names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelNames {
    names: BTreeMap<u16, String>,
}

/// What can go wrong reading a names sidecar.
#[derive(Debug, thiserror::Error)]
pub enum LabelNamesError {
    /// The file cannot be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not `id<TAB>name`.
    #[error("{path}, line {line}: expected 'id<TAB>name' with an id in 0..=65535, got '{text}'")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line (cut to 80 characters).
        text: String,
    },
}

/// Names from `(id, name)` pairs, as a model description or a bundle lists them; a repeated id
/// keeps its last name.
impl FromIterator<(u16, String)> for LabelNames {
    fn from_iter<I: IntoIterator<Item = (u16, String)>>(pairs: I) -> Self {
        Self {
            names: pairs.into_iter().collect(),
        }
    }
}

impl LabelNames {
    /// TotalSegmentator's 117 `total` classes (ids 1..=117).
    pub fn totalsegmentator() -> Self {
        Self {
            names: Palette::totalsegmentator()
                .labels()
                .iter()
                .map(|l| (l.id, l.name.clone()))
                .collect(),
        }
    }

    /// The name of an id.
    pub fn get(&self, id: u16) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }

    /// The id of a name.
    pub fn id_of(&self, name: &str) -> Option<u16> {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(&id, _)| id)
    }

    /// All (id, name) pairs by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &str)> {
        self.names.iter().map(|(&id, n)| (id, n.as_str()))
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The sidecar of a label map: `labels.nii.gz` → `labels.tsv`.
    pub fn sidecar_path(label_map: &Path) -> PathBuf {
        let name = label_map
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        let stem = [".nii.gz", ".nii", ".dcm"]
            .iter()
            .find(|ext| lower.ends_with(*ext))
            .map_or(name.as_str(), |ext| &name[..name.len() - ext.len()]);
        label_map.with_file_name(format!("{stem}.tsv"))
    }

    /// TotalSegmentator's 50 `total_mr` classes (its MR task; other ids than `total`).
    pub fn totalsegmentator_mr() -> Self {
        Self::from_palette(&Palette::totalsegmentator_mr())
    }

    /// TotalSegmentator's table for an image of this modality: `total_mr` on an MR, `total`
    /// on a CT (what TotalSegmentator's task for that modality writes).
    pub fn totalsegmentator_for(modality: Modality) -> Self {
        match modality {
            Modality::Ct => Self::totalsegmentator(),
            Modality::Mr => Self::totalsegmentator_mr(),
        }
    }

    fn from_palette(palette: &Palette) -> Self {
        Self {
            names: palette
                .labels()
                .iter()
                .map(|l| (l.id, l.name.clone()))
                .collect(),
        }
    }

    /// Names for a label map file: its sidecar when there is one (a model's own classes, as
    /// `twinray segment` writes them), else TotalSegmentator's table for a CT.
    pub fn for_label_map(label_map: &Path) -> Result<Self, LabelNamesError> {
        Self::for_label_map_on(label_map, Modality::Ct)
    }

    /// Names for a label map on an image of `modality`: its sidecar when there is one, else
    /// TotalSegmentator's table for that modality ([`Self::totalsegmentator_for`]).
    pub fn for_label_map_on(label_map: &Path, modality: Modality) -> Result<Self, LabelNamesError> {
        let sidecar = Self::sidecar_path(label_map);
        if sidecar.is_file() {
            Self::read_tsv(&sidecar)
        } else {
            Ok(Self::totalsegmentator_for(modality))
        }
    }

    /// Writes `id<TAB>name` lines under an `id<TAB>name` header.
    pub fn write_tsv(&self, path: &Path) -> Result<(), LabelNamesError> {
        let mut text = String::from("id\tname\n");
        for (id, name) in self.iter() {
            text.push_str(&format!("{id}\t{name}\n"));
        }
        std::fs::write(path, text).map_err(|source| LabelNamesError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a sidecar written by [`Self::write_tsv`] (at most 1 MiB; the header is optional).
    pub fn read_tsv(path: &Path) -> Result<Self, LabelNamesError> {
        let io = |source| LabelNamesError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > 1 << 20 {
            return Err(LabelNamesError::Malformed {
                path: path.to_path_buf(),
                line: 0,
                text: format!("{len} bytes; a names sidecar is at most 1 MiB"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let mut names = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || (n == 0 && line.starts_with("id\t")) {
                continue;
            }
            let parsed = line
                .split_once('\t')
                .and_then(|(id, name)| Some((id.trim().parse::<u16>().ok()?, name.trim())))
                .filter(|(_, name)| !name.is_empty());
            let Some((id, name)) = parsed else {
                return Err(LabelNamesError::Malformed {
                    path: path.to_path_buf(),
                    line: n + 1,
                    text: line.chars().take(80).collect(),
                });
            };
            names.insert(id, name.to_owned());
        }
        Ok(Self { names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totalsegmentator_names_its_117_classes() {
        let n = LabelNames::totalsegmentator();
        assert_eq!(n.len(), 117);
        assert_eq!(n.get(5), Some("liver"));
        assert_eq!(n.id_of("vertebrae_L1"), Some(31));
    }

    #[test]
    fn sidecars_round_trip_and_sit_beside_the_map() {
        assert_eq!(
            LabelNames::sidecar_path(Path::new("/tmp/x/labels.nii.gz")),
            Path::new("/tmp/x/labels.tsv")
        );
        assert_eq!(
            LabelNames::sidecar_path(Path::new("seg.nii")),
            Path::new("seg.tsv")
        );
        let dir = std::env::temp_dir().join(format!("twinray-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("n.tsv");
        let mut names = LabelNames::default();
        names.names.insert(5, "liver".into());
        names.names.insert(300, "my structure".into());
        names.write_tsv(&path).expect("write");
        assert_eq!(LabelNames::read_tsv(&path).expect("read"), names);
        std::fs::write(&path, "id\tname\nfive\tliver\n").expect("write");
        let e = LabelNames::read_tsv(&path).expect_err("bad id").to_string();
        assert!(e.contains("line 2") && e.contains("n.tsv"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
