"""End-of-stage pictures and scores of a segmentation stage, for TensorBoard and ``dmt report`` (rank 0 only).

A grid of the first :data:`NUM_SAMPLES` unlabelled images (by name) with their ground truth where
known, the teacher's kept pseudo labels (a phase) and the final model's prediction, written to
the stage folder (:mod:`dmt.tasks.panels`) and TensorBoard, plus per-class IoU scalars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.tasks.context import StageContext
from dmt.tasks.panels import class_palette, grid, save_samples, segmentation_rows
from dmt.tasks.plan import Stage

NUM_SAMPLES = 4  # images per segmentation grid: enough to see what happened, cheap at stage end


def segmentation_stage_end(ctx: StageContext, stage: Stage, step: int, model: nn.Module, metrics: dict[str, Any],
                           items: Sequence[Any], source: Any, eval_transform: Any,
                           targets: Callable[[str], tuple[np.ndarray, np.ndarray]] | None) -> None:
    """Per-class IoU scalars and the sample grid of a finished segmentation stage (rank 0).

    Args:
        items: the unlabelled :class:`~dmt.data.segmentation.SegItem` list to take samples from.
        targets: a phase's thresholded pseudo labels (name -> (kept classes, confidence)), or ``None``.
    """
    if not ctx.processes.is_main:
        return
    ctx.stage_scores(stage, step, metrics, source.class_names)
    picks = sorted(items, key=lambda it: it.name)[:NUM_SAMPLES]
    if not picks:
        return
    images, truths = load_picks(picks, source, [it.mask is not None for it in picks])
    pseudo = [targets(it.name)[0] for it in picks] if targets is not None else None
    preds = predict_maps(ctx, model, picks, source, eval_transform, f"{stage.name} samples")
    palette = class_palette(source.num_classes, source.palette)
    rows, columns = segmentation_rows(images, truths, pseudo, preds, palette)
    picture = grid(rows)
    save_samples(ctx.run.stage_dir(stage.name), picture, {
        "stage": stage.name, "names": [it.name for it in picks], "columns": columns,
        "classes": list(source.class_names), "palette": palette.tolist(),
        "teacher": stage.teacher if targets is not None else None})
    ctx.image(stage.name, "samples/" + " | ".join(columns), picture, step)


def load_picks(picks: Sequence[Any], source: Any, with_mask: Sequence[bool]
               ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The images (``H x W x 3`` uint8) of ``picks`` and their masks where ``with_mask`` says (else None)."""
    from dmt.data.segmentation import load_pair

    images, truths = [], []
    for it, masked in zip(picks, with_mask):
        image, mask = load_pair(it, source, masked)
        images.append(image.permute(1, 2, 0).numpy())
        truths.append(mask.numpy() if mask is not None else None)
    return images, truths


def predict_maps(ctx: StageContext, model: nn.Module, picks: Sequence[Any], source: Any, eval_transform: Any,
                 description: str) -> list[np.ndarray]:
    """``model``'s class maps (uint8, at each image's size) of a few items, in one batch.

    The model is left in the mode it was found in. The loader draws a seed from torch's global
    CPU generator, as the stage's evaluation does.
    """
    from dmt.data.segmentation import SegmentationDataset
    from dmt.tasks.segmentation.inference import predictions

    preds = []
    dataset = SegmentationDataset(list(picks), source, eval_transform, with_mask=False)
    was_training = model.training
    # in the evaluation's windows where it uses them (Cityscapes): the pictures show what was scored
    for batch, probs in predictions(model, dataset, len(picks), ctx.device, ctx.cfg.amp, 0, description,
                                    window=ctx.cfg.eval.window, stride=ctx.cfg.eval.stride):
        for k, (h, w) in enumerate(batch["size"]):
            preds.append(probs[k, :, :h, :w].argmax(0).to(torch.uint8).cpu().numpy())
    model.train(was_training)
    return preds
