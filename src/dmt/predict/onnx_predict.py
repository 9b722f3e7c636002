"""``dmt predict MODEL.onnx``: an exported ONNX file on your own images, with ONNX Runtime and no PyTorch.

Imports numpy, Pillow, ONNX Runtime and torch-free dmt modules only (a test runs it with torch
blocked), so a deployment machine needs neither PyTorch nor the training code. It writes what
:mod:`dmt.predict.predict` writes for the model file, through the same functions (inputs and
output names, masks, overlays, confidence maps, CSV rows): everything a prediction needs is in
the file's metadata (:mod:`dmt.predict.exported`).

Differences from the model file's path, all by design:

* images are not padded: consecutive images of one reading size are batched together, others run
  in their own batches (the model file's path pads a mixed batch with the dataset mean);
* a read-time resize (``--scale``, classification ``--size``) is Pillow's antialiased bilinear,
  which torchvision's matches to within rounding (one grey level);
* with ``--window`` the graph's outputs are averaged over the windows exactly as
  :func:`~dmt.tasks.segmentation.inference.window_logits` averages logits (the same window
  placement); a graph exported with ``--output probabilities`` averages probabilities;
* class names and colours are those recorded at export (``dmt export --classes/--palette/--data``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from dmt.config.validate import check_window
from dmt.data.images import DEFAULT_MAX_PIXELS
from dmt.engine.progress import Progress
from dmt.errors import UserError
from dmt.predict.exported import onnx_metadata, onnx_scores, onnx_session
from dmt.predict.inputs import InputImage, collect_inputs, read_rgb, reading_size
from dmt.predict.outputs import PredictOptions, PredictSummary, write_csv, write_segmentation
from dmt.predict.render import classification_row
from dmt.tasks.segmentation.windows import DEFAULT_MAX_SIDE, default_stride, inference_window, window_starts

log = logging.getLogger("dmt")

Scores = Callable[[np.ndarray], np.ndarray]  # uint8 N x C x H x W -> float32 graph output


def is_onnx_file(path: str | Path) -> bool:
    """Whether ``dmt predict`` runs this file with ONNX Runtime (its suffix is ``.onnx``)."""
    return Path(path).suffix.lower() == ".onnx"


def resize_pixels(pixels: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """``H x W x C`` uint8 resized to ``target`` (h, w) with Pillow's antialiased bilinear (a copy if unchanged)."""
    h, w, c = pixels.shape
    if (h, w) == tuple(target):
        return pixels
    image = Image.fromarray(pixels[..., 0] if c == 1 else pixels, "L" if c == 1 else "RGB")
    return np.asarray(image.resize((target[1], target[0]), Image.BILINEAR)).reshape(target[0], target[1], c)


def bilinear_resize(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``K x h x w`` float32 resized to ``size`` like ``F.interpolate(..., "bilinear", align_corners=False)``."""
    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return low, np.minimum(low + 1, n_in - 1), (src - low).astype(np.float32)
    y0, y1, fy = taps(scores.shape[1], size[0])
    x0, x1, fx = taps(scores.shape[2], size[1])
    rows = scores[:, y0] * (1 - fy)[:, None] + scores[:, y1] * fy[:, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def softmax(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    """Softmax over ``axis`` in float32 (shifted by the maximum, as torch computes it)."""
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def restore_scores(scores: np.ndarray, size: tuple[int, int], probabilities: bool) -> tuple[np.ndarray, np.ndarray]:
    """One image's ``K x h x w`` graph output -> ``(classes uint8, confidence float32)`` at the image's ``size``.

    As :func:`dmt.predict.predict.restore`: a read-time resize is undone on the scores, not the classes.
    """
    if scores.shape[1:] != tuple(size):
        scores = bilinear_resize(scores, size)
    probs = scores if probabilities else softmax(scores)
    return probs.argmax(0).astype(np.uint8), probs.max(0).astype(np.float32)


def window_scores(run: Scores, images: np.ndarray, window: list[int] | None, stride: list[int] | None) -> np.ndarray:
    """The graph's output for a batch, whole or averaged over windows (placed as ``window_logits`` places them)."""
    h, w = images.shape[-2:]
    if window is None or (window[0] >= h and window[1] >= w):
        return run(images)
    step = tuple(stride) if stride is not None else default_stride(window)
    wh, ww = min(window[0], h), min(window[1], w)
    total: np.ndarray | None = None
    counts = np.zeros((h, w), dtype=np.float32)
    for top in window_starts(h, wh, step[0]):
        for left in window_starts(w, ww, step[1]):
            scores = run(np.ascontiguousarray(images[..., top : top + wh, left : left + ww]))
            if total is None:
                total = np.zeros((images.shape[0], scores.shape[1], h, w), dtype=np.float32)
            total[..., top : top + wh, left : left + ww] += scores
            counts[top : top + wh, left : left + ww] += 1
    assert total is not None
    return total / counts


def read_batches(images: list[InputImage], channels: int, scale: float, size: int | None, batch_size: int,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS
                 ) -> Iterator[tuple[list[tuple[int, np.ndarray]], list[tuple[int, str]], np.ndarray | None]]:
    """Yields ``(good [(index, original pixels)], errors [(index, reason)], uint8 N x C x h x w or None)``.

    Consecutive readable images of one reading size share a batch (at most ``batch_size``); no padding.
    """
    good: list[tuple[int, np.ndarray]] = []
    errors: list[tuple[int, str]] = []
    pixels: list[np.ndarray] = []
    for index, item in enumerate(images):
        try:
            original = read_rgb(item.path, channels, max_pixels)
        except UserError as e:
            errors.append((index, str(e)))
            continue
        ready = resize_pixels(original, reading_size(*original.shape[:2], scale, size))
        if pixels and (ready.shape != pixels[0].shape or len(pixels) == batch_size):
            yield good, errors, np.stack(pixels).transpose(0, 3, 1, 2)
            good, errors, pixels = [], [], []
        good.append((index, original))
        pixels.append(ready)
    yield good, errors, np.stack(pixels).transpose(0, 3, 1, 2) if pixels else None


def predict_onnx(model_file: str, inputs: list[str], opts: PredictOptions, *, scale: float | None = None,
                 size: int | None = None) -> PredictSummary:
    """Predict every image with the ONNX file and write the outputs under ``opts.out``.

    ``scale`` (segmentation) and ``size`` (classification, fixed in the graph) override the export's
    reading settings; ``opts.window`` / ``opts.stride`` the windows recorded at export.
    """
    images = collect_inputs(inputs)
    session = onnx_session(model_file, str(opts.device))
    meta = onnx_metadata(session, model_file)
    segmentation = meta["task"] == "segmentation"
    names, palette = tuple(meta["class_names"]), np.asarray(meta["palette"], dtype=np.uint8)
    if scale is not None and not scale > 0:
        raise UserError(f"--scale: expected a positive factor, got {scale}")
    if not segmentation and size is not None and size != meta["size"]:
        raise UserError(f"--size {size}: {model_file} was exported for {meta['size']} x {meta['size']} images")
    window, stride = opts.window, opts.stride
    if window is None and meta.get("window"):  # the run evaluated in windows: predict alike
        window, stride = list(meta["window"]), (list(meta["stride"]) if meta.get("stride") else None)
    # an image larger than max_side is predicted in windows (the graph's memory is a window's);
    # the averaged scores are still held at the image's size here
    max_side = opts.max_side if opts.max_side is not None else DEFAULT_MAX_SIDE
    if segmentation:
        check_window(window, stride)
    read_scale = scale if scale is not None else float(meta.get("scale") or 1.0)
    probabilities = meta["output"] == "probabilities"
    run: Scores = lambda batch: onnx_scores(session, batch)  # noqa: E731
    log.info("%s: %s ONNX graph, %d classes; %d image(s) -> %s", model_file, meta["task"], len(names), len(images),
             opts.out)
    summary, rows = PredictSummary(), []
    opts.out.mkdir(parents=True, exist_ok=True)
    with Progress("predict", len(images)) as bar:
        batches = read_batches(images, int(meta["input_channels"]), read_scale,
                               None if segmentation else int(meta["size"]), opts.batch_size,
                               opts.max_pixels if opts.max_pixels is not None else DEFAULT_MAX_PIXELS)
        for good, errors, batch in batches:
            for index, error in errors:
                log.warning("skipped %s", error)
                summary.skipped.append((str(images[index].path), error))
            bar.advance(len(good) + len(errors))
            if batch is None:  # nothing readable since the last batch
                continue
            chosen = inference_window(batch.shape[-2:], window, max_side) if segmentation else None
            scores = window_scores(run, batch, chosen, stride if window else None) if segmentation else run(batch)
            for i, (index, original) in enumerate(good):
                if segmentation:
                    classes, confidence = restore_scores(scores[i], original.shape[:2], probabilities)
                    write_segmentation(opts.out, images[index].name, original, classes, confidence, palette, names,
                                       opts.probs)
                else:
                    probs = scores[i] if probabilities else softmax(scores[i].astype(np.float32))
                    rows.append(classification_row(str(images[index].path), probs, names, opts.top_k))
                summary.written += 1
    if not segmentation:
        write_csv(opts.out / "predictions.csv", rows)
    return summary

