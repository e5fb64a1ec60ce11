#!/usr/bin/env python3
"""Writes the fixtures that check twinray's sliding-window inference against the Python reference.

Run with the peer venv (it has numpy, nibabel, onnx and onnxruntime 1.32, as twinray loads):

    ~/.cache/twinray-peers/venv/bin/python segmentation/inference/scripts/make_inference_reference.py

It writes into segmentation/inference/tests/fixtures/inference/:
  tiny_unet3d.onnx       a random-weight 3D U-Net from ../shared/peers/make_unet_onnx.py
                         (base 4 channels, 3 classes, dynamic batch and D/H/W, ~80 KB)
  tiny_unet3d.json       its twinray model description (patch 12x12x16, axes S,A,R, 3 mm)
  caseN_ct.nii.gz        a crop of the real example_ct_sm.nii.gz (RAS, 3 mm, int16)
  caseN_labels.nii.gz    the labels the reference writes for it (channel indices, CT grid)
  caseN_logits.f32.gz    the reference's weighted-average logits before the arg-max:
                         float32 little-endian, [channel][z][y][x] (x fastest), unpadded
  reference.json         the parameters and what the reference printed (label counts, sha256)
  fixed16.onnx           the same U-Net shape (base 2) with a fixed 16^3 input, for patch checks
  bad_rank4.onnx         a model taking [1, 1, D, H] (rank 4), for the rank check
  bad_channels2.onnx     a model taking two input channels, for the channel check

case1: 20x24x28 voxels (z, y, x): 3 windows per axis, no padding.
case2: 8x20x16 voxels: padded along z to the patch, mirroring over all three axes (8 flips).

The labels come from running ../shared/peers/onnx_sliding_window.py itself (its main(), with
--out). The logits come from the same algorithm written out below with the reference's own
compute_steps and gaussian_importance_map (imported, not copied), because the reference does not
export them; the script checks that their arg-max is the reference's labels.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import itertools
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers"))
sys.path.insert(0, PEERS)

import numpy as np  # noqa: E402
import nibabel as nib  # noqa: E402
import onnxruntime as ort  # noqa: E402

import make_unet_onnx  # noqa: E402
import onnx_sliding_window as ref  # noqa: E402

PATCH = [12, 12, 16]
NORM = [-1024.0, 1500.0, 0.0, 500.0]
CASES = {
    # name: (i, j, k slices of example_ct_sm.nii.gz (122 x 101 x 30, RAS), mirror)
    "case1": ((slice(40, 68), slice(30, 54), slice(5, 25)), False),
    "case2": ((slice(50, 66), slice(40, 60), slice(10, 18)), True),
}


def logits_like_reference(model, volume, mirror):
    """The reference's one_pass, returning acc / wsum (unpadded) instead of only the arg-max."""
    lo, hi, mean, std = NORM
    raw = np.ascontiguousarray(np.asarray(nib.load(volume).dataobj, dtype=np.float32).transpose(2, 1, 0))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    in_name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    G = ref.gaussian_importance_map(PATCH)
    flips = [()] if not mirror else [ax for r in range(4) for ax in itertools.combinations((2, 3, 4), r)]
    data = np.clip(raw, lo, hi)
    data -= mean
    data /= max(std, 1e-8)
    pad_before = [max(0, (p - s) // 2) for p, s in zip(PATCH, data.shape)]
    pad_after = [max(0, p - s - b) for p, s, b in zip(PATCH, data.shape, pad_before)]
    if any(pad_before) or any(pad_after):
        data = np.pad(data, list(zip(pad_before, pad_after)), constant_values=0.0)
    steps = ref.compute_steps(data.shape, PATCH, 0.5)
    acc = None
    wsum = np.zeros(data.shape, dtype=np.float32)
    for z, y, x in itertools.product(*steps):
        sl = (slice(z, z + PATCH[0]), slice(y, y + PATCH[1]), slice(x, x + PATCH[2]))
        tile = np.ascontiguousarray(data[sl])[None, None]
        pred = None
        for fl in flips:
            inp = np.ascontiguousarray(np.flip(tile, fl)) if fl else tile
            o = sess.run([out_name], {in_name: inp})[0]
            o = np.flip(o, fl) if fl else o
            pred = o if pred is None else pred + o
        if len(flips) > 1:
            pred /= len(flips)
        if acc is None:
            acc = np.zeros((pred.shape[1], *data.shape), dtype=np.float32)
        acc[(slice(None), *sl)] += pred[0] * G
        wsum[sl] += G
    acc /= wsum
    acc = acc[(slice(None), *(slice(b, b + s) for b, s in zip(pad_before, raw.shape)))]
    return np.ascontiguousarray(acc), steps


def write_bad_models(out):
    """Tiny models that do not fit a segmentation description (onnx.helper only)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def save(name, inputs, outputs, nodes, inits=()):
        graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
        model = helper.make_model(graph, producer_name="make_inference_reference.py",
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(out, name + ".onnx"))

    f = TensorProto.FLOAT
    save("bad_rank4", [helper.make_tensor_value_info("input", f, [1, 1, "D", "H"])],
         [helper.make_tensor_value_info("logits", f, [1, 1, "D", "H"])],
         [helper.make_node("Identity", ["input"], ["logits"])])
    w = numpy_helper.from_array(np.ones((3, 2, 1, 1, 1), dtype=np.float32), "w")
    save("bad_channels2", [helper.make_tensor_value_info("input", f, [1, 2, "D", "H", "W"])],
         [helper.make_tensor_value_info("logits", f, [1, 3, "D", "H", "W"])],
         [helper.make_node("Conv", ["input", "w"], ["logits"], kernel_shape=[1, 1, 1])], [w])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "segmentation", "inference", "tests", "fixtures", "inference"))
    p.add_argument("--ct", default=os.path.join(ROOT, "..", "shared", "data", "ct", "totalsegmentator",
                                                "example_ct_sm.nii.gz"))
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    model = os.path.join(a.out, "tiny_unet3d.onnx")
    with contextlib.redirect_stdout(io.StringIO()):
        make_unet_onnx.main(["--out", model, "--classes", "3", "--base", "4", "--seed", "7"])
        make_unet_onnx.main(["--out", os.path.join(a.out, "fixed16.onnx"), "--classes", "3",
                             "--base", "2", "--seed", "7", "--fixed-patch", "16"])
    write_bad_models(a.out)
    # A dynamic batch dimension, so that twinray's batching of windows can be tested too.
    import onnx
    m = onnx.load(model)
    for v in (m.graph.input[0], m.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(m)
    onnx.save(m, model)
    desc = {
        "format": "twinray-segmentation-model", "version": 1,
        "name": "tiny-unet3d-random",
        "onnx": "tiny_unet3d.onnx",
        "input_name": "input", "output_name": "logits",
        "axes": ["S", "A", "R"],
        "spacing_mm": [3.0, 3.0, 3.0],
        "patch_size": PATCH,
        "step_fraction": 0.5,
        "normalization": {"scheme": "ct", "clip_low": NORM[0], "clip_high": NORM[1],
                          "mean": NORM[2], "std": NORM[3]},
        "mirror_axes": [0, 1, 2],
        "classes": [{"channel": 0, "id": 0, "name": "background"},
                    {"channel": 1, "id": 5, "name": "liver"},
                    {"channel": 2, "id": 31, "name": "vertebrae_L1"}],
        "description": "Random weights (make_unet_onnx.py --base 4 --classes 3 --seed 7): "
                       "for testing the sliding window against the Python reference only.",
    }
    with open(os.path.join(a.out, "tiny_unet3d.json"), "w") as f:
        json.dump(desc, f, indent=2)
        f.write("\n")

    src = nib.load(a.ct)
    summary = {"patch": PATCH, "ct_norm": NORM, "source": os.path.basename(a.ct), "cases": {}}
    for name, (sl, mirror) in CASES.items():
        crop = src.slicer[sl]
        ct = nib.Nifti1Image(np.asarray(crop.dataobj).astype(np.int16), crop.affine)
        ct.set_data_dtype(np.int16)
        ct_path = os.path.join(a.out, f"{name}_ct.nii.gz")
        nib.save(ct, ct_path)
        labels_path = os.path.join(a.out, f"{name}_labels.nii.gz")
        args = ["--model", model, "--volume", ct_path, "--patch", "x".join(map(str, PATCH)),
                "--step", "0.5", "--ct-norm=" + ",".join(map(str, NORM)), "--repeats", "1",
                "--out", labels_path]
        if mirror:
            args.append("--mirror")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            ref.main(args)
        printed = json.loads(out.getvalue().strip().splitlines()[-1])
        logits, steps = logits_like_reference(model, ct_path, mirror)
        labels = np.asarray(nib.load(labels_path).dataobj).transpose(2, 1, 0)
        mine = logits.argmax(axis=0).astype(np.uint8)
        assert np.array_equal(mine, labels), f"{name}: arg-max of the logits differs from the reference's labels"
        assert steps == printed["tile_starts_zyx"], (steps, printed["tile_starts_zyx"])
        with open(os.path.join(a.out, f"{name}_logits.f32.gz"), "wb") as raw_file, \
                gzip.GzipFile(fileobj=raw_file, mode="wb", mtime=0) as f:
            f.write(logits.astype("<f4").tobytes())
        summary["cases"][name] = {
            "shape_zyx": list(labels.shape), "mirror": mirror, "classes": int(logits.shape[0]),
            "tile_starts_zyx": printed["tile_starts_zyx"], "windows": printed["windows"],
            "label_counts": printed["label_counts"], "labels_sha256": printed["labels_sha256"],
        }
        print(f"{name}: {labels.shape} windows {printed['windows']} counts {printed['label_counts']}",
              file=sys.stderr)
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
