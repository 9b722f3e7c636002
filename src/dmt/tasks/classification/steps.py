"""Classification step functions: one training step's forward pass and loss, built from the method functions.

Each step is a small callable ``(batch, step) -> {"loss": tensor, **scalars}`` that the engine
(:func:`dmt.engine.loop.fit`) drives. Phase-long statistics (mean dynamic weight, disagreement)
are accumulated in ``totals`` so that they survive a resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.engine.batches import mix_seed
from dmt.engine.bn import batch_stats_without_update
from dmt.method.curriculum import ramped_gamma
from dmt.method.losses import mixup_cross_entropy
from dmt.method.mixup import mix, random_permutation, sample_lambda
from dmt.method.weights import agreement_stats, dynamic_weights_from_view, student_view
from dmt.tasks.stats import StatTotals


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
