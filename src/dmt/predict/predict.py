"""``dmt predict``: a trained model file on your own images.

Segmentation writes, per image, ``<out>/masks/<name>.png`` (a palette PNG whose pixel values
are the class indices), ``<out>/overlays/<name>.png`` (the image blended with the class colours,
with a legend of the classes present) and, with ``probs``, ``<out>/probs/<name>.png`` (the top
class's probability as uint8, 255 = certain). Inference is the evaluation's: images batched
with padding (the dataset mean), whole or in windows (:func:`~dmt.tasks.segmentation.inference.window_logits`),
the model's stored input convention applied by the model itself; every output has the image's
own size.

Classification writes ``<out>/predictions.csv``: file, class, class name, probability, top-k.

An image that cannot be read is reported and skipped; the others are written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from dmt.config.validate import check_window
from dmt.engine.batches import eval_loader
from dmt.engine.loop import amp_settings
from dmt.engine.progress import Progress
from dmt.errors import UserError
from dmt.models.files import load_model
from dmt.predict.inputs import InputImage, collect_inputs, read_rgb, reading_size
from dmt.predict.meta import PredictMeta, resolve_meta
from dmt.predict.outputs import PredictOptions, PredictSummary, write_csv, write_segmentation
from dmt.predict.render import classification_row
from dmt.tasks.segmentation.inference import window_logits

log = logging.getLogger("dmt")


class _Images(Dataset):
    """Reads one input image; an unreadable file becomes an ``error`` entry instead of an exception."""

    def __init__(self, images: list[InputImage], channels: int, scale: float, size: int | None) -> None:
        self.images, self.channels, self.scale, self.size = images, channels, scale, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.images[index]
        try:
            pixels = read_rgb(item.path, self.channels)
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
        if good:
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


def restore(logits: torch.Tensor, shape: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One image's ``1 x C x H' x W'`` logits (padded batch) -> ``(classes uint8, confidence float32)`` at ``size``.

    The padding is cropped away first; a read-time resize is undone by bilinear interpolation of
    the logits (not of the classes), so every pixel of the original image gets a prediction.
    """
    h, w = shape
    logits = logits[..., :h, :w].float()
    if (h, w) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    confidence, classes = logits.softmax(dim=1).max(dim=1)
    return classes[0].to(torch.uint8).cpu().numpy(), confidence[0].cpu().numpy()


@torch.no_grad()
def run_predictions(model: torch.nn.Module, task: str, images: list[InputImage], meta: PredictMeta,
                    opts: PredictOptions) -> PredictSummary:
    """Predict every image and write the outputs under ``opts.out``; unreadable images are skipped."""
    segmentation = task == "segmentation"
    if segmentation:
        check_window(opts.window, opts.stride)
    channels = input_channels(model)
    dataset = _Images(images, channels, meta.scale, None if segmentation else meta.size)
    loader = eval_loader(dataset, opts.batch_size, opts.num_workers, collate_fn=_Collate(meta.mean, channels),
                         pin_memory=opts.device.type == "cuda")
    use_amp, dtype = amp_settings(opts.device, opts.amp and opts.device.type == "cuda")
    summary = PredictSummary()
    rows: list[dict[str, str]] = []
    opts.out.mkdir(parents=True, exist_ok=True)
    with Progress("predict", len(loader)) as bar:
        for batch in loader:
            for index, error in batch["errors"]:
                log.warning("skipped %s", error)
                summary.skipped.append((str(images[index].path), error))
            if batch["index"]:
                x = batch["image"].to(opts.device, non_blocking=True)
                with torch.autocast(opts.device.type, dtype=dtype, enabled=use_amp):
                    logits = window_logits(model, x, opts.window, opts.stride) if segmentation else model(x)
                for i, index in enumerate(batch["index"]):
                    item = images[index]
                    if segmentation:
                        classes, confidence = restore(logits[i : i + 1], batch["shape"][i], batch["size"][i])
                        write_segmentation(opts.out, item.name, batch["original"][i], classes, confidence,
                                           meta.palette, meta.class_names, opts.probs)
                    else:
                        probs = logits[i].float().softmax(0).cpu().numpy()
                        rows.append(classification_row(str(item.path), probs, meta.class_names, opts.top_k))
                    summary.written += 1
            bar.advance()
    if not segmentation:
        write_csv(opts.out / "predictions.csv", rows)
    return summary


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
    log.info("%s: %s model, %d classes; %d image(s) -> %s", model_file, model_meta["task"], len(meta.class_names),
             len(images), opts.out)
    return run_predictions(model, model_meta["task"], images, meta, opts)
