"""Your own segmentation data, in a simple folder layout::

    root/
      images/<stem>.jpg|.jpeg|.png|.bmp|.tif|.tiff|.webp
      masks/<stem>.png        optional per image: single-channel (grey or palette) PNG,
                              pixel value = class index, 255 = ignore
      classes.txt             one class name per line; line k names class k
      palette.txt             optional: one "r g b" line per class (for visualisation)
      splits/<name>.txt       optional: one stem per line

An image with a mask is labelled, one without is unlabelled. Masks must be lossless PNG files:
a lossy format (JPEG, WebP) changes pixel values, and so classes, at edges; a
``masks/<stem>.webp`` (or ``.jpg`` ...) with no ``masks/<stem>.png`` is refused in one line
rather than taken for a missing mask. Masks are checked when read: values must be class
indices or 255, and the mask must have the image's size; otherwise a :class:`UserError` names
the files.

Splits. Every ``splits/<name>.txt`` becomes a split, and ``split_files`` (from the config,
paths relative to ``root`` or absolute) adds or replaces more. Where no list of that name is
given, four splits are built from the folder itself:

* ``val``: a held-out share (``val_share``, ``data.val_share``) of the images that have a mask
  (less those of a ``test`` list), chosen by :func:`held_out_val`: a shuffle of the sorted
  names under a fixed seed, so the same folder always holds out the same images, whatever the
  run's seed. A run never evaluates on the labels it trains on;
* ``train``: the images that have a mask, except those of the ``val`` (listed or held out) and
  ``test`` splits, so that an evaluation image is never trained on;
* ``unlabelled``: the images without a mask;
* ``all``: every image.

A typical semi-supervised setup therefore needs no list at all (masks for the labelled images,
optionally ``splits/val.txt`` for the evaluation ones), or passes its own labelled, unlabelled and
validation lists through the config.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Mapping

import numpy as np

from dmt.config.schema import DataConfig
from dmt.data.segmentation import SegItem, SegSource, read_name_list
from dmt.data.transforms import IMAGENET_MEAN
from dmt.data.voc import voc_colormap
from dmt.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VAL_SEED = 20200625  # the held-out val images' shuffle: fixed, so a folder always holds out the same ones
DEFAULT_VAL_SHARE = DataConfig.val_share  # data.val_share's default


def choose_held_out(names: list[str], share: float) -> list[str]:
    """``share`` of ``names`` (2 at least), sorted: ``round(share * n)`` (halves up), at least 1 and
    at most ``n - 1``, the first of the sorted names shuffled under :data:`VAL_SEED`, so the choice
    depends on neither the run's seed nor the order the names come in."""
    chosen = sorted(names)
    count = min(max(1, math.floor(share * len(chosen) + 0.5)), len(chosen) - 1)
    random.Random(VAL_SEED).shuffle(chosen)
    return sorted(chosen[:count])


def held_out_val(stems: list[str], share: float, root: Path | str = "data.root") -> list[str]:
    """The masked images a folder without a val list holds out for evaluation (:func:`choose_held_out`).

    Raises:
        UserError: fewer than 2 masked images (one to evaluate on, one to train on), naming ``root``.
    """
    if len(stems) < 2:
        raise UserError(f"data.root {root}: {len(stems)} image(s) with a mask; with no splits/val.txt (or "
                        "data.val_list) dmt holds some out to evaluate on and needs at least 2 (1 val, 1 labelled): "
                        "add masks, or list your evaluation images in splits/val.txt")
    return choose_held_out(stems, share)


class _FolderLayout:
    """Names -> files for one custom folder (a class, not closures, so datasets pickle)."""

    def __init__(self, root: Path, split_files: dict[str, Path], val_share: float = DEFAULT_VAL_SHARE) -> None:
        self.root = root
        self.split_files = split_files
        self.val_share = val_share
        self.images: dict[str, Path] = {}
        for path in sorted((root / "images").iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                if path.stem in self.images:
                    raise UserError(f"images {self.images[path.stem]} and {path} share the stem {path.stem!r}")
                self.images[path.stem] = path
        if not self.images:
            raise UserError(f"{root / 'images'} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        _refuse_lossy_masks(root / "masks")
        self._val: list[str] | None = None  # the held-out val images, chosen when first asked for

    def split_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.split_files, "train", "val", "unlabelled", "all"]))

    def list_split(self, split: str) -> list[str]:
        if split in self.split_files:
            return read_name_list(self.split_files[split])
        if split == "all":
            return list(self.images)
        if split == "unlabelled":
            return [stem for stem in self.images if self._mask(stem) is None]
        if split == "val":
            return self._held_out_val()
        if split != "train":
            raise UserError(f"folder {self.root}: unknown split {split!r}; available: {', '.join(self.split_names())}")
        # what val (listed or held out) and test take is never trained on
        val = self._listed("val") if "val" in self.split_files else self._held_out_val()
        held_out = {*self._listed("test"), *val}
        names = [stem for stem in self.images if self._mask(stem) is not None and stem not in held_out]
        if not names:
            raise UserError(f"split 'train': no image in {self.root / 'images'} has a mask in {self.root / 'masks'}")
        return names

    def _listed(self, *splits: str) -> set[str]:
        return {self.make_item(n).name for s in splits if s in self.split_files for n in self.list_split(s)}

    def _held_out_val(self) -> list[str]:
        if self._val is None:
            tested = self._listed("test")
            masked = [stem for stem in self.images if self._mask(stem) is not None and stem not in tested]
            self._val = held_out_val(masked, self.val_share, self.root)
        return list(self._val)

    def make_item(self, entry: str) -> SegItem:
        # Accept "name.jpg" as well as "name" in list files.
        stem = Path(entry).stem if Path(entry).suffix.lower() in IMAGE_EXTENSIONS else entry
        if stem not in self.images:
            raise UserError(f"no image {stem!r} in {self.root / 'images'}")
        return SegItem(stem, self.images[stem], self._mask(stem))

    def _mask(self, stem: str) -> Path | None:
        path = self.root / "masks" / f"{stem}.png"
        return path if path.is_file() else None


def _refuse_lossy_masks(masks: Path) -> None:
    """A mask in another image format than PNG, with no PNG of its stem: refused, not taken for no mask."""
    if not masks.is_dir():
        return
    names = {p.name for p in masks.iterdir()}
    for name in sorted(names):
        stem, suffix = Path(name).stem, Path(name).suffix
        if suffix.lower() in IMAGE_EXTENSIONS and suffix.lower() != ".png" and f"{stem}.png" not in names:
            raise UserError(f"mask {masks / name}: masks must be lossless single-channel PNG files "
                            f"(masks/{stem}.png; a lossy format such as JPEG or WebP changes class values); "
                            "convert it without changing its pixel values")


def folder_summary(source: SegSource, labelled: list[str], unlabelled: list[str], val: list[str],
                   d: DataConfig) -> str:
    """One log line: how many of a folder's images went where, and why.

    ``labelled``, ``unlabelled``, ``val``: the run's lists (before ``--smoke`` cuts them);
    ``d``: the data config that chose them.
    """
    how, hint = "", ""
    if d.split_dir:
        how = f"data.split_dir {d.split_dir}"
    elif d.labelled_list:
        how = "data.labelled_list"
    elif d.labelled_split != "all":
        how, hint = f"data.labelled_split {d.labelled_split}", "data.labelled_split=all would label them all"
    no_mask = set(source.list_split("unlabelled"))
    masked = {n for n in source.list_split("all") if n not in no_mask}
    aside = sum(n in masked for n in unlabelled)
    if d.val_list:
        origin = "data.val_list"
    elif source.root is not None and (source.root / "splits" / "val.txt").is_file():
        origin = "splits/val.txt"
    else:
        origin = f"held out, data.val_share {d.val_share}: no splits/val.txt"
    line = f"data folder: {len(masked)} masked images -> {len(labelled)} labelled" + (f" ({how})" if how else "")
    if aside:
        line += f", {aside} unlabelled with their masks set aside" + (f" ({hint})" if hint else "")
    line += f", {len(val)} val ({origin})"
    unused = len(masked) - len(labelled) - aside - sum(n in masked for n in val)
    if unused > 0:
        line += f", {unused} in none of these (e.g. splits/test.txt)"
    free = sum(n in no_mask for n in unlabelled)
    line += f"; {len(no_mask)} without a mask -> " + ("unlabelled" if free == len(no_mask) else
                                                      f"{free} unlabelled (data.unlabelled_list)")
    return line + (f"; --smoke uses the first {d.limit} of each" if d.limit > 0 else "")


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
    val_share: float = DEFAULT_VAL_SHARE,
) -> SegSource:
    """A custom folder (see the module docstring) as a :class:`SegSource`.

    Args:
        root: The dataset folder.
        split_files: Extra named split lists, relative to ``root`` or absolute; they replace
            ``splits/<name>.txt`` and the built-in splits of the same name.
        mean: Mean RGB in [0, 1], the padding colour (defaults to the ImageNet mean).
        scale: Resize factor applied on reading (``data.scale``; ``--smoke`` shrinks with it).
        val_share: The share of the masked images held out as ``val`` when no ``val`` list is
            given (``data.val_share``; see :func:`held_out_val`).

    Raises:
        UserError: Missing ``images/`` or ``classes.txt``, a malformed ``classes.txt`` or
            ``palette.txt``, a missing split file, two images with the same stem, a mask that is
            not a PNG file, a ``scale`` that is not positive or a ``val_share`` outside (0, 1).
    """
    if not scale > 0:
        raise UserError(f"data.scale must be > 0, got {scale}")
    if not 0 < val_share < 1:
        raise UserError(f"data.val_share must be in (0, 1), got {val_share}")
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

    layout = _FolderLayout(base, lists, val_share)
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
