"""The official CIFAR-10 / CIFAR-100 pickles, read without running code, and written for tests.

Both datasets ship as pickles (protocol 2, written by Python 2). A plain ``pickle.load`` runs
whatever a doctored file asks for, so :func:`read_cifar_pickle` unpickles with an allow-list of
the few globals these files need (numpy array reconstruction, and ``_codecs.encode``, which
Python 3 protocol-2 pickles use to rebuild ``bytes``); any other global is refused before it is
imported, so nothing in a doctored file runs. The helpers below then check the content (keys,
row shape, dtype, label range) with one-line messages naming the file. :mod:`dmt.data.cifar`
(CIFAR-10) and :mod:`dmt.data.cifar100` build their loaders from these pieces.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path

import numpy as np

from dmt.atomic import atomic_write
from dmt.errors import UserError

try:  # numpy >= 2 moved the array internals to numpy._core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

IMAGE_SIZE = 32
ROW_LENGTH = 3 * IMAGE_SIZE * IMAGE_SIZE  # one row: 1024 red, 1024 green, 1024 blue values


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
    """Unpickler that resolves only the globals CIFAR files need; every other one is refused."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def read_cifar_pickle(path: str | os.PathLike, what: str, keys: tuple[str, ...]) -> dict[str, object]:
    """Unpickle one official CIFAR file safely and check it is a dict holding ``keys``.

    Args:
        path: The file (``data_batch_1``, ``test_batch``, ``train``, ``meta``, ...).
        what: What the file is, for messages ("CIFAR-10 batch", "CIFAR-100 file").
        keys: Keys the dict must have.

    Returns:
        The unpickled dict with ``str`` keys (Python 2 files give ``str`` keys under latin1;
        Python 3 writers use ``bytes`` keys, decoded here).

    Raises:
        UserError: If the file is missing, is not a pickle, asks for a refused global, is not a
            dict, or lacks one of ``keys``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        # latin1 turns Python 2 byte strings into str and keeps numpy's raw array bytes intact.
        entry = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _RefusedGlobal as exc:
        raise UserError(
            f"refused to load {path}: the pickle asks for '{exc}', which a {what} never "
            "needs (the file may have been tampered with)"
        ) from None
    except Exception as exc:  # any failure to decode is a bad file, never a bug of ours
        raise UserError(f"{path} is not a readable {what}: {type(exc).__name__}: {exc}") from None
    if not isinstance(entry, dict):
        raise UserError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    missing = [key for key in keys if key not in entry]
    if missing:
        raise UserError(f"{path}: missing key(s) {missing}; expected {', '.join(repr(k) for k in keys)}")
    return entry


def cifar_rows_to_images(data: object, path: Path) -> np.ndarray:
    """Check a ``'data'`` entry (``uint8`` ``(n, 3072)``, channel-planar rows) and return HWC images."""
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape[1:] == (ROW_LENGTH,)):
        got = f"shape {data.shape} dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: 'data' must be a uint8 array of shape (n, {ROW_LENGTH}), got {got}")
    # Rows are channel-planar (CHW); datasets store channels last.
    images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images)


def cifar_labels(labels: object, key: str, count: int, num_classes: int, path: Path) -> np.ndarray:
    """Check a label list (``key`` names it in messages) for ``count`` images and return ``int64``."""
    if not isinstance(labels, (list, np.ndarray)) or not all(_is_int(v) for v in labels):
        raise UserError(f"{path}: {key!r} must be a list of integers")
    out = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(out) != count:
        raise UserError(f"{path}: {count} images but {len(out)} labels")
    if len(out) and (out.min() < 0 or out.max() >= num_classes):
        raise UserError(f"{path}: labels must lie in 0..{num_classes - 1}, got {out.min()}..{out.max()}")
    return out


def cifar_names(names: object, key: str, path: Path) -> list[str]:
    """Check a list of class names (``bytes`` or ``str``) and return it as ``str``."""
    if not isinstance(names, list) or not names or not all(isinstance(n, (bytes, str)) for n in names):
        raise UserError(f"{path}: {key!r} must be a non-empty list of names")
    out = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
    if len(set(out)) != len(out):
        raise UserError(f"{path}: {key!r} names a class twice")
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def cifar_images_to_rows(images: np.ndarray) -> np.ndarray:
    """HWC ``uint8`` ``(n, 32, 32, 3)`` images as the files' channel-planar ``(n, 3072)`` rows."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"images must be uint8 (n, 32, 32, 3), got {images.dtype} {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), ROW_LENGTH)


def write_cifar_pickle(path: Path, entry: dict[bytes, object]) -> None:
    """Write ``entry`` as the official files are: a protocol-2 pickle (test and demo utility)."""
    with atomic_write(path) as f:
        pickle.dump(entry, f, protocol=2)
