"""Dynamic mutual weights: how much each pseudo-labelled pixel or image counts.

One implementation serves classification (targets of shape ``N``) and segmentation (targets of
shape ``N x H x W``). With ``p`` the student's (detached) softmax probability of the pseudo
class:

* student and teacher agree (student argmax == pseudo class): ``p ** gamma1``
* they disagree and the student is more confident than the teacher was: ``0``
* they disagree otherwise: ``p ** gamma2``
* labelled samples: ``1``; ignored targets: ``0``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

IGNORE_INDEX = 255


class StudentView(NamedTuple):
    """What the weights need from the student: p of the pseudo class, its own class and confidence."""

    p_target: Tensor  # probability the student gives to the pseudo class
    prediction: Tensor  # the student's argmax class
    confidence: Tensor  # the student's max probability


def student_view(student_logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX) -> StudentView:
    """Softmax the (detached) student logits and read off what the weights compare.

    Args:
        student_logits: ``N x C`` or ``N x C x H x W``.
        target: pseudo classes, ``N`` or ``N x H x W`` (``ignore_index`` where there is none).
    """
    if student_logits.dim() != target.dim() + 1 or student_logits.shape[0] != target.shape[0] \
            or student_logits.shape[2:] != target.shape[1:]:
        raise ValueError(f"logits {tuple(student_logits.shape)} do not match targets {tuple(target.shape)}")
    probs = student_logits.detach().float().softmax(dim=1)
    safe_target = torch.where(target == ignore_index, torch.zeros_like(target), target).long()
    p_target = probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    confidence, prediction = probs.max(dim=1)
    return StudentView(p_target, prediction, confidence)


def _per_target(labelled: Tensor, like: Tensor) -> Tensor:
    """Broadcast a per-sample ``labelled`` flag (shape ``N``) to the target's shape."""
    labelled = labelled.to(device=like.device, dtype=torch.bool)
    if labelled.shape == like.shape:
        return labelled
    if labelled.dim() != 1 or labelled.shape[0] != like.shape[0]:
        raise ValueError(f"labelled mask {tuple(labelled.shape)} must be N or match targets {tuple(like.shape)}")
    return labelled.view(-1, *([1] * (like.dim() - 1))).expand_as(like)


def _labelled_and_ignored(w: Tensor, target: Tensor, labelled: Tensor, ignore_index: int) -> Tensor:
    """Labelled targets weigh 1 and ignored ones 0, whatever the pseudo-label rule said."""
    w = torch.where(_per_target(labelled, target), torch.ones_like(w), w)
    return torch.where(target == ignore_index, torch.zeros_like(w), w)


def dynamic_weights(
    student_logits: Tensor,
    target: Tensor,
    teacher_confidence: Tensor,
    labelled: Tensor,
    gamma1: float,
    gamma2: float,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """The dynamic mutual weight of every target (DMT, Eq. 5 of the paper).

    Args:
        student_logits: ``N x C`` (images) or ``N x C x H x W`` (pixels); detached inside.
        target: pseudo or true classes, ``N`` or ``N x H x W``; ``ignore_index`` marks no target.
        teacher_confidence: the teacher's probability of its class, same shape as ``target``
            (any value where the sample is labelled).
        labelled: bool, ``N`` (per sample) or the target's shape; labelled targets weigh 1.
        gamma1: exponent where student and teacher agree.
        gamma2: exponent where they disagree and the teacher was at least as confident.

    Returns:
        float32 weights of the target's shape, 0 where the target is ignored.
    """
    view = student_view(student_logits, target, ignore_index)
    return dynamic_weights_from_view(view, target, teacher_confidence, labelled, gamma1, gamma2, ignore_index)


def dynamic_weights_from_view(view: StudentView, target: Tensor, teacher_confidence: Tensor, labelled: Tensor,
                              gamma1: float, gamma2: float, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """:func:`dynamic_weights` from an already computed :func:`student_view` (one softmax per step)."""
    agree = view.prediction == target
    student_wins = ~agree & (view.confidence > teacher_confidence.float())
    w = torch.where(agree, view.p_target.pow(gamma1), view.p_target.pow(gamma2))
    w = torch.where(student_wins, torch.zeros_like(w), w)
    return _labelled_and_ignored(w, target, labelled, ignore_index)


def confidence_weights(
    student_logits: Tensor, target: Tensor, labelled: Tensor, gamma: float, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """``p ** gamma`` on every pseudo target, no disagreement rule (the paper's "naive" ablation)."""
    view = student_view(student_logits, target, ignore_index)
    return _labelled_and_ignored(view.p_target.pow(gamma), target, labelled, ignore_index)


def flip_targets_and_weights(
    student_logits: Tensor,
    target: Tensor,
    teacher_confidence: Tensor,
    labelled: Tensor,
    gamma1: float,
    gamma2: float,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[Tensor, Tensor]:
    """The paper's "flip" ablation: where the student disagrees and is more confident, it wins.

    Where student and teacher disagree and the student is more confident, the target becomes the
    student's class with weight ``(1 - teacher confidence) ** gamma2``; elsewhere the dynamic
    weights apply unchanged.

    Returns:
        ``(targets, weights)``, both of the target's shape.
    """
    view = student_view(student_logits, target, ignore_index)
    pseudo = ~_per_target(labelled, target) & (target != ignore_index)
    student_wins = pseudo & (view.prediction != target) & (view.confidence > teacher_confidence.float())
    w = dynamic_weights_from_view(view, target, teacher_confidence, labelled, gamma1, gamma2, ignore_index)
    flipped_w = (1.0 - teacher_confidence.float()).clamp_min(0).pow(gamma2)
    new_target = torch.where(student_wins, view.prediction.to(target.dtype), target)
    return new_target, torch.where(student_wins, flipped_w, w)


def agreement_stats(
    student_logits: Tensor | StudentView,
    target: Tensor,
    teacher_confidence: Tensor,
    labelled: Tensor,
    weights: Tensor,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, Tensor]:
    """Shares over the pseudo-labelled targets: disagreement, student wins, mean weight.

    ``student_logits`` may be a :class:`StudentView` computed already. Every value is a 0-dim
    tensor on the targets' device (float64 shares, int64 ``pseudo_targets``), so a training step
    never waits for the device to read them; ``float(v)`` reads one. The shares are 0 when the
    batch holds no pseudo target.
    """
    view = student_logits if isinstance(student_logits, StudentView) else \
        student_view(student_logits, target, ignore_index)
    pseudo = ~_per_target(labelled, target) & (target != ignore_index)
    n = pseudo.sum()
    denominator = n.clamp_min(1).double()
    disagree = pseudo & (view.prediction != target)
    wins = disagree & (view.confidence > teacher_confidence.float())
    return {
        "disagree": disagree.sum().double() / denominator,
        "student_wins": wins.sum().double() / denominator,
        "mean_weight": torch.where(pseudo, weights.float(), 0.0).double().sum() / denominator,
        "pseudo_targets": n,
    }
