"""Shared pieces of ``benchmarks/run_parts.py`` and its member processes (issue 27).

The shapes of a part (paper scale on a GPU, tiny under ``--dry-run``), the fabricated VOC tree
(``tests/data/seg_fixtures.write_voc_tree``, the builder ``benchmarks/smoke_presets.py`` uses), a
file barrier that keeps the members of a pair in the same part, peak-memory bookkeeping, and one
timed training stretch through the real engine (``dmt.engine.loop.fit`` after
``dmt.tasks.training.accelerate``, as ``train_stage`` runs it).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without install
sys.path.insert(0, str(ROOT / "tests" / "data"))

from dmt.engine.loop import FitOptions, TrainState, fit  # noqa: E402
from dmt.engine.accel import maybe_compile  # noqa: E402
from dmt.tasks.segmentation.steps import SegmentationStep  # noqa: E402
from dmt.tasks.stats import StatTotals  # noqa: E402
from dmt.tasks.training import accelerate  # noqa: E402

SEG_PRESET, VIT_PRESET, VIT3_PRESET = "voc-106-dmt", "voc-classic-92-dinov2", "voc-classic-92-dinov2-dinov3"


@dataclass(frozen=True)
class Shapes:
    """Sizes of one measurement: the paper's on a GPU, tiny ones for ``--dry-run`` on the CPU."""

    image: tuple[int, int]  # fabricated photos, height x width (VOC: 375 x 500)
    train_images: int  # fabricated train_aug images (the first `labelled` are the labelled set)
    val_images: int
    labelled: int
    seg_crop: int  # DeepLab-v2 training crop (321)
    eval_pad: tuple[int, int] | None  # None: the preset's data.eval_pad (505 x 505)
    vit_crop: int  # DINOv2 / DINOv3 crop (518)
    steps: int  # timed training steps
    loader_steps: int
    deeplab: str  # the network names (the tiny stand-ins under --dry-run)
    vits: dict[str, str]


def shapes(dry_run: bool) -> Shapes:
    """The paper's shapes, or tiny ones that prove every code path on a CPU in seconds."""
    vits = ("dinov2_vitb14_dpt", "dinov2_vits14_dpt", "dinov3_vitb16_dpt")
    if dry_run:
        from dmt.models.registry import smoke_standin

        return Shapes((40, 60), 12, 4, 2, 65, (64, 64), 112, 2, 3, "deeplabv2_tiny",
                      {v: smoke_standin(v) for v in vits})
    return Shapes((375, 500), 264, 64, 8, 321, None, 518, 12, 80, "deeplabv2_resnet101", {v: v for v in vits})


def fabricate_voc(folder: Path, s: Shapes) -> Path:
    """A VOC 2012 + SegmentationClassAug tree of ``s``'s sizes under ``folder``; returns ``folder``."""
    from seg_fixtures import write_voc_tree

    names = [f"2007_{i:06d}" for i in range(s.train_images + s.val_images)]
    write_voc_tree(folder, splits={"train_aug": names[: s.train_images], "train": names[: s.labelled],
                                   "val": names[s.train_images:]}, size=s.image)
    return folder


def barrier(folder: str | None, name: str, rank: int, members: int, limit_s: float = 240.0) -> None:
    """Wait until every member reached ``name`` (a file per member), so a pair times each part together."""
    if not folder:
        return
    Path(folder, f"{name}.{rank}").touch()
    end = time.monotonic() + limit_s
    while time.monotonic() < end and sum(Path(folder, f"{name}.{r}").exists() for r in range(members)) < members:
        time.sleep(0.02)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    """This process's peak allocated GPU memory since the last :func:`reset_peak` (None on a CPU)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def step_batch(crop: int, labelled: int, pseudo: int, classes: int = 21) -> dict[str, torch.Tensor]:
    """A DMT phase step's batch of random crops: ``pseudo`` pseudo-labelled and ``labelled`` labelled."""
    g = torch.Generator().manual_seed(0)
    return {"pseudo_image": torch.randn(pseudo, 3, crop, crop, generator=g),
            "image": torch.randn(labelled, 3, crop, crop, generator=g),
            "mask": torch.randint(0, classes, (labelled, crop, crop), generator=g),
            "pseudo_mask": torch.randint(0, classes, (pseudo, crop, crop), generator=g),
            "pseudo_confidence": torch.rand(pseudo, crop, crop, generator=g)}


def timed_fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, cfg, device: torch.device,
              steps: int, compile_mode: str | bool = False, dry_run: bool = False) -> tuple[dict, TrainState]:
    """``steps`` DMT phase steps of ``batch`` through the engine after warm-up steps; images/s,
    seconds per step, warm-up seconds (compilation included) and this process's peak memory.

    ``cfg``: the preset (its ``train`` runtime: channels_last; ``amp``; ``phases``' gammas and lr).
    ``compile_mode``: ``train.compile``; under ``dry_run`` torch.compile's eager backend (the same
    tracing, no code generation: seconds on a CPU instead of minutes)."""
    state = TrainState(model.to(device), optimizer)
    pc = cfg.phases
    step = SegmentationStep(state.model, weighting="dynamic", gamma1=pc.gamma1, gamma2=pc.gamma2, total_steps=10**6,
                            totals=StatTotals())
    channels_last = accelerate(state, step, dataclasses.replace(cfg.train, compile=False), device)
    if compile_mode:  # as accelerate does with train.compile, after the layout change
        step.model = torch.compile(step.model, backend="eager") if dry_run else maybe_compile(step.model, compile_mode)
    warmup = 1 if dry_run else (4 if compile_mode else 3)

    def run(n: int) -> None:
        opts = FitOptions(total_steps=n, base_lr=pc.lr, schedule="poly", steps_per_epoch=10**9,
                          checkpoint_seconds=1e12, log_every=n, device=device, amp=cfg.amp,
                          channels_last=channels_last, description="bench train")
        state.step = 0
        fit(step, state, [batch] * n, opts, save=lambda s: None)
        sync(device)

    reset_peak(device)
    t0 = time.perf_counter()
    run(warmup)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(steps)
    dt = time.perf_counter() - t0
    n_images = sum(len(batch[k]) for k in ("pseudo_image", "image"))
    return {"images_per_s": round(steps * n_images / dt, 2), "s_per_step": round(dt / steps, 4),
            "warmup_s": round(warm, 2), "steps": steps, "batch": n_images, "peak_gib": peak_gib(device),
            "compile": (f"{compile_mode} (eager backend: dry run)" if dry_run else compile_mode) if compile_mode else None, "threads": torch.get_num_threads(), "pid": os.getpid()}, state
