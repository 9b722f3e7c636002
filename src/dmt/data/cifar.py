"""CIFAR-10 from the official python folder ``cifar-10-batches-py``, read without running code.

The official batches are pickles (protocol 2, written by Python 2). A plain ``pickle.load`` runs
whatever a doctored file asks for, so :func:`read_cifar_batch` unpickles with an allow-list of
the few globals these files need (numpy array reconstruction, and ``_codecs.encode``, which
Python 3 protocol-2 pickles use to rebuild ``bytes``); any other global is refused before it is
imported, so nothing in a doctored file runs. The content is then checked (keys, shape, dtype,
label range). Only :func:`write_cifar_folder`, a test and demo utility, ever writes files.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path

import numpy as np

from dmt.atomic import atomic_write
from dmt.data.arrays import ArrayDataset
from dmt.errors import UserError

try:  # numpy >= 2 moved the array internals to numpy._core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

CIFAR10_CLASSES: list[str] = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_FILE = "test_batch"

_IMAGE_SIZE = 32
_ROW_LENGTH = 3 * _IMAGE_SIZE * _IMAGE_SIZE  # one row: 1024 red, 1024 green, 1024 blue values


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` limited to what pickles use to rebuild ``bytes``."""
    # The real function accepts any codec (zlib, bz2, ...); pickles only ever need latin1.
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# (module, name) -> the object handed to the unpickler. Both numpy module spellings occur: the
# official files (numpy 1.x era) say numpy.core, files written with numpy >= 2 say numpy._core.
# _frombuffer (bytes -> array, no code) is how numpy pickles arrays at protocol 5, which a
# re-saved batch may use.
_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals CIFAR batches need; every other one is refused."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent ids are not allowed")


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
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read CIFAR-10 batch {path}: {exc.strerror or exc}") from None
    try:
        # latin1 turns Python 2 byte strings into str and keeps numpy's raw array bytes intact.
        entry = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _RefusedGlobal as exc:
        raise UserError(
            f"refused to load {path}: the pickle asks for '{exc}', which a CIFAR-10 batch never "
            "needs (the file may have been tampered with)"
        ) from None
    except Exception as exc:  # any failure to decode is a bad file, never a bug of ours
        raise UserError(f"{path} is not a readable CIFAR-10 batch: {type(exc).__name__}: {exc}") from None
    return _validate_batch(entry, path)


def _validate_batch(entry: object, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check an unpickled batch and convert it to HWC images and int64 labels."""
    if not isinstance(entry, dict):
        raise UserError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    # Python 2 files give str keys under latin1; Python 3 writers often use bytes keys.
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    missing = [key for key in ("data", "labels") if key not in entry]
    if missing:
        raise UserError(f"{path}: missing key(s) {missing}; expected 'data' and 'labels'")
    data, labels = entry["data"], entry["labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape[1:] == (_ROW_LENGTH,)):
        if isinstance(data, np.ndarray):
            got = f"shape {data.shape} dtype {data.dtype}"
        else:
            got = type(data).__name__
        raise UserError(f"{path}: 'data' must be a uint8 array of shape (n, {_ROW_LENGTH}), got {got}")
    if not isinstance(labels, (list, np.ndarray)) or not all(_is_int(v) for v in labels):
        raise UserError(f"{path}: 'labels' must be a list of integers")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise UserError(f"{path}: labels must lie in 0..9, got {labels.min()}..{labels.max()}")
    # Rows are channel-planar (CHW); datasets store channels last.
    images = data.reshape(-1, 3, _IMAGE_SIZE, _IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def find_cifar_folder(root: str | os.PathLike) -> Path:
    """Locate ``cifar-10-batches-py`` given it or the folder holding it, checking every file.

    Args:
        root: ``data.root``: the folder containing ``cifar-10-batches-py``, or that folder.

    Returns:
        Path of the batches folder.

    Raises:
        UserError: If the folder or any of its six batch files is missing.
    """
    root = Path(root).expanduser()
    folder = root / CIFAR10_FOLDER
    if not folder.is_dir():
        if root.is_dir() and (root.name == CIFAR10_FOLDER or (root / TRAIN_FILES[0]).exists()):
            folder = root
        else:
            raise UserError(
                f"CIFAR-10 not found: no folder {folder}; download {CIFAR10_URL} and extract it "
                f"under data.root ({root}) so that {folder} holds data_batch_1..5 and test_batch"
            )
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"CIFAR-10 folder {folder} lacks {', '.join(missing)}; download {CIFAR10_URL} again "
            "and extract it under data.root"
        )
    return folder


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
        b"num_vis": _ROW_LENGTH,
    }
    with atomic_write(folder / "batches.meta") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


def _write_batch(path: Path, batch_label: str, images: np.ndarray, labels: np.ndarray) -> None:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (_IMAGE_SIZE, _IMAGE_SIZE, 3):
        raise ValueError(f"images must be uint8 (n, 32, 32, 3), got {images.dtype} {images.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    entry = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), _ROW_LENGTH),
        b"filenames": [f"image_{i:06d}.png".encode() for i in range(len(images))],
    }
    with atomic_write(path) as f:
        pickle.dump(entry, f, protocol=2)

