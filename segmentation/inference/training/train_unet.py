#!/usr/bin/env python3
"""Train twinray's small 3D U-Net (PyTorch, CPU) and export it to ONNX with its description JSON.

A one-off step, not part of CI. Fixed seeds; the run is time-boxed (--minutes) with a poly
learning-rate schedule over that time, and checkpoints every few minutes so that a model can be
exported at any point:

  python train_unet.py train --minutes 60 --out ~/.cache/twinray-train/run
  python train_unet.py export --ckpt ~/.cache/twinray-train/run/last.pt --models ../models

Training data (../../../../shared/data/ct/totalsegmentator, Apache-2.0, TotalSegmentator's
reference files), all at 3 mm isotropic, RAS, arrays (z, y, x):
  * example_ct slices z >= HELD_OUT_Z (52 slices): full labels (example_seg, TotalSegmentator
    `total`) on the 30 slices that example_ct_sm crops (z 82..111), vertebra-only labels
    (spine_report_totalseg_vertebrae) below that, where the loss only says "vertebra or not";
  * the DICOM series example_ct_dicom with example_seg_dicom (full labels).
  example_ct slices z < HELD_OUT_Z are never seen: evaluate.py reports vertebra Dice there.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import seg_data as sd

PATCH = (32, 96, 96)  # (S, A, R) voxels at 3 mm
HELD_OUT_Z = 60  # example_ct slices [0, 60) are held out (vertebrae S1, L5, L4 mostly)
CROP_Z0 = 82  # example_ct_sm == example_ct[..., 82:112] (checked voxel for voxel)
IGNORE = -1  # padding: no loss
NOT_VERTEBRA = -2  # partially labelled voxel: known not to be a vertebra, organ unknown
CHANNELS = (8, 16, 32, 64)


# ------------------------------------------------------------------------------------ model

class ConvBlock(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(
            nn.Conv3d(cin, cout, 3, stride=stride, padding=1),
            nn.InstanceNorm3d(cout, affine=True, eps=1e-5),
            nn.LeakyReLU(0.01, inplace=True),
        )


class UNet3D(nn.Module):
    """nnU-Net-like plain U-Net: per level 2 convs (IN + LeakyReLU), stride-2 conv downsampling,
    transposed-conv upsampling, skip concatenation, 1x1x1 head. Input size divisible by 8."""

    def __init__(self, classes=sd.NUM_CLASSES, ch=CHANNELS):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 1
        for i, c in enumerate(ch):
            self.enc.append(nn.Sequential(ConvBlock(cin, c, stride=1 if i == 0 else 2), ConvBlock(c, c)))
            cin = c
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(ch) - 1, 0, -1):
            self.up.append(nn.ConvTranspose3d(ch[i], ch[i - 1], 2, stride=2))
            self.dec.append(nn.Sequential(ConvBlock(2 * ch[i - 1], ch[i - 1]), ConvBlock(ch[i - 1], ch[i - 1])))
        self.head = nn.Conv3d(ch[0], classes, 1)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


# ------------------------------------------------------------------------------------ data

def build_cases():
    """Returns (cases, normalisation, held_out) with cases as dicts of HU (z,y,x) + targets."""
    import nibabel as nib

    ct_img = nib.load(os.path.join(sd.DATA, "example_ct.nii.gz"))
    ct, _ = sd.to_model_grid(ct_img, False)  # already 3 mm RAS: only transposed
    vert_img = nib.load(os.path.join(sd.DATA, "spine_report_totalseg_vertebrae.nii.gz"))
    vert, _ = sd.to_model_grid(vert_img, True)
    seg_sm, _ = sd.to_model_grid(nib.load(os.path.join(sd.DATA, "example_seg.nii.gz")), True)
    sm, _ = sd.to_model_grid(nib.load(os.path.join(sd.DATA, "example_ct_sm.nii.gz")), False)
    assert np.array_equal(sm, ct[CROP_Z0:CROP_Z0 + sm.shape[0]]), "example_ct_sm is not example_ct[82:112]"

    tgt = np.where(np.isin(vert, sd.VERTEBRA_TS_IDS), sd.VERTEBRA_CHANNEL, NOT_VERTEBRA).astype(np.int8)
    tgt[CROP_Z0:CROP_Z0 + sm.shape[0]] = sd.ts_to_channels(seg_sm)
    case_ct = {"name": "example_ct[z>=60]", "hu": ct[HELD_OUT_Z:], "tgt": tgt[HELD_OUT_Z:]}

    seg_d_img = nib.load(os.path.join(sd.DATA, "example_seg_dicom.nii.gz"))
    dcm_img = sd.load_dicom_series_as_nifti(os.path.join(sd.DATA, "example_ct_dicom"), seg_d_img)
    dcm, _ = sd.to_model_grid(dcm_img, False)
    seg_d, _ = sd.to_model_grid(seg_d_img, True)
    case_dcm = {"name": "example_ct_dicom", "hu": dcm, "tgt": sd.ts_to_channels(seg_d).astype(np.int8)}

    fg = np.concatenate([c["hu"][c["tgt"] > 0].ravel() for c in (case_ct, case_dcm)]).astype(np.float64)
    norm = {"scheme": "ct",
            "clip_low": round(float(np.percentile(fg, 0.5)), 2),
            "clip_high": round(float(np.percentile(fg, 99.5)), 2),
            "mean": round(float(fg.mean()), 2), "std": round(float(fg.std()), 2)}
    for c in (case_ct, case_dcm):
        c["img"] = sd.ct_normalize(c["hu"], norm)
        c["fg"] = {ch: np.argwhere(c["tgt"] == ch) for ch in range(1, sd.NUM_CLASSES)}
        c["fg"] = {k: v for k, v in c["fg"].items() if len(v)}
    return [case_ct, case_dcm], norm


def sample_patch(case, rng, thin_p=0.3):
    img, tgt = case["img"], case["tgt"]
    shape = img.shape
    P = PATCH
    # foreground oversampling (nnU-Net: 1/3 of the patches contain a chosen class)
    if rng.random() < 0.4 and case["fg"]:
        ch = rng.choice(list(case["fg"].keys()))
        centre = case["fg"][ch][rng.integers(len(case["fg"][ch]))]
        lo = [int(c - p // 2 + rng.integers(-p // 4, p // 4 + 1)) for c, p in zip(centre, P)]
    else:
        lo = [int(rng.integers(min(0, s - p), max(0, s - p) + 1)) for s, p in zip(shape, P)]
    # a volume thinner than the patch sits centred, as nnU-Net's inference padding puts it
    if shape[0] <= P[0]:
        lo[0] = -((P[0] - shape[0]) // 2) + (int(rng.integers(-2, 3)) if rng.random() < 0.5 else 0)
    x = np.zeros(P, np.float32)
    y = np.full(P, IGNORE, np.int8)
    src = tuple(slice(max(0, l), min(s, l + p)) for l, s, p in zip(lo, shape, P))
    dst = tuple(slice(sl.start - l, sl.stop - l) for sl, l in zip(src, lo))
    xi = img[src].copy()
    # intensity augmentation (on the body only; padding stays exactly 0 as at inference)
    xi = xi * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.2:
        xi += rng.normal(0, rng.uniform(0, 0.05), xi.shape).astype(np.float32)
    x[dst] = xi
    y[dst] = tgt[src]
    # thin-slab augmentation: keep only 10..20 slices centred, like the 13-slice DICOM series
    if shape[0] > P[0] and rng.random() < thin_p:
        t = int(rng.integers(10, 21))
        b = (P[0] - t) // 2
        keep = np.zeros(P[0], bool)
        keep[b:b + t] = True
        x[~keep] = 0.0
        y[~keep] = IGNORE
    return x, y


def loss_fn(logits, y):
    """CE (with partial 'not vertebra' labels) + soft Dice over fully known voxels."""
    logp = F.log_softmax(logits, dim=1)
    known = y >= 0
    yk = y.clamp(min=0).long()
    nll = -logp.gather(1, yk[:, None])[:, 0]
    # partial: -log(1 - p_vertebra) = -(logsumexp over non-vertebra channels - logsumexp all)
    others = torch.cat([logp[:, :sd.VERTEBRA_CHANNEL], logp[:, sd.VERTEBRA_CHANNEL + 1:]], 1)
    nv = -torch.logsumexp(others, dim=1)
    partial = y == NOT_VERTEBRA
    n = known.sum() + partial.sum()
    ce = (nll[known].sum() + nv[partial].sum()) / n.clamp(min=1)
    p = logp.exp()
    onehot = F.one_hot(yk, sd.NUM_CLASSES).permute(0, 4, 1, 2, 3).float()
    m = known[:, None].float()
    # vertebra voxels in the partial region are known; their non-vertebra one-hots are exact too
    inter = (p * onehot * m).sum((0, 2, 3, 4))
    den = ((p + onehot) * m).sum((0, 2, 3, 4))
    present = onehot.mul(m).sum((0, 2, 3, 4)) > 0
    dice = (2 * inter + 1e-5) / (den + 1e-5)
    dl = 1 - dice[1:][present[1:]].mean() if present[1:].any() else torch.zeros((), device=logits.device)
    return ce + dl, float(ce.detach()), float(dl.detach())


# ------------------------------------------------------------------------------------ train

def train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    cases, norm = build_cases()
    with open(os.path.join(a.out, "norm.json"), "w") as f:
        json.dump(norm, f)
    print("normalisation", norm, flush=True)
    for c in cases:
        print(c["name"], c["img"].shape, {k: len(v) for k, v in c["fg"].items()}, flush=True)
    # channels-last 3D: mkldnn's convolution backward is ~2x faster on CPU in this layout
    model = UNet3D().to(memory_format=torch.channels_last_3d)
    print("params", sum(p.numel() for p in model.parameters()), flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    start_it = 0
    elapsed0 = 0.0
    if a.resume and os.path.exists(os.path.join(a.out, "last.pt")):
        ck = torch.load(os.path.join(a.out, "last.pt"), weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start_it, elapsed0 = ck["it"], ck["elapsed_s"]
        rng = np.random.default_rng(a.seed + start_it)
    budget = a.minutes * 60.0
    t0 = time.time() - elapsed0
    last_ck = time.time()
    it = start_it
    hist = []
    while True:
        elapsed = time.time() - t0
        if elapsed >= budget:
            break
        lr = a.lr * (1 - elapsed / budget) ** 0.9
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ys = [], []
        for _ in range(a.batch):
            c = cases[0] if rng.random() < a.p_ct else cases[1]
            x, y = sample_patch(c, rng)
            xs.append(x)
            ys.append(y)
        x = torch.from_numpy(np.stack(xs))[:, None].contiguous(memory_format=torch.channels_last_3d)
        y = torch.from_numpy(np.stack(ys).astype(np.int64))
        model.train()
        loss, ce, dl = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
        opt.step()
        it += 1
        hist.append((float(loss), ce, dl))
        if it % 20 == 0:
            h = np.mean(hist[-20:], axis=0)
            print(f"it {it} t {elapsed:.0f}s lr {lr:.5f} loss {h[0]:.4f} ce {h[1]:.4f} dice_loss {h[2]:.4f}",
                  flush=True)
        if time.time() - last_ck > a.ckpt_every_s:
            save(model, opt, it, time.time() - t0, norm, a.out)
            last_ck = time.time()
    save(model, opt, it, time.time() - t0, norm, a.out)
    print(f"done: {it} iterations, {time.time() - t0:.0f}s", flush=True)


def save(model, opt, it, elapsed, norm, out):
    tmp = os.path.join(out, "last.pt.tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "it": it, "elapsed_s": elapsed,
                "norm": norm, "channels": CHANNELS}, tmp)
    os.replace(tmp, os.path.join(out, "last.pt"))


# ------------------------------------------------------------------------------------ export

def export(a):
    import onnx
    import onnxruntime as ort

    torch.set_num_threads(a.threads)
    ck = torch.load(a.ckpt, weights_only=False)
    model = UNet3D(ch=tuple(ck["channels"]))
    model.load_state_dict(ck["model"])
    model.eval()
    os.makedirs(a.models, exist_ok=True)
    onnx_path = os.path.join(a.models, a.name + ".onnx")
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 1, *PATCH)).astype(np.float32))
    torch.onnx.export(model, (x,), onnx_path, input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"input": {0: "N", 2: "D", 3: "H", 4: "W"},
                                    "logits": {0: "N", 2: "D", 3: "H", 4: "W"}})
    m = onnx.load(onnx_path)
    m.producer_name = "twinray segmentation/inference/training/train_unet.py"
    onnx.checker.check_model(m)
    onnx.save(m, onnx_path)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(["logits"], {"input": x.numpy()})[0]
    # float32 convolutions summed in another order (mkldnn vs onnxruntime) differ by a few ulp
    # of the logits, so the tolerance is 1e-4 relative to the logit scale (absolute when |logits| <= 1)
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(ref - got).max())
    x1 = x[:1, :, :16, :48, :40]
    with torch.no_grad():
        ref1 = model(x1).numpy()
    err1 = float(np.abs(ref1 - sess.run(["logits"], {"input": x1.numpy()})[0]).max())
    scale1 = max(1.0, float(np.abs(ref1).max()))
    print(f"onnx vs torch max |diff|: {err:.2e} (batch 2, {list(PATCH)}, max |logit| {scale:.1f}), "
          f"{err1:.2e} (batch 1, 16x48x40, max |logit| {scale1:.1f})")
    if err > 1e-4 * scale or err1 > 1e-4 * scale1:
        raise SystemExit("ONNX output differs from PyTorch by more than 1e-4 (relative to the logit scale)")
    desc = {
        "format": "twinray-segmentation-model", "version": 1,
        "name": a.name,
        "onnx": a.name + ".onnx",
        "input_name": "input", "output_name": "logits",
        "axes": ["S", "A", "R"],
        "spacing_mm": [sd.TARGET_SPACING_MM] * 3,
        "patch_size": list(PATCH),
        "step_fraction": 0.5,
        "normalization": ck["norm"],
        "mirror_axes": [],
        "classes": [{"channel": ch, "id": i, "name": n} for ch, i, n, _ in sd.CLASSES],
        "description": (
            "Small 3D U-Net (nnU-Net-like, ~%d k parameters) trained by twinray on CPU for %d "
            "iterations on TotalSegmentator's Apache-2.0 reference files at 3 mm: example_ct "
            "(slices z>=60; full TotalSegmentator labels on the 30 slices of example_ct_sm, "
            "vertebra-only labels below) and the 20-slice DICOM series example_ct_dicom with "
            "example_seg_dicom, which is also the evaluation case, so Dice there is training-set "
            "Dice. Vertebrae C1-S1 are merged into one class (id 200). Two scans only: a teaching "
            "demo, not for diagnosis." % (sum(p.numel() for p in model.parameters()) // 1000, ck["it"])),
    }
    with open(os.path.join(a.models, a.name + ".json"), "w") as f:
        json.dump(desc, f, indent=2)
        f.write("\n")
    print("wrote", onnx_path, os.path.getsize(onnx_path), "bytes, and", a.name + ".json")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--minutes", type=float, default=60)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--p-ct", type=float, default=0.6, help="probability of sampling example_ct vs the DICOM")
    t.add_argument("--seed", type=int, default=12345)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--ckpt-every-s", type=float, default=120)
    t.add_argument("--resume", action="store_true")
    e = sub.add_parser("export")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--models", default=os.path.join(sd.HERE, "..", "models"))
    e.add_argument("--name", default="twinray-abdomen-3mm")
    e.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    train(a) if a.cmd == "train" else export(a)


if __name__ == "__main__":
    main()
