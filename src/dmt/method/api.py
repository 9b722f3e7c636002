"""The method's functions with the plain signatures dmt exports for your own training loop.

Most method functions are public as they are (``dmt.weighted_cross_entropy`` is
:func:`dmt.method.losses.weighted_cross_entropy`); this module holds the ones whose internal
signature is shaped by dmt's steps and gets a plain one here. Each equals the internal function
it calls (``tests/method/test_api.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dmt.method import weights
from dmt.method.weights import IGNORE_INDEX


def dynamic_weights(student_logits: Tensor, pseudo_labels: Tensor, teacher_confidence: Tensor, gamma1: float,
                    gamma2: float, *, labelled: Tensor | None = None, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """DMT's dynamic mutual weight of every pseudo label (Eq. 5 of the paper).

    With ``p`` the student's softmax probability of the pseudo class: ``p ** gamma1`` where the
    student's own class is the pseudo class; ``0`` where it disagrees and is more confident than the
    teacher was; ``p ** gamma2`` where it disagrees otherwise. Multiply the per-target cross
    entropy by these (:func:`dmt.weighted_cross_entropy`).

    Args:
        student_logits: ``N x K`` (images) or ``N x K x H x W`` (pixels); detached inside.
        pseudo_labels: the teacher's classes, ``N`` or ``N x H x W``; ``ignore_index`` where none.
        teacher_confidence: the teacher's probability of its class, the labels' shape.
        gamma1, gamma2: the exponents (dmt's presets: 4 for CIFAR-10, 5 for VOC, 3 for Cityscapes;
            :func:`dmt.ramped_gamma` ramps them up over a phase).
        labelled: optional bool, ``N`` or the labels' shape: targets that are true labels weigh 1.
        ignore_index: the label of targets to ignore (weight 0).

    Returns:
        float32 weights of the labels' shape.
    """
    if labelled is None:
        labelled = torch.zeros(pseudo_labels.shape[0], dtype=torch.bool, device=pseudo_labels.device)
    return weights.dynamic_weights(student_logits, pseudo_labels, teacher_confidence, labelled, gamma1, gamma2,
                                   ignore_index)
