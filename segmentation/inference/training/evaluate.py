#!/usr/bin/env python3
"""Per-class Dice of the shipped ONNX model, with the nnU-Net sliding window of the peers'
reference (../../../../shared/peers/onnx_sliding_window.py: its compute_steps and Gaussian map,
step 0.5, batch 1, no mirroring) on onnxruntime's CPU provider, so that the Rust side reproduces
the same figures. Needs numpy, nibabel, onnxruntime, pydicom + pylibjpeg-openjpeg (no torch).

Cases:
  dicom      example_ct_dicom vs example_seg_dicom, on the DICOM's own 512x512x20 grid (labels
             brought back by nearest neighbour). The model was trained on this series too.
  held-out   example_ct slices z < 60 (3 mm, never seen in training) vs
             spine_report_totalseg_vertebrae: vertebrae only (the only labels there).
  train-crop example_ct_sm vs example_seg (training data; for reference only).

  python evaluate.py [--model ../models/twinray-abdomen-3mm.json] [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

import numpy as np

import seg_data as sd

sys.path.insert(0, sd.PEERS)
from onnx_sliding_window import compute_steps, gaussian_importance_map  # noqa: E402

HELD_OUT_Z = 60


def sliding_window(sess, desc, vol_zyx_hu):
    """nnU-Net v2 predict_sliding_window_return_logits as in onnx_sliding_window.py."""
    patch = list(desc["patch_size"])
    data = sd.ct_normalize(vol_zyx_hu, desc["normalization"])
    pad_before = [max(0, (p - s) // 2) for p, s in zip(patch, data.shape)]
    pad_after = [max(0, p - s - b) for p, s, b in zip(patch, data.shape, pad_before)]
    if any(pad_before) or any(pad_after):
        data = np.pad(data, list(zip(pad_before, pad_after)), constant_values=0.0)
    shape = data.shape
    steps = compute_steps(shape, patch, desc["step_fraction"])
    G = gaussian_importance_map(patch)
    acc = np.zeros((len(desc["classes"]), *shape), dtype=np.float32)
    wsum = np.zeros(shape, dtype=np.float32)
    n = 0
    for z, y, x in itertools.product(*steps):
        sl = (slice(z, z + patch[0]), slice(y, y + patch[1]), slice(x, x + patch[2]))
        tile = np.ascontiguousarray(data[sl])[None, None]
        pred = sess.run([desc["output_name"]], {desc["input_name"]: tile})[0]
        acc[(slice(None), *sl)] += pred[0] * G
        wsum[sl] += G
        n += 1
    acc /= wsum
    labels = acc.argmax(axis=0).astype(np.uint8)
    return labels[tuple(slice(b, b + s) for b, s in zip(pad_before, vol_zyx_hu.shape))], n


def dice(a, b):
    s = int(a.sum()) + int(b.sum())
    return float("nan") if s == 0 else 2.0 * int(np.logical_and(a, b).sum()) / s


def table(title, pred_ch, ref_ch, channels):
    print(f"\n{title}")
    print(f"  {'class':<14}{'id':>5}{'ref vox':>10}{'pred vox':>10}{'Dice':>8}")
    out = {}
    for ch, cid, name, _ in sd.CLASSES:
        if ch == 0 or ch not in channels:
            continue
        r, p = ref_ch == ch, pred_ch == ch
        d = dice(p, r)
        out[name] = d
        print(f"  {name:<14}{cid:>5}{int(r.sum()):>10}{int(p.sum()):>10}{d:>8.3f}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(sd.HERE, "..", "models", "twinray-abdomen-3mm.json"))
    ap.add_argument("--out-dir", default=None, help="write the predicted label maps (model ids) here")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import nibabel as nib
    import onnxruntime as ort

    with open(a.model) as f:
        desc = json.load(f)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    sess = ort.InferenceSession(os.path.join(os.path.dirname(os.path.abspath(a.model)), desc["onnx"]), so,
                                providers=["CPUExecutionProvider"])
    print(f"model {desc['name']}: patch {desc['patch_size']}, classes "
          + ", ".join(f"{c['channel']}={c['name']}({c['id']})" for c in desc["classes"]))
    ids = np.array([c["id"] for c in desc["classes"]], dtype=np.uint8)
    results = {}

    # 1. the DICOM series, on its own grid
    seg_img = nib.load(os.path.join(sd.DATA, "example_seg_dicom.nii.gz"))
    ct_img = sd.load_dicom_series_as_nifti(os.path.join(sd.DATA, "example_ct_dicom"), seg_img)
    vol, info = sd.to_model_grid(ct_img, False)
    lab, n = sliding_window(sess, desc, vol)
    pred = sd.from_model_grid(lab, info)
    ref = sd.ts_to_channels(np.asarray(seg_img.dataobj))
    results["dicom"] = table(f"example_ct_dicom (512x512x20, model grid {list(vol.shape)}, {n} windows; "
                             "TRAINED ON this series too)", pred, ref, range(1, sd.NUM_CLASSES))
    merged = dice(np.isin(pred, (4, sd.VERTEBRA_CHANNEL)), np.isin(ref, (4, sd.VERTEBRA_CHANNEL)))
    results["dicom"]["liver+vertebrae"] = merged
    print(f"  {'liver+vertebrae (one mask)':<39}{merged:>8.3f}")
    if a.out_dir:
        os.makedirs(a.out_dir, exist_ok=True)
        nib.save(nib.Nifti1Image(ids[pred], seg_img.affine), os.path.join(a.out_dir, "dicom_pred.nii.gz"))

    # 2. example_ct: held-out slices (vertebrae only) and the example_ct_sm crop (training data)
    ct_img = nib.load(os.path.join(sd.DATA, "example_ct.nii.gz"))
    vol, info = sd.to_model_grid(ct_img, False)
    lab, n = sliding_window(sess, desc, vol)
    vert, _ = sd.to_model_grid(nib.load(os.path.join(sd.DATA, "spine_report_totalseg_vertebrae.nii.gz")), True)
    ref_v = sd.ts_to_channels(vert)
    results["held_out"] = table(
        f"example_ct held-out slices z<{HELD_OUT_Z} (of {vol.shape[0]}; whole volume {list(vol.shape)} run, "
        f"{n} windows; NOT trained on; vertebrae S1..L4 labelled only)",
        lab[:HELD_OUT_Z], ref_v[:HELD_OUT_Z], [sd.VERTEBRA_CHANNEL])
    zs = np.where((ref_v[:HELD_OUT_Z] == sd.VERTEBRA_CHANNEL).any(axis=(1, 2)))[0]
    z0 = int(zs.min())
    results["held_out_spine_slices"] = table(
        f"example_ct held-out slices z {z0}..{HELD_OUT_Z - 1} only (those with labelled vertebrae; below them "
        "lies the pelvis, which the model never saw and the reference does not label)",
        lab[z0:HELD_OUT_Z], ref_v[z0:HELD_OUT_Z], [sd.VERTEBRA_CHANNEL])
    seg_sm, _ = sd.to_model_grid(nib.load(os.path.join(sd.DATA, "example_seg.nii.gz")), True)
    results["train_crop"] = table("example_ct_sm crop = example_ct z 82..111 (TRAINING data, for reference)",
                                  lab[82:112], sd.ts_to_channels(seg_sm), range(1, sd.NUM_CLASSES))
    if a.out_dir:
        nib.save(nib.Nifti1Image(ids[sd.from_model_grid(lab, info)], ct_img.affine),
                 os.path.join(a.out_dir, "example_ct_pred.nii.gz"))
    print("\n" + json.dumps({k: {n: round(v, 4) for n, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
