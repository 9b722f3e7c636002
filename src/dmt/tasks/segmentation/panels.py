"""End-of-stage pictures and scores of a segmentation stage, for TensorBoard and ``dmt report`` (rank 0 only).

A grid of the first :data:`NUM_SAMPLES` unlabelled images (by name) with their ground truth where
known, the teacher's kept pseudo labels (a phase) and the final model's prediction, written to
the stage folder (:mod:`dmt.tasks.panels`) and TensorBoard, plus per-class IoU scalars.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.tasks.context import StageContext
from dmt.tasks.panels import class_palette, grid, save_samples, segmentation_rows
from dmt.tasks.plan import Stage

NUM_SAMPLES = 4  # images per segmentation grid: enough to see what happened, cheap at stage end
PICTURE_SIDE = 512  # a larger image is shown at every 2nd, 3rd ... row and column (pictures, not scores)


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


def picture_step(size: Sequence[int], side: int = PICTURE_SIDE) -> int:
    """The row and column step that brings an image of ``size`` (h, w) within ``side`` pixels (1: whole)."""
    return max(1, -(-max(size) // side))


def load_picks(picks: Sequence[Any], source: Any, with_mask: Sequence[bool]
               ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The images (``h x w x 3`` uint8) of ``picks`` and their masks where ``with_mask`` says (else None),
    every :func:`picture_step`-th row and column: a picture's size, not the image's, is kept."""
    from dmt.data.segmentation import load_pair

    images, truths = [], []
    for it, masked in zip(picks, with_mask):
        image, mask = load_pair(it, source, masked)
        k = picture_step(image.shape[-2:])
        images.append(image.permute(1, 2, 0).numpy()[::k, ::k].copy())
        truths.append(mask.numpy()[::k, ::k].copy() if mask is not None else None)
    return images, truths


@torch.no_grad()
def predict_maps(ctx: StageContext, model: nn.Module, picks: Sequence[Any], source: Any, eval_transform: Any,
                 description: str) -> list[np.ndarray]:
    """``model``'s class maps (uint8) of a few items, at the pictures' size (:func:`load_picks`).

    One image at a time, predicted as the evaluation predicts it (``eval.window``, else windows
    of ``eval.max_side`` for a large image) and kept band by band at every :func:`picture_step`-th
    row and column: memory is bounded by a window, not by the image. The model is left in the
    mode it was found in. The loader draws a seed from torch's global CPU generator, as the
    stage's evaluation does.
    """
    from dmt.data.segmentation import SegmentationDataset
    from dmt.engine.loop import amp_settings
    from dmt.tasks.segmentation.inference import device_batches, window_bands
    from dmt.tasks.segmentation.windows import inference_window

    c = ctx.cfg.eval
    use_amp, dtype = amp_settings(ctx.device, ctx.cfg.amp)
    autocast = functools.partial(torch.autocast, ctx.device.type, dtype=dtype, enabled=use_amp)
    dataset = SegmentationDataset(list(picks), source, eval_transform, with_mask=False)
    was_training = model.training
    preds = []
    for batch, images in device_batches(model, dataset, 1, ctx.device, 0, description, False):
        h, w = batch["size"][0]
        k = picture_step((h, w))
        rows = []
        win = inference_window(images.shape[-2:], c.window, c.max_side)
        for top, end, logits in window_bands(model, images, win, c.stride if c.window else None, autocast):
            band = logits[0, :, (-top) % k : end - top : k, :w:k].argmax(0)  # rows top + j with j % k == 0
            rows.append(band.to(torch.uint8).cpu().numpy())
        preds.append(np.concatenate(rows, axis=0)[: -(-h // k)])
    model.train(was_training)
    return preds
