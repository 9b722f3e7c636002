"""SVHN (Street View House Numbers, cropped digits) from the official ``*_32x32.mat`` files.

The three files of the official download (``train_32x32.mat``: 73,257 images,
``test_32x32.mat``: 26,032, ``extra_32x32.mat``: 531,131 easier ones) are MATLAB v5 files,
read with ``scipy.io.loadmat``: ``X`` is ``(32, 32, 3, N)`` ``uint8`` (row, column, channel,
image) and ``y`` is ``(N, 1)`` with labels 1..10, where 10 stands for the digit 0; it becomes 0
here, as torchvision's ``SVHN`` does, so class ``k`` is the digit ``k``. The semi-supervised
benchmarks (USB, FixMatch) draw labelled and unlabelled images from train + extra
(``data.svhn_extra``); the images are held in memory (604,388 of them take 1.9 GB).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dmt.atomic import atomic_write
from dmt.data.arrays import ArrayDataset
from dmt.errors import UserError

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FILES: dict[str, str] = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
SVHN_CLASSES: list[str] = [str(d) for d in range(10)]
_SIDE = 32
_ZERO = 10  # the files' label for the digit 0


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one official SVHN ``.mat`` file.

    Args:
        path: ``train_32x32.mat``, ``test_32x32.mat`` or ``extra_32x32.mat``.

    Returns:
        ``(images, labels)``: ``(N, 32, 32, 3)`` ``uint8`` HWC images and ``(N,)`` ``int64``
        labels 0..9 (the digit), in file order.

    Raises:
        UserError: One line naming the file and the download if it is missing, unreadable
            (truncated, not a MATLAB v5 file) or does not hold ``X`` and ``y`` as described.
    """
    from scipy.io import loadmat  # a few hundred ms to import; only SVHN needs it

    path = Path(path)
    if not path.is_file():
        raise UserError(f"SVHN file {path} not found; download {path.name} from {SVHN_URL} into data.root")
    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises many types for a damaged file: all are a bad file
        raise UserError(f"{path} is not a readable SVHN .mat file ({type(exc).__name__}: {exc}); "
                        f"download it again from {SVHN_URL}") from None
    x, y = mat.get("X"), mat.get("y")
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4 and x.shape[:3] == (_SIDE, _SIDE, 3)):
        got = f"shape {x.shape} dtype {x.dtype}" if isinstance(x, np.ndarray) else "nothing"
        raise UserError(f"{path}: 'X' must be a uint8 array of shape (32, 32, 3, N), got {got}")
    count = x.shape[3]
    if not (isinstance(y, np.ndarray) and y.size == count and y.ndim <= 2):
        got = f"shape {y.shape}" if isinstance(y, np.ndarray) else "nothing"
        raise UserError(f"{path}: 'y' must hold one label per image ({count}), got {got}")
    labels = y.reshape(-1)
    if labels.size and (not np.array_equal(labels, np.round(labels)) or labels.min() < 1 or labels.max() > _ZERO):
        raise UserError(f"{path}: labels must be integers 1..10 (10 is the digit 0), got "
                        f"{labels.min()}..{labels.max()}")
    labels = labels.astype(np.int64) % _ZERO  # 10 -> 0; 1..9 stay
    # (row, column, channel, image) -> (image, row, column, channel): one copy, C-contiguous
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), labels


def load_svhn(root: str | os.PathLike, extra: bool = False) -> tuple[ArrayDataset, ArrayDataset]:
    """Load SVHN's training set (optionally with the extra images after it) and its test set.

    Args:
        root: ``data.root``: the folder holding the ``*_32x32.mat`` files.
        extra: Append ``extra_32x32.mat``'s 531,131 images to the 73,257 of
            ``train_32x32.mat`` (in that order; split protocols index into it), as USB does.

    Returns:
        ``(train, test)`` with classes ``"0"`` .. ``"9"``.

    Raises:
        UserError: If a file is missing or malformed (see :func:`read_svhn_mat`).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"SVHN not found: no folder {root} (data.root); download "
                        f"{', '.join(SVHN_FILES.values())} from {SVHN_URL} into it")
    parts = ["train", "extra"] if extra else ["train"]
    # every file is checked to exist before the large ones are read
    for name in (*parts, "test"):
        if not (root / SVHN_FILES[name]).is_file():
            raise UserError(f"SVHN file {root / SVHN_FILES[name]} not found; download {SVHN_FILES[name]} "
                            f"from {SVHN_URL} into data.root" + (" (or set data.svhn_extra: false)"
                                                                 if name == "extra" else ""))
    read = [read_svhn_mat(root / SVHN_FILES[name]) for name in parts]
    images = read[0][0] if len(read) == 1 else np.concatenate([r[0] for r in read])
    labels = read[0][1] if len(read) == 1 else np.concatenate([r[1] for r in read])
    del read
    test_images, test_labels = read_svhn_mat(root / SVHN_FILES["test"])
    return (ArrayDataset(images, labels, list(SVHN_CLASSES)),
            ArrayDataset(test_images, test_labels, list(SVHN_CLASSES)))


def write_svhn_mat(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images and digit labels as an official-format SVHN ``.mat`` file (test utility).

    ``X`` is stored ``(32, 32, 3, N)`` ``uint8`` and ``y`` ``(N, 1)`` ``uint8`` with the digit 0
    written as 10, in a MATLAB v5 file, as the official files are.

    Args:
        path: The file to write (e.g. ``root / "train_32x32.mat"``).
        images: ``(N, 32, 32, 3)`` ``uint8`` HWC images.
        labels: ``(N,)`` digits 0..9.

    Returns:
        ``path``.
    """
    from scipy.io import savemat

    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.dtype != np.uint8 or images.shape[1:] != (_SIDE, _SIDE, 3) or len(labels) != len(images):
        raise ValueError(f"need uint8 (N, 32, 32, 3) images and N labels, got {images.shape} {images.dtype} "
                         f"and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError("labels must be digits 0..9")
    y = np.where(labels == 0, _ZERO, labels).astype(np.uint8).reshape(-1, 1)
    with atomic_write(path) as f:
        savemat(f, {"X": np.asarray(images.transpose(1, 2, 3, 0), order="F"), "y": y}, format="5")
    return Path(path)
