"""End-of-stage pictures and scores of a classification stage, in TensorBoard (rank 0 only).

A few kept pseudo-labelled images with their pseudo label (and the teacher's confidence) and the
final model's class, as a picture and a markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.data.arrays import ImageSet
from dmt.tasks.context import StageContext
from dmt.tasks.panels import grid, upscale
from dmt.tasks.plan import Stage

NUM_CLS_SAMPLES = 8  # images shown per phase


def sample_images(data: ImageSet, indices: np.ndarray) -> np.ndarray:
    """The images of ``data`` at ``indices`` (a few), read one by one, as ``N x H x W x C`` uint8."""
    if not len(indices):
        return np.zeros((0, 1, 1, 3), dtype=np.uint8)
    return np.stack([data.image(int(i)) for i in indices])


def classification_stage_end(ctx: StageContext, stage: Stage, step: int, model: nn.Module, metrics: dict[str, Any],
                             images: np.ndarray, pseudo_probs: torch.Tensor, class_names: Sequence[str],
                             eval_transform: Any) -> None:
    """A phase's scores, and a few kept pseudo-labelled images with pseudo label and final prediction,
    in TensorBoard (rank 0).

    Args:
        images: ``N x H x W x 3`` uint8, the first kept images, in ``pseudo_probs`` order.
        pseudo_probs: the teacher's probabilities of the kept images (``K x C``, ``K >= N``).
    """
    if not ctx.processes.is_main:
        return
    ctx.stage_scores(stage, step, metrics, class_names)
    if not len(images):
        return
    n = min(NUM_CLS_SAMPLES, len(images))
    from torchvision import tv_tensors

    # as ImageSetDataset feeds evaluation: uint8 C x H x W through the eval transform, floats in [0, 1]
    batch = torch.stack([torch.as_tensor(eval_transform(tv_tensors.Image(torch.from_numpy(images[k]).permute(2, 0, 1))),
                                         dtype=torch.float32) for k in range(n)]).to(ctx.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model(batch).argmax(1).cpu().tolist()
    model.train(was_training)
    picture = grid([[upscale(images[k], 64) for k in range(n)]])
    teacher = pseudo_probs[:n].max(1)
    lines = ["| image | pseudo label (confidence) | final prediction |", "|---|---|---|"]
    for k in range(n):
        lines.append(f"| {k + 1} | {class_names[int(teacher.indices[k])]} ({float(teacher.values[k]):.3f}) | "
                     f"{class_names[predicted[k]]} |")
    ctx.image(stage.name, "samples/kept pseudo-labelled images", picture, step, "\n".join(lines))
