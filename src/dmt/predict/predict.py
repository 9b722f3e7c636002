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

import csv
import functools
import logging
from dataclasses import dataclass, field
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
from dmt.predict.inputs import InputImage, collect_inputs, read_rgb
from dmt.predict.meta import PredictMeta, resolve_meta
from dmt.predict.render import CSV_COLUMNS, classification_row, confidence_image, overlay_with_legend, palette_mask
from dmt.tasks.segmentation.inference import inference_window, upsampled_logits, window_bands

log = logging.getLogger("dmt")


@dataclass
class PredictOptions:
    """How to predict (everything but the model file, the inputs and the meaning of the classes)."""

    out: Path
    device: torch.device
    batch_size: int = 8
    amp: bool = True  # autocast on CUDA (bfloat16 where supported); the CPU always runs float32
    probs: bool = False  # segmentation: also write the confidence maps
    top_k: int = 5  # classification: classes listed in the top_k column
    window: list[int] | None = None  # segmentation: sliding windows (h, w); None: whole images
    stride: list[int] | None = None
    num_workers: int = 0  # image-decoding processes
    # segmentation: larger images are predicted in windows of max_side x max_side (None: the run's
    # eval.max_side, else 1024; 0: whole images, however large)
    max_side: int | None = None
    max_pixels: int | None = None  # images of more pixels are skipped (None: the run's data.max_pixels)


@dataclass
class PredictSummary:
    """What was written and what was skipped (``(file, reason)``)."""

    written: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


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
        original = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)
        h, w = original.shape[1:]
        if self.size is not None:  # classification: the training size
            target = [self.size, self.size]
        else:  # segmentation: the dataset's reading scale (Cityscapes 0.5)
            target = [max(1, int(h * self.scale + 0.5)), max(1, int(w * self.scale + 0.5))]
        image = original if target == [h, w] else TF.resize_image(
            original, target, interpolation=InterpolationMode.BILINEAR, antialias=True)
        return {"index": index, "image": TF.to_dtype(image, torch.float32, scale=True), "original": pixels,
                "size": (h, w)}


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


def _write_segmentation(out: Path, name: str, image: np.ndarray, classes: np.ndarray, confidence: np.ndarray,
                        meta: PredictMeta, probs: bool) -> None:
    for sub in ("masks", "overlays", *(("probs",) if probs else ())):
        (out / sub / name).parent.mkdir(parents=True, exist_ok=True)
    palette_mask(classes, meta.palette).save(out / "masks" / f"{name}.png")
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    overlay_with_legend(rgb, classes, meta.palette, meta.class_names).save(out / "overlays" / f"{name}.png")
    if probs:
        confidence_image(confidence).save(out / "probs" / f"{name}.png")


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
                for i, (classes, confidence) in enumerate(segment(model, x, batch, opts, autocast)):
                    _write_segmentation(opts.out, images[batch["index"][i]].name, batch["original"][i], classes,
                                        confidence, meta, opts.probs)
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


def segment(model: torch.nn.Module, x: torch.Tensor, batch: dict[str, Any], opts: PredictOptions,
            autocast: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each image's ``(classes uint8, confidence)`` at its own size: whole, or in windows band by band."""
    window = inference_window(x.shape[-2:], opts.window, opts.max_side)
    if window is None or (window[0] >= x.shape[-2] and window[1] >= x.shape[-1]):  # one window: whole
        with autocast():
            logits = upsampled_logits(model, x)
        return [restore(logits[i : i + 1], batch["shape"][i], batch["size"][i]) for i in range(x.shape[0])]
    bands = window_bands(model, x, window, opts.stride if opts.window else None, autocast)
    return assemble(bands, batch["shape"], batch["size"])


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """The classification table, one row per image in input order."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


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
