"""The one prediction path: images read, batched, scored, windowed and reduced band by band, whatever the runtime.

``dmt predict MODEL_FILE`` (:mod:`dmt.predict.predict`), ``dmt predict MODEL.onnx``
(:mod:`dmt.predict.onnx_predict`) and ``Model.predict`` (:mod:`dmt.predict.model`) all call these
functions; they differ only in the scorer (:mod:`dmt.predict.scorers`) that turns a batch, or a
window of it, into scores. A segmentation batch is scored whole, or in windows when larger than
``max_side`` (:func:`~dmt.tasks.segmentation.windows.score_bands`), and its scores reach
:func:`~dmt.predict.assemble.assemble` as bands of rows: each band is brought back to the image's
own size (a read-time resize undone band by band) and reduced to class and confidence at once,
so memory is bounded by a window at any read scale, never by the image times its classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from dmt.config.validate import check_window
from dmt.engine.batches import eval_loader
from dmt.engine.progress import Progress
from dmt.predict.assemble import assemble, resized_rows, top_class
from dmt.predict.batches import ImageFiles, batches, one
from dmt.predict.inputs import InputImage
from dmt.predict.outputs import PredictOptions, PredictSummary, write_csv, write_segmentation
from dmt.predict.render import classification_row, confidence_bytes
from dmt.tasks.segmentation.windows import inference_window, score_bands

log = logging.getLogger("dmt")


def segment(scorer: Any, images: torch.Tensor, sizes: list[tuple[int, int]], window: Sequence[int] | None,
            stride: Sequence[int] | None, max_side: int | None, float_confidence: bool = False
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each image's ``(classes uint8, confidence)`` at its own size, scored whole or in windows.

    Args:
        scorer: see :mod:`dmt.predict.scorers`; images: a uint8 batch of one reading size, on its device.
        sizes: each image's own size, which its maps take.
        window, stride: sliding windows (the run's ``eval.window``), or None; an image larger than
            ``max_side`` is windowed anyway (:func:`~dmt.tasks.segmentation.windows.inference_window`).
        float_confidence: see :func:`~dmt.predict.assemble.assemble`.
    """
    chosen = inference_window(images.shape[-2:], window, max_side)
    bands = score_bands(scorer, images, chosen, stride if window else None)
    shape = (int(images.shape[-2]), int(images.shape[-1]))
    return assemble(bands, [shape] * len(sizes), sizes, float_confidence, scorer.probabilities)


def segment_rows(scorer: Any, images: torch.Tensor, sizes: list[tuple[int, int]], window: Sequence[int] | None,
                 stride: Sequence[int] | None, max_side: int | None
                 ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """What :func:`segment` computes, handed out a few rows at a time instead of as whole maps.

    Yields ``(image, first row, classes uint8 k x W, confidence uint8 k x W)`` (confidence as the
    probs PNG stores it, ``round(255 p)``), top to bottom, every row of every image once, at the
    image's own size: a caller that needs per-image statistics (``dmt suggest``) holds no map.
    """
    chosen = inference_window(images.shape[-2:], window, max_side)
    bands = score_bands(scorer, images, chosen, stride if window else None)
    shape = (int(images.shape[-2]), int(images.shape[-1]))
    for i, at, rows in resized_rows(bands, [shape] * len(sizes), sizes):
        cls, conf = top_class(rows, scorer.probabilities)
        yield i, at, cls.to(torch.uint8).cpu().numpy(), confidence_bytes(conf.cpu().numpy())


def classify(scorer: Any, images: torch.Tensor) -> list[np.ndarray]:
    """Each image's ``(K,)`` float32 class probabilities."""
    scores = scorer(images)
    return [(s.float() if scorer.probabilities else s.float().softmax(0)).cpu().numpy() for s in scores]


def predict_files(scorer: Any, task: str, images: list[InputImage], channels: int, scale: float,
                  size: int | None, class_names: tuple[str, ...], palette: np.ndarray,
                  opts: PredictOptions) -> PredictSummary:
    """Predict every image and write the outputs under ``opts.out``; unreadable images are skipped.

    Args:
        channels: 3 (RGB) or 1 (grey) as the model reads; scale: segmentation's reading scale;
            size: classification's image size (images are resized to ``size x size``).
        opts: windows, ``max_side`` and ``max_pixels`` already resolved by the caller.
    """
    segmentation = task == "segmentation"
    if segmentation:
        check_window(opts.window, opts.stride)
    dataset = ImageFiles(images, channels, scale, None if segmentation else size, opts.max_pixels)
    loader = eval_loader(dataset, 1, opts.num_workers, collate_fn=one)
    summary, rows = PredictSummary(), []
    opts.out.mkdir(parents=True, exist_ok=True)
    with Progress("predict", len(images)) as bar:
        for batch in batches(loader, opts.batch_size):
            for index, error in batch.errors:
                log.warning("skipped %s", error)
                summary.skipped.append((str(images[index].path), error))
            if batch.images is not None:
                x = scorer.place(batch.images)
                if segmentation:
                    maps = segment(scorer, x, batch.sizes, opts.window, opts.stride, opts.max_side)
                    for index, original, (classes, confidence) in zip(batch.index, batch.originals, maps):
                        write_segmentation(opts.out, images[index].name, original, classes, confidence, palette,
                                           class_names, opts.probs)
                else:
                    for index, probs in zip(batch.index, classify(scorer, x)):
                        rows.append(classification_row(str(images[index].path), probs, class_names, opts.top_k))
                summary.written += len(batch.index)
            bar.advance(len(batch.index) + len(batch.errors))
    if not segmentation:
        write_csv(opts.out / "predictions.csv", rows)
    return summary
