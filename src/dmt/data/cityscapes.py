"""Cityscapes (fine annotations) in its official layout::

    leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Items are named ``<city>/<city>_<seq>_<frame>``. Masks hold the 34 labelIds and are mapped to
the 19 train ids (everything else to 255) through a 256-entry lookup table. As in the DMT paper,
images and masks are downsampled by 2 on reading (2048x1024 -> 1024x512): images bilinear with
antialiasing, masks nearest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmt.data.segmentation import SegItem, SegSource
from dmt.errors import UserError

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
# The official colours of the 19 evaluated classes (cityscapesscripts' labels.py), in train-id order.
CITYSCAPES_PALETTE = np.array(
    [
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
        (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
        (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ],
    dtype=np.uint8,
)  # fmt: skip
# labelId -> train id for the 19 evaluated classes; all other labelIds (void, rare classes) -> 255.
LABEL_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
# Mean RGB of the Cityscapes training images in [0, 1] (73.2, 82.9, 72.4 in 0-255): the padding colour.
CITYSCAPES_MEAN = (0.2869, 0.3251, 0.2839)
CITYSCAPES_SPLITS = ("train", "val", "test")
CITYSCAPES_URL = "https://www.cityscapes-dataset.com/downloads/ (leftImg8bit_trainvaltest.zip, gtFine_trainvaltest.zip)"

_IMAGE_SUFFIX = "_leftImg8bit.png"
_MASK_SUFFIX = "_gtFine_labelIds.png"


def cityscapes_label_map() -> np.ndarray:
    """The 256-entry uint8 lookup table from Cityscapes labelIds to train ids (255 = ignore)."""
    table = np.full(256, 255, dtype=np.uint8)
    for label_id, train_id in LABEL_ID_TO_TRAIN_ID.items():
        table[label_id] = train_id
    return table


class _CityscapesLayout:
    """Names -> files for one Cityscapes folder (a class, not closures, so datasets pickle)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._split_of_city: dict[str, str] = {}  # cities never span splits: a name's city gives its split

    def list_split(self, split: str) -> list[str]:
        folder = self.base / "leftImg8bit" / split
        if not folder.is_dir():
            raise UserError(f"Cityscapes folder {folder} not found; download from {CITYSCAPES_URL}")
        names = [
            f"{city.name}/{file.name[: -len(_IMAGE_SUFFIX)]}"
            for city in folder.iterdir()
            if city.is_dir()
            for file in city.iterdir()
            if file.name.endswith(_IMAGE_SUFFIX)
        ]
        if not names:
            raise UserError(f"Cityscapes folder {folder} holds no *{_IMAGE_SUFFIX} images")
        return sorted(names)

    def make_item(self, name: str) -> SegItem:
        city, sep, rest = name.partition("/")
        if not sep or not city or not rest or "/" in rest:
            raise UserError(f"Cityscapes item name {name!r} should look like '<city>/<city>_<seq>_<frame>'")
        split = self._find_split(city, name)
        image = self.base / "leftImg8bit" / split / f"{name}{_IMAGE_SUFFIX}"
        if not image.is_file():
            raise UserError(f"Cityscapes image {image} not found")
        if split == "test":
            return SegItem(name, image, None)
        mask = self.base / "gtFine" / split / f"{name}{_MASK_SUFFIX}"
        if not mask.is_file():
            raise UserError(f"Cityscapes mask {mask} not found; download gtFine from {CITYSCAPES_URL}")
        return SegItem(name, image, mask)

    def _find_split(self, city: str, name: str) -> str:
        if city not in self._split_of_city:
            for split in CITYSCAPES_SPLITS:
                if (self.base / "leftImg8bit" / split / city).is_dir():
                    self._split_of_city[city] = split
                    break
            else:
                raise UserError(f"Cityscapes item {name!r}: no folder leftImg8bit/<split>/{city} under {self.base}")
        return self._split_of_city[city]


def cityscapes_source(root: str | Path, scale: float = 0.5) -> SegSource:
    """Cityscapes as a :class:`SegSource` with splits ``train``, ``val`` and ``test``.

    Splits list the images found by walking ``leftImg8bit/<split>/`` in sorted name order;
    ``test`` items have no mask (the public test labels are placeholders).

    Args:
        root: Folder holding ``leftImg8bit/`` and ``gtFine/``.
        scale: Resize factor applied on reading; 0.5 gives the paper's 1024x512.

    Raises:
        UserError: The layout is not found or ``scale`` is not positive. Missing files are
            reported, by path, when a split is asked for.
    """
    base = Path(root).expanduser()
    if not (base / "leftImg8bit").is_dir() or not (base / "gtFine").is_dir():
        raise UserError(f"data.root {base}: expected leftImg8bit/ and gtFine/ in it; download from {CITYSCAPES_URL}")
    if not scale > 0:
        raise UserError(f"data.scale must be > 0, got {scale}")
    layout = _CityscapesLayout(base)
    return SegSource(
        name="cityscapes",
        class_names=CITYSCAPES_CLASSES,
        split_names=CITYSCAPES_SPLITS,
        list_split=layout.list_split,
        make_item=layout.make_item,
        root=base,
        palette=CITYSCAPES_PALETTE,
        mean=CITYSCAPES_MEAN,
        label_map=cityscapes_label_map(),
        scale=float(scale),
    )
