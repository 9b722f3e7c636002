"""In-memory image classification data: a validated array bundle and its torch ``Dataset`` view.

Small classification datasets (CIFAR-10, the scikit-learn digits demo) fit in memory as one
``uint8`` array. :class:`ArrayDataset` holds that array with its labels and class names;
:class:`ArrayImageDataset` serves a subset of it to a ``DataLoader``, applying a
``torchvision.transforms.v2`` pipeline and, when pseudo-labelling, replacing the true labels
with per-item targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF


@dataclass
class ArrayDataset:
    """Images, labels and class names of an in-memory classification dataset.

    Attributes:
        images: ``(N, H, W, C)`` ``uint8`` array, channels last as stored on disk.
        labels: ``(N,)`` ``int64`` array of class indices in ``[0, len(classes))``.
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
        if not isinstance(self.labels, np.ndarray) or self.labels.ndim != 1:
            raise ValueError(f"labels must be a 1-d array, got {_describe(self.labels)}")
        if self.labels.dtype != np.int64:
            raise ValueError(f"labels must be int64, got {self.labels.dtype}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if not self.classes:
            raise ValueError("classes must name at least one class")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must lie in [0, {len(self.classes) - 1}], "
                f"got [{self.labels.min()}, {self.labels.max()}]"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Return the items at ``indices`` (in that order) as a new dataset with copied arrays.

        Args:
            indices: 1-d integer array of positions in this dataset.

        Returns:
            An ``ArrayDataset`` with the same classes.
        """
        idx = _as_index_array(indices, len(self))
        return ArrayDataset(self.images[idx], self.labels[idx], list(self.classes))


class ArrayImageDataset(Dataset):
    """A torch ``Dataset`` over (a subset of) an :class:`ArrayDataset`.

    Item ``i`` is ``(image, target, i)``:

    * ``image``: float32 ``C x H x W`` tensor in ``[0, 1]``. The transform receives the stored
      image as a ``uint8`` ``tv_tensors.Image`` (CHW) and must return a tensor; a ``uint8``
      result is scaled to ``[0, 1]``, a floating result is kept as is.
    * ``target``: ``targets[i]`` if ``targets`` was given (a pseudo-label: a class index or a
      probability vector), else the true label as an ``int64`` scalar tensor.
    * ``i``: the item's position in this dataset (not in the underlying array), so a trainer
      can look up per-item data such as teacher confidence stored in the same order as
      ``targets``. The array position is ``dataset.indices[i]``.

    Args:
        data: The images and labels.
        indices: Positions in ``data`` this dataset serves, in order; ``None`` for all.
        transform: Callable mapping a ``uint8`` CHW image tensor to an image tensor.
        targets: Per-item targets overriding the labels; first dimension ``len(indices)``.
    """

    def __init__(
        self,
        data: ArrayDataset,
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
        image = tv_tensors.Image(torch.from_numpy(self.data.images[row]).permute(2, 0, 1))
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
