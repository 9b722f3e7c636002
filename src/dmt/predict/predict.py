"""``dmt predict``: a trained model file on your own images.

Segmentation writes, per image, ``<out>/masks/<name>.png`` (a palette PNG whose pixel values
are the class indices), ``<out>/overlays/<name>.png`` (the image blended with the class colours,
with a legend of the classes present) and, with ``probs``, ``<out>/probs/<name>.png`` (the top
class's probability as uint8, 255 = certain). Inference is the evaluation's: images batched
with padding (the dataset mean), whole or in windows (:func:`~dmt.tasks.segmentation.inference.window_logits`),
the model's stored input convention applied by the model itself; every output has the image's
own size. An image larger than ``max_side`` (default: the run's ``eval.max_side``, else 1024) is
predicted in windows, and its maps are assembled band by band (:mod:`dmt.predict.assemble`):
memory is bounded by a window and the image's own bytes, not by its size times the classes.

Classification writes ``<out>/predictions.csv``: file, class, class name, probability, top-k.

An image that cannot be read, or one over the pixel limit (``--max-pixels``), is reported
and skipped; the others are written.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from dmt.config.validate import check_window
from dmt.engine.batches import eval_loader
from dmt.engine.loop import amp_settings
from dmt.engine.progress import Progress
from dmt.errors import UserError
from dmt.models.files import load_model
from dmt.predict.assemble import assemble, restore
from dmt.predict.inputs import InputImage, collect_inputs, read_rgb, reading_size
from dmt.predict.meta import PredictMeta, resolve_meta
from dmt.predict.outputs import PredictOptions, PredictSummary, write_csv, write_segmentation
from dmt.predict.render import classification_row
from dmt.tasks.segmentation.inference import inference_window, upsampled_logits, window_bands

log = logging.getLogger("dmt")


class _Images(Dataset):
    """Reads one input image; an unreadable file becomes an ``error`` entry instead of an exception."""

    def __init__(self, images: list[InputImage], channels: int, scale: float, size: int | None,
                 max_pixels: int | None) -> None:
        self.images, self.channels, self.scale, self.size = images, channels, scale, size
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.images[index]
        try:
            pixels = read_rgb(item.path, self.channels, self.max_pixels)
        except UserError as e:
            return {"index": index, "error": str(e)}
        return {"index": index, "image": model_input(pixels, self.scale, self.size), "original": pixels,
                "size": pixels.shape[:2]}


def model_input(pixels: np.ndarray, scale: float = 1.0, size: int | None = None) -> torch.Tensor:
    """``H x W x C`` uint8 pixels -> the ``C x h x w`` float [0, 1] image the model reads (see :func:`reading_size`)."""
    original = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)
    target = list(reading_size(*original.shape[1:], scale, size))
    image = original if target == list(original.shape[1:]) else TF.resize_image(
        original, target, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.to_dtype(image, torch.float32, scale=True)


class _Collate:
    """Pads a batch's images (bottom/right, with the dataset mean) and keeps the failures apart."""

    def __init__(self, mean: tuple[float, ...], channels: int) -> None:
        fill = list(mean)[:channels] if channels == len(mean) else [sum(mean) / len(mean)] * channels
        self.fill = torch.tensor(fill, dtype=torch.float32).view(channels, 1, 1)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        good = [s for s in samples if "error" not in s]
        out: dict[str, Any] = {"errors": [(s["index"], s["error"]) for s in samples if "error" in s],
                               "index": [s["index"] for s in good], "original": [s["original"] for s in good],
                               "size": [s["size"] for s in good], "shape": [tuple(s["image"].shape[1:]) for s in good]}
        if len(good) == 1:  # nothing to pad: no copy (a large image is hundreds of MB of floats)
            out["image"] = good[0]["image"].unsqueeze(0)
        elif good:
            h = max(s[0] for s in out["shape"])
            w = max(s[1] for s in out["shape"])
            images = self.fill.expand(len(good), -1, h, w).clone()
            for i, s in enumerate(good):
                images[i, :, : s["image"].shape[1], : s["image"].shape[2]] = s["image"]
            out["image"] = images
        return out


def input_channels(model: torch.nn.Module) -> int:
    """Channels the model reads (its input convention's), 3 when it has none."""
    normalize = getattr(model, "normalize", None)
    mean = getattr(normalize, "mean", None)
    return int(mean.shape[1]) if isinstance(mean, torch.Tensor) else 3


@torch.no_grad()
def run_predictions(model: torch.nn.Module, task: str, images: list[InputImage], meta: PredictMeta,
                    opts: PredictOptions) -> PredictSummary:
    """Predict every image and write the outputs under ``opts.out``; unreadable images are skipped."""
    segmentation = task == "segmentation"
    if segmentation:
        check_window(opts.window, opts.stride)
    channels = input_channels(model)
    dataset = _Images(images, channels, meta.scale, None if segmentation else meta.size, opts.max_pixels)
    loader = eval_loader(dataset, opts.batch_size, opts.num_workers, collate_fn=_Collate(meta.mean, channels),
                         pin_memory=opts.device.type == "cuda")
    use_amp, dtype = amp_settings(opts.device, opts.amp and opts.device.type == "cuda")
    autocast = functools.partial(torch.autocast, opts.device.type, dtype=dtype, enabled=use_amp)
    summary = PredictSummary()
    rows: list[dict[str, str]] = []
    opts.out.mkdir(parents=True, exist_ok=True)
    with Progress("predict", len(loader)) as bar:
        for batch in loader:
            for index, error in batch["errors"]:
                log.warning("skipped %s", error)
                summary.skipped.append((str(images[index].path), error))
            if batch["index"] and segmentation:
                x = batch["image"].to(opts.device, non_blocking=True)
                maps = segment(model, x, batch["shape"], batch["size"], opts.window, opts.stride, opts.max_side,
                               autocast)
                for i, (classes, confidence) in enumerate(maps):
                    write_segmentation(opts.out, images[batch["index"][i]].name, batch["original"][i], classes,
                                       confidence, meta.palette, meta.class_names, opts.probs)
                    summary.written += 1
            elif batch["index"]:
                x = batch["image"].to(opts.device, non_blocking=True)
                with autocast():
                    logits = model(x)
                for i, index in enumerate(batch["index"]):
                    probs = logits[i].float().softmax(0).cpu().numpy()
                    rows.append(classification_row(str(images[index].path), probs, meta.class_names, opts.top_k))
                    summary.written += 1
            bar.advance()
    if not segmentation:
        write_csv(opts.out / "predictions.csv", rows)
    return summary


def segment(model: torch.nn.Module, x: torch.Tensor, shapes: list[tuple[int, int]], sizes: list[tuple[int, int]],
            window: list[int] | None, stride: list[int] | None, max_side: int | None, autocast: Any,
            float_confidence: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each image's ``(classes uint8, confidence)`` at its own size: whole, or in windows band by band.

    Args:
        x: the padded batch; shapes: each image's size in it; sizes: each image's own size.
        window, stride: sliding windows (the run's ``eval.window``), or None; an image larger than
            ``max_side`` is windowed anyway (:func:`~dmt.tasks.segmentation.inference.inference_window`).
        float_confidence: see :func:`~dmt.predict.assemble.assemble` (whole images give float32).
    """
    chosen = inference_window(x.shape[-2:], window, max_side)
    if chosen is None or (chosen[0] >= x.shape[-2] and chosen[1] >= x.shape[-1]):  # one window: whole
        with autocast():
            logits = upsampled_logits(model, x)
        return [restore(logits[i : i + 1], shapes[i], sizes[i]) for i in range(x.shape[0])]
    bands = window_bands(model, x, chosen, stride if window else None, autocast)
    return assemble(bands, shapes, sizes, float_confidence)


def predict(model_file: str, inputs: list[str], opts: PredictOptions, *, data: str | None = None,
            classes_file: str | None = None, palette_file: str | None = None, scale: float | None = None,
            size: int | None = None) -> PredictSummary:
    """Load the model file, resolve what its classes mean, find the images and predict them all."""
    images = collect_inputs(inputs)
    model, model_meta = load_model(model_file, opts.device)
    meta = resolve_meta(Path(model_file), model_meta, data=data, classes_file=classes_file,
                        palette_file=palette_file, scale=scale, size=size)
    if opts.window is None and meta.window is not None:  # the run evaluated in windows: predict alike
        opts.window, opts.stride = list(meta.window), (list(meta.stride) if meta.stride else None)
    if opts.max_side is None:
        opts.max_side = meta.max_side
    if opts.max_pixels is None:
        opts.max_pixels = meta.max_pixels
    log.info("%s: %s model, %d classes; %d image(s) -> %s", model_file, model_meta["task"], len(meta.class_names),
             len(images), opts.out)
    return run_predictions(model, model_meta["task"], images, meta, opts)
