#!/usr/bin/env python3
"""Checks twinray's whole nnU-Net recipe against nnU-Net v2's own predictor (a one-off, not CI).

It writes an nnU-Net v2 model folder by hand (plans.json, dataset.json and a random-weight
fold_0/checkpoint_final.pth in nnU-Net's checkpoint format), exports it with export_nnunet.py,
segments one image with nnunetv2's `nnUNetPredictor` (CPU, step 0.5, Gaussian, no mirroring:
TotalSegmentator's settings and twinray's defaults) and with `twinray segment`, and compares the
two label maps on the image's own grid, as a user gets them.

    ~/.cache/twinray-nnunet/venv/bin/python segmentation/inference/scripts/compare_nnunet.py \\
        --config total3mm --twinray target/release/twinray

Configurations:
  total3mm   TotalSegmentator's `total` 3 mm model (Dataset297, nnUNetTrainer_4000epochs_NoMirroring,
             3d_fullres): 118 outputs (background + 117 classes), PlainConvUNet with 6 stages of
             32…320 features, patch 112×112×128 at 3 mm, CT normalisation; on example_ct.nii.gz.
             The plans are written in nnU-Net 2.1's format, as TotalSegmentator's v2 weights ship.
  total3mm-dicom  the same model on the DICOM series example_ct_dicom (0.977 x 0.977 x 2 mm,
             converted by `twinray convert`, made RAS as TotalSegmentator does): both sides
             resample, each its own way, so this measures that difference.
  tiny-ct    the same family, 3 stages of 4…16 features, patch 24×32×32: the CI fixture (CT) on a
             crop of example_ct.nii.gz.
  tiny-mr    as tiny-ct with ZScoreNormalization, on example_mr_sm.nii.gz made RAS-canonical (as
             TotalSegmentator does before it calls nnU-Net): the CI fixture for the z-score.

Each run also predicts with the predictor's float16 accumulators made float32 (--fp32, the only
change; see run_nnunet) to tell float16 ties from recipe differences.

--write-fixture DIR copies the model, the case and both nnU-Net label maps into DIR (the Rust test
segmentation/inference/tests/nnunet.rs reads them). Timings and peak memory (VmHWM of each
process, so imports and model loading count for both) are printed and written to
WORK/result.json; --threads sets both sides' thread counts.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
TRAINER = "nnUNetTrainer_4000epochs_NoMirroring"
SOURCE_PROVENANCE = ("../shared/data (see its README): wasserth/TotalSegmentator @ 0e65a448, "
                     "tests/reference_files/, Apache-2.0")

# TotalSegmentator `total` 3 mm (Dataset297_TotalSegmentator_total_3mm_1559subj), nnU-Net 2.1
# plans format. Patch, spacing and the intensity statistics are those TotalSegmentator's model
# uses; the topology is what nnU-Net's planner derives for that patch (6 stages, pooling
# 4/4/5 times, 32 base features capped at 320).
CONFIGS = {
    "total3mm": {
        "image": "ct/totalsegmentator/example_ct.nii.gz",
        "crop_xyz": None,
        "canonical": False,
        "patch_size": [112, 112, 128],
        "spacing": [3.0, 3.0, 3.0],
        "n_stages": 6,
        "base_features": 32,
        "max_features": 320,
        "pool": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 1, 2]],
        "normalization": "CTNormalization",
        "intensity": {"max": 3071.0, "mean": -50.3900146484375, "median": 23.0, "min": -1024.0,
                      "percentile_00_5": -1004.0, "percentile_99_5": 1588.0, "std": 503.3900146484375},
    },
    # The same model on the DICOM series (0.977 x 0.977 x 2 mm): both sides resample, each its
    # own way (nnU-Net: cubic splines there, linear logits back; twinray: trilinear there,
    # nearest labels back), so this measures that documented difference, not the recipe.
    "total3mm-dicom": {
        "image": "ct/totalsegmentator/example_ct_dicom",
        "crop_xyz": None,
        "canonical": True,
    },
    "tiny-ct": {
        "image": "ct/totalsegmentator/example_ct.nii.gz",
        "crop_xyz": [[36, 92], [30, 78], [60, 100]],
        "canonical": False,
        "patch_size": [24, 32, 32],
        "spacing": [3.0, 3.0, 3.0],
        "n_stages": 3,
        "base_features": 4,
        "max_features": 16,
        "pool": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "normalization": "CTNormalization",
        "intensity": {"max": 3071.0, "mean": -50.3900146484375, "median": 23.0, "min": -1024.0,
                      "percentile_00_5": -1004.0, "percentile_99_5": 1588.0, "std": 503.3900146484375},
    },
    "tiny-mr": {
        "image": "mr/totalsegmentator/example_mr_sm.nii.gz",
        "crop_xyz": [[20, 96], [14, 78], [0, 20]],
        "canonical": True,
        "patch_size": [16, 32, 32],
        "spacing": [3.0, 3.0, 3.0],
        "n_stages": 3,
        "base_features": 4,
        "max_features": 16,
        "pool": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "normalization": "ZScoreNormalization",
        "intensity": {"max": 833.0, "mean": 200.0, "median": 180.0, "min": -47.0,
                      "percentile_00_5": 0.0, "percentile_99_5": 700.0, "std": 150.0},
    },
}


def read_tsv(path: str) -> dict[int, str]:
    out = {}
    with open(path) as f:
        next(f)
        for line in f:
            i, name = line.rstrip("\n").split("\t")
            out[int(i)] = name
    return out


def plans_and_dataset(cfg: dict, dataset_name: str) -> tuple[dict, dict]:
    n = cfg["n_stages"]
    mr = cfg["normalization"] == "ZScoreNormalization"
    classes = read_tsv(os.path.join(SHARED_DATA, "totalsegmentator_total_mr_classes.tsv" if mr
                                    else "totalsegmentator_total_classes.tsv"))
    labels = {"background": 0, **{classes[i]: i for i in sorted(classes)}}
    dataset = {
        "channel_names": {"0": "MR" if mr else "CT"},
        "labels": labels,
        "numTraining": 1559,
        "file_ending": ".nii.gz",
        "overwrite_image_reader_writer": "SimpleITKIO",
    }
    pool = cfg["pool"]
    num_pool = [sum(1 for p in pool if p[a] == 2) for a in range(3)]
    conf = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": cfg["patch_size"],
        "median_image_size_in_voxels": [cfg["patch_size"][0] * 3 // 2, 160, 160],
        "spacing": cfg["spacing"],
        "normalization_schemes": [cfg["normalization"]],
        "use_mask_for_norm": [False],
        "UNet_class_name": "PlainConvUNet",
        "UNet_base_num_features": cfg["base_features"],
        "n_conv_per_stage_encoder": [2] * n,
        "n_conv_per_stage_decoder": [2] * (n - 1),
        "num_pool_per_axis": num_pool,
        "pool_op_kernel_sizes": pool,
        "conv_kernel_sizes": [[3, 3, 3]] * n,
        "unet_max_num_features": cfg["max_features"],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                               "force_separate_z": None},
        "batch_dice": False,
    }
    plans = {
        "dataset_name": dataset_name,
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.5, 1.5, 1.5],
        "original_median_shape_after_transp": [250, 220, 220],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": conf},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": cfg["intensity"]},
    }
    return plans, dataset


def write_model_folder(folder: str, cfg: dict, name: str, seed: int) -> None:
    """plans.json, dataset.json and a random-weight checkpoint, as nnU-Net's trainer saves them."""
    import torch
    from nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs_NoMirroring import (
        nnUNetTrainer_4000epochs_NoMirroring as Trainer,
    )
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans, dataset = plans_and_dataset(cfg, name)
    os.makedirs(os.path.join(folder, "fold_0"), exist_ok=True)
    for fname, obj in (("plans.json", plans), ("dataset.json", dataset)):
        with open(os.path.join(folder, fname), "w") as f:
            json.dump(obj, f, indent=2)
    pm = PlansManager(json.loads(json.dumps(plans)))
    cm = pm.get_configuration("3d_fullres")
    heads = pm.get_label_manager(dataset).num_segmentation_heads
    torch.manual_seed(seed)
    # The trainer's own builder (it initialises with InitWeights_He(1e-2), as training starts).
    network = Trainer.build_network_architecture(pm, cm, 1, heads, enable_deep_supervision=True)
    checkpoint = {
        "network_weights": network.state_dict(),
        "optimizer_state": None,
        "grad_scaler_state": None,
        "logging": {},
        "_best_ema": None,
        "current_epoch": 4000,
        "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset,
                      "device": torch.device("cpu")},
        "trainer_name": TRAINER,
        "inference_allowed_mirroring_axes": None,
    }
    torch.save(checkpoint, os.path.join(folder, "fold_0", "checkpoint_final.pth"))


def prepare_image(cfg: dict, out: str, twinray: str) -> str:
    """The case as a NIfTI: the shared image (a DICOM folder converted by `twinray convert`),
    cropped and made RAS-canonical when asked."""
    import nibabel as nib
    import numpy as np

    source = os.path.join(SHARED_DATA, cfg["image"])
    if os.path.isdir(source):
        converted = out.replace(".nii.gz", "_converted.nii.gz")
        subprocess.run([twinray, "convert", source, "--out", converted], check=True, capture_output=True)
        source = converted
    img = nib.load(source)
    if cfg["canonical"]:
        img = nib.as_closest_canonical(img)
    data = np.asarray(img.dataobj)
    affine = img.affine.copy()
    if cfg["crop_xyz"]:
        (x0, x1), (y0, y1), (z0, z1) = cfg["crop_xyz"]
        data = data[x0:x1, y0:y1, z0:z1]
        affine[:3, 3] = affine[:3, :3] @ np.array([x0, y0, z0]) + affine[:3, 3]
    out_img = nib.Nifti1Image(data.astype(np.int16), affine)
    out_img.header.set_xyzt_units("mm", "sec")
    out_img.set_qform(affine, code=1)
    out_img.set_sform(affine, code=1)
    nib.save(out_img, out)
    return out


def run_nnunet(model_folder: str, image: str, out: str, margin_out: str, threads: int, fp32: bool) -> None:
    """The predictor's predict_single_npy_array, step by step so that the logits stay for margins.

    fp32: the diagnostic run. nnU-Net (2.8) accumulates the weighted logits and the Gaussian
    weights in float16 (`torch.half`), which rounds logit differences below ~1e-3 of their size to
    ties; twinray accumulates in float32. With fp32 the predictor's zeros and Gaussian are made
    float32 and nothing else changes, so any label difference left is a recipe difference.
    """
    os.environ["nnUNet_def_n_proc"] = str(threads)
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import nnunetv2.inference.predict_from_raw_data as pfrd
    from nnunetv2.inference.data_iterators import PreprocessAdapterFromNpy
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    if fp32:
        import functools
        import types

        def zeros(*a, dtype=None, **k):
            return torch.zeros(*a, dtype=torch.float32 if dtype == torch.half else dtype, **k)

        pfrd.torch = types.SimpleNamespace(**{n: getattr(torch, n) for n in dir(torch) if not n.startswith("__")})
        pfrd.torch.zeros = zeros
        pfrd.compute_gaussian = functools.partial(pfrd.compute_gaussian, dtype=torch.float32)

    started = time.perf_counter()
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=False, device=torch.device("cpu"),
                                verbose=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model_folder, use_folds=(0,), checkpoint_name="checkpoint_final.pth")
    rw = predictor.plans_manager.image_reader_writer_class()
    data, props = rw.read_images([image])
    ppa = PreprocessAdapterFromNpy([data], [None], [props], [None], predictor.plans_manager,
                                   predictor.dataset_json, predictor.configuration_manager,
                                   num_threads_in_multithreaded=1, verbose=False)
    dct = next(ppa)
    logits = predictor.predict_logits_from_preprocessed_data(dct["data"]).cpu()
    seg = convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager,
        dct["data_properties"], return_probabilities=False)
    rw.write_seg(seg.astype(np.uint8 if seg.max() < 256 else np.uint16), out, props)
    elapsed = time.perf_counter() - started
    # Margins (top-1 minus top-2 logit) on the original grid when nnU-Net did not resample.
    p = dct["data_properties"]
    margin = np.full(p["shape_before_cropping"], np.nan, dtype=np.float32)
    if tuple(logits.shape[1:]) == tuple(p["shape_after_cropping_and_before_resampling"]):
        top2 = torch.topk(logits.float(), 2, dim=0).values
        bbox = p["bbox_used_for_cropping"]
        margin[tuple(slice(a, b) for a, b in bbox)] = (top2[0] - top2[1]).numpy()
    np.save(margin_out, margin.transpose(2, 1, 0))  # SimpleITK (z, y, x) -> nibabel (x, y, z)
    print(json.dumps({"nnunet_predict_s": elapsed, "bbox": [list(map(int, b)) for b in p["bbox_used_for_cropping"]],
                      "model_grid_shape": list(logits.shape[1:]),
                      "shape_before_cropping": list(map(int, p["shape_before_cropping"]))}))


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Runs cmd under /usr/bin/time -v: wall time and peak RSS of that process alone."""
    started = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"{cmd[0]} failed with status {res.returncode}")
    peak_kib = next(int(line.split()[-1]) for line in res.stderr.splitlines()
                    if "Maximum resident set size" in line)
    return {"wall_s": wall, "peak_mib": peak_kib / 1024, "stdout": res.stdout, "stderr": res.stderr}


def compare(image: str, nnunet_labels: str, twinray_labels: str, margin_file: str) -> dict:
    import nibabel as nib
    import numpy as np

    a_img, b_img = nib.load(nnunet_labels), nib.load(twinray_labels)
    if a_img.shape != b_img.shape or not np.allclose(a_img.affine, b_img.affine, atol=1e-3):
        raise SystemExit(f"grids differ: nnU-Net {a_img.shape} {a_img.affine.tolist()} vs twinray "
                         f"{b_img.shape} {b_img.affine.tolist()}")
    ref_img = nib.load(image)
    if not np.allclose(a_img.affine, ref_img.affine, atol=1e-3):
        raise SystemExit("nnU-Net's labels are not on the image grid")
    a = np.asarray(a_img.dataobj).astype(np.int32)
    b = np.asarray(b_img.dataobj).astype(np.int32)
    differ = a != b
    margin = np.load(margin_file)
    result = {
        "voxels": int(a.size),
        "differing_voxels": int(differ.sum()),
        "agreement_percent": 100.0 * float((~differ).mean()),
        "labels_present_nnunet": int(len(np.unique(a))),
        "labels_present_twinray": int(len(np.unique(b))),
        "median_logit_margin_all": float(np.nanmedian(margin)) if np.isfinite(margin).any() else None,
    }
    if differ.any() and np.isfinite(margin[differ]).any():
        m = margin[differ]
        result["logit_margin_at_differing"] = {"median": float(np.nanmedian(m)), "max": float(np.nanmax(m))}
        result["share_of_all_voxels_with_margin_below_max_differing"] = float(
            (margin < np.nanmax(m)).mean())
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="total3mm")
    p.add_argument("--work", default=os.path.expanduser("~/.cache/twinray-nnunet/work"))
    p.add_argument("--twinray", default=os.path.join(ROOT, "target", "release", "twinray"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--write-fixture", metavar="DIR")
    p.add_argument("--run-nnunet", nargs=4, metavar=("MODEL", "IMAGE", "OUT", "MARGIN"), help=argparse.SUPPRESS)
    p.add_argument("--fp32", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run_nnunet:
        run_nnunet(*args.run_nnunet, threads=args.threads, fp32=args.fp32)
        return 0

    cfg = CONFIGS[args.config]
    if "patch_size" not in cfg:
        cfg = {**CONFIGS["total3mm"], **cfg}
    work = os.path.join(args.work, args.config)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    dataset_name = {"total3mm": "Dataset297_TotalSegmentator_total_3mm_1559subj",
                    "total3mm-dicom": "Dataset297_TotalSegmentator_total_3mm_1559subj"}.get(
        args.config, f"Dataset999_twinray_{args.config.replace('-', '_')}")
    folder = os.path.join(work, dataset_name, f"{TRAINER}__nnUNetPlans__3d_fullres")
    write_model_folder(folder, cfg, dataset_name, args.seed)
    image = prepare_image(cfg, os.path.join(work, "case.nii.gz"), args.twinray)

    model_json = os.path.join(work, "model.json")
    subprocess.run([sys.executable, os.path.join(HERE, "export_nnunet.py"), folder, "--out", model_json,
                    "--name", f"nnunet-{args.config}-random"], check=True)

    nnunet_out = os.path.join(work, "nnunet_labels.nii.gz")
    margin_file = os.path.join(work, "nnunet_margin.npy")
    env = dict(os.environ, nnUNet_compile="f", OMP_NUM_THREADS=str(args.threads))
    nn = run_measured([sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
                       "--run-nnunet", folder, image, nnunet_out, margin_file], env=env)
    nn_info = json.loads(nn["stdout"].strip().splitlines()[-1])

    nnunet32_out = os.path.join(work, "nnunet_fp32_labels.nii.gz")
    margin32_file = os.path.join(work, "nnunet_fp32_margin.npy")
    run_measured([sys.executable, os.path.abspath(__file__), "--threads", str(args.threads), "--fp32",
                  "--run-nnunet", folder, image, nnunet32_out, margin32_file], env=env)

    twinray_out = os.path.join(work, "twinray_labels.nii.gz")
    tw = run_measured([args.twinray, "segment", image, "--model", model_json, "--out", twinray_out,
                       "--threads", str(args.threads)])

    result = {
        "config": args.config,
        "image": image,
        "threads": args.threads,
        "nnunet": {"process_wall_s": nn["wall_s"], "predict_s": nn_info["nnunet_predict_s"],
                   "peak_mib": nn["peak_mib"], "bbox": nn_info["bbox"],
                   "model_grid_shape": nn_info["model_grid_shape"]},
        "twinray": {"process_wall_s": tw["wall_s"], "peak_mib": tw["peak_mib"],
                    "message": next((line for line in tw["stderr"].splitlines() if line.startswith("segmented")), "")},
        "comparison": compare(image, nnunet_out, twinray_out, margin_file),
        "comparison_with_fp32_accumulating_nnunet": compare(image, nnunet32_out, twinray_out, margin32_file),
    }
    from importlib.metadata import version

    result["versions"] = {k: version(k) for k in ("nnunetv2", "torch", "dynamic_network_architectures")}
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))

    if args.write_fixture:
        d = args.write_fixture
        os.makedirs(d, exist_ok=True)
        stem = f"nnunet_{args.config.replace('-', '_')}"
        with open(model_json) as f:
            desc = json.load(f)
        desc["onnx"] = f"{stem}.onnx"
        desc["description"] = (f"Random weights (compare_nnunet.py --config {args.config} --seed {args.seed}): "
                               "checks twinray against nnU-Net v2's predictor only.")
        with open(os.path.join(d, f"{stem}.json"), "w") as f:
            json.dump(desc, f, indent=2)
            f.write("\n")
        shutil.copy(model_json[:-5] + ".onnx", os.path.join(d, f"{stem}.onnx"))
        shutil.copy(image, os.path.join(d, f"{stem}_case.nii.gz"))
        shutil.copy(nnunet_out, os.path.join(d, f"{stem}_nnunet_labels.nii.gz"))
        shutil.copy(nnunet32_out, os.path.join(d, f"{stem}_nnunet_fp32_labels.nii.gz"))
        keep = ("config", "threads", "comparison", "comparison_with_fp32_accumulating_nnunet", "versions")
        with open(os.path.join(d, f"{stem}_reference.json"), "w") as f:
            json.dump({k: result[k] for k in keep}
                      | {"source": cfg["image"], "crop_xyz": cfg["crop_xyz"], "canonical": cfg["canonical"],
                         "source_provenance": SOURCE_PROVENANCE},
                      f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
