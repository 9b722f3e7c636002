"""PASCAL VOC 2012 with the SBD-augmented masks, in its usual on-disk layout::

    VOC2012/
      JPEGImages/<name>.jpg
      SegmentationClassAug/<name>.png        palette or grey PNG, pixel value = class, 255 = ignore
      ImageSets/Segmentation/train_aug.txt   10,582 names (``trainaug.txt`` is accepted too)
      ImageSets/Segmentation/train.txt       1,464 names
      ImageSets/Segmentation/val.txt         1,449 names

``SegmentationClassAug`` and the ``train_aug`` list do not come with the VOC download: they are
the SBD annotations (Hariharan et al., 2011) converted to VOC's format. The error messages say
where to get them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from dmt.data.segmentation import SegItem, SegSource, read_name_list
from dmt.errors import UserError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# Mean RGB of the VOC train_aug images in [0, 1] (116.5, 111.4, 102.9 in 0-255), used as the
# padding colour: after the network's normalisation it is close to zero.
VOC_MEAN = (0.4569, 0.4367, 0.4036)
VOC_SPLITS = ("train_aug", "train", "val")

VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
SBD_HINT = (
    "SegmentationClassAug and train_aug.txt are the SBD masks in VOC format, not part of the VOC download: "
    "get SegmentationClassAug.zip (e.g. https://www.dropbox.com/s/oeu149j8qtbs1x0/SegmentationClassAug.zip) "
    "or convert SBD yourself (http://home.bharathh.info/pubs/codes/SBD/download.html)"
)
# Where below data.root the VOC2012 folder may sit, most direct first.
_CANDIDATES = (".", "VOC2012", "VOCdevkit/VOC2012", "VOCtrainval_11-May-2012/VOCdevkit/VOC2012")


def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOC devkit colour map: ``n x 3`` uint8, entry 255 is the cream ignore border.

    Each class index's bits are dealt out in turn to R, G and B, from the high bit down, which
    gives well-separated colours for small indices.
    """
    index = np.arange(n)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (index >> (3 * shift + channel)) & 1
            cmap[:, channel] |= bit << (7 - shift)
    return cmap.astype(np.uint8)


def find_voc_root(root: str | Path) -> Path:
    """The VOC2012 folder at or below ``root``.

    Raises:
        UserError: ``root`` does not exist or holds no ``JPEGImages/`` at any usual depth.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root {root} does not exist or is not a folder")
    for candidate in _CANDIDATES:
        folder = root if candidate == "." else root / candidate
        if (folder / "JPEGImages").is_dir():
            return folder
    looked = ", ".join(str(root / c) if c != "." else str(root) for c in _CANDIDATES)
    raise UserError(
        f"data.root {root}: no PASCAL VOC 2012 found (looked for JPEGImages/ in {looked}); "
        f"download {VOC_URL} and add SegmentationClassAug"
    )


def _item_name(entry: str) -> str:
    # Lists from DeepLab ports hold "/JPEGImages/x.jpg /SegmentationClassAug/x.png": keep "x".
    token = entry.split()[0]
    return PurePosixPath(token).stem if ("/" in token or token.endswith(".jpg")) else token


@dataclass(frozen=True)
class _VocLayout:
    """Names -> files for one VOC2012 folder (a class, not closures, so datasets pickle)."""

    base: Path
    masks: Path
    mask_hint: str

    def list_split(self, split: str) -> list[str]:
        lists = self.base / "ImageSets" / "Segmentation"
        path = lists / f"{split}.txt"
        if split == "train_aug" and not path.is_file() and (lists / "trainaug.txt").is_file():
            path = lists / "trainaug.txt"
        if not path.is_file():
            hint = SBD_HINT if split == "train_aug" else f"it comes with {VOC_URL}"
            raise UserError(f"VOC split list {path} not found; {hint}")
        return read_name_list(path)

    def make_item(self, entry: str) -> SegItem:
        name = _item_name(entry)
        image = self.base / "JPEGImages" / f"{name}.jpg"
        mask = self.masks / f"{name}.png"
        if not image.is_file():
            raise UserError(f"VOC image {image} not found")
        if not mask.is_file():
            raise UserError(f"VOC mask {mask} not found; {self.mask_hint}")
        return SegItem(name, image, mask)


def voc_source(root: str | Path, mask_dir: str = "SegmentationClassAug", scale: float = 1.0) -> SegSource:
    """PASCAL VOC 2012 (+ SBD) as a :class:`SegSource` with splits ``train_aug``, ``train``, ``val``.

    Args:
        root: The VOC2012 folder, or a folder with ``VOC2012/`` or ``VOCdevkit/VOC2012/`` below it.
        mask_dir: Mask folder below VOC2012; ``SegmentationClass`` uses the original VOC masks
            (same format, only the 2,913 train/val images have them).
        scale: Resize factor applied on reading (``data.scale``); 1 is the paper's setting,
            ``--smoke`` shrinks the images with it.

    Raises:
        UserError: The layout is not found, the mask folder is missing or ``scale`` is not
            positive. Missing list, image or mask files are reported, by path, when a split
            is asked for.
    """
    if not scale > 0:
        raise UserError(f"data.scale must be > 0, got {scale}")
    base = find_voc_root(root)
    masks = base / mask_dir
    mask_hint = SBD_HINT if mask_dir == "SegmentationClassAug" else f"check the mask folder name {mask_dir!r}"
    if not masks.is_dir():
        raise UserError(f"VOC mask folder {masks} not found; {mask_hint}")
    layout = _VocLayout(base, masks, mask_hint)
    return SegSource(
        name="voc",
        class_names=VOC_CLASSES,
        split_names=VOC_SPLITS,
        list_split=layout.list_split,
        make_item=layout.make_item,
        root=base,
        palette=voc_colormap(256)[: len(VOC_CLASSES)],
        mean=VOC_MEAN,
        scale=float(scale),
    )
