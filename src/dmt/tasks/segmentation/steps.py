"""Step functions: one training step's forward pass and loss, built from the method functions.

Each step is a small callable ``(batch, step) -> {"loss": tensor, **scalars}`` that the engine
(:func:`dmt.engine.loop.fit`) drives. Phase-long statistics (mean dynamic weight, disagreement)
are accumulated in ``totals`` so that they survive a resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.engine import distributed as dist
from dmt.engine.batches import mix_seed
from dmt.engine.bn import batch_stats_without_update
from dmt.method.curriculum import ramped_gamma
from dmt.method.losses import mixup_cross_entropy, online_pseudo_targets, weighted_cross_entropy
from dmt.method.mixup import mix, random_permutation, sample_lambda
from dmt.method.weights import agreement_stats, confidence_weights, dynamic_weights_from_view, \
    flip_targets_and_weights, student_view
from dmt.pipeline.seg_eval import upsampled_logits


def global_normalizer(target: torch.Tensor, ignore_index: int = 255) -> torch.Tensor | None:
    """The loss denominator of one process's part of a global batch (``None`` for one process).

    The number of non-ignored targets of the *whole* batch over the number of processes: DDP
    averages the processes' gradients, so each divides by this to reproduce the gradient of
    ``sum(w * CE) / count`` over the concatenated batch (one small all-reduce per step).
    """
    if dist.world_size() == 1:
        return None
    count = dist.all_reduce_sum((target != ignore_index).sum())
    return count.clamp_min(1).float() / dist.world_size()


class StatTotals:
    """Running sums of per-step statistics, weighted by the number of pseudo targets.

    :meth:`add` takes floats or 0-dim tensors and keeps tensors on their device (a step never
    waits to read them); :meth:`means` and :meth:`state_dict` read them once and leave
    ``sums`` as plain floats and ``count`` as an int.
    """

    def __init__(self, state: dict | None = None) -> None:
        self.sums: dict[str, Any] = dict((state or {}).get("sums", {}))
        self.count: Any = int((state or {}).get("count", 0))

    def add(self, stats: dict[str, Any], n: Any) -> None:
        for k, v in stats.items():
            v = v.double() if isinstance(v, torch.Tensor) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count = self.count + n

    def _settle(self) -> None:
        """Read device values back: ``sums`` become floats, ``count`` an int."""
        keys = list(self.sums)
        values = [torch.as_tensor(self.sums[k], dtype=torch.float64).cpu() for k in keys]
        if values:
            self.sums = dict(zip(keys, torch.stack(values).tolist()))
        self.count = int(self.count)

    def means(self) -> dict[str, float]:
        self._settle()
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}

    @classmethod
    def summed(cls, states: list[dict]) -> "StatTotals":
        """The totals of several processes' :meth:`state_dict`, added in the given order."""
        merged = cls()
        for state in states:
            part = cls(state)
            for k, v in part.sums.items():
                merged.sums[k] = merged.sums.get(k, 0.0) + v
            merged.count += part.count
        return merged

    def state_dict(self) -> dict:
        self._settle()
        return {"sums": dict(self.sums), "count": self.count}


class SupervisedMixupStep:
    """Baseline / oracle: cross-entropy on labelled images, with mixup when ``alpha > 0``."""

    def __init__(self, model: nn.Module, alpha: float, seed: int) -> None:
        self.model, self.alpha, self.seed = model, alpha, seed

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, Any]:
        x, y = batch
        # per-step generators: the same step draws the same lambda and pairing after a resume
        lam = sample_lambda(self.alpha, np.random.default_rng(mix_seed(self.seed, step, 0)))
        perm = random_permutation(x.shape[0], torch.Generator().manual_seed(mix_seed(self.seed, step, 1)))
        logits = self.model(mix(x, lam, perm) if lam < 1 else x)
        loss = mixup_cross_entropy(logits, y, y[perm.to(y.device, non_blocking=True)], lam)
        return {"loss": loss, "sup_loss": loss.detach()}


class DynamicMixupStep:
    """A DMT classification step: labelled + pseudo-labelled images, dynamic weights, mixup.

    The weights come from the student on the *un-mixed* batch (train-mode BN, running statistics
    untouched), are mixed like the images, and weight ``lam CE(y) + (1 - lam) CE(y[perm])``.
    ``gamma1 == gamma2 == 0`` is curriculum labelling: every pseudo label weighs 1.
    """

    def __init__(self, model: nn.Module, *, gamma1: float, gamma2: float, ramp: bool, total_steps: int,
                 alpha: float, seed: int, totals: StatTotals) -> None:
        self.model, self.gamma1, self.gamma2, self.ramp = model, gamma1, gamma2, ramp
        self.total_steps, self.alpha, self.seed, self.totals = total_steps, alpha, seed, totals

    def __call__(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, Any]:
        probs = batch["pseudo_probs"]
        x = torch.cat([batch["pseudo_images"], batch["labelled_images"]])
        y = torch.cat([probs.argmax(1), batch["labels"]])
        teacher_conf = torch.cat([probs.max(1).values, torch.ones_like(batch["labels"], dtype=probs.dtype)])
        labelled = torch.cat([torch.zeros(probs.shape[0], dtype=torch.bool, device=x.device),
                              torch.ones(batch["labels"].shape[0], dtype=torch.bool, device=x.device)])
        g1 = ramped_gamma(self.gamma1, step, self.total_steps, self.ramp)
        g2 = ramped_gamma(self.gamma2, step, self.total_steps, self.ramp)

        with torch.no_grad(), batch_stats_without_update(self.model):
            view = student_view(self.model(x), y)
        if self.gamma1 == 0 and self.gamma2 == 0:
            w = torch.ones(y.shape, device=x.device)
        else:
            w = dynamic_weights_from_view(view, y, teacher_conf, labelled, g1, g2)
        stats = agreement_stats(view, y, teacher_conf, labelled, w)
        n_pseudo = stats.pop("pseudo_targets")
        self.totals.add(stats, n_pseudo)

        lam = sample_lambda(self.alpha, np.random.default_rng(mix_seed(self.seed, step, 0)))
        perm = random_permutation(x.shape[0], torch.Generator().manual_seed(mix_seed(self.seed, step, 1)))
        logits = self.model(mix(x, lam, perm) if lam < 1 else x)
        loss = mixup_cross_entropy(logits, y, y[perm.to(y.device, non_blocking=True)], lam, mix(w, lam, perm))
        return {"loss": loss, "gamma1": g1, "gamma2": g2, **stats}


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
                 totals: StatTotals | None = None) -> None:
        if weighting not in ("dynamic", "confidence", "flip", "online"):
            raise ValueError(f"unknown weighting {weighting!r}")
        self.model, self.weighting, self.gamma1, self.gamma2 = model, weighting, gamma1, gamma2
        self.ramp, self.total_steps, self.naive_gamma = ramp, total_steps, naive_gamma
        self.online_threshold, self.totals = online_threshold, totals if totals is not None else StatTotals()

    def __call__(self, batch: dict[str, Any], step: int) -> dict[str, Any]:
        if "pseudo_image" not in batch:  # supervised: baseline and oracle
            logits = upsampled_logits(self.model, batch["image"])
            loss = weighted_cross_entropy(logits, batch["mask"], torch.ones_like(batch["mask"], dtype=torch.float32),
                                          normalizer=global_normalizer(batch["mask"]))
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
                                          normalizer=global_normalizer(target))
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
        loss = weighted_cross_entropy(logits, target, w, normalizer=global_normalizer(target))
        return {"loss": loss, "gamma1": g1, "gamma2": g2, **{k: v for k, v in stats.items() if k != "pseudo_targets"}}
