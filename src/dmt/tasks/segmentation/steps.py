"""The segmentation step function: one training step's forward pass and loss, built from the method functions.

The step is a small callable ``(batch, step) -> {"loss": tensor, **scalars}`` that the engine
(:func:`dmt.engine.loop.fit`) drives. Phase-long statistics (mean dynamic weight, disagreement)
are accumulated in ``totals`` so that they survive a resume.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dmt.engine.distributed import ONE, Processes
from dmt.method.curriculum import ramped_gamma
from dmt.method.losses import online_pseudo_targets, weighted_cross_entropy
from dmt.method.weights import (
    agreement_stats,
    confidence_weights,
    dynamic_weights_from_view,
    flip_targets_and_weights,
    student_view,
)
from dmt.tasks.segmentation.inference import upsampled_logits
from dmt.tasks.stats import StatTotals


def global_normalizer(target: torch.Tensor, processes: Processes, ignore_index: int = 255) -> torch.Tensor | None:
    """The loss denominator of one process's part of a global batch over ``processes`` (``None`` for one).

    The number of non-ignored targets of the *whole* batch over the number of processes: DDP
    averages the processes' gradients, so each divides by this to reproduce the gradient of
    ``sum(w * CE) / count`` over the concatenated batch (one small all-reduce per step).
    """
    if processes.size == 1:
        return None
    count = processes.all_reduce_sum((target != ignore_index).sum())
    return count.clamp_min(1).float() / processes.size


class SegmentationStep:
    """A segmentation step: labelled crops, optionally concatenated with pseudo-labelled ones.

    ``weighting`` selects the method's per-pixel weights for pseudo-labelled pixels (labelled
    pixels always weigh 1):

    * ``dynamic``: DMT / DST (``gamma1 == gamma2 == 0``: all 1, i.e. CBST);
    * ``confidence``: ``p ** naive_gamma`` (the "naive" ablation);
    * ``flip``: the student's class wins where it is more confident (the "flip" ablation);
    * ``online``: targets are the student's own confident predictions on the batch.
    """

    def __init__(self, model: nn.Module, *, weighting: str = "dynamic", gamma1: float = 0.0, gamma2: float = 0.0,
                 ramp: bool = False, total_steps: int = 1, naive_gamma: float = 5.0, online_threshold: float = 0.9,
                 totals: StatTotals | None = None, processes: Processes = ONE) -> None:
        if weighting not in ("dynamic", "confidence", "flip", "online"):
            raise ValueError(f"unknown weighting {weighting!r}")
        self.model, self.weighting, self.gamma1, self.gamma2 = model, weighting, gamma1, gamma2
        self.ramp, self.total_steps, self.naive_gamma = ramp, total_steps, naive_gamma
        self.online_threshold, self.totals = online_threshold, totals if totals is not None else StatTotals()
        self.processes = processes  # those sharing each global batch (its loss denominator)

    def __call__(self, batch: dict[str, Any], step: int) -> dict[str, Any]:
        if "pseudo_image" not in batch:  # supervised: baseline and oracle
            logits = upsampled_logits(self.model, batch["image"])
            loss = weighted_cross_entropy(logits, batch["mask"], torch.ones_like(batch["mask"], dtype=torch.float32),
                                          normalizer=global_normalizer(batch["mask"], self.processes))
            return {"loss": loss, "sup_loss": loss.detach()}

        n_p = batch["pseudo_image"].shape[0]
        x = torch.cat([batch["pseudo_image"], batch["image"]])
        logits = upsampled_logits(self.model, x)
        labelled = torch.cat([torch.zeros(n_p, dtype=torch.bool, device=x.device),
                              torch.ones(batch["image"].shape[0], dtype=torch.bool, device=x.device)])
        if self.weighting == "online":
            pseudo = online_pseudo_targets(logits[:n_p], self.online_threshold)
            target = torch.cat([pseudo, batch["mask"]])
            loss = weighted_cross_entropy(logits, target, torch.ones_like(target, dtype=torch.float32),
                                          normalizer=global_normalizer(target, self.processes))
            kept = (pseudo != 255).double().mean()
            self.totals.add({"pseudo_share": kept}, 1)
            return {"loss": loss, "pseudo_share": kept}

        target = torch.cat([batch["pseudo_mask"], batch["mask"]])
        teacher_conf = torch.cat([batch["pseudo_confidence"], torch.ones_like(batch["mask"], dtype=torch.float32)])
        g1 = ramped_gamma(self.gamma1, step, self.total_steps, self.ramp)
        g2 = ramped_gamma(self.gamma2, step, self.total_steps, self.ramp)
        if self.weighting == "confidence":
            w = confidence_weights(logits, target, labelled, self.naive_gamma)
        elif self.weighting == "flip":
            target, w = flip_targets_and_weights(logits, target, teacher_conf, labelled, g1, g2)
        view = student_view(logits, target)  # one softmax serves the weights and the statistics
        if self.weighting == "dynamic":
            if self.gamma1 == 0 and self.gamma2 == 0:  # class-balanced curriculum alone (CBST)
                w = (target != 255).float()
            else:
                w = dynamic_weights_from_view(view, target, teacher_conf, labelled, g1, g2)
        stats = agreement_stats(view, target, teacher_conf, labelled, w)
        self.totals.add({k: v for k, v in stats.items() if k != "pseudo_targets"}, stats["pseudo_targets"])
        loss = weighted_cross_entropy(logits, target, w, normalizer=global_normalizer(target, self.processes))
        return {"loss": loss, "gamma1": g1, "gamma2": g2, **{k: v for k, v in stats.items() if k != "pseudo_targets"}}
