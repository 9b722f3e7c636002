"""Weighted cross-entropy losses of DMT (plain and mixup)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dmt.method.weights import IGNORE_INDEX


def weighted_cross_entropy(
    logits: Tensor, target: Tensor, weights: Tensor, ignore_index: int = IGNORE_INDEX,
    normalizer: Tensor | None = None,
) -> Tensor:
    """``sum(weight * CE) / number of non-ignored targets``.

    Normalising by the count of targets (not by the sum of weights) is the paper's choice: a
    batch of low-confidence pseudo labels contributes a small loss rather than being rescaled.
    Returns 0 (with a gradient path) when every target is ignored.

    Args:
        normalizer: divide by this instead of the batch's own count. With N processes each
            holding part of a batch, pass (count of the whole batch) / N: the average of the N
            gradients is then exactly the gradient of the whole batch's loss.
    """
    ce = F.cross_entropy(logits.float(), target.long(), ignore_index=ignore_index, reduction="none")
    count = (target != ignore_index).sum().clamp_min(1) if normalizer is None else normalizer
    return (weights.float() * ce).sum() / count


def mixup_cross_entropy(
    logits: Tensor, target_a: Tensor, target_b: Tensor, lam: float, weights: Tensor | None = None
) -> Tensor:
    """Mixup loss: ``sum(w * (lam CE(y_a) + (1 - lam) CE(y_b))) / batch size``.

    Args:
        logits: ``N x C`` predictions on the mixed images.
        target_a: classes of the images kept with weight ``lam``.
        target_b: classes of the partner images (``target_a[perm]``).
        lam: the mixing coefficient.
        weights: per-image weights (already mixed like the images); ``None`` means all 1.
    """
    ce_a = F.cross_entropy(logits.float(), target_a.long(), reduction="none")
    ce_b = F.cross_entropy(logits.float(), target_b.long(), reduction="none")
    per_image = lam * ce_a + (1.0 - lam) * ce_b
    if weights is not None:
        per_image = weights.float() * per_image
    return per_image.sum() / max(int(logits.shape[0]), 1)


def online_pseudo_targets(teacher_logits: Tensor, threshold: float, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """On-the-fly pseudo labels: the model's own argmax where its confidence exceeds ``threshold``.

    The paper's "online" ablation: no stored labels, each pseudo batch is labelled by the current
    model as it trains.
    """
    probs = teacher_logits.detach().float().softmax(dim=1)
    confidence, prediction = probs.max(dim=1)
    return torch.where(confidence > threshold, prediction, torch.full_like(prediction, ignore_index))
