//! A case: the CT and its labels, identified by a content hash instead of anything about the
//! patient, plus the demo case embedded in the binary.
//!
//! Lessons name their case only by [`content_hash`] (`case_ref` in the header), so a lesson
//! file carries nothing that identifies the patient, and a replay can check that it is shown
//! on the very volume it was taught on.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use twinray_io::{
    load_case_with, read_ct_bytes, read_labels_bytes, CaseOptions, CtVolume, Intensity,
    LabelVolume, Modality, SliceProgress,
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
    "sha256:667937f28de7626336ac0a752f0b4f069f1756eb7e8333cd544ac69c58394249";

/// The demo case's [`HashVersion::V1`] hash, which demo lessons recorded before V2 carry.
pub const DEMO_CASE_REF_V1: &str =
    "sha256:0fa25ea390164b0bfd8d6cf00c77370a4be98b5979208c93967a81ddef6f8fe0";

/// An image (CT or MR) with its optional labels and content hash.
#[derive(Debug, Clone)]
pub struct Case {
    /// The image: HU on a CT, scanner units on an MR (see [`Self::intensity`]).
    pub ct: CtVolume,
    /// What the image's values mean (modality, range, display window): where presets and the
    /// renderer's density range are placed.
    pub intensity: Intensity,
    /// Labels on the CT's grid.
    pub labels: Option<LabelVolume>,
    /// [`content_hash`] of both.
    pub case_ref: String,
    /// Where it came from, for messages (file names or "the embedded demo case").
    pub origin: String,
}

impl Case {
    /// A case from volumes already loaded, its modality guessed from its value range (3D
    /// Slicer's rule, [`Modality::guess_from_range`]); computes the hash.
    #[must_use]
    pub fn new(ct: CtVolume, labels: Option<LabelVolume>, origin: impl Into<String>) -> Self {
        let range = Intensity::measure(Modality::Ct, ct.voxels(), None).range;
        let modality = Modality::guess_from_range(range[0], range[1]);
        let intensity = Intensity::measure(modality, ct.voxels(), None);
        Self::with_intensity(ct, intensity, labels, origin)
    }

    /// A case from volumes already loaded whose intensities are known; computes the hash
    /// (of the voxels and grids only: the same voxels are the same case whatever they are
    /// taken for).
    #[must_use]
    pub fn with_intensity(
        ct: CtVolume,
        intensity: Intensity,
        labels: Option<LabelVolume>,
        origin: impl Into<String>,
    ) -> Self {
        let case_ref = content_hash(&ct, labels.as_ref());
        Self {
            ct,
            intensity,
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
        Self::load_with(
            ct,
            labels,
            &CaseOptions {
                progress,
                ..CaseOptions::default()
            },
        )
    }

    /// [`Self::load`] with the modality or DICOM series chosen ([`twinray_io::load_case_with`]).
    ///
    /// # Errors
    /// If a file cannot be read or the labels are not on the image's grid.
    pub fn load_with(
        ct: &Path,
        labels: Option<&Path>,
        options: &CaseOptions<'_>,
    ) -> Result<(Self, Vec<String>), SceneError> {
        let loaded = load_case_with(ct, labels, options)?;
        let origin = match labels {
            Some(l) => format!("{} with labels {}", ct.display(), l.display()),
            None => ct.display().to_string(),
        };
        Ok((
            Self::with_intensity(loaded.ct, loaded.intensity, loaded.labels, origin),
            loaded.warnings,
        ))
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
        let intensity = Intensity::measure(Modality::Ct, ct.voxels(), None);
        Ok(Self::with_intensity(
            ct,
            intensity,
            Some(labels),
            "the embedded demo case",
        ))
    }

    /// Whether this is the embedded demo case (by content).
    #[must_use]
    pub fn is_demo(&self) -> bool {
        self.case_ref == DEMO_CASE_REF
    }

    /// Whether a lesson's `case_ref` names the embedded demo case (by either hash version).
    #[must_use]
    pub fn names_the_demo(case_ref: &str) -> bool {
        case_ref == DEMO_CASE_REF || case_ref == DEMO_CASE_REF_V1
    }

    /// Whether a lesson's `case_ref` names this case, by the current hash or, for lessons
    /// recorded before it, by [`HashVersion::V1`] (computed only when needed).
    #[must_use]
    pub fn is_named_by(&self, case_ref: &str) -> bool {
        self.case_ref == case_ref
            || content_hash_as(HashVersion::V1, &self.ct, self.labels.as_ref()) == case_ref
    }
}

/// Which definition of the content hash: lessons recorded before the geometry was hashed at
/// NIfTI's precision name their case by [`HashVersion::V1`], and still replay on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVersion {
    /// The placement hashed as `f64` bits: a case read from NIfTI (which stores `f32`) never
    /// matched the same case read from DICOM.
    V1,
    /// The placement hashed at single precision (what NIfTI stores; about 15 µm at 250 mm from
    /// the origin), so a DICOM series and its NIfTI conversion are the same case.
    V2,
}

/// `sha256:` and the hex SHA-256 of the case's content ([`HashVersion::V2`]): grid size and
/// placement, every CT value and every label id (little-endian), in voxel order. The same
/// volume read from NIfTI or DICOM gives the same hash when the loaders agree on the values;
/// nothing about the patient enters it.
#[must_use]
pub fn content_hash(ct: &CtVolume, labels: Option<&LabelVolume>) -> String {
    content_hash_as(HashVersion::V2, ct, labels)
}

/// [`content_hash`] by a given definition.
#[must_use]
pub fn content_hash_as(
    version: HashVersion,
    ct: &CtVolume,
    labels: Option<&LabelVolume>,
) -> String {
    let mut h = Sha256::new();
    h.update(match version {
        HashVersion::V1 => b"twinray-case-v1\0",
        HashVersion::V2 => b"twinray-case-v2\0",
    });
    hash_geometry(&mut h, version, ct.geometry());
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
            hash_geometry(&mut h, version, l.geometry());
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

fn hash_geometry(h: &mut Sha256, version: HashVersion, g: &twinray_volume::Geometry) {
    for d in g.dims {
        h.update((d as u64).to_le_bytes());
    }
    for v in g.patient_from_voxel.to_cols_array() {
        match version {
            HashVersion::V1 => h.update(v.to_le_bytes()),
            // `+ 0.0` turns −0 into +0: a flipped axis written as −0 is the same placement.
            HashVersion::V2 => h.update(((v as f32) + 0.0).to_le_bytes()),
        }
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

    /// The case from a DICOM series and from its NIfTI conversion (written by twinray).
    fn dicom_and_nifti(series: &Path, labels: Option<&Path>) -> (Case, Case) {
        let (from_dicom, _) = Case::load(series, labels, None).expect("the series");
        let dir = std::env::temp_dir().join(format!(
            "twinray-case-hash-{}-{}",
            std::process::id(),
            series
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        std::fs::create_dir_all(&dir).expect("scratch");
        let nifti = dir.join("ct.nii.gz");
        twinray_io::write_ct(&nifti, &from_dicom.ct).expect("convert");
        let (from_nifti, _) = Case::load(&nifti, labels, None).expect("the conversion");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(from_nifti.ct.voxels(), from_dicom.ct.voxels());
        (from_dicom, from_nifti)
    }

    #[test]
    fn a_dicom_series_and_its_nifti_conversion_are_the_same_case() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ct");
        let ts = data.join("totalsegmentator");
        let labels = ts.join("example_seg_dicom.nii.gz");
        let (dicom, nifti) = dicom_and_nifti(&ts.join("example_ct_dicom"), Some(&labels));
        assert_eq!(nifti.case_ref, dicom.case_ref);
        // A tilted series is resampled onto a grid whose placement f32 cannot hold exactly:
        // the old definition (f64 bits) told the two apart, the current one does not.
        let (dicom, nifti) = dicom_and_nifti(&data.join("dicom2nifti_gantry_tilt"), None);
        assert_eq!(nifti.case_ref, dicom.case_ref);
        assert_ne!(
            content_hash_as(HashVersion::V1, &nifti.ct, None),
            content_hash_as(HashVersion::V1, &dicom.ct, None)
        );
        // A real change of placement (a tenth of a millimetre) is another case.
        let mut moved = dicom.ct.geometry().patient_from_voxel;
        moved.w_axis.x += 0.1;
        let shifted = twinray_io::Volume::new(
            twinray_io::Geometry::new(dicom.ct.geometry().dims, moved).expect("grid"),
            dicom.ct.voxels().to_vec(),
        )
        .expect("volume");
        assert_ne!(content_hash(&shifted, None), dicom.case_ref);
    }

    #[test]
    fn the_embedded_demo_case_has_the_published_hash() {
        let demo = Case::demo().expect("demo case");
        assert_eq!(demo.ct.geometry().dims, [122, 101, 112]);
        assert_eq!(demo.case_ref, DEMO_CASE_REF, "{}", demo.case_ref);
        assert_eq!(
            content_hash_as(HashVersion::V1, &demo.ct, demo.labels.as_ref()),
            DEMO_CASE_REF_V1
        );
        assert!(demo.is_named_by(DEMO_CASE_REF_V1));
        assert!(demo.is_demo());
        // Without labels it is another case.
        assert_ne!(content_hash(&demo.ct, None), DEMO_CASE_REF);
    }
}
