//! A case: the CT and its labels, identified by a content hash instead of anything about the
//! patient, plus the demo case embedded in the binary.
//!
//! Lessons name their case only by [`content_hash`] (`case_ref` in the header), so a lesson
//! file carries nothing that identifies the patient, and a replay can check that it is shown
//! on the very volume it was taught on.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use twinray_io::{
    load_case, read_ct_bytes, read_labels_bytes, CtVolume, LabelVolume, SliceProgress,
};

use crate::SceneError;

/// The demo CT (TotalSegmentator's example, 3 mm), shipped inside the binary so the demo
/// lesson replays from any folder.
const DEMO_CT_NII_GZ: &[u8] = include_bytes!("../../../data/demo/example_ct.nii.gz");
/// The demo case's vertebra labels (TotalSegmentator ids 26–33, S1 … T11).
const DEMO_LABELS_NII_GZ: &[u8] =
    include_bytes!("../../../data/demo/spine_report_totalseg_vertebrae.nii.gz");

/// The demo case's files in the source tree (tests read them; the binary embeds them).
#[must_use]
pub fn demo_paths() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/demo");
    (
        root.join("example_ct.nii.gz"),
        root.join("spine_report_totalseg_vertebrae.nii.gz"),
    )
}

/// [`content_hash`] of the embedded demo case. A test recomputes it from the data.
pub const DEMO_CASE_REF: &str =
    "sha256:0fa25ea390164b0bfd8d6cf00c77370a4be98b5979208c93967a81ddef6f8fe0";

/// A CT with its optional labels and content hash.
#[derive(Debug, Clone)]
pub struct Case {
    /// The CT in HU.
    pub ct: CtVolume,
    /// Labels on the CT's grid.
    pub labels: Option<LabelVolume>,
    /// [`content_hash`] of both.
    pub case_ref: String,
    /// Where it came from, for messages (file names or "the embedded demo case").
    pub origin: String,
}

impl Case {
    /// A case from volumes already loaded; computes the hash.
    #[must_use]
    pub fn new(ct: CtVolume, labels: Option<LabelVolume>, origin: impl Into<String>) -> Self {
        let case_ref = content_hash(&ct, labels.as_ref());
        Self {
            ct,
            labels,
            case_ref,
            origin: origin.into(),
        }
    }

    /// Loads a CT (NIfTI or DICOM) and optional labels ([`twinray_io::load_case`]), with the
    /// warnings a user should see (resampled series, SEG segments left out).
    ///
    /// # Errors
    /// If a file cannot be read or the labels are not on the CT's grid.
    pub fn load(
        ct: &Path,
        labels: Option<&Path>,
        progress: Option<SliceProgress<'_>>,
    ) -> Result<(Self, Vec<String>), SceneError> {
        let loaded = load_case(ct, labels, progress)?;
        let origin = match labels {
            Some(l) => format!("{} with labels {}", ct.display(), l.display()),
            None => ct.display().to_string(),
        };
        Ok((Self::new(loaded.ct, loaded.labels, origin), loaded.warnings))
    }

    /// The demo case embedded in the binary.
    ///
    /// # Errors
    /// Only if the embedded bytes do not read (a broken build).
    pub fn demo() -> Result<Self, SceneError> {
        let ct = read_ct_bytes(DEMO_CT_NII_GZ, Path::new("example_ct.nii.gz"))
            .map_err(|source| SceneError::EmbeddedDemo { what: "CT", source })?;
        let labels = read_labels_bytes(
            DEMO_LABELS_NII_GZ,
            Path::new("spine_report_totalseg_vertebrae.nii.gz"),
        )
        .map_err(|source| SceneError::EmbeddedDemo {
            what: "labels",
            source,
        })?;
        Ok(Self::new(ct, Some(labels), "the embedded demo case"))
    }

    /// Whether this is the embedded demo case (by content).
    #[must_use]
    pub fn is_demo(&self) -> bool {
        self.case_ref == DEMO_CASE_REF
    }
}

/// `sha256:` and the hex SHA-256 of the case's content: grid size and placement, every CT
/// value and every label id (little-endian), in voxel order. The same volume read from NIfTI
/// or DICOM gives the same hash when the loaders agree on the values; nothing about the
/// patient enters it.
#[must_use]
pub fn content_hash(ct: &CtVolume, labels: Option<&LabelVolume>) -> String {
    let mut h = Sha256::new();
    h.update(b"twinray-case-v1\0");
    hash_geometry(&mut h, ct.geometry());
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in ct.voxels().chunks(16 * 1024) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        h.update(&buf);
    }
    match labels {
        Some(l) => {
            h.update(b"labels\0");
            hash_geometry(&mut h, l.geometry());
            for chunk in l.voxels().chunks(32 * 1024) {
                buf.clear();
                for v in chunk {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                h.update(&buf);
            }
        }
        None => h.update(b"no labels\0"),
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn hash_geometry(h: &mut Sha256, g: &twinray_volume::Geometry) {
    for d in g.dims {
        h.update((d as u64).to_le_bytes());
    }
    for v in g.patient_from_voxel.to_cols_array() {
        h.update(v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_demo_case_is_the_one_in_the_source_tree() {
        let (ct, labels) = demo_paths();
        let (from_files, warnings) = Case::load(&ct, Some(&labels), None).expect("demo files");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(from_files.case_ref, DEMO_CASE_REF);
    }

    #[test]
    fn the_embedded_demo_case_has_the_published_hash() {
        let demo = Case::demo().expect("demo case");
        assert_eq!(demo.ct.geometry().dims, [122, 101, 112]);
        assert_eq!(demo.case_ref, DEMO_CASE_REF);
        assert!(demo.is_demo());
        // Without labels it is another case.
        assert_ne!(content_hash(&demo.ct, None), DEMO_CASE_REF);
    }
}
