"""CIFAR-10 from the official python folder ``cifar-10-batches-py``, read without running code.

The batches are pickles; :mod:`dmt.data.cifar_pickle` unpickles them with an allow-list of
globals, so nothing in a doctored file runs, and checks their content (keys, shape, dtype,
label range). Only :func:`write_cifar_folder`, a test and demo utility, ever writes files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dmt.data.arrays import ArrayDataset
from dmt.data.cifar_pickle import (
    ROW_LENGTH,
    cifar_images_to_rows,
    cifar_labels,
    cifar_rows_to_images,
    read_cifar_pickle,
    write_cifar_pickle,
)
from dmt.data.official import find_official_folder

CIFAR10_CLASSES: list[str] = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_FILE = "test_batch"


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one official CIFAR-10 batch file safely.

    Args:
        path: A ``data_batch_k`` or ``test_batch`` file.

    Returns:
        ``(images, labels)``: ``(n, 32, 32, 3)`` ``uint8`` images (HWC) and ``(n,)`` ``int64``
        labels in file order.

    Raises:
        UserError: If the file is missing, is not a pickle, asks for a refused global, or does
            not hold a valid batch.
    """
    path = Path(path)
    entry = read_cifar_pickle(path, "CIFAR-10 batch", ("data", "labels"))
    images = cifar_rows_to_images(entry["data"], path)
    return images, cifar_labels(entry["labels"], "labels", len(images), len(CIFAR10_CLASSES), path)


def find_cifar_folder(root: str | os.PathLike) -> Path:
    """Locate ``cifar-10-batches-py`` given it or the folder holding it, checking every file.

    Args:
        root: ``data.root``: the folder containing ``cifar-10-batches-py``, or that folder.

    Returns:
        Path of the batches folder.

    Raises:
        UserError: If the folder or any of its six batch files is missing.
    """
    return find_official_folder(root, CIFAR10_FOLDER, (*TRAIN_FILES, TEST_FILE), "CIFAR-10", CIFAR10_URL)


def load_cifar10(root: str | os.PathLike) -> tuple[ArrayDataset, ArrayDataset]:
    """Load the CIFAR-10 train and test sets from the official python folder.

    Args:
        root: The folder containing ``cifar-10-batches-py``, or that folder itself.

    Returns:
        ``(train, test)``: train stacks ``data_batch_1`` .. ``data_batch_5`` in that order
        (50,000 images for the real dataset, HWC ``uint8``); test is ``test_batch``. Split
        protocols index into this train order.

    Raises:
        UserError: If files are missing, refused by the safe unpickler, or malformed.
    """
    folder = find_cifar_folder(root)
    batches = [read_cifar_batch(folder / name) for name in TRAIN_FILES]
    train = ArrayDataset(
        np.concatenate([images for images, _ in batches]),
        np.concatenate([labels for _, labels in batches]),
        list(CIFAR10_CLASSES),
    )
    test_images, test_labels = read_cifar_batch(folder / TEST_FILE)
    return train, ArrayDataset(test_images, test_labels, list(CIFAR10_CLASSES))


def write_cifar_folder(
    path: str | os.PathLike,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
) -> Path:
    """Write arrays as an official-format ``cifar-10-batches-py`` folder (test and demo utility).

    Each batch is a protocol-2 pickle of a dict with ``b'batch_label'``, ``b'labels'`` (list of
    int), ``b'data'`` (``uint8`` ``(n, 3072)``, channel-planar rows) and ``b'filenames'``, like
    the real files; ``batches.meta`` holds the label names. The train arrays are cut, in order,
    into five batches ``data_batch_1`` .. ``data_batch_5``, so :func:`load_cifar10` gives them
    back in the same order.

    Args:
        path: The folder to write (conventionally named ``cifar-10-batches-py``); created if
            missing.
        train_images: ``(N, 32, 32, 3)`` ``uint8``, ``N >= 5``.
        train_labels: ``(N,)`` integers in 0..9.
        test_images: ``(M, 32, 32, 3)`` ``uint8``.
        test_labels: ``(M,)`` integers in 0..9.

    Returns:
        The folder written.
    """
    if len(train_images) < len(TRAIN_FILES):
        raise ValueError(f"need at least {len(TRAIN_FILES)} train images, one per batch")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(train_images)), len(TRAIN_FILES))
    for k, (name, rows) in enumerate(zip(TRAIN_FILES, chunks), start=1):
        label = f"training batch {k} of {len(TRAIN_FILES)}"
        _write_batch(folder / name, label, train_images[rows], np.asarray(train_labels)[rows])
    _write_batch(folder / TEST_FILE, "testing batch 1 of 1", test_images, test_labels)
    meta = {
        b"label_names": [name.encode() for name in CIFAR10_CLASSES],
        b"num_cases_per_batch": len(chunks[0]),
        b"num_vis": ROW_LENGTH,
    }
    write_cifar_pickle(folder / "batches.meta", meta)
    return folder


def _write_batch(path: Path, batch_label: str, images: np.ndarray, labels: np.ndarray) -> None:
    rows = cifar_images_to_rows(images)
    labels = np.asarray(labels)
    if labels.shape != (len(rows),):
        raise ValueError(f"labels must have shape ({len(rows)},), got {labels.shape}")
    entry = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": rows,
        b"filenames": [f"image_{i:06d}.png".encode() for i in range(len(rows))],
    }
    write_cifar_pickle(path, entry)
