"""The pseudo-label store: one file per unlabelled image, written once per phase.

A labelling pass stores, for every unlabelled image and at its original size, the teacher's
predicted class (uint8) and that prediction's confidence (float16). The class-balanced
thresholds of :mod:`dmt.method.thresholds` are computed from these exact values, and the
training stage applies them when it reads the labels back.

On disk, in the store's directory::

    <name>.npz       np.savez (uncompressed) with arrays 'classes' and 'confidence'
    complete.json    written last: the pass finished (holds the caller's metadata)

Each file appears under its final name only once fully written (:mod:`dmt.atomic`), so an
interrupted pass resumes by skipping the names already present. Files are read with
``allow_pickle=False``: a tampered file can fail to load but cannot run code.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from dmt.atomic import atomic_write, remove_leftovers, write_json
from dmt.errors import UserError
from dmt.method.thresholds import NUM_FLOAT16_BITS, histogram_keys, histogram_of_keys

_SUFFIX = ".npz"
_COMPLETE = "complete.json"
# Pixels per bincount in histogram_of_store: 16 MiB of int32 keys (about 16 VOC images) per
# (C, 65536) int64 histogram allocated and added (11 MiB for VOC), instead of one per image.
_KEYS_PER_BINCOUNT = 1 << 22


def _encode(name: str) -> str:
    """Image name -> file stem. Reversible, so ``names()`` returns what was written.

    '/' (Cityscapes 'aachen/aachen_000000_000019') becomes '%2F' and '%' itself '%25', so two
    different names can never share a file.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"pseudo-label name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"pseudo-label name {name!r} has an empty, '.' or '..' path component")
    if "\\" in name or any(ord(ch) < 32 for ch in name):
        raise ValueError(f"pseudo-label name {name!r} contains a backslash or control character")
    if name.startswith("."):
        raise ValueError(f"pseudo-label name {name!r} must not start with '.'")
    return name.replace("%", "%25").replace("/", "%2F")


def _decode(stem: str) -> str:
    # One left-to-right pass: decoding '%25' and '%2F' one after the other could misread
    # an encoded '%' followed by '2F'.
    return re.sub(r"%(25|2F)", lambda m: "%" if m.group(1) == "25" else "/", stem)


def _as_numpy(array: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(array, Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


class PseudoLabelStore:
    """Predicted classes and confidences of one labelling pass, one ``.npz`` file per image.

    Args:
        directory: where the files live; created if missing. Temp files left by an interrupted
            write are removed (the run directory's lock guarantees a single writer).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.directory)

    def path(self, name: str) -> Path:
        """The file that holds image ``name``."""
        return self.directory / (_encode(name) + _SUFFIX)

    def write(self, name: str, classes: np.ndarray | Tensor, confidence: np.ndarray | Tensor) -> None:
        """Store one image's labels atomically (an existing entry is replaced).

        Args:
            name: the image's name in its dataset; may contain '/'.
            classes: ``(H, W)`` uint8 predicted classes.
            confidence: ``(H, W)`` float16 confidences, same shape.
        """
        cls, conf = _as_numpy(classes), _as_numpy(confidence)
        if cls.dtype != np.uint8:
            raise ValueError(f"classes of {name!r} must be uint8, got {cls.dtype}")
        if conf.dtype != np.float16:
            raise ValueError(f"confidence of {name!r} must be float16, got {conf.dtype}")
        if cls.ndim != 2 or cls.shape != conf.shape:
            raise ValueError(
                f"classes {cls.shape} and confidence {conf.shape} of {name!r} must be the same 2-D shape"
            )
        # the temporary file is hidden ('.NAME...'): names() never lists a partial file
        with atomic_write(self.path(name)) as f:
            np.savez(f, classes=np.ascontiguousarray(cls), confidence=np.ascontiguousarray(conf))

    def read(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Load one image's labels.

        Returns:
            ``(classes, confidence)``: ``(H, W)`` uint8 and ``(H, W)`` float16 arrays.

        Raises:
            KeyError: if ``name`` was never written.
            UserError: if the file is corrupt, was tampered with, or holds the wrong arrays.
        """
        path = self.path(name)
        if not path.is_file():
            raise KeyError(name)
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array, not our format
                raise ValueError("not an .npz archive")
            with data:
                cls, conf = data["classes"], data["confidence"]
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
            # allow_pickle=False turns object arrays and pickles into ValueError: refused, not run.
            raise UserError(
                f"pseudo-label file {path} cannot be read safely ({e}); delete it and rerun labelling"
            ) from None
        if cls.dtype != np.uint8 or conf.dtype != np.float16 or cls.ndim != 2 or cls.shape != conf.shape:
            raise UserError(
                f"pseudo-label file {path} holds classes {cls.dtype}{cls.shape} and confidence "
                f"{conf.dtype}{conf.shape}; expected uint8 and float16 of one 2-D shape"
            )
        return cls, conf

    def names(self) -> list[str]:
        """Names of the images stored so far, sorted."""
        files = self.directory.glob("*" + _SUFFIX)
        return sorted(_decode(p.name[: -len(_SUFFIX)]) for p in files if not p.name.startswith("."))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.path(name).is_file()

    def __len__(self) -> int:
        return len(self.names())

    def missing(self, names: Iterable[str]) -> list[str]:
        """The given names not stored yet, in their order: what a resumed pass still has to label."""
        return [n for n in names if n not in self]

    def mark_complete(self, meta: dict) -> None:
        """Record that the pass finished; ``meta`` (JSON-serialisable) is saved alongside."""
        write_json(self.directory / _COMPLETE, meta, indent=2, sort_keys=True)

    def is_complete(self) -> bool:
        """Whether :meth:`mark_complete` has run."""
        return (self.directory / _COMPLETE).is_file()

    def complete_meta(self) -> dict | None:
        """The metadata given to :meth:`mark_complete`, or ``None`` if the pass is not complete."""
        path = self.directory / _COMPLETE
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise UserError(f"{path} is not valid JSON ({e}); delete it and rerun labelling") from None


def iter_store(store: PseudoLabelStore, names: Iterable[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(name, classes, confidence)`` one image at a time."""
    for name in names:
        cls, conf = store.read(name)
        yield name, cls, conf


def histogram_of_store(store: PseudoLabelStore, names: Iterable[str], num_classes: int) -> Tensor:
    """Exact per-class confidence histogram over the stored images (one image in memory at a time).

    Args:
        store: the labelling pass to summarise.
        names: which images to include.
        num_classes: ``C``.

    Returns:
        ``(C, 65536)`` int64 counts for :func:`dmt.method.thresholds.class_balanced_thresholds`.

    Raises:
        UserError: if a stored class is outside ``[0, C)`` (labels from a different dataset).
    """
    total = torch.zeros(num_classes, NUM_FLOAT16_BITS, dtype=torch.int64)
    pending: list[Tensor] = []  # keys of several images, counted by one bincount
    size = 0
    for name, cls, conf in iter_store(store, names):
        try:
            keys = histogram_keys(torch.from_numpy(cls), torch.from_numpy(conf), num_classes)
        except ValueError as e:
            raise UserError(f"pseudo-label file {store.path(name)}: {e}") from None
        pending.append(keys)
        size += keys.numel()
        if size >= _KEYS_PER_BINCOUNT:
            total += histogram_of_keys(pending, num_classes)
            pending, size = [], 0
    if pending:
        total += histogram_of_keys(pending, num_classes)
    return total
