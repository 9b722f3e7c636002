"""What ``dmt predict`` writes and reports, whichever runtime predicted (PyTorch or ONNX Runtime).

The options of a prediction, the files of one segmented image (mask, overlay, confidence map),
the classification CSV and the summary of what was written and skipped. The model file's path
(:mod:`dmt.predict.predict`) and the exported file's (:mod:`dmt.predict.onnx_predict`) write
through these same functions (:mod:`dmt.predict.pipeline`), so their outputs agree by construction. Every file is written
atomically (:mod:`dmt.atomic`): a killed prediction leaves whole files or none, never a part.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dmt.atomic import atomic_path, atomic_write
from dmt.predict.render import CSV_COLUMNS, confidence_image, overlay_with_legend, palette_mask


@dataclass
class PredictOptions:
    """How to predict (everything but the model file, the inputs and the meaning of the classes)."""

    out: Path
    device: Any = "cpu"  # a torch.device for model files; "cpu" or "cuda" for ONNX Runtime
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


def write_segmentation(out: Path, name: str, image: np.ndarray, classes: np.ndarray, confidence: np.ndarray,
                       palette: np.ndarray, class_names: tuple[str, ...], probs: bool) -> None:
    """One image's ``masks/<name>.png``, ``overlays/<name>.png`` and, with ``probs``, ``probs/<name>.png``.

    Args:
        image: the original ``H x W x 3`` (or ``x 1``) uint8 pixels.
        classes: ``H x W`` uint8 class per pixel; confidence: ``H x W`` top-class probability.
    """
    save_png(palette_mask(classes, palette), out / "masks" / f"{name}.png")
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    save_png(overlay_with_legend(rgb, classes, palette, class_names), out / "overlays" / f"{name}.png")
    if probs:
        save_png(confidence_image(confidence), out / "probs" / f"{name}.png")


def save_png(picture: Any, path: Path) -> None:
    """A PIL image as ``path`` (PNG), atomically; its folder is created."""
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """The classification table, one row per image in input order."""
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
