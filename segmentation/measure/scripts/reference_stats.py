#!/usr/bin/env python3
"""Reference label statistics for twinray-measure's tests, computed outside the project.

Reads TotalSegmentator's example DICOM series and its reference `total` labels (the copies in
data/ct/totalsegmentator/, see data/ct/README.md) twice, by two independent routes, and prints
per label the numbers that `tests/reference_stats.rs` holds:

  voxel count, volume (ml) = voxel count x voxel volume (product of the CT's spacings),
  HU mean, sample SD (n - 1, as vtkImageAccumulate in 3D Slicer's Segment Statistics),
  median (numpy: the mean of the two middle values when the count is even), min, max.

Route 1: SimpleITK (ITK/GDCM) reads the series sorted by position and the label map; the labels
are resampled onto the CT grid by nearest neighbour through patient space (identity transform).
Route 2: pydicom decodes each slice (rescale slope/intercept applied), slices are sorted by
ImagePositionPatient along the slice normal, and nibabel's affine maps every CT voxel centre
(LPS, converted to RAS) to a label voxel, rounded. The script fails unless both routes agree
exactly, so a mistake in one reader's geometry cannot slip into the committed numbers.

Run once, by hand (it is not part of the build or CI):
    ~/.cache/twinray-peers/venv/bin/python segmentation/measure/scripts/reference_stats.py
Needs numpy, SimpleITK, pydicom (with pylibjpeg/openjpeg or GDCM for JPEG 2000) and nibabel.
"""

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[3]
SERIES = ROOT / "data/ct/totalsegmentator/example_ct_dicom"
LABELS = ROOT / "data/ct/totalsegmentator/example_seg_dicom.nii.gz"
# TotalSegmentator `total` ids (data/.../totalsegmentator_total_classes.tsv).
WANTED = {"liver": 5, "spleen": 1, "aorta": 52, "vertebrae_T12": 32}


def route_simpleitk():
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(SERIES))
    reader.SetFileNames(files)
    ct = sitk.Cast(reader.Execute(), sitk.sitkFloat64)
    labels = sitk.ReadImage(str(LABELS))
    on_ct = sitk.Resample(labels, ct, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                          labels.GetPixelID())
    spacing = ct.GetSpacing()
    # GetArrayFromImage is (k, j, i); both arrays share the CT's grid, so order does not matter.
    return sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(on_ct), spacing


def route_pydicom_nibabel():
    import nibabel as nib
    import pydicom

    slices = [pydicom.dcmread(p) for p in sorted(SERIES.iterdir()) if p.is_file()]
    row = np.array(slices[0].ImageOrientationPatient[:3], float)
    col = np.array(slices[0].ImageOrientationPatient[3:], float)
    normal = np.cross(row, col)
    slices.sort(key=lambda s: float(np.dot(normal, np.array(s.ImagePositionPatient, float))))
    hu = np.stack([
        s.pixel_array.astype(np.float64) * float(s.RescaleSlope) + float(s.RescaleIntercept)
        for s in slices
    ])  # (k, row j, column i)
    nk, nj, ni = hu.shape
    dr, dc = (float(v) for v in slices[0].PixelSpacing)  # row spacing, column spacing
    origins = np.array([s.ImagePositionPatient for s in slices], float)
    steps = np.diff(origins @ normal)
    assert np.allclose(steps, steps[0], atol=1e-3), "irregular slices"
    spacing = (dc, dr, float(steps[0]))
    # LPS position of every voxel centre (i = column, j = row, k = slice).
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    lps = (origins[k] + i[..., None] * dc * row + j[..., None] * dr * col)
    ras = lps * np.array([-1.0, -1.0, 1.0])
    img = nib.load(str(LABELS))
    lab = np.asarray(img.dataobj)
    vox = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), ras)).astype(int)
    assert (vox >= 0).all() and (vox < np.array(lab.shape)).all(), "labels off the CT grid"
    on_ct = lab[vox[..., 0], vox[..., 1], vox[..., 2]]
    return hu, on_ct, spacing


def stats(hu, labels, spacing):
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = {}
    for name, lid in WANTED.items():
        v = hu[labels == lid]
        out[name] = {
            "id": lid,
            "voxels": int(v.size),
            "volume_ml": v.size * voxel_ml,
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "median": float(np.median(v)),
            "min": float(v.min()),
            "max": float(v.max()),
        }
    return out, voxel_ml


def main():
    a, voxel_ml_a = stats(*route_simpleitk())
    b, voxel_ml_b = stats(*route_pydicom_nibabel())
    ok = abs(voxel_ml_a - voxel_ml_b) < 1e-9
    for name in WANTED:
        for key in a[name]:
            x, y = a[name][key], b[name][key]
            if abs(x - y) > 1e-9 * max(1.0, abs(x)):
                print(f"routes disagree on {name} {key}: {x} vs {y}", file=sys.stderr)
                ok = False
    if not ok:
        sys.exit(1)
    print(json.dumps({"voxel_ml": voxel_ml_a, "labels": a}, indent=2))


if __name__ == "__main__":
    main()
