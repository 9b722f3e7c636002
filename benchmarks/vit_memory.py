"""Peak memory (and, on a GPU, images/s) of one DINOv2 ViT-B DMT training step, each configuration in its own process.

    PYTHONPATH=src python benchmarks/vit_memory.py                  # CPU: peak RSS, 4 configurations
    PYTHONPATH=src python benchmarks/vit_memory.py --device cuda    # GPU: peak allocated memory, images/s,
                                                                     # and the projected wall time of a VOC-92 run
    PYTHONPATH=src python benchmarks/vit_memory.py --crop 518 --batch 2   # one size only (CPU: batch 2 first)

The step is a DMT phase step of the DINOv2 presets: ``dinov2_vitb14_dpt`` (random weights, 21 classes),
AdamW over the encoder and head groups (lr_mult 40), bf16 autocast (``amp: auto``), the dynamic weights
of ``SegmentationStep``, one pass through ``dmt.engine.loop.fit``. Crops are VOC's 518 x 518 (1 labelled +
7 pseudo-labelled) and Cityscapes' 798 x 798 (2 + 6), with and without activation checkpointing
(``model.grad_checkpointing``). Each configuration runs in a fresh child process, so no allocator cache
of another blurs its peak:

* CPU: the child's peak resident set (``VmHWM``) and its resident set just before the step; their
  difference bounds the step's activations, gradients and optimizer state (weights are before);
* CUDA: ``torch.cuda.max_memory_allocated`` over the step, and images/s over ``--steps`` steps after
  one warm-up step.

Prints one JSON line per configuration and writes them all to ``$OUT/vit_memory.json`` when ``OUT`` is set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

CONFIGS = [(518, 1, 7), (798, 2, 6)]  # crop, labelled, pseudo-labelled crops per step (the presets' phases)


def _vm(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith(key))) * 1024


def one(crop: int, labelled: int, pseudo: int, checkpointing: bool, device: str, steps: int) -> dict:
    """Run in the child: build, step, measure."""
    from dmt.bench.items import dinov2_model, dinov2_optimizer
    from dmt.engine.loop import FitOptions, TrainState, fit
    from dmt.tasks.segmentation.steps import SegmentationStep
    from dmt.tasks.stats import StatTotals

    dev = torch.device(device)
    model = dinov2_model(checkpointing)().to(dev)
    state = TrainState(model, dinov2_optimizer(model))
    step = SegmentationStep(model, weighting="dynamic", gamma1=5.0, gamma2=5.0, total_steps=100, totals=StatTotals())
    g = torch.Generator().manual_seed(0)
    batch = {"pseudo_image": torch.rand(pseudo, 3, crop, crop, generator=g),
             "image": torch.rand(labelled, 3, crop, crop, generator=g),
             "mask": torch.randint(0, 21, (labelled, crop, crop), generator=g),
             "pseudo_mask": torch.randint(0, 21, (pseudo, crop, crop), generator=g),
             "pseudo_confidence": torch.rand(pseudo, crop, crop, generator=g)}
    runs = 1 if dev.type == "cpu" else steps + 1
    opts = FitOptions(total_steps=runs, base_lr=5e-6, schedule="poly", checkpoint_seconds=1e12, log_every=runs,
                      device=dev, amp="auto", channels_last=False, steps_per_epoch=10**9)
    out = {"crop": crop, "batch": labelled + pseudo, "grad_checkpointing": checkpointing, "device": str(dev)}
    if dev.type == "cuda":
        fit(step, state, [batch], FitOptions(**{**opts.__dict__, "total_steps": 1}), save=lambda s: None)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        state.step = 0
        t0 = time.perf_counter()
        fit(step, state, [batch] * steps, FitOptions(**{**opts.__dict__, "total_steps": steps}), save=lambda s: None)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / steps
        out.update(peak_gib=torch.cuda.max_memory_allocated() / 2**30, step_s=seconds,
                   images_per_s=(labelled + pseudo) / seconds, gpu=torch.cuda.get_device_name())
        return out
    before = _vm("VmRSS:")
    t0 = time.perf_counter()
    fit(step, state, [batch], opts, save=lambda s: None)
    out.update(step_s=time.perf_counter() - t0, rss_before_gib=before / 2**30, peak_rss_gib=_vm("VmHWM:") / 2**30,
               step_increase_gib=(_vm("VmHWM:") - before) / 2**30, threads=torch.get_num_threads())
    return out


def project_voc92(images_per_s: float) -> dict:
    """Wall time of voc-classic-92-dinov2 from a measured training rate (labelling and evaluation at
    about three times the training rate: a forward pass without backward; data loading overlapped)."""
    from dmt.config.loader import load_config
    from dmt.engine.batches import steps_per_epoch
    from dmt.tasks.context import total_steps

    c = load_config("voc-classic-92-dinov2")
    labelled, unlabelled, val = 92, 10582 - 92, 1449
    base = total_steps(c.baseline, steps_per_epoch(labelled, c.baseline.batch_size)) * c.baseline.batch_size
    phase = total_steps(c.phases, steps_per_epoch(unlabelled, c.phases.batch_pseudo)) * \
        (c.phases.batch_pseudo + c.phases.batch_labelled)
    n_phases = len(c.phases.ratios)
    train_images = 2 * (base + n_phases * phase)  # two members, measured at ViT-B's rate (B is as costly or less)
    infer_images = 2 * n_phases * unlabelled + 2 * (1 + n_phases) * val
    hours = (train_images / images_per_s + infer_images / (3 * images_per_s)) / 3600
    return {"train_crops": train_images, "inferred_images": infer_images, "projected_hours": round(hours, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--crop", type=int, default=None, help="one crop size only (518 or 798)")
    p.add_argument("--batch", type=int, default=None, help="crops per step instead of 8 (same labelled share)")
    p.add_argument("--steps", type=int, default=5, help="timed steps on a GPU")
    p.add_argument("--one", nargs=4, type=int, metavar=("CROP", "LABELLED", "PSEUDO", "CKPT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        crop, labelled, pseudo, ckpt = args.one
        print(json.dumps(one(crop, labelled, pseudo, bool(ckpt), args.device, args.steps)))
        return 0
    rows = []
    for crop, labelled, pseudo in CONFIGS:
        if args.crop and crop != args.crop:
            continue
        if args.batch:
            labelled = max(1, round(args.batch * labelled / (labelled + pseudo)))
            pseudo = max(args.batch - labelled, 0)
        for ckpt in (1, 0):
            cmd = [sys.executable, __file__, "--device", args.device, "--steps", str(args.steps),
                   "--one", str(crop), str(labelled), str(pseudo), str(ckpt)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                row = {"crop": crop, "batch": labelled + pseudo, "grad_checkpointing": bool(ckpt),
                       "error": (proc.stderr.strip().splitlines() or ["killed"])[-1][-300:]}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                if "images_per_s" in row and crop == 518:
                    row["voc92"] = project_voc92(row["images_per_s"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "vit_memory.json").write_text(json.dumps(rows, indent=1))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
