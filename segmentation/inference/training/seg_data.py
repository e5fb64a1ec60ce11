"""Data loading shared by train_unet.py and evaluate.py (numpy + nibabel + pydicom only).

Conventions (the same as the Rust side and nnU-Net's NibabelIO):
- a volume is reoriented to RAS-canonical with nibabel, then resampled to 3 mm isotropic,
  then its nibabel (x, y, z) array is transposed to (z, y, x), i.e. axes ["S", "A", "R"];
- resampling maps voxel centres (new_shape = round(shape * spacing / 3), the src coordinate of
  output voxel i is (i + 0.5) * shape / new_shape - 0.5, as skimage.transform.resize does):
  linear for CT, nearest for labels;
- labels go back to the original grid by nearest neighbour with the same centre mapping.
"""
from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "data", "ct", "totalsegmentator"))
PEERS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "peers"))

TARGET_SPACING_MM = 3.0
# vertebrae C1..S1 in TotalSegmentator's 117-class map (26 = S1 ... 50 = C1), merged into one class
VERTEBRA_TS_IDS = tuple(range(26, 51))
VERTEBRAE_ID = 200

# (channel, model id written to label maps, name, TotalSegmentator ids merged into it)
CLASSES = [
    (0, 0, "background", ()),
    (1, 1, "spleen", (1,)),
    (2, 2, "kidney_right", (2,)),
    (3, 3, "kidney_left", (3,)),
    (4, 5, "liver", (5,)),
    (5, 52, "aorta", (52,)),
    (6, VERTEBRAE_ID, "vertebrae", VERTEBRA_TS_IDS),
]
NUM_CLASSES = len(CLASSES)
VERTEBRA_CHANNEL = 6


def ts_to_channels(ts_labels: np.ndarray) -> np.ndarray:
    """TotalSegmentator 117-class ids -> model channels (uint8); unlisted ids become background."""
    lut = np.zeros(256, dtype=np.uint8)
    for ch, _id, _name, ts_ids in CLASSES:
        for t in ts_ids:
            lut[t] = ch
    return lut[ts_labels.astype(np.int64)]


def _src_coords(n_in: int, n_out: int) -> np.ndarray:
    return (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5


def resize_linear(a: np.ndarray, new_shape) -> np.ndarray:
    """Separable linear resampling (float32), voxel centres aligned, edges clamped."""
    out = a.astype(np.float32)
    for ax, n_out in enumerate(new_shape):
        n_in = out.shape[ax]
        if n_in == n_out:
            continue
        c = np.clip(_src_coords(n_in, n_out), 0, n_in - 1)
        i0 = np.floor(c).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        w = (c - i0).astype(np.float32)
        shp = [1] * out.ndim
        shp[ax] = n_out
        w = w.reshape(shp)
        out = np.take(out, i0, axis=ax) * (1 - w) + np.take(out, i1, axis=ax) * w
    return out.astype(np.float32)


def resize_nearest(a: np.ndarray, new_shape) -> np.ndarray:
    """Nearest-neighbour resampling of a label map, voxel centres aligned."""
    out = a
    for ax, n_out in enumerate(new_shape):
        n_in = out.shape[ax]
        if n_in == n_out:
            continue
        idx = np.clip(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), 0, n_in - 1)
        out = np.take(out, idx, axis=ax)
    return out


def to_model_grid(img, is_label: bool):
    """nibabel image -> (array (z, y, x) at 3 mm RAS, info needed to map labels back)."""
    import nibabel as nib

    can = nib.as_closest_canonical(img)
    arr = np.asarray(can.dataobj)
    zooms = np.array(can.header.get_zooms()[:3], dtype=np.float64)
    new_shape = [max(1, int(round(s * z / TARGET_SPACING_MM))) for s, z in zip(arr.shape, zooms)]
    arr = resize_nearest(arr, new_shape) if is_label else resize_linear(arr, new_shape)
    info = {"orig_ornt": nib.io_orientation(img.affine), "canonical_shape": can.shape[:3],
            "orig_shape": img.shape[:3]}
    return np.ascontiguousarray(arr.transpose(2, 1, 0)), info


def from_model_grid(labels_zyx: np.ndarray, info) -> np.ndarray:
    """Model-grid labels (z, y, x) -> labels on the original image's voxel grid (x, y, z)."""
    import nibabel as nib

    xyz = resize_nearest(labels_zyx.transpose(2, 1, 0), info["canonical_shape"])
    # canonical -> original orientation
    to_orig = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")), info["orig_ornt"])
    return np.ascontiguousarray(nib.orientations.apply_orientation(xyz, to_orig))


def load_dicom_series_as_nifti(folder: str, like):
    """The DICOM series as a NIfTI image on the grid of `like` (example_seg_dicom.nii.gz):
    voxel (i, j, k) = DICOM column i, row 511 - j, k-th slice by ascending z."""
    import nibabel as nib

    sys.path.insert(0, PEERS)
    import dicom_load  # noqa: E402  (the peers' pydicom loader: sorted by IPP, HU)

    vol, _geom = dicom_load.load_pydicom(folder)  # (Z, rows, cols), ascending z
    xyz = np.ascontiguousarray(vol[:, ::-1, :].transpose(2, 1, 0)).astype(np.int16)
    if xyz.shape != like.shape[:3]:
        raise SystemExit(f"{folder}: DICOM shape {xyz.shape} != label map {like.shape}")
    return nib.Nifti1Image(xyz, like.affine)


def ct_normalize(a: np.ndarray, norm) -> np.ndarray:
    out = np.clip(a, norm["clip_low"], norm["clip_high"]).astype(np.float32)
    out -= norm["mean"]
    out /= max(norm["std"], 1e-8)
    return out
