"""CIFAR-100 from the official python folder ``cifar-100-python``, read without running code.

The folder holds three pickles: ``train`` (50,000 images) and ``test`` (10,000), each a dict
with ``data`` (channel-planar ``uint8`` rows, as CIFAR-10's), ``fine_labels`` (0..99),
``coarse_labels`` (0..19, the 20 superclasses), ``filenames`` and ``batch_label``; and ``meta``,
with ``fine_label_names`` and ``coarse_label_names``. The semi-supervised benchmarks classify
the 100 fine labels, so the loader returns those, named from ``meta``. Everything is read
through the restricted unpickler of :mod:`dmt.data.cifar_pickle`. Only
:func:`write_cifar100_folder`, a test utility, ever writes files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dmt.data.arrays import ArrayDataset
from dmt.data.cifar_pickle import (
    cifar_images_to_rows,
    cifar_labels,
    cifar_names,
    cifar_rows_to_images,
    read_cifar_pickle,
    write_cifar_pickle,
)
from dmt.data.official import find_official_folder
from dmt.errors import UserError

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_FILES: tuple[str, ...] = ("train", "test", "meta")
# The official fine label names (meta's fine_label_names), in label order; the loader reads
# them from meta, these serve the test writer and tools that name classes without the files.
CIFAR100_CLASSES: list[str] = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
    "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower "
    "sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale "
    "willow_tree wolf woman worm"
).split()
_NUM_CLASSES = 100
_NUM_COARSE = 20
_WHAT = "CIFAR-100 file"


def read_cifar100_names(path: str | os.PathLike) -> list[str]:
    """The 100 fine class names of a CIFAR-100 ``meta`` file, in label order.

    Raises:
        UserError: If the file is unreadable, refused by the safe unpickler, or does not name
            100 distinct fine classes.
    """
    path = Path(path)
    entry = read_cifar_pickle(path, _WHAT, ("fine_label_names",))
    names = cifar_names(entry["fine_label_names"], "fine_label_names", path)
    if len(names) != _NUM_CLASSES:
        raise UserError(f"{path}: 'fine_label_names' names {len(names)} classes, expected {_NUM_CLASSES}")
    return names


def read_cifar100_split(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read the ``train`` or ``test`` file: ``(n, 32, 32, 3)`` ``uint8`` HWC images and their fine labels.

    Raises:
        UserError: If the file is unreadable, refused by the safe unpickler, or malformed
            (row shape, dtype, label count or range), naming it.
    """
    path = Path(path)
    entry = read_cifar_pickle(path, _WHAT, ("data", "fine_labels"))
    images = cifar_rows_to_images(entry["data"], path)
    return images, cifar_labels(entry["fine_labels"], "fine_labels", len(images), _NUM_CLASSES, path)


def load_cifar100(root: str | os.PathLike) -> tuple[ArrayDataset, ArrayDataset]:
    """Load the CIFAR-100 train and test sets (fine labels) from the official python folder.

    Args:
        root: The folder containing ``cifar-100-python``, or that folder itself.

    Returns:
        ``(train, test)``: 50,000 and 10,000 images for the real dataset, HWC ``uint8``, in
        file order (split protocols index into the train order), with ``meta``'s class names.

    Raises:
        UserError: If files are missing, refused by the safe unpickler, or malformed.
    """
    folder = find_official_folder(root, CIFAR100_FOLDER, CIFAR100_FILES, "CIFAR-100", CIFAR100_URL)
    classes = read_cifar100_names(folder / "meta")
    train = ArrayDataset(*read_cifar100_split(folder / "train"), list(classes))
    return train, ArrayDataset(*read_cifar100_split(folder / "test"), list(classes))


def write_cifar100_folder(
    path: str | os.PathLike,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    classes: list[str] | None = None,
) -> Path:
    """Write arrays as an official-format ``cifar-100-python`` folder (test utility).

    ``train`` and ``test`` are protocol-2 pickles of dicts with the real files' ``bytes`` keys
    (``filenames``, ``batch_label``, ``fine_labels``, ``coarse_labels``, ``data``); ``meta``
    holds ``fine_label_names`` and ``coarse_label_names``. The coarse labels are ``fine // 5``
    (not the real superclass mapping, which the loader does not read).

    Args:
        path: The folder to write (conventionally ``cifar-100-python``); created if missing.
        train_images, test_images: ``(n, 32, 32, 3)`` ``uint8``.
        train_labels, test_labels: ``(n,)`` fine labels in 0..99.
        classes: The 100 fine names to write (default :data:`CIFAR100_CLASSES`).

    Returns:
        The folder written.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        rows = cifar_images_to_rows(images)
        fine = [int(v) for v in np.asarray(labels).reshape(-1)]
        if len(fine) != len(rows):
            raise ValueError(f"{name}: {len(rows)} images but {len(fine)} labels")
        write_cifar_pickle(folder / name, {
            b"filenames": [f"image_{i:06d}.png".encode() for i in range(len(rows))],
            b"batch_label": f"{'training' if name == 'train' else 'testing'} batch 1 of 1".encode(),
            b"fine_labels": fine,
            b"coarse_labels": [v // (_NUM_CLASSES // _NUM_COARSE) for v in fine],
            b"data": rows,
        })
    names = list(CIFAR100_CLASSES if classes is None else classes)
    write_cifar_pickle(folder / "meta", {
        b"fine_label_names": [n.encode() for n in names],
        b"coarse_label_names": [f"superclass_{k}".encode() for k in range(_NUM_COARSE)],
    })
    return folder
