"""Where a DeepLab-v2 training step spends its time on a GPU (diagnosis, run once by hand).

    PYTHONPATH=src python benchmarks/gpu_profile.py      # prints throughput by batch and a profile

1. images/s of dmt's step (engine + SegmentationStep, bf16 + channels_last) at global batch 8,
   16 and 32, against a bare step (forward, plain cross-entropy, backward, SGD) at batch 8:
   a throughput that grows with the batch means the step is bound by the host, not the GPU.
2. torch.profiler over 5 steps at batch 8: the top operators by GPU and by CPU time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from dmt.engine.accel import apply_channels_last, to_channels_last  # noqa: E402
from dmt.engine.loop import FitOptions, TrainState, fit, make_sgd  # noqa: E402
from dmt.models import create_model  # noqa: E402
from dmt.tasks.segmentation.inference import upsampled_logits  # noqa: E402
from dmt.tasks.segmentation.steps import SegmentationStep  # noqa: E402
from dmt.tasks.stats import StatTotals  # noqa: E402

dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
crop, steps = (321, 15) if dev.type == "cuda" else (65, 2)
torch.backends.cudnn.benchmark = True


def batch_of(n: int) -> dict:
    g = torch.Generator().manual_seed(0)
    p = n - max(1, n // 8)
    b = {"pseudo_image": torch.randn(p, 3, crop, crop, generator=g), "image": torch.randn(n - p, 3, crop, crop, generator=g),
         "mask": torch.randint(0, 21, (n - p, crop, crop), generator=g),
         "pseudo_mask": torch.randint(0, 21, (p, crop, crop), generator=g),
         "pseudo_confidence": torch.rand(p, crop, crop, generator=g)}
    return to_channels_last({k: v.to(dev) for k, v in b.items()})


def dmt_rate(n: int, profile: bool = False) -> float:
    model = apply_channels_last(create_model("deeplabv2_resnet101", 21).to(dev))
    state = TrainState(model, make_sgd(model, 1e-3, 0.9, 5e-4))
    step = SegmentationStep(model, weighting="dynamic", gamma1=5.0, gamma2=5.0, total_steps=10**6, totals=StatTotals())
    b = batch_of(n)

    def run(k: int) -> None:
        state.step = 0
        fit(step, state, [b] * k, FitOptions(total_steps=k, base_lr=1e-3, schedule="poly", log_every=k, device=dev,
                                             amp=True, channels_last=True, description="p"), save=lambda s: None)
    run(3)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run(steps)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    rate = steps * n / (time.perf_counter() - t0)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with prof(activities=acts) as p:
            run(5)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        ka = p.key_averages()
        key = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
        print(ka.table(sort_by=key, row_limit=22, max_name_column_width=55))
        print(ka.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=55))
    return rate


def bare_rate(n: int) -> float:
    model = apply_channels_last(create_model("deeplabv2_resnet101", 21).to(dev))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    b = batch_of(n)
    x = torch.cat([b["pseudo_image"], b["image"]])
    y = torch.cat([b["pseudo_mask"], b["mask"]])

    def one() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(upsampled_logits(model, x).float(), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for _ in range(3):
        one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * n / (time.perf_counter() - t0)


out = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "bare_8": bare_rate(8)}
for n in (8, 16, 32):
    out[f"dmt_{n}"] = dmt_rate(n, profile=(n == 8))
    print({k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}, flush=True)
if os.environ.get("OUT"):
    Path(os.environ["OUT"], "gpu_profile.json").write_text(json.dumps(out, indent=1))
