"""Your own segmentation data, in a simple folder layout::

    root/
      images/<stem>.jpg|.jpeg|.png|.bmp|.tif|.tiff|.webp
      masks/<stem>.png        optional per image: single-channel (grey or palette) PNG,
                              pixel value = class index, 255 = ignore
      classes.txt             one class name per line; line k names class k
      palette.txt             optional: one "r g b" line per class (for visualisation)
      splits/<name>.txt       optional: one stem per line

An image without a mask is unlabelled: it can be used as unlabelled data, never as labelled.
Masks are checked when read: values must be class indices or 255, and the mask must have the
image's size; otherwise a :class:`UserError` names the files.

Splits. Every ``splits/<name>.txt`` becomes a split, and ``split_files`` (from the config,
paths relative to ``root`` or absolute) adds or replaces more. Where no list of that name is
given, three splits are built from the folder itself:

* ``train``: the images that have a mask, except those listed in a ``val`` or ``test`` split,
  so that a held-out list is never trained on by accident;
* ``unlabelled``: the images without a mask;
* ``all``: every image.

A typical semi-supervised setup therefore needs no list at all (masks only for the labelled
images, ``splits/val.txt`` for the held-out ones), or passes its own labelled, unlabelled and
validation lists through the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from dmt.data.segmentation import SegItem, SegSource, read_name_list
from dmt.data.transforms import IMAGENET_MEAN
from dmt.data.voc import voc_colormap
from dmt.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_HELD_OUT = ("val", "test")  # splits whose images the default 'train' split leaves out


class _FolderLayout:
    """Names -> files for one custom folder (a class, not closures, so datasets pickle)."""

    def __init__(self, root: Path, split_files: dict[str, Path]) -> None:
        self.root = root
        self.split_files = split_files
        self.images: dict[str, Path] = {}
        for path in sorted((root / "images").iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                if path.stem in self.images:
                    raise UserError(f"images {self.images[path.stem]} and {path} share the stem {path.stem!r}")
                self.images[path.stem] = path
        if not self.images:
            raise UserError(f"{root / 'images'} holds no images ({', '.join(IMAGE_EXTENSIONS)})")

    def split_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.split_files, "train", "unlabelled", "all"]))

    def list_split(self, split: str) -> list[str]:
        if split in self.split_files:
            return read_name_list(self.split_files[split])
        if split == "all":
            return list(self.images)
        if split == "unlabelled":
            return [stem for stem in self.images if self._mask(stem) is None]
        held_out = {self.make_item(n).name for s in _HELD_OUT if s in self.split_files for n in self.list_split(s)}
        names = [stem for stem in self.images if self._mask(stem) is not None and stem not in held_out]
        if not names:
            raise UserError(f"split 'train': no image in {self.root / 'images'} has a mask in {self.root / 'masks'}")
        return names

    def make_item(self, entry: str) -> SegItem:
        # Accept "name.jpg" as well as "name" in list files.
        stem = Path(entry).stem if Path(entry).suffix.lower() in IMAGE_EXTENSIONS else entry
        if stem not in self.images:
            raise UserError(f"no image {stem!r} in {self.root / 'images'}")
        return SegItem(stem, self.images[stem], self._mask(stem))

    def _mask(self, stem: str) -> Path | None:
        path = self.root / "masks" / f"{stem}.png"
        return path if path.is_file() else None


def read_classes(path: Path) -> tuple[str, ...]:
    """Class names from ``classes.txt``: one per line, trailing blank lines ignored."""
    if not path.is_file():
        raise UserError(f"{path} not found; it must list one class name per line (line k = class k)")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise UserError(f"{path} lists no classes")
    for number, line in enumerate(lines, 1):
        if not line:
            raise UserError(f"{path} line {number} is empty; every line names a class (line k = class k)")
    if len(set(lines)) != len(lines):
        raise UserError(f"{path} names a class twice")
    if len(lines) > 255:
        raise UserError(f"{path} lists {len(lines)} classes; at most 255 fit (mask value 255 means ignore)")
    return tuple(lines)


def read_palette(path: Path, num_classes: int) -> np.ndarray:
    """Colours from ``palette.txt``: one ``r g b`` line (0..255) per class."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rgb = [int(v) for v in line.replace(",", " ").split()]
        except ValueError:
            rgb = []
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise UserError(f"{path} line {number}: expected 'r g b' with values 0..255, got {line.strip()!r}")
        rows.append(rgb)
    if len(rows) != num_classes:
        raise UserError(f"{path} has {len(rows)} colours but classes.txt names {num_classes} classes")
    return np.array(rows, dtype=np.uint8)


def folder_source(
    root: str | Path,
    split_files: Mapping[str, str | Path] | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    scale: float = 1.0,
) -> SegSource:
    """A custom folder (see the module docstring) as a :class:`SegSource`.

    Args:
        root: The dataset folder.
        split_files: Extra named split lists, relative to ``root`` or absolute; they replace
            ``splits/<name>.txt`` and the built-in splits of the same name.
        mean: Mean RGB in [0, 1], the padding colour (defaults to the ImageNet mean).
        scale: Resize factor applied on reading (``data.scale``; ``--smoke`` shrinks with it).

    Raises:
        UserError: Missing ``images/`` or ``classes.txt``, a malformed ``classes.txt`` or
            ``palette.txt``, a missing split file, two images with the same stem, or a
            ``scale`` that is not positive.
    """
    if not scale > 0:
        raise UserError(f"data.scale must be > 0, got {scale}")
    base = Path(root).expanduser()
    if not (base / "images").is_dir():
        raise UserError(f"data.root {base}: expected an images/ folder (and masks/, classes.txt) in it")
    classes = read_classes(base / "classes.txt")
    palette_file = base / "palette.txt"
    palette = read_palette(palette_file, len(classes)) if palette_file.is_file() else voc_colormap(len(classes))

    lists = {p.stem: p for p in sorted((base / "splits").glob("*.txt"))} if (base / "splits").is_dir() else {}
    for name, path in (split_files or {}).items():
        path = Path(path).expanduser()
        lists[name] = path if path.is_absolute() else base / path
    for name, path in lists.items():
        if not path.is_file():
            raise UserError(f"split list {path} (split {name!r}) not found")

    layout = _FolderLayout(base, lists)
    return SegSource(
        name="folder",
        class_names=classes,
        split_names=layout.split_names(),
        list_split=layout.list_split,
        make_item=layout.make_item,
        root=base,
        palette=palette,
        mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        scale=float(scale),
    )
