"""What the pretrained classification presets cost: the DINOv2 ViT-S/14 DMT step at 224 (``dmt bench``).

The ``*-dinov2`` classification presets train ``timm/vit_small_patch14_dinov2.lvd142m`` (22 M
parameters, 16 x 16 patches at 224) with AdamW over two groups (encoder 1e-5, head x40), an EMA
and DMT's dynamic-weight mixup step. This item times that step through the real engine (``fit``)
on a batch of 16 (14 pseudo-labelled + 2 labelled: the presets' 56 + 8 at a CPU's quarter) with
random weights (the weights do not change the cost): plain float32 with a host sync per step,
the defaults (bf16 autocast where the CPU has it, channels-last), and the defaults with timm's
activation checkpointing (``model.grad_checkpointing``). Each row adds ``images_per_s`` (16 / the
median step) and ``process_peak_mib``: the whole training process's peak resident set (model,
AdamW state, EMA copy and activations), besides the harness's increase during a step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dmt.bench.harness import Variant, measure_in_processes, peak_rss_bytes
from dmt.bench.items import fit_variant, item
from dmt.models import create_model

ARCH = "timm/vit_small_patch14_dinov2.lvd142m"
PSEUDO, LABELLED, CLASSES = 14, 2, 100  # CIFAR-100's classes


def vit_model(checkpointing: bool) -> Callable[[], nn.Module]:
    """A factory of the presets' network (random weights), with or without activation checkpointing."""
    def make() -> nn.Module:
        torch.manual_seed(0)
        model = create_model(ARCH, CLASSES, dynamic_img_size=True)
        model.set_grad_checkpointing(checkpointing)
        return model
    return make


def vit_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The presets' optimizer: AdamW, encoder lr 1e-5, head 40x, weight decay 0.01."""
    from dmt.engine.optim import make_optimizer

    return make_optimizer(model, "adamw", 1e-5, weight_decay=0.01, lr_mult={"head": 40.0})


def _dmt_step(model: nn.Module) -> Callable:
    from dmt.tasks.classification.steps import DynamicMixupStep
    from dmt.tasks.stats import StatTotals

    return DynamicMixupStep(model, gamma1=4.0, gamma2=4.0, ramp=True, total_steps=100, alpha=0.75, seed=0,
                            totals=StatTotals())


def _batch(side: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"pseudo_images": torch.rand(PSEUDO, 3, side, side, generator=g),
            "pseudo_probs": torch.rand(PSEUDO, CLASSES, generator=g).softmax(1),
            "labelled_images": torch.rand(LABELLED, 3, side, side, generator=g),
            "labels": torch.randint(0, CLASSES, (LABELLED,), generator=g)}


def _with_process_peak(variant: Variant) -> Variant:
    """The variant, its ``info`` recording the process's peak resident set after each run."""
    run = variant.run

    def measured() -> None:
        run()
        variant.info["process_peak_mib"] = peak_rss_bytes() / 2**20
    variant.run = measured
    return variant


def vits14_cls_dmt_step_variants(quick: bool, device: torch.device) -> list[Variant]:
    """plain (float32, a host sync per step), the defaults, the defaults + activation checkpointing."""
    batch = _batch(112 if quick else 224)
    kw = {"make_opt": vit_optimizer}  # SGD -> AdamW; the presets keep the EMA
    v = [fit_variant("plain", vit_model(False), _dmt_step, batch, device, amp=False, channels_last=False, sync=True,
                     plain=True, **kw),
         fit_variant("dmt (defaults)", vit_model(False), _dmt_step, batch, device, amp="auto", channels_last=True,
                     sync=False, **kw),
         fit_variant("dmt (defaults) + grad checkpointing", vit_model(True), _dmt_step, batch, device, amp="auto",
                     channels_last=True, sync=False, **kw)]
    return [_with_process_peak(x) for x in v]


@item("vits14_cls_dmt_step")
def vits14_cls_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """DINOv2 ViT-S/14 (timm) DMT classification step, 14 pseudo + 2 labelled at 224 (--quick: 112), AdamW groups."""
    side = 112 if quick else 224
    names = [v.name for v in vits14_cls_dmt_step_variants(True, torch.device("cpu"))]
    rows = measure_in_processes("dmt.bench.timm_items:vits14_cls_dmt_step_variants", names, "plain",
                                1 if quick else 4, str(device), quick, rounds=1 if quick else 2)
    for r in rows:
        r["images_per_s"] = (PSEUDO + LABELLED) / r["median_s"]
    return {"what": f"DINOv2 ViT-S/14 (timm) DMT step, {PSEUDO} pseudo + {LABELLED} labelled at {side}x{side}, "
                    "AdamW (encoder / head x40) + EMA", "rows": rows}
