"""STL-10 from the official binary folder ``stl10_binary``; its 100,000 unlabelled images by memory map.

The folder holds raw ``uint8`` files: ``train_X.bin`` (5,000 labelled images), ``test_X.bin``
(8,000) and ``unlabeled_X.bin`` (100,000, 2.6 GiB), each image 3 x 96 x 96 = 27,648 bytes: the
red, green and blue planes one after the other, each plane stored column by column (MATLAB's
column-major order: the first 96 bytes are the first *column*, top to bottom). ``train_y.bin``
and ``test_y.bin`` hold one byte per image, the class 1..10 (0..9 here), named by the lines of
``class_names.txt``. The labelled sets are read into memory; the unlabelled file is opened as a
memory map and never read whole, so a labelling pass over it costs the memory of its batches.
Only :func:`write_stl10_folder`, a test utility, ever writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmt.atomic import atomic_write, write_text
from dmt.data.arrays import ArrayDataset
from dmt.data.official import check_whole_records, file_size, find_official_folder
from dmt.errors import UserError

STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_FOLDER = "stl10_binary"
STL10_FILES: tuple[str, ...] = (
    "train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin", "class_names.txt",
)
STL10_SIDE = 96
IMAGE_BYTES = 3 * STL10_SIDE * STL10_SIDE  # 27,648
STL10_UNLABELLED = 100_000  # images in the official unlabeled_X.bin
_NUM_CLASSES = 10


@dataclass
class STL10Data:
    """The three sets of STL-10.

    Attributes:
        train: The 5,000 labelled training images (HWC ``uint8``, in memory).
        test: The 8,000 test images.
        unlabelled: ``(100000, 96, 96, 3)`` ``uint8``: a read-only view of a ``np.memmap`` of
            ``unlabeled_X.bin``; indexing it reads only the images asked for.
    """

    train: ArrayDataset
    test: ArrayDataset
    unlabelled: np.ndarray


def stl10_images_view(raw: np.ndarray) -> np.ndarray:
    """``(N, 96, 96, 3)`` HWC view of raw file bytes (no copy): planes are column-major."""
    # file order per image: channel, column, row (the row index varies fastest)
    return raw.reshape(-1, 3, STL10_SIDE, STL10_SIDE).transpose(0, 3, 2, 1)


def open_stl10_images(path: Path, count: int | None = None, official: int | None = None) -> np.ndarray:
    """Memory-map an STL-10 ``*_X.bin`` file as ``(N, 96, 96, 3)`` without reading it.

    Args:
        path: The file.
        count: Images it must hold (``None``: any whole number of images).
        official: The official file's image count, for the message when ``count`` is ``None``.

    Raises:
        UserError: If the file is missing or its size is not ``count`` (or a whole number of)
            27,648-byte images, e.g. a truncated download.
    """
    size = file_size(path, "STL-10", STL10_URL)
    n = check_whole_records(path, size, IMAGE_BYTES, count, "STL-10", STL10_URL, official)
    return stl10_images_view(np.memmap(path, dtype=np.uint8, mode="r", shape=(n * IMAGE_BYTES,)))


def read_stl10_labels(path: Path) -> np.ndarray:
    """One byte per image, 1..10 in the file; returned as ``int64`` 0..9."""
    size = file_size(path, "STL-10", STL10_URL)
    labels = np.fromfile(path, dtype=np.uint8, count=size).astype(np.int64)
    if labels.size == 0 or labels.min() < 1 or labels.max() > _NUM_CLASSES:
        got = f"{labels.min()}..{labels.max()}" if labels.size else "an empty file"
        raise UserError(f"STL-10: {path} must hold one label 1..10 per image, got {got}; download {STL10_URL} again")
    return labels - 1


def read_stl10_classes(path: Path) -> list[str]:
    """The class names of ``class_names.txt``, one per line, in label order."""
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"STL-10: cannot read {path}: {exc}") from None
    if len(names) != _NUM_CLASSES or len(set(names)) != _NUM_CLASSES:
        raise UserError(f"STL-10: {path} must name {_NUM_CLASSES} different classes, one per line, got {len(names)}")
    return names


def _labelled(folder: Path, split: str, classes: list[str]) -> ArrayDataset:
    labels = read_stl10_labels(folder / f"{split}_y.bin")
    images = open_stl10_images(folder / f"{split}_X.bin", count=len(labels))
    # 138 MB (train) and 221 MB (test): copied into memory, contiguous HWC
    return ArrayDataset(np.ascontiguousarray(images), labels, list(classes))


def load_stl10(root: str | os.PathLike) -> STL10Data:
    """Load STL-10's labelled train and test sets and map its unlabelled images.

    Args:
        root: The folder containing ``stl10_binary``, or that folder itself.

    Returns:
        :class:`STL10Data` (the unlabelled images memory-mapped, not read).

    Raises:
        UserError: If a file is missing, has the wrong size (``expected N * 27,648 bytes``) or
            holds labels outside 1..10, naming the file and the download.
    """
    folder = find_official_folder(root, STL10_FOLDER, STL10_FILES, "STL-10", STL10_URL)
    classes = read_stl10_classes(folder / "class_names.txt")
    unlabelled = open_stl10_images(folder / "unlabeled_X.bin", official=STL10_UNLABELLED)
    return STL10Data(_labelled(folder, "train", classes), _labelled(folder, "test", classes), unlabelled)


def write_stl10_folder(
    path: str | os.PathLike,
    train: ArrayDataset,
    test: ArrayDataset,
    unlabelled: np.ndarray,
) -> Path:
    """Write an official-format ``stl10_binary`` folder (test utility).

    Args:
        path: The folder to write (conventionally ``stl10_binary``); created if missing.
        train, test: ``(N, 96, 96, 3)`` ``uint8`` images with labels 0..9 (written as 1..10) and
            10 class names (``class_names.txt``, from ``train.classes``).
        unlabelled: ``(M, 96, 96, 3)`` ``uint8``.

    Returns:
        The folder written.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for split, data in (("train", train), ("test", test)):
        _write_images(folder / f"{split}_X.bin", data.images)
        with atomic_write(folder / f"{split}_y.bin") as f:
            f.write((data.labels + 1).astype(np.uint8).tobytes())
    _write_images(folder / "unlabeled_X.bin", unlabelled)
    write_text(folder / "class_names.txt", "".join(f"{name}\n" for name in train.classes))
    return folder


def _write_images(path: Path, images: np.ndarray) -> None:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (STL10_SIDE, STL10_SIDE, 3):
        raise ValueError(f"images must be uint8 (n, 96, 96, 3), got {images.dtype} {images.shape}")
    with atomic_write(path) as f:
        # HWC -> channel, column, row: the inverse of stl10_images_view
        f.write(np.ascontiguousarray(images.transpose(0, 3, 2, 1)).tobytes())
