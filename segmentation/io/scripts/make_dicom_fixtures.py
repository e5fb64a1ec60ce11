#!/usr/bin/env python3
"""Writes the small synthetic DICOM fixtures under segmentation/io/tests/fixtures/dicom/.

Run once by hand (not part of CI), with pydicom 3 and pylibjpeg-openjpeg 2 installed, e.g. the
peer venv: ~/.cache/twinray-peers/venv/bin/python segmentation/io/scripts/make_dicom_fixtures.py

Every value is a formula of the voxel index so the Rust tests can check geometry exactly:
- tiny_ct/: 5 slices, 15 columns x 11 rows, unsigned 12-bit, slope 2, intercept -1000,
  HU(i, j, k) = 2*(i + 20*j + 300*k) - 1000 with k ascending along +z; file names shuffled and
  InstanceNumber decreasing; one slice implicit VR LE, one explicit VR big endian.
- enhanced_ct.dcm: Enhanced CT, 4 frames 15x11, frames stored in decreasing z, per-frame rescale
  (slope 1 / 0.5, intercept -1024 / -2000), HU(i, j, k) = i + 16*j + 200*k.
- seg_binary.dcm / seg_fractional.dcm: DICOM SEG on tiny_ct's grid, segment 1 "liver" box
  i 2..=6, j 3..=7, k 1..=3 and segment 2 "aorta" box i 10..=13, j 5..=9, k 0..=4; 1-bit frames
  (15*11 = 165 pixels: frames are NOT byte-aligned) or 8-bit fractional (255 inside the box,
  100 on a one-pixel ring around it, which must stay unlabelled).
- j2k_signed_mismatch.dcm: one 64x64 slice, PixelRepresentation 1 but the JPEG 2000 stream is
  unsigned; stored -1000 + i*10 (HU = stored).
- unsupported_ts.dcm: one slice declared MPEG2 Main Profile (no decoder), garbage fragment.
"""
import random
from pathlib import Path

import numpy as np
import openjpeg
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, JPEG2000Lossless,
    generate_uid, CTImageStorage, EnhancedCTImageStorage, SegmentationStorage,
)

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dicom"
COLS, ROWS = 15, 11
ORIGIN = (-10.0, -20.0, 30.0)
SPACING = (0.8, 0.5)  # (between rows, between columns)
STEP = 2.5
STUDY = generate_uid(entropy_srcs=["twinray-study"])
FOR = generate_uid(entropy_srcs=["twinray-for"])


def base(sop_class, modality, series_uid, series_number, ts=ExplicitVRLittleEndian):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = "Synthetic^Fixture"
    ds.PatientID = "SYNTH-0001"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.FrameOfReferenceUID = FOR
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def tiny_ct():
    d = OUT / "tiny_ct"
    d.mkdir(parents=True, exist_ok=True)
    series = generate_uid(entropy_srcs=["twinray-tiny-ct"])
    names = [f"s{n:03d}.dcm" for n in random.Random(7).sample(range(100), 5)]
    i, j = np.meshgrid(np.arange(COLS), np.arange(ROWS))
    for k in range(5):
        ts = {1: ImplicitVRLittleEndian, 3: ExplicitVRBigEndian}.get(k, ExplicitVRLittleEndian)
        ds = base(CTImageStorage, "CT", series, 3, ts)
        ds.SeriesDescription = "tiny synthetic CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = 5 - k
        ds.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + STEP * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = list(SPACING)
        ds.SliceThickness = STEP
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
        stored = (i + 20 * j + 300 * k).astype(np.uint16)
        ds.PixelData = stored.astype(">u2" if ts == ExplicitVRBigEndian else "<u2").tobytes()
        ds.save_as(d / names[k], enforce_file_format=True)


def enhanced_ct():
    ds = base(EnhancedCTImageStorage, "CT", generate_uid(), 4)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    po = Dataset(); po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    pm = Dataset(); pm.PixelSpacing = list(SPACING); pm.SliceThickness = STEP
    shared.PlaneOrientationSequence = [po]
    shared.PixelMeasuresSequence = [pm]
    ds.SharedFunctionalGroupsSequence = [shared]
    i, j = np.meshgrid(np.arange(COLS), np.arange(ROWS))
    frames, per_frame = [], []
    for f in range(4):
        k = 3 - f
        slope, icpt = (1.0, -1024.0) if f % 2 == 0 else (0.5, -2000.0)
        hu = i + 16 * j + 200 * k
        frames.append(((hu - icpt) / slope).astype(np.uint16))
        item = Dataset()
        pp = Dataset(); pp.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + STEP * k]
        pv = Dataset(); pv.RescaleSlope = slope; pv.RescaleIntercept = icpt; pv.RescaleType = "HU"
        item.PlanePositionSequence = [pp]
        item.PixelValueTransformationSequence = [pv]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = np.stack(frames).astype("<u2").tobytes()
    ds.save_as(OUT / "enhanced_ct.dcm", enforce_file_format=True)


BOXES = {1: ("liver", (2, 6), (3, 7), (1, 3)), 2: ("aorta", (10, 13), (5, 9), (0, 4))}


def seg(fractional):
    ds = base(SegmentationStorage, "SEG", generate_uid(), 100)
    ds.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        ds.SegmentationFractionalType = "PROBABILITY"
        ds.MaximumFractionalValue = 255
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    segs = []
    for n, (label, *_ ) in BOXES.items():
        s = Dataset(); s.SegmentNumber = n; s.SegmentLabel = label
        s.SegmentAlgorithmType = "MANUAL"
        segs.append(s)
    ds.SegmentSequence = segs
    shared = Dataset()
    po = Dataset(); po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    pm = Dataset(); pm.PixelSpacing = list(SPACING); pm.SliceThickness = STEP
    shared.PlaneOrientationSequence = [po]; shared.PixelMeasuresSequence = [pm]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, per_frame = [], []
    for n, (_, (i0, i1), (j0, j1), (k0, k1)) in BOXES.items():
        for k in range(k0, k1 + 1):
            m = np.zeros((ROWS, COLS), np.uint8)
            if fractional:
                m[max(j0 - 1, 0):j1 + 2, max(i0 - 1, 0):i1 + 2] = 100
                m[j0:j1 + 1, i0:i1 + 1] = 255
            else:
                m[j0:j1 + 1, i0:i1 + 1] = 1
            frames.append(m)
            item = Dataset()
            si = Dataset(); si.ReferencedSegmentNumber = n
            pp = Dataset(); pp.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + STEP * k]
            item.SegmentIdentificationSequence = [si]; item.PlanePositionSequence = [pp]
            per_frame.append(item)
    ds.NumberOfFrames = len(frames)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    flat = np.concatenate([f.ravel() for f in frames])
    if fractional:
        ds.PixelData = flat.tobytes()
    else:
        ds.PixelData = np.packbits(flat, bitorder="little").tobytes()
    ds["PixelData"].VR = "OB"
    ds.save_as(OUT / ("seg_fractional.dcm" if fractional else "seg_binary.dcm"),
               enforce_file_format=True)


def one_slice(ts, series_number):
    ds = base(CTImageStorage, "CT", generate_uid(), series_number, ts)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = list(ORIGIN)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = list(SPACING)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    return ds


def j2k_mismatch():
    ds = one_slice(JPEG2000Lossless, 5)
    # 64x64: OpenJPEG's default 6 resolution levels need at least 32 pixels a side.
    ds.Rows = ds.Columns = 64
    i, _ = np.meshgrid(np.arange(64), np.arange(64))
    signed = (-1000 + 10 * i).astype(np.int16)
    as_unsigned = signed.view(np.uint16)  # the bit patterns, encoded as an unsigned stream
    stream = openjpeg.encode(as_unsigned, codec_format=0)
    ds.PixelData = encapsulate([bytes(stream)])
    ds["PixelData"].VR = "OB"
    ds.save_as(OUT / "j2k_signed_mismatch.dcm", enforce_file_format=True)


def unsupported():
    ds = one_slice("1.2.840.10008.1.2.4.100", 6)  # MPEG-2 video: no decoder in dicom-rs
    ds.PixelData = encapsulate([b"\xff\x0a" + b"\x00" * 30])
    ds["PixelData"].VR = "OB"
    ds.save_as(OUT / "unsupported_ts.dcm", enforce_file_format=True)


if __name__ == "__main__":
    tiny_ct(); enhanced_ct(); seg(False); seg(True); j2k_mismatch(); unsupported()
    print(sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file()), "bytes in", OUT)
