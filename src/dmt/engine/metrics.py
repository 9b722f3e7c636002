"""Evaluation metrics: top-1 accuracy, and the confusion matrix behind pixel accuracy and mIoU.

Segmentation scores come from ONE confusion matrix accumulated over the whole evaluation set
(:class:`ConfusionMatrix`). Averaging per-batch mIoU instead weights small batches and
absent classes wrongly and does not give the number papers report.
"""

from __future__ import annotations

import torch
from torch import Tensor


def accuracy(logits_or_pred: Tensor, target: Tensor) -> float:
    """Top-1 accuracy as a fraction in ``[0, 1]``.

    Args:
        logits_or_pred: ``(N, C)`` float logits or probabilities, or ``(N,)`` integer predictions.
        target: ``(N,)`` integer class labels.
    """
    if logits_or_pred.is_floating_point():
        if logits_or_pred.dim() != 2:
            raise ValueError(f"logits must be (N, C), got shape {tuple(logits_or_pred.shape)}")
        pred = logits_or_pred.argmax(dim=1)
    else:
        pred = logits_or_pred
    if pred.shape != target.shape or pred.dim() != 1:
        raise ValueError(
            f"predictions {tuple(pred.shape)} and targets {tuple(target.shape)} must both be (N,)"
        )
    if pred.numel() == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return (pred == target.to(pred.device)).sum().item() / pred.numel()


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """Counts of (ground truth, prediction) pairs.

    Args:
        pred: predicted classes, any shape, values in ``[0, C)``.
        target: ground-truth classes, same shape as ``pred``. Pixels equal to ``ignore_index``
            or outside ``[0, C)`` are skipped.
        num_classes: ``C``.
        ignore_index: the label of pixels that are not evaluated (VOC's object borders, 255).

    Returns:
        ``(C, C)`` int64 on ``pred``'s device; rows are ground truth, columns predictions.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must hold integer classes (take argmax of logits first)")
    p = pred.reshape(-1).to(torch.int64)
    t = target.reshape(-1).to(device=p.device, dtype=torch.int64)
    valid = (t != ignore_index) & (t >= 0) & (t < num_classes)
    p, t = p[valid], t[valid]
    # A prediction outside [0, C) would land in another cell of the flattened matrix.
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        raise ValueError(f"predictions must lie in [0, {num_classes}), got {int(p.min())}..{int(p.max())}")
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_scores(cm: Tensor) -> dict:
    """Pixel accuracy, per-class IoU, mIoU and mean class accuracy of a confusion matrix.

    A class with no ground-truth and no predicted pixel (zero union) has IoU ``None`` and is left
    out of the mean; likewise a class with no ground-truth pixel is left out of the mean class
    accuracy.

    Args:
        cm: ``(C, C)`` counts, rows ground truth, columns predictions.

    Returns:
        ``{'pixel_accuracy', 'miou', 'mean_class_accuracy'}`` as fractions in ``[0, 1]`` and
        ``'per_class_iou'``, ``'per_class_accuracy'``: lists of length ``C`` (``None`` where
        undefined).
    """
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {tuple(cm.shape)}")
    cm = cm.detach().to("cpu", torch.float64)  # float64 holds pixel counts of any dataset exactly
    total = cm.sum().item()
    if total == 0:
        raise ValueError("confusion matrix is empty: no labelled pixel was evaluated")
    tp = cm.diagonal()
    gt = cm.sum(1)
    predicted = cm.sum(0)
    union = gt + predicted - tp
    per_class_iou = [(tp[c] / union[c]).item() if union[c] > 0 else None for c in range(cm.shape[0])]
    per_class_acc = [(tp[c] / gt[c]).item() if gt[c] > 0 else None for c in range(cm.shape[0])]
    ious = [v for v in per_class_iou if v is not None]
    accs = [v for v in per_class_acc if v is not None]
    return {
        "pixel_accuracy": tp.sum().item() / total,
        "miou": sum(ious) / len(ious),
        "mean_class_accuracy": sum(accs) / len(accs),
        "per_class_iou": per_class_iou,
        "per_class_accuracy": per_class_acc,
    }


class ConfusionMatrix:
    """Accumulates one confusion matrix over a whole evaluation set.

    Args:
        num_classes: ``C``.
        ignore_index: target value of pixels that are not evaluated.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # Kept on the CPU: it is tiny, and the per-batch transfer is C*C numbers.
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add one batch (predicted classes, not logits)."""
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index).cpu()

    def compute(self) -> dict:
        """:func:`segmentation_scores` of everything added so far."""
        return segmentation_scores(self.matrix)

    def reset(self) -> None:
        """Start a new evaluation."""
        self.matrix.zero_()
