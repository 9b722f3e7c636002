"""End-of-stage pictures and scores for TensorBoard and ``dmt report`` (rank 0 only, a few images).

Segmentation: a grid of the first :data:`NUM_SAMPLES` unlabelled images (by name) with their
ground truth where known, the teacher's kept pseudo labels (a phase) and the final model's
prediction, written to the stage folder (:mod:`dmt.pipeline.panels`) and TensorBoard, plus
per-class IoU scalars. Classification: a few kept pseudo-labelled images with their pseudo label
and the final model's class, in TensorBoard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.engine import distributed as dist
from dmt.pipeline.context import StageContext
from dmt.pipeline.panels import class_palette, grid, save_samples, segmentation_rows, upscale
from dmt.pipeline.plan import Stage

NUM_SAMPLES = 4  # images per segmentation grid: enough to see what happened, cheap at stage end
NUM_CLS_SAMPLES = 8


def segmentation_stage_end(ctx: StageContext, stage: Stage, step: int, model: nn.Module, metrics: dict[str, Any],
                           items: Sequence[Any], source: Any, eval_transform: Any,
                           targets: Callable[[str], tuple[np.ndarray, np.ndarray]] | None) -> None:
    """Per-class IoU scalars and the sample grid of a finished segmentation stage (rank 0).

    Args:
        items: the unlabelled :class:`~dmt.data.segmentation.SegItem` list to take samples from.
        targets: a phase's thresholded pseudo labels (name -> (kept classes, confidence)), or ``None``.
    """
    if not dist.is_main():
        return
    ctx.stage_scores(stage, step, metrics, source.class_names)
    picks = sorted(items, key=lambda it: it.name)[:NUM_SAMPLES]
    if not picks:
        return
    from dmt.data.segmentation import SegmentationDataset, load_pair
    from dmt.pipeline.seg_eval import predictions

    images, truths = [], []
    for it in picks:
        image, mask = load_pair(it, source, it.mask is not None)
        images.append(image.permute(1, 2, 0).numpy())
        truths.append(mask.numpy() if mask is not None else None)
    pseudo = [targets(it.name)[0] for it in picks] if targets is not None else None
    preds = []
    dataset = SegmentationDataset(picks, source, eval_transform, with_mask=False)
    was_training = model.training
    for batch, probs in predictions(model, dataset, len(picks), ctx.device, ctx.cfg.amp, 0, f"{stage.name} samples"):
        for k, (h, w) in enumerate(batch["size"]):
            preds.append(probs[k, :, :h, :w].argmax(0).to(torch.uint8).cpu().numpy())
    model.train(was_training)
    palette = class_palette(source.num_classes, source.palette)
    rows, columns = segmentation_rows(images, truths, pseudo, preds, palette)
    picture = grid(rows)
    save_samples(ctx.run.stage_dir(stage.name), picture, {
        "stage": stage.name, "names": [it.name for it in picks], "columns": columns,
        "classes": list(source.class_names), "palette": palette.tolist(),
        "teacher": stage.teacher if targets is not None else None})
    ctx.image(stage.name, "samples/" + " | ".join(columns), picture, step)


def classification_stage_end(ctx: StageContext, stage: Stage, step: int, model: nn.Module, metrics: dict[str, Any],
                             images: np.ndarray, pseudo_probs: torch.Tensor, class_names: Sequence[str],
                             eval_transform: Any) -> None:
    """A phase's scores, and a few kept pseudo-labelled images with pseudo label and final prediction,
    in TensorBoard (rank 0).

    Args:
        images: ``N x H x W x 3`` uint8, the first kept images, in ``pseudo_probs`` order.
        pseudo_probs: the teacher's probabilities of the kept images (``K x C``, ``K >= N``).
    """
    if not dist.is_main():
        return
    ctx.stage_scores(stage, step, metrics, class_names)
    if not len(images):
        return
    n = min(NUM_CLS_SAMPLES, len(images))
    from torchvision import tv_tensors

    # as ArrayImageDataset feeds evaluation: uint8 C x H x W through the eval transform, floats in [0, 1]
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
