"""Images as the scorers read them, and how they are batched: the same for every runtime and for the API.

An image is read (:func:`~dmt.predict.inputs.read_rgb`), resized to its reading size
(:func:`~dmt.predict.inputs.reading_size`; torchvision's antialiased bilinear on uint8, as
evaluation reads) and kept as uint8 ``C x h x w``: each scorer converts a batch, or a window of
it, itself. Consecutive images of one reading size share a batch (at most ``batch_size``); an
image of another size starts a new one. Nothing is padded, so an image's prediction does not
depend on which images happen to share its batch: ``dmt predict``, ``dmt predict MODEL.onnx``
and ``Model.predict`` give the same masks whatever their batch sizes (up to the arithmetic of
one batch size against another).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from dmt.data.image_files import square_pixels
from dmt.data.image_files import read_rgb as read_class_file
from dmt.errors import UserError
from dmt.predict.inputs import InputImage, read_rgb, reading_size


def read_input(pixels: np.ndarray, scale: float = 1.0, size: int | None = None) -> torch.Tensor:
    """``H x W x C`` uint8 pixels -> the uint8 ``C x h x w`` image at its reading size (see :func:`reading_size`).

    Classification (``size`` given) reads as training read: the largest centred square, resized to
    ``size x size`` (:func:`dmt.data.image_files.square_pixels`), so a photo is not squashed.
    """
    if size is not None and pixels.shape[:2] != (size, size):
        pixels = square_pixels(pixels, size)
    original = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)
    target = list(reading_size(*original.shape[1:], scale, size))
    if target == list(original.shape[1:]):
        return original
    return TF.resize_image(original, target, interpolation=InterpolationMode.BILINEAR, antialias=True)


def read_class_image(path: Path, size: int, channels: int, max_pixels: int | None) -> np.ndarray:
    """A classification input file read as the data layer reads training images
    (:func:`dmt.data.image_files.read_rgb`): ``size x size x channels`` uint8 (1: grey)."""
    rgb = read_class_file(path, size, max_pixels)
    if channels == 1:
        return np.asarray(Image.fromarray(rgb).convert("L")).reshape(size, size, 1)
    return rgb


def sample(index: int, pixels: np.ndarray, scale: float, size: int | None) -> dict[str, Any]:
    """One image as :func:`batches` takes it: its index, reading-size image and original pixels."""
    return {"index": index, "image": read_input(pixels, scale, size), "original": pixels}


class ImageFiles(Dataset):
    """Reads one input image as a :func:`sample`; an unreadable file becomes an ``error`` entry."""

    def __init__(self, images: list[InputImage], channels: int, scale: float, size: int | None,
                 max_pixels: int | None) -> None:
        self.images, self.channels, self.scale, self.size = images, channels, scale, size
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            if self.size is not None:  # classification: upright, transparency over white, as training reads
                pixels = read_class_image(self.images[index].path, self.size, self.channels, self.max_pixels)
            else:
                pixels = read_rgb(self.images[index].path, self.channels, self.max_pixels)
        except UserError as e:
            return {"index": index, "error": str(e)}
        return sample(index, pixels, self.scale, self.size)


def one(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The collate of a loader of single samples (module level: worker processes pickle it)."""
    return samples[0]


@dataclass
class Batch:
    """Consecutive readable images of one reading size, and the failures met since the last batch.

    Attributes:
        index: each image's position in the inputs; originals: their ``H x W x C`` uint8 pixels.
        images: uint8 ``N x C x h x w`` (None when only failures are reported).
        errors: ``(index, reason)`` of the unreadable images.
    """

    index: list[int] = field(default_factory=list)
    originals: list[np.ndarray] = field(default_factory=list)
    images: torch.Tensor | None = None
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """Each image's own size (its outputs' size)."""
        return [tuple(o.shape[:2]) for o in self.originals]  # type: ignore[misc]


def batches(samples: Iterable[dict[str, Any]], batch_size: int) -> Iterator[Batch]:
    """Group :func:`sample` dicts (or ``error`` entries) into :class:`Batch` es, in input order."""
    batch, pending = Batch(), []
    for s in samples:
        if "error" in s:
            batch.errors.append((s["index"], s["error"]))
            continue
        if pending and (s["image"].shape != pending[0].shape or len(pending) == batch_size):
            batch.images = stack(pending)
            yield batch
            batch, pending = Batch(), []
        batch.index.append(s["index"])
        batch.originals.append(s["original"])
        pending.append(s["image"])
    if pending:
        batch.images = stack(pending)
    if pending or batch.errors:
        yield batch


def stack(images: list[torch.Tensor]) -> torch.Tensor:
    """``N x C x h x w``; one image is not copied (a large one is hundreds of MB)."""
    return images[0].unsqueeze(0) if len(images) == 1 else torch.stack(images)
