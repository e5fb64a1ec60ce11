#!/usr/bin/env python3
"""Exports a trained nnU-Net v2 model folder (TotalSegmentator's included) to ONNX plus twinray's
model description (segmentation/inference/models/FORMAT.md).

Run once, on a machine that has the weights and a Python with torch and nnunetv2:

    python -m venv ~/.cache/twinray-nnunet/venv
    ~/.cache/twinray-nnunet/venv/bin/pip install torch nnunetv2 onnx onnxruntime
    ~/.cache/twinray-nnunet/venv/bin/python segmentation/inference/scripts/export_nnunet.py \\
        ~/.totalsegmentator/nnunet/results/Dataset297_TotalSegmentator_total_3mm_1559subj/nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres \\
        --out models/totalseg-total-3mm.json

MODEL_FOLDER is the folder holding plans.json, dataset.json and fold_N/checkpoint_final.pth.
The script writes OUT (the description) and OUT with .onnx (the network), then checks the ONNX
file against the PyTorch network on a random patch with ONNX Runtime when onnxruntime is
installed.

The network is built by nnunetv2 itself, the way its predictor builds it
(`nnUNetPredictor.initialize_from_trained_model_folder`: the plans manager, the trainer class
named in the checkpoint, the architecture from the plans), and loaded with the checkpoint's
`network_weights`: the architecture is never re-implemented here, so whatever nnunetv2 would run
is what is exported. What the description says, and where it comes from:

  patch_size, spacing_mm   the configuration's patch_size and spacing (already in array order)
  axes                     ["S", "A", "R"] permuted by the plans' transpose_forward: nnU-Net's
                           readers give (z, y, x) arrays, and TotalSegmentator feeds them RAS
                           images; twinray reorients any image to these axes itself
  normalization            CTNormalization -> {"scheme": "ct"} with the plans'
                           foreground_intensity_properties_per_channel["0"] (percentile_00_5,
                           percentile_99_5, mean, std); ZScoreNormalization (use_mask_for_norm
                           false) -> {"scheme": "zscore"}; anything else is refused
  classes                  dataset.json's labels: channel c is label value c, its name the key
  mirror_axes              the checkpoint's inference_allowed_mirroring_axes ([] when None, as
                           TotalSegmentator's NoMirroring trainers leave it)
  step_fraction            0.5, nnU-Net's and TotalSegmentator's default

Exit codes: 0 written, 2 the folder cannot be exported (the reason is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

DESCRIPTION_FORMAT = "twinray-segmentation-model"
ARRAY_AXES_FROM_READER = ["S", "A", "R"]


class ExportError(Exception):
    """A model folder twinray cannot run, with the reason."""


def load_predictor(model_folder: str, fold: str, checkpoint: str):
    """nnUNetPredictor initialised from the folder on the CPU, its network holding the weights."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=False,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        verbose=False,
        allow_tqdm=False,
    )
    fold_id = fold if fold == "all" else int(fold)
    predictor.initialize_from_trained_model_folder(model_folder, use_folds=(fold_id,), checkpoint_name=checkpoint)
    network = predictor.network
    # The predictor loads each fold's weights only when it predicts; do what it does.
    network.load_state_dict(predictor.list_of_parameters[0])
    network.eval()
    return predictor, network


def normalization_of(predictor) -> dict:
    cm = predictor.configuration_manager
    schemes = list(cm.normalization_schemes)
    if len(schemes) != 1:
        raise ExportError(f"the model takes {len(schemes)} input channels; twinray feeds one image")
    scheme = schemes[0]
    use_mask = bool(cm.use_mask_for_norm[0])
    if scheme == "CTNormalization":
        props = predictor.plans_manager.foreground_intensity_properties_per_channel["0"]
        return {
            "scheme": "ct",
            "clip_low": float(props["percentile_00_5"]),
            "clip_high": float(props["percentile_99_5"]),
            "mean": float(props["mean"]),
            "std": float(props["std"]),
        }
    if scheme == "ZScoreNormalization":
        if use_mask:
            raise ExportError(
                "ZScoreNormalization with use_mask_for_norm true (statistics inside the nonzero region "
                "only) is not supported by twinray's z-score, which uses the whole image"
            )
        return {"scheme": "zscore"}
    raise ExportError(f"normalization scheme {scheme} has no twinray equivalent (ct and zscore exist)")


def classes_of(predictor) -> list[dict]:
    lm = predictor.label_manager
    if lm.has_regions:
        raise ExportError("region-based training (overlapping labels, sigmoid outputs) is not supported")
    labels = predictor.dataset_json["labels"]
    name_of = {}
    for name, value in labels.items():
        if name == "ignore":
            continue
        if not isinstance(value, int):
            raise ExportError(f"label '{name}' is {value!r}, not one integer")
        name_of[value] = name
    heads = lm.num_segmentation_heads
    classes = []
    for channel in range(heads):
        if channel not in name_of:
            raise ExportError(f"dataset.json names no label with value {channel} (output channel {channel})")
        if channel > 65535:
            raise ExportError("label values above 65535 do not fit twinray's label maps")
        classes.append({"channel": channel, "id": channel, "name": name_of[channel]})
    return classes


def description_of(predictor, name: str, onnx_file: str, model_folder: str) -> dict:
    cm = predictor.configuration_manager
    if len(cm.patch_size) != 3:
        raise ExportError(f"configuration has a {len(cm.patch_size)}D patch; twinray runs 3D models")
    transpose = list(predictor.plans_manager.transpose_forward)
    mirror = predictor.allowed_mirroring_axes
    return {
        "format": DESCRIPTION_FORMAT,
        "version": 1,
        "name": name,
        "onnx": onnx_file,
        "input_name": "input",
        "output_name": "logits",
        "axes": [ARRAY_AXES_FROM_READER[t] for t in transpose],
        "spacing_mm": [float(s) for s in cm.spacing],
        "patch_size": [int(p) for p in cm.patch_size],
        "step_fraction": 0.5,
        "normalization": normalization_of(predictor),
        "mirror_axes": [] if mirror is None else [int(a) for a in mirror],
        "classes": classes_of(predictor),
        "description": (
            f"Exported from the nnU-Net v2 model folder {os.path.basename(os.path.normpath(model_folder))} "
            f"by segmentation/inference/scripts/export_nnunet.py. Its licence and intended use are those of "
            f"the weights (TotalSegmentator's: see its README)."
        ),
    }


def export_onnx(network, patch: list[int], path: str, opset: int) -> None:
    import torch

    dummy = torch.zeros((1, 1, *patch), dtype=torch.float32)
    dims = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (dummy,),
            path,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": dims, "logits": dims},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def check_onnx(network, patch: list[int], path: str) -> float | None:
    """Largest |ONNX − PyTorch| logit on one random patch; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import numpy as np
    import torch

    x = np.random.default_rng(0).standard_normal((1, 1, *patch)).astype(np.float32)
    with torch.no_grad():
        expected = network(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x})[0]
    return float(np.abs(got - expected).max())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_folder", help="folder with plans.json, dataset.json and fold_N/")
    p.add_argument("--out", required=True, help="description to write (.json); the ONNX goes beside it")
    p.add_argument("--fold", default="0", help="fold to export (default 0; 'all' for fold_all)")
    p.add_argument("--checkpoint", default="checkpoint_final.pth")
    p.add_argument("--name", help="model name (default: the file name of --out)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--skip-check", action="store_true", help="do not compare ONNX Runtime with PyTorch")
    args = p.parse_args(argv)

    if not args.out.endswith(".json"):
        print("error: --out must name the .json description", file=sys.stderr)
        return 2
    onnx_path = args.out[: -len(".json")] + ".onnx"
    name = args.name or os.path.basename(args.out)[: -len(".json")]
    try:
        predictor, network = load_predictor(args.model_folder, args.fold, args.checkpoint)
        description = description_of(predictor, name, os.path.basename(onnx_path), args.model_folder)
    except (ExportError, FileNotFoundError, KeyError) as e:
        print(f"error: cannot export {args.model_folder}: {e}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export_onnx(network, description["patch_size"], onnx_path, args.opset)
    with open(args.out, "w") as f:
        json.dump(description, f, indent=2)
        f.write("\n")
    print(
        f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes) and {args.out}: "
        f"{len(description['classes'])} classes, patch {description['patch_size']}, "
        f"spacing {description['spacing_mm']} mm, normalization {description['normalization']['scheme']}"
    )
    if not args.skip_check:
        worst = check_onnx(network, description["patch_size"], onnx_path)
        if worst is None:
            print("onnxruntime not installed: the ONNX file was not checked against PyTorch")
        else:
            print(f"ONNX Runtime vs PyTorch on a random patch: max |logit difference| {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
