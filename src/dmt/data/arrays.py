"""Classification image sets: arrays, pools of several sets, subsets, and the torch ``Dataset`` over any of them.

An *image set* is any object with ``classes`` (names), ``labels`` (``(N,)`` ``int64``;
:data:`UNLABELLED` where an image has no label), ``len()`` and ``image(i)`` (one ``H x W x C``
``uint8`` C-contiguous array), cheap to pickle. :class:`ArrayDataset` is one held in an array
(in memory, or memory-mapped and never read whole); :class:`ConcatSet` pools several sets (STL-10's
labelled train images and its 100,000 unlabelled ones); :class:`IndexedSet` is a view of some
items of a set; the folder reader streams its images from disk. :class:`ImageSetDataset` serves
(a subset of) any image set to a ``DataLoader``: an item reads one image, applies a
``torchvision.transforms.v2`` pipeline and, when pseudo-labelling, replaces the true label by a
per-item target.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

UNLABELLED = -1  # the label of an image that has none (an unlabelled pool's images)


@runtime_checkable
class ImageSet(Protocol):
    """What the classification runner reads: class names, labels (-1: none) and one image at a time."""

    classes: list[str]
    labels: np.ndarray

    def __len__(self) -> int: ...

    def image(self, i: int) -> np.ndarray: ...


@dataclass
class ArrayDataset:
    """Images, labels and class names of a classification set held in one array.

    Attributes:
        images: ``(N, H, W, C)`` ``uint8`` array, channels last; may be a memory-mapped view
            (any strides), which is then read one image at a time and pickled as its file.
        labels: ``(N,)`` ``int64`` array of class indices in ``[0, len(classes))``, or
            :data:`UNLABELLED`.
        classes: Class names; ``classes[k]`` names label ``k``.

    Raises:
        ValueError: If shapes, dtypes or label values are inconsistent. Loaders validate user
            files first and raise ``UserError``; reaching this is a programming error.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def __post_init__(self) -> None:
        if not isinstance(self.images, np.ndarray) or self.images.ndim != 4:
            raise ValueError(f"images must be a 4-d (N, H, W, C) array, got {_describe(self.images)}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {self.images.dtype}")
        check_labels(self.labels, self.classes)
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as a C-contiguous ``H x W x C`` ``uint8`` copy (a memory map reads only it)."""
        return np.array(self.images[i], dtype=np.uint8, order="C", copy=True)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the items at ``indices`` (in that order) as a new dataset with copied arrays
        (from a memory map, only the selected images are read)."""
        idx = _as_index_array(indices, len(self))
        return ArrayDataset(np.ascontiguousarray(self.images[idx]), self.labels[idx], list(self.classes))

    def __reduce__(self) -> tuple:
        # a memory-mapped array pickles as its file and place, not as its 100,000 images
        return (ArrayDataset, (_MappedArray.of(self.images) or self.images, self.labels, list(self.classes)))


def check_labels(labels: np.ndarray, classes: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``labels`` is a 1-d ``int64`` array of ``[0, K)`` or :data:`UNLABELLED`."""
    if not isinstance(labels, np.ndarray) or labels.ndim != 1:
        raise ValueError(f"labels must be a 1-d array, got {_describe(labels)}")
    if labels.dtype != np.int64:
        raise ValueError(f"labels must be int64, got {labels.dtype}")
    if not classes:
        raise ValueError("classes must name at least one class")
    if len(labels) and (labels.min() < UNLABELLED or labels.max() >= len(classes)):
        raise ValueError(f"labels must lie in [0, {len(classes) - 1}] or be {UNLABELLED} (no label), "
                         f"got [{labels.min()}, {labels.max()}]")


class _MappedArray:
    """A memory-mapped view rebuilt from its file (what :meth:`ArrayDataset.__reduce__` pickles)."""

    def __init__(self, filename: str, file_offset: int, shape: tuple, strides: tuple) -> None:
        self.filename, self.file_offset, self.shape, self.strides = filename, file_offset, shape, strides

    @staticmethod
    def of(view: np.ndarray) -> _MappedArray | None:
        """The recipe of ``view`` if it lies in a ``np.memmap`` of a file, else None."""
        base = view
        while isinstance(base, np.ndarray) and not isinstance(base.base, mmap.mmap):
            base = base.base
        if not isinstance(base, np.memmap) or getattr(base, "filename", None) is None:
            return None
        delta = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        return _MappedArray(base.filename, int(base.offset) + delta, view.shape, view.strides)

    def __reduce__(self) -> tuple:
        return (_MappedArray.open, (self.filename, self.file_offset, self.shape, self.strides))

    @staticmethod
    def open(filename: str, file_offset: int, shape: tuple, strides: tuple) -> np.ndarray:
        flat = np.memmap(filename, dtype=np.uint8, mode="r")
        # as_strided keeps the map alive through the result's base
        return np.lib.stride_tricks.as_strided(flat[file_offset:], shape, strides, writeable=False)


class ConcatSet:
    """Several image sets of the same classes as one pool, in order (item ``i`` of part 2 is
    ``len(part 1) + i``); e.g. STL-10's labelled train images followed by its unlabelled ones."""

    def __init__(self, parts: Sequence[ImageSet]) -> None:
        if not parts:
            raise ValueError("a ConcatSet needs at least one part")
        self.parts = list(parts)
        self.classes = list(self.parts[0].classes)
        if any(list(p.classes) != self.classes for p in self.parts):
            raise ValueError("the parts of a ConcatSet must name the same classes")
        self.labels = np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in self.parts])
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def image(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"image {i} of a set of {len(self)}")
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.parts[k].image(int(i - self._starts[k]))


class IndexedSet:
    """The items of ``base`` at ``indices``, in that order, read from ``base`` when asked."""

    def __init__(self, base: ImageSet, indices: np.ndarray) -> None:
        self.base, self.indices = base, _as_index_array(indices, len(base))
        self.classes = list(base.classes)
        self.labels = np.asarray(base.labels, dtype=np.int64)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, i: int) -> np.ndarray:
        return self.base.image(int(self.indices[i]))


class ImageSetDataset(Dataset):
    """A torch ``Dataset`` over (a subset of) any image set; an item reads one image.

    Item ``i`` is ``(image, target, i)``:

    * ``image``: float32 ``C x H x W`` tensor in ``[0, 1]``. The transform receives the stored
      image as a ``uint8`` ``tv_tensors.Image`` (CHW) and must return a tensor; a ``uint8``
      result is scaled to ``[0, 1]``, a floating result is kept as is.
    * ``target``: ``targets[i]`` if ``targets`` was given (a pseudo-label: a class index or a
      probability vector), else the true label as an ``int64`` scalar tensor
      (:data:`UNLABELLED` for an image without one).
    * ``i``: the item's position in this dataset (not in the set), so a trainer can look up
      per-item data such as teacher confidence stored in the same order as ``targets``. The
      set's position is ``dataset.indices[i]``.

    Args:
        data: The image set.
        indices: Positions in ``data`` this dataset serves, in order; ``None`` for all.
        transform: Callable mapping a ``uint8`` CHW image tensor to an image tensor.
        targets: Per-item targets overriding the labels; first dimension ``len(indices)``.
    """

    def __init__(
        self,
        data: ImageSet,
        indices: np.ndarray | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        targets: torch.Tensor | None = None,
    ) -> None:
        self.data = data
        self.indices = (
            np.arange(len(data), dtype=np.int64) if indices is None else _as_index_array(indices, len(data))
        )
        self.transform = transform
        if targets is not None and len(targets) != len(self.indices):
            raise ValueError(f"targets has {len(targets)} rows but the dataset has {len(self.indices)} items")
        self.targets = targets

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        row = int(self.indices[i])
        # HWC -> CHW view; tv_tensors.Image tells v2 transforms this is an image, not a mask.
        image = tv_tensors.Image(torch.from_numpy(self.data.image(row)).permute(2, 0, 1))
        if self.transform is not None:
            image = self.transform(image)
            if not isinstance(image, torch.Tensor):
                raise TypeError(f"transform must return a tensor, got {type(image).__name__}")
        if not image.is_floating_point():
            image = TF.to_dtype(image, torch.float32, scale=True)
        # Plain tensors collate and move to devices without tv_tensor wrapping rules.
        image = image.as_subclass(torch.Tensor)
        if self.targets is not None:
            target = self.targets[i]
        else:
            target = torch.tensor(self.data.labels[row], dtype=torch.int64)
        return image, target, i


def _as_index_array(indices: np.ndarray, size: int) -> np.ndarray:
    """Validate positions into a sequence of ``size`` items and return them as ``int64``."""
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-d integer array, got {_describe(idx)}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"indices must lie in [0, {size - 1}], got [{idx.min()}, {idx.max()}]")
    return idx


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__
