"""Classification images read from files: any size and mode in, ``size x size`` 8-bit RGB out.

:func:`read_rgb` is the one way a classification image file becomes pixels (training,
labelling, evaluation, the ``full`` pre-flight check), and :class:`ImageFileSet` serves a list
of such files as an *image set*: ``classes``, ``labels`` (``-1``: no label), ``len()`` and
``image(i)``. The set holds paths only, so a DataLoader worker's copy costs a list of paths
and memory is bounded by the images of a batch, never by the number of files.

Reading policy (the one ``docs/classification.md`` describes):

* Orientation: the EXIF orientation tag is applied (:func:`PIL.ImageOps.exif_transpose`), so
  a phone photo stored sideways is read upright, as every viewer shows it.
* Colour: every Pillow mode becomes 8-bit RGB. Grey repeats its channel; palette, CMYK,
  YCbCr, LAB and HSV go through Pillow's conversion; transparency (an alpha channel or a
  transparent palette / colour key) is composited over white. 16-bit grey (``I;16*``) is
  scaled to 8 bits (value / 257, rounded: 65535 is 255, never clipped as Pillow's own
  conversion does); 32-bit integers (``I``) are read as 16-bit when they lie in 0..65535
  (16-bit PGM / TIFF) and otherwise stretched from their minimum to their maximum; floats
  (``F``) in [0, 1] are scaled by 255 and otherwise stretched likewise. Pillow reads a 16-bit
  RGB PNG as 8-bit RGB itself. Embedded ICC profiles are not applied (as torchvision's loader).
* Size: the largest centred square is cut from the image and resized to ``size x size``
  (bicubic, antialiased), as the usual evaluation pipelines (timm, torchvision: shorter side
  to the size, then centre crop) do, without distorting the aspect ratio. A JPEG is decoded
  at the smallest DCT scale (1/2, 1/4, 1/8) that still covers ``size`` (:meth:`Image.draft`),
  so a 24-megapixel photo read at 96 x 96 costs about 1/64 of its full decode. Other formats
  decode whole, within ``max_pixels``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from PIL.JpegImagePlugin import JpegImageFile

from dmt.data.images import DEFAULT_MAX_PIXELS, open_image
from dmt.errors import UserError

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "PA")
_WHITE = (255, 255, 255, 255)  # the background transparent pixels are composited over


def to_rgb(img: Image.Image) -> Image.Image:
    """``img`` (decoded, any mode) as an 8-bit RGB image, by the policy in the module docstring.

    Raises:
        ValueError: a mode Pillow cannot convert to RGB.
    """
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        return Image.fromarray(grey_to_uint8(np.asarray(img), img.mode)).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return img.convert("RGB")


def grey_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """The pixels of a 16-bit, 32-bit integer or float grey image scaled to ``uint8`` (see module docstring)."""
    if mode.startswith("I;16"):
        return _scale_16bit(values)
    v = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if mode.startswith("I") and lo >= 0 and hi <= 65535:
        return _scale_16bit(v.astype(np.uint32))
    if mode == "F" and lo >= 0 and hi <= 1:
        return np.rint(v * 255).astype(np.uint8)
    if hi <= lo:  # a flat image: no range to stretch
        return np.zeros(v.shape, np.uint8)
    return np.rint((v - lo) * (255 / (hi - lo))).astype(np.uint8)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded (value / 257: 257 * k maps to k exactly)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def centre_square(img: Image.Image, size: int) -> Image.Image:
    """The largest centred square of ``img`` resized to ``size x size`` (bicubic, antialiased)."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    side = min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    # reducing_gap: Pillow first shrinks by an integer factor, then resamples the last <= 3x (fast on large files)
    return img.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)


def square_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    """``H x W x C`` uint8 pixels (C = 1 or 3) as :func:`centre_square` reads them: a writable,
    C-contiguous ``size x size x C`` array (what :func:`read_rgb` does for a file)."""
    grey = pixels.shape[2] == 1
    square = centre_square(Image.fromarray(pixels[..., 0] if grey else pixels), size)
    return np.ascontiguousarray(np.array(square, dtype=np.uint8).reshape(size, size, pixels.shape[2]))


def read_rgb(path: str | os.PathLike, size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image file at ``path`` as a C-contiguous ``size x size x 3`` ``uint8`` RGB array.

    Args:
        path: an image file in any format and mode Pillow reads.
        size: the side of the output (0: the image's own size, upright, uncropped).
        max_pixels: files of more pixels are refused from their header (``None`` or 0: no limit).

    Raises:
        UserError: one line naming the file: missing, unreadable, truncated, over ``max_pixels``
            or in a mode that has no RGB conversion.
    """
    path = Path(path)
    with open_image(path, "image", max_pixels, decode=False) as img:
        if size > 0 and isinstance(img, JpegImageFile):  # JPEG, and MPO (cameras' multi-picture JPEG)
            img.draft(None, (size, size))  # DCT-domain downscale: decoded at >= size on each side
        try:
            img.load()
        except (OSError, ValueError, SyntaxError, struct.error) as e:  # truncated or corrupt data
            raise UserError(f"cannot read image {path}: {e}") from None
        upright = _exif_upright(img)
        try:
            rgb = to_rgb(upright)
        except ValueError as e:
            raise UserError(f"cannot read image {path}: mode {upright.mode} has no RGB conversion ({e})") from None
        if size > 0:
            rgb = centre_square(rgb, size)
        # inside the block: closing the file also frees its pixels, which rgb may still be. A copy
        # (np.array): np.asarray gives a read-only view of Pillow's buffer, on which torch.from_numpy warns
        return np.array(rgb, dtype=np.uint8, order="C")


def _exif_upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says; a damaged EXIF block leaves it as stored
    (the pixels are fine, and viewers show such files unrotated too)."""
    try:
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of an image already upright
        return img
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        return img


class ResizedSet:
    """Another image set read at ``size x size``: each image's largest centred square, resized as
    :func:`read_rgb` resizes a file (e.g. CIFAR-100's 32-pixel images for a ViT trained at 224)."""

    def __init__(self, base, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.base, self.size = base, int(size)
        self.classes = list(base.classes)
        self.labels = np.asarray(base.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.base)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` of the base set, ``size x size x C`` ``uint8``."""
        return square_pixels(self.base.image(i), self.size)


class ImageFileSet:
    """Image files with their labels: the image-set protocol over paths, read on demand.

    Attributes:
        paths: one file per image.
        labels: ``(N,)`` ``int64`` class indices; ``-1``: no label (an unlabelled image).
        classes: class names; ``classes[k]`` names label ``k``.
        size: side of the images :meth:`image` returns (0: each file's own size).
        max_pixels: files of more pixels are refused from their header.

    Raises:
        ValueError: inconsistent arguments (a programming error: loaders check user files first).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], labels: Sequence[int] | np.ndarray,
                 classes: Sequence[str], size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.paths = [p if isinstance(p, Path) else Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.classes = list(classes)
        self.size = int(size)
        self.max_pixels = max_pixels
        if len(self.labels) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        if not self.classes:
            raise ValueError("classes must name at least one class")
        if len(self.labels) and (self.labels.min() < -1 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [-1, {len(self.classes) - 1}], "
                             f"got [{self.labels.min()}, {self.labels.max()}]")

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageFileSet({len(self)} images, {len(self.classes)} classes, size {self.size})"

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` read from its file: ``size x size x 3`` ``uint8`` RGB (see :func:`read_rgb`)."""
        return read_rgb(self.paths[i], self.size, self.max_pixels)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageFileSet:
        """The images at ``indices`` (in that order), same classes, size and limit."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return ImageFileSet([self.paths[i] for i in idx], self.labels[idx], self.classes, self.size, self.max_pixels)
