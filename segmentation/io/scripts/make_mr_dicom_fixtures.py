#!/usr/bin/env python3
"""Writes small DICOM MR fixtures under segmentation/io/tests/fixtures/dicom/mr/ from the real
abdominal MR in data/mr/totalsegmentator/example_mr_sm.nii.gz (TotalSegmentator, Apache-2.0),
and the reference display window the Rust tests check against.

Run once by hand (not part of CI), with numpy, nibabel and pydicom 3, e.g. the peer venv:
  ~/.cache/twinray-peers/venv/bin/python segmentation/io/scripts/make_mr_dicom_fixtures.py

What it writes (voxel values are the NIfTI's own int16 values, unscaled: its scl_slope is NaN,
which means "no scaling"; geometry is the NIfTI's, converted from RAS to DICOM's LPS):
- mr_study/: one study, two MR series in one folder, as a scanner exports them:
  series 5 "t1_vibe_abdomen" = slices k = 8..11 (4 files, 117x91, signed 16-bit, no rescale,
  WindowCenter/Width 400/800, InstanceNumber increasing with z, file names shuffled);
  series 6 "t2_haste_abdomen" = slices k = 9..10 with values 900 - v (a second contrast of the
  same anatomy), 2 files.
- enhanced_mr.dcm: Enhanced MR Image Storage, the same 4 slices as frames in decreasing z,
  geometry in the functional groups, Frame VOI LUT 400/800, no Pixel Value Transformation (MR
  frames usually have none).
- philips_mr/ (written alone with the argument `philips`, so the others keep their UIDs):
  a Philips series of slices k = 9..10 in Implicit VR Little Endian (private tags then have
  no VR in the file, as in many Philips exports), Manufacturer "Philips Medical Systems",
  RescaleSlope 1.5, RescaleIntercept -10, private creator "Philips MR Imaging DD 001",
  MR Scale Slope (2005,100E) 0.25 and MR Scale Intercept (2005,100D) 0: displayed values
  DV = 1.5 v - 10, floating-point values FP = DV / (1.5 x 0.25).
- ../../mr_window_reference.txt: numpy.percentile of the whole NIfTI at 0.1 and 99.9 (3D
  Slicer's automatic window rule), the value range, and the same for series 5's voxels.
"""
import random
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid, MRImageStorage, EnhancedMRImageStorage,
)

ROOT = Path(__file__).resolve().parents[3]
NIFTI = ROOT / "data" / "mr" / "totalsegmentator" / "example_mr_sm.nii.gz"
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dicom" / "mr"
REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mr_window_reference.txt"
SLICES = range(8, 12)
STUDY = generate_uid(entropy_srcs=["twinray-mr-study"])
FOR = generate_uid(entropy_srcs=["twinray-mr-for"])

image = nib.load(NIFTI)
data = np.asanyarray(image.dataobj)  # (i, j, k), int16, unscaled
lps_from_ijk = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
COLS, ROWS = data.shape[0], data.shape[1]
row_dir = lps_from_ijk[:3, 0] / np.linalg.norm(lps_from_ijk[:3, 0])  # along i (columns)
col_dir = lps_from_ijk[:3, 1] / np.linalg.norm(lps_from_ijk[:3, 1])  # along j (rows)
spacing = [float(np.linalg.norm(lps_from_ijk[:3, 1])), float(np.linalg.norm(lps_from_ijk[:3, 0]))]
step = float(np.linalg.norm(lps_from_ijk[:3, 2]))


def position(k):
    return [float(v) for v in (lps_from_ijk @ [0, 0, k, 1])[:3]]


def plane(k, invert=False):
    # DICOM pixel (row j, column i) = voxel (i, j, k): rows of the array are j.
    p = data[:, :, k].T.astype(np.int16)
    return (900 - p).astype(np.int16) if invert else p


def base(sop_class, series_uid, series_number, description):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientName = "Synthetic^Fixture"
    ds.PatientID = "SYNTH-0002"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.FrameOfReferenceUID = FOR
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def classic(folder, series_number, description, slices, invert):
    series = generate_uid(entropy_srcs=[f"twinray-mr-{series_number}"])
    names = [f"IM{n:04d}" for n in random.Random(series_number).sample(range(1000), len(slices))]
    for n, k in enumerate(slices):
        ds = base(MRImageStorage, series, series_number, description)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM"]
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = position(k)
        ds.ImageOrientationPatient = [float(v) for v in [*row_dir, *col_dir]]
        ds.PixelSpacing = spacing
        ds.SliceThickness = step
        ds.WindowCenter, ds.WindowWidth = 400, 800
        ds.PixelData = plane(k, invert).astype("<i2").tobytes()
        ds.save_as(folder / names[n], enforce_file_format=True)


def enhanced():
    ds = base(EnhancedMRImageStorage, generate_uid(entropy_srcs=["twinray-mr-enh"]), 7,
              "t1_vibe_abdomen enhanced")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = len(SLICES)
    shared = Dataset()
    po = Dataset(); po.ImageOrientationPatient = [float(v) for v in [*row_dir, *col_dir]]
    pm = Dataset(); pm.PixelSpacing = spacing; pm.SliceThickness = step
    voi = Dataset(); voi.WindowCenter, voi.WindowWidth = 400, 800
    shared.PlaneOrientationSequence = [po]
    shared.PixelMeasuresSequence = [pm]
    shared.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, per_frame = [], []
    for k in reversed(SLICES):
        frames.append(plane(k))
        item = Dataset()
        pp = Dataset(); pp.ImagePositionPatient = position(k)
        item.PlanePositionSequence = [pp]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = np.stack(frames).astype("<i2").tobytes()
    ds.save_as(OUT / "enhanced_mr.dcm", enforce_file_format=True)


def philips():
    folder = OUT / "philips_mr"
    folder.mkdir(parents=True, exist_ok=True)
    series = generate_uid(entropy_srcs=["twinray-mr-philips"])
    for n, k in enumerate(range(9, 11)):
        ds = base(MRImageStorage, series, 8, "T1W_philips")
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.Manufacturer = "Philips Medical Systems"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"]
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = position(k)
        ds.ImageOrientationPatient = [float(v) for v in [*row_dir, *col_dir]]
        ds.PixelSpacing = spacing
        ds.SliceThickness = step
        ds.RescaleSlope, ds.RescaleIntercept = "1.5", "-10"
        ds.add_new(0x20050010, "LO", "Philips MR Imaging DD 001")
        ds.add_new(0x2005100D, "FL", 0.0)
        ds.add_new(0x2005100E, "FL", 0.25)
        ds.PixelData = plane(k).astype("<i2").tobytes()
        ds.save_as(folder / f"IM_{n:04d}", enforce_file_format=True)


def main():
    study = OUT / "mr_study"
    study.mkdir(parents=True, exist_ok=True)
    classic(study, 5, "t1_vibe_abdomen", SLICES, False)
    classic(study, 6, "t2_haste_abdomen", range(9, 11), True)
    enhanced()
    whole = np.percentile(data, [0.1, 99.9])
    part = np.percentile(data[:, :, SLICES.start:SLICES.stop], [0.1, 99.9])
    REFERENCE.write_text(
        "# numpy.percentile(values, [0.1, 99.9]) (default linear method), min, max;\n"
        "# written by segmentation/io/scripts/make_mr_dicom_fixtures.py\n"
        f"example_mr_sm.nii.gz\t{float(whole[0])!r}\t{float(whole[1])!r}\t{data.min()}\t{data.max()}\n"
        f"mr_study series 5\t{float(part[0])!r}\t{float(part[1])!r}\t"
        f"{data[:, :, SLICES.start:SLICES.stop].min()}\t{data[:, :, SLICES.start:SLICES.stop].max()}\n"
    )


if sys.argv[1:] == ["philips"]:
    philips()
else:
    main()
