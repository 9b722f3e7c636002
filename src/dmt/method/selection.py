"""Curriculum selection of whole images (classification): global or class-balanced ranking.

In phase ``i`` of the curriculum DMT trains on the ``ratio`` most confident pseudo labels. For
classification an item is a whole image, its confidence the teacher's largest softmax probability.

* **global** (:func:`select_most_confident`, the paper's CIFAR-10 protocol): rank every unlabelled
  image by confidence and keep the top ``keep_count(ratio, N)``. When the teacher is much surer of
  some classes than of others, the top of the ranking is filled with those classes and the others
  are starved: a student trained on it never sees them.
* **class_balanced** (:func:`select_class_balanced`): for each class ``c``, keep the top
  ``keep_count(ratio, n_c)`` of the ``n_c`` images the teacher predicts as ``c``. This is the rule
  segmentation applies to pixels (:func:`dmt.method.thresholds.class_balanced_thresholds`, as in
  CBST), applied to images.

Both break ties the same way (higher confidence first, then the lower index), so a rerun selects
the same images. Reading the teacher's probabilities and building the datasets lives in
:mod:`dmt.tasks.classification.runner`; everything here is a pure function on tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dmt.method.thresholds import keep_count


_SHAPES = {1: "1-D (N,)", 2: "2-D (N, C)"}  # confidences, probabilities


def _check_scores(scores: Tensor, name: str, ndim: int) -> None:
    """Refuse what a selection cannot rank: another number of dimensions, an integer tensor, NaN."""
    if scores.dim() != ndim:
        raise ValueError(f"{name} must be {_SHAPES[ndim]}, got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got {scores.dtype}")
    if torch.isnan(scores).any():
        raise ValueError(f"{name} contains NaN")


def _confidence_order(confidence: Tensor) -> Tensor:
    """Positions by decreasing confidence; a stable sort keeps equal values in index order, so the
    lower index comes first and a rerun ranks alike."""
    return torch.sort(confidence, descending=True, stable=True).indices


def select_most_confident(confidence: Tensor, ratio: float) -> Tensor:
    """Indices of the ``keep_count(ratio, N)`` most confident items (global curriculum).

    Ties are broken deterministically: higher confidence first, and among equal confidences the
    lower index first, so a rerun selects the same items.

    Args:
        confidence: ``(N,)`` teacher confidence per item (any float dtype, no NaN).
        ratio: the curriculum ratio, in ``(0, 1]``.

    Returns:
        ``(K,)`` int64 indices, sorted ascending.
    """
    _check_scores(confidence, "confidence", 1)
    k = keep_count(ratio, confidence.numel())
    return torch.sort(_confidence_order(confidence)[:k]).values.to(torch.int64)


def select_class_balanced(probs: Tensor, ratio: float) -> Tensor:
    """Indices of the top ``ratio`` of each predicted class's images (class-balanced curriculum).

    Image ``i`` belongs to class ``argmax(probs[i])`` (the first of tied maxima, as
    ``torch.argmax``) with confidence ``max(probs[i])``. Of the ``n_c`` images of class ``c``
    the ``keep_count(ratio, n_c)`` most confident are kept, ties broken as
    :func:`select_most_confident` breaks them (higher confidence first, then the lower index).
    ``ratio`` 1.0 keeps every image; a class with fewer than ``1 / ratio`` images keeps none
    of them (``floor``, as the global rule; segmentation's thresholds keep at least one pixel).

    Relation to the global rule: the classes' counts ``floor(ratio * n_c)`` add up to at most
    ``floor(ratio * N)``, short by the integer part of the sum of the fractional parts (fewer
    than ``C`` images). When every ``ratio * n_c`` is an integer and the classes' confidences do
    not differ (each class holds the same multiset of values), both rules keep the same images.

    Args:
        probs: ``(N, C)`` teacher probabilities (any float dtype, no NaN).
        ratio: the curriculum ratio, in ``(0, 1]``.

    Returns:
        ``(K,)`` int64 indices, sorted ascending.
    """
    _check_scores(probs, "probs", 2)
    keep_count(ratio, 0)  # checks the ratio even when there is no image
    num_images, num_classes = probs.shape
    if num_images == 0 or num_classes == 0:
        return torch.zeros(0, dtype=torch.int64)
    confidence, classes = probs.max(1).values, probs.argmax(1)
    # The global ranking's order, then grouped by class (a stable sort again): within each class
    # the images stand in the global ranking's order.
    order = _confidence_order(confidence)
    order = order[torch.sort(classes[order], stable=True).indices]
    counts = torch.bincount(classes, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts  # where each class's block begins in `order`
    rank = torch.arange(num_images) - starts[classes[order]]  # place of each image within its class
    quota = torch.tensor([keep_count(ratio, int(n)) for n in counts.tolist()], dtype=torch.int64)
    kept = order[rank < quota[classes[order]]]
    return torch.sort(kept).values.to(torch.int64)


def _select_global(probs: Tensor, ratio: float) -> Tensor:
    return select_most_confident(probs.max(1).values, ratio)


# phases.selection -> the rule on the teacher's (N, C) probabilities
SELECTIONS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "global": _select_global,
    "class_balanced": select_class_balanced,
}


def select_pseudo_labels(probs: Tensor, ratio: float, selection: str = "global") -> Tensor:
    """The images a phase trains on: :data:`SELECTIONS` ``[selection]`` of ``probs`` at ``ratio``.

    Args:
        probs: ``(N, C)`` teacher probabilities.
        ratio: the curriculum ratio, in ``(0, 1]``.
        selection: ``"global"`` or ``"class_balanced"`` (``phases.selection``).

    Returns:
        ``(K,)`` int64 indices into ``probs``, sorted ascending.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {sorted(SELECTIONS)}, got {selection!r}")
    if probs.dim() != 2:
        raise ValueError(f"probs must be 2-D (N, C), got shape {tuple(probs.shape)}")
    return SELECTIONS[selection](probs, ratio)
