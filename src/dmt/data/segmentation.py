"""Segmentation data, independent of the on-disk layout.

A :class:`SegSource` describes one dataset: its classes, palette, how raw mask values become
train ids, the resize applied on reading, and its named splits. Each layout module (``voc``,
``cityscapes``, ``folder``, ``digit_scenes``) only knows two rules: how a split lists item
names, and how an item name becomes files (:class:`SegItem`). Everything after that, reading,
checking, resizing and transforming, is shared and lives here, so that every dataset yields
exactly the same sample dictionaries.

Datasets are read-only: nothing in this module writes into a dataset folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from dmt.data.images import DEFAULT_MAX_PIXELS, open_image
from dmt.data.transforms import IMAGENET_MEAN, ConfidenceMap, resize_mask_exact
from dmt.errors import UserError

IGNORE_INDEX = 255  # mask value that losses and metrics skip (VOC borders, unlabelled pixels)

# The per-item pseudo target: (class map uint8 HxW with 255 = not kept, confidence float16 HxW).
TargetFn = Callable[[str], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)  # identity equality: fields may be numpy arrays
class SegItem:
    """One image and its (optional) mask.

    ``image`` and ``mask`` are file paths for datasets on disk, or in-memory arrays (HxWx3 uint8
    image, HxW uint8 mask) for generated data such as the digit scenes. ``mask`` is ``None`` for
    unlabelled images.
    """

    name: str
    image: Path | np.ndarray
    mask: Path | np.ndarray | None = None


@dataclass(frozen=True, eq=False)  # identity equality: fields hold numpy arrays
class SegSource:
    """A segmentation dataset: its classes, reading rules and named splits.

    Attributes:
        name: Short dataset name for messages (``"voc"``, ``"cityscapes"``, ...).
        class_names: One name per train id, in train-id order.
        split_names: The built-in splits, e.g. ``("train_aug", "train", "val")``.
        list_split: Returns the item names of a built-in split, in file order.
        make_item: Turns an item name into a :class:`SegItem`; raises :class:`UserError`
            naming the missing file.
        root: The dataset folder, against which relative list paths are resolved.
        palette: ``num_classes x 3`` uint8 colours for visualisation, or ``None``.
        mean: Mean RGB colour in [0, 1]; transforms pad images with it.
        label_map: 256-entry uint8 lookup table from raw mask values to train ids (Cityscapes
            labelIds), or ``None`` when mask values already are train ids.
        scale: Resize factor applied to images (bilinear, antialiased) and masks (nearest)
            right after reading; Cityscapes uses 0.5.
        ignore_index: Mask value for "no label".
        max_pixels: Images (and masks) of more pixels are refused from their header, before
            decoding (``data.max_pixels``; ``None``: no limit).
    """

    name: str
    class_names: tuple[str, ...]
    split_names: tuple[str, ...]
    list_split: Callable[[str], list[str]]
    make_item: Callable[[str], SegItem]
    root: Path | None = None
    palette: np.ndarray | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    label_map: np.ndarray | None = None
    scale: float = 1.0
    ignore_index: int = IGNORE_INDEX
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.label_map is not None and self.label_map.shape != (256,):
            raise ValueError(f"label_map must have 256 entries, got shape {self.label_map.shape}")
        if self.palette is not None and self.palette.shape != (len(self.class_names), 3):
            raise ValueError(f"palette must be {len(self.class_names)}x3, got {self.palette.shape}")
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def items(self, split: str) -> list[SegItem]:
        """Items of a built-in split, in file order.

        Raises:
            UserError: Unknown split, or a listed file is missing.
        """
        if split not in self.split_names:
            raise UserError(f"{self.name}: unknown split {split!r}; available: {', '.join(self.split_names)}")
        return self.items_from_names(self.list_split(split), origin=f"split {split!r}")

    def items_from_names(self, names: Iterable[str], origin: str = "names") -> list[SegItem]:
        """Items for explicit names (e.g. a labelled subset), checking their files exist."""
        items = []
        for name in names:
            try:
                items.append(self.make_item(name))
            except UserError as e:
                raise UserError(f"{e} (listed in {origin})") from None
        return items

    def items_from_file(self, path: str | Path) -> list[SegItem]:
        """Items named in a list file (one name per line), relative to ``root`` or absolute."""
        path = self.resolve(path)
        return self.items_from_names(read_name_list(path), origin=str(path))

    def resolve(self, path: str | Path) -> Path:
        """A path from a config: absolute as given, otherwise relative to the dataset root."""
        path = Path(path).expanduser()
        if path.is_absolute() or self.root is None:
            return path
        return self.root / path

    def scaled_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of an image of ``height x width`` after the reading resize."""
        if self.scale == 1.0:
            return height, width
        return max(1, int(height * self.scale + 0.5)), max(1, int(width * self.scale + 0.5))


def load_pair(item: SegItem, source: SegSource, with_mask: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reads, checks and resizes one item.

    Returns:
        The image as uint8 ``3 x H x W`` and, when ``with_mask``, the mask as uint8 ``H x W`` of
        train ids (255 = ignore), both at the source's scaled size.

    Raises:
        UserError: Unreadable file, missing mask, size mismatch or out-of-range mask values.
    """
    image_np = read_image(item.image, item.name, source.max_pixels)
    mask_np = None
    if with_mask:
        if item.mask is None:
            raise UserError(f"{describe(item.image, item.name)} has no mask; it can only be used as unlabelled data")
        mask_np = read_mask(item.mask, item.name, source.max_pixels)
        if mask_np.shape != image_np.shape[:2]:
            raise UserError(
                f"mask {describe(item.mask, item.name)} is {mask_np.shape[0]}x{mask_np.shape[1]} but image "
                f"{describe(item.image, item.name)} is {image_np.shape[0]}x{image_np.shape[1]} (HxW); they must match"
            )
        if source.label_map is not None:
            mask_np = source.label_map[mask_np]
        _check_mask_values(mask_np, source, item)

    # Copies: PIL's arrays are read-only and in-memory items must never be changed through a sample.
    image = torch.from_numpy(np.array(image_np, copy=True)).permute(2, 0, 1)
    mask = None if mask_np is None else torch.from_numpy(np.array(mask_np, copy=True))
    size = source.scaled_size(image.shape[1], image.shape[2])
    if size != tuple(image.shape[1:]):
        image = F.resize_image(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
        if mask is not None:
            # Nearest keeps masks as valid class indices: no blending between neighbouring ids.
            mask = resize_mask_exact(mask, list(size))
    return image, mask


def _check_mask_values(mask: np.ndarray, source: SegSource, item: SegItem) -> None:
    bad = (mask >= source.num_classes) & (mask != source.ignore_index)
    if bad.any():
        values = np.unique(mask[bad]).tolist()
        raise UserError(
            f"mask {describe(item.mask, item.name)} has values {values[:10]} outside 0..{source.num_classes - 1} "
            f"and {source.ignore_index} (ignore); {source.name} has {source.num_classes} classes"
        )


class SegmentationDataset(Dataset):
    """A torch Dataset of segmentation samples.

    Each sample is a dict::

        image       float32 3 x H x W, RGB in [0, 1]
        mask        int64 H x W, train ids, 255 = ignore     (with_mask or targets)
        confidence  float32 H x W                             (targets only)
        name        str, the item name
        size        (H, W) of the image after the source's scale, before the transform
        index       int, position in ``items``

    Args:
        items: The items to read (from ``SegSource.items`` or a subset of them).
        source: The dataset they come from (classes, label map, scale).
        transform: Joint transform on ``{'image', 'mask'[, 'confidence']}`` holding tv_tensors
            (see :mod:`dmt.data.transforms`); ``None`` leaves the sample as read.
        with_mask: Read the ground-truth mask. False for unlabelled data.
        targets: For pseudo-labelled training: maps an item name to its stored
            ``(class map uint8 HxW, confidence float16 HxW)`` at the scaled size. When given, the
            ground-truth mask is not read; the class map becomes ``mask`` and the confidence map
            ``confidence``, both transformed jointly with the image.
    """

    def __init__(
        self,
        items: Sequence[SegItem],
        source: SegSource,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        with_mask: bool = True,
        targets: TargetFn | None = None,
    ) -> None:
        self.items = list(items)
        self.source = source
        self.transform = transform
        self.with_mask = with_mask
        self.targets = targets

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        image, mask = load_pair(item, self.source, self.with_mask and self.targets is None)
        size = (int(image.shape[1]), int(image.shape[2]))
        sample: dict[str, Any] = {"image": tv_tensors.Image(F.to_dtype(image, torch.float32, scale=True))}
        if self.targets is not None:
            classes, confidence = self.targets(item.name)
            if classes.shape != size or confidence.shape != size:
                raise ValueError(
                    f"pseudo labels for {item.name!r} are {classes.shape}/{confidence.shape} but the image is {size}"
                )
            sample["mask"] = tv_tensors.Mask(torch.from_numpy(np.asarray(classes, dtype=np.uint8)))
            # kept float16 (as stored) through the transforms: nearest resizing, padding with 0,
            # cropping and flipping move values without arithmetic, so converting after the
            # crop gives the same float32 values for a fraction of the work
            sample["confidence"] = ConfidenceMap(torch.from_numpy(np.asarray(confidence)))
        elif mask is not None:
            sample["mask"] = tv_tensors.Mask(mask)
        if self.transform is not None:
            sample = self.transform(sample)
        out: dict[str, Any] = {"image": sample["image"].as_subclass(torch.Tensor).float()}
        if "mask" in sample:
            out["mask"] = sample["mask"].as_subclass(torch.Tensor).long()
        if "confidence" in sample:
            out["confidence"] = sample["confidence"].as_subclass(torch.Tensor).float()
        out.update(name=item.name, size=size, index=index)
        return out


def collate_segmentation(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacks image/mask/confidence tensors; keeps names and sizes as lists.

    Raises:
        ValueError: The images of the batch differ in size (use a cropping/padding transform).
    """
    out: dict[str, Any] = {}
    for key in ("image", "mask", "confidence"):
        if key in batch[0]:
            shapes = {tuple(s[key].shape) for s in batch}
            if len(shapes) > 1:
                raise ValueError(
                    f"cannot batch {key}s of different sizes {sorted(shapes)}; pad or crop to a fixed size "
                    "(seg_train_transform / seg_eval_transform) or use batch size 1"
                )
            out[key] = torch.stack([s[key] for s in batch])
    out["name"] = [s["name"] for s in batch]
    out["size"] = [s["size"] for s in batch]
    out["index"] = torch.tensor([s["index"] for s in batch], dtype=torch.int64)
    return out


# --------------------------------------------------------------------------- reading


def describe(data: Path | np.ndarray, name: str) -> str:
    """How an image or mask is named in messages: its path, or the item name when in memory."""
    return str(data) if isinstance(data, (str, Path)) else f"<in-memory {name!r}>"


def read_name_list(path: Path) -> list[str]:
    """Item names from a list file: one per line, blank lines and ``#`` comments skipped.

    Raises:
        UserError: The file does not exist or is empty.
    """
    if not path.is_file():
        raise UserError(f"list file {path} not found")
    names = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise UserError(f"list file {path} names no items")
    return names


def read_image(data: Path | np.ndarray, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image as ``H x W x 3`` uint8 RGB (grey, palette and RGBA files are converted).

    16-bit grey images (PNG ``I;16``) are scaled to 8 bits (``round(v * 255 / 65535)``); PIL's
    own conversion would clip them, reading almost every pixel as white. Other images with more
    than 8 bits per channel that PIL does not reduce itself (32-bit integer or float pixels) are
    refused rather than guessed at.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 3 or data.shape[2] != 3 or data.dtype != np.uint8:
            raise ValueError(f"in-memory image {name!r} must be HxWx3 uint8, got {data.shape} {data.dtype}")
        return data
    with open_image(data, "image", max_pixels) as img:
        # PNG is at most 16 bits per channel: older Pillow versions open 16-bit grey as "I"
        if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):
            return grey16_to_rgb8(np.asarray(img), data)
        if img.mode in ("I", "F"):
            raise UserError(f"image {data} has {'32-bit integer' if img.mode == 'I' else 'floating-point'} "
                            "pixels; expected 8-bit (or 16-bit grey PNG) images: convert it to 8-bit RGB")
        return np.asarray(img.convert("RGB"))


def grey16_to_rgb8(values: np.ndarray, path: Path) -> np.ndarray:
    """16-bit grey values ``H x W`` -> ``H x W x 3`` uint8, rounding ``v * 255 / 65535``."""
    wide = values.astype(np.int64)
    if wide.size and (wide.min() < 0 or wide.max() > 65535):
        raise UserError(f"image {path} has grey values outside 0..65535; expected a 16-bit grey image")
    grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def read_mask(data: Path | np.ndarray, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A mask as ``H x W`` uint8 of raw values.

    Palette (``P``) PNGs, as in VOC ``SegmentationClassAug``, are read as their palette
    indices, which are the class ids; grey PNGs as their grey values. Colour masks are refused
    rather than guessed at.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 2 or data.dtype != np.uint8:
            raise ValueError(f"in-memory mask {name!r} must be HxW uint8, got {data.shape} {data.dtype}")
        return data
    with open_image(data, "mask", max_pixels) as img:
        if img.mode in ("P", "L"):
            return np.asarray(img)
        if img.mode == "1" or img.mode.startswith("I"):
            values = np.asarray(img)
            if values.size and (values.min() < 0 or values.max() > 255):
                raise UserError(f"mask {data} has values outside 0..255; expected class indices and 255 (ignore)")
            return values.astype(np.uint8)
    raise UserError(
        f"mask {data} has image mode {img.mode}; expected a single-channel (palette or grey) PNG whose "
        "pixel values are class indices, 255 = ignore"
    )
