"""Writing an import: the segmentation folder layout dmt trains on (:mod:`dmt.data.folder`).

::

    FOLDER/images/<stem>.<ext>   each image, linked (hard link, else symbolic link, else copied)
    FOLDER/masks/<stem>.png      palette PNG, pixel value = class index, 255 = ignore (labelled images only)
    FOLDER/classes.txt           line k names class k; line 0 is "background"
    FOLDER/palette.txt           the tool's class colours, where it has them (CVAT)

No ``splits/`` list is written: :mod:`dmt.data.folder`'s defaults are the import's meaning
(``train``: the images with a mask, minus any ``splits/val.txt`` you add later; ``unlabelled``:
the rest). A written ``train.txt`` would keep listing the images you later move to ``val.txt``.

The whole folder is written inside :func:`dmt.atomic.atomic_folder`: an error in the middle of an
export (a missing image, a malformed annotation) leaves no ``FOLDER`` at all, never half of one.
Memory is one image's mask at a time.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from dmt.atomic import atomic_folder, atomic_path, write_bytes, write_text
from dmt.data.voc import voc_colormap
from dmt.errors import UserError

log = logging.getLogger("dmt")

BACKGROUND = "background"
IGNORE = 255
#: what :func:`link_image` did, best first
LINK_KINDS = ("hard link", "symbolic link", "copy")


@dataclass
class SegmentationExport:
    """An annotation tool's export, read: the classes and, lazily, every image with its mask.

    Attributes:
        classes: class ``k`` is ``classes[k]``; ``classes[0]`` is ``"background"``.
        items: ``(image file, mask or None)`` per image, in a fixed order; a mask is a ``(H, W)``
            uint8 array of class indices and 255 (ignore) at the image's size; ``None``: unlabelled.
            Usually a generator, so that one mask at a time is held.
        palette: ``(len(classes), 3)`` uint8 colours from the tool, or ``None`` (VOC's colours).
    """

    classes: tuple[str, ...]
    items: Iterable[tuple[Path, np.ndarray | None]]
    palette: np.ndarray | None = None


@dataclass
class ImportSummary:
    """What an import wrote: counts of labelled and unlabelled images, and how images were placed."""

    out: Path
    classes: tuple[str, ...]
    labelled: int = 0
    unlabelled: int = 0
    placed: Counter = field(default_factory=Counter)  # LINK_KINDS -> count

    def lines(self) -> list[str]:
        """A few lines for the log."""
        how = ", ".join(f"{n} by {kind}" for kind, n in self.placed.items())
        return [f"wrote {self.out}: {self.labelled} labelled and {self.unlabelled} unlabelled images "
                f"({len(self.classes)} classes incl. {self.classes[0]})",
                f"images placed {how}" + ("" if set(self.placed) <= {"hard link"} else
                                          " (a hard link needs --out on the images' file system)")]


def read_json(path: Path, what: str) -> object:
    """An export's JSON file, or one line naming it (``what``: "COCO file", "LabelMe file" ...)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {what} {path}: {e}") from None


def check_class_names(names: Sequence[str], source: str) -> tuple[str, ...]:
    """``names`` as classes.txt can hold them: non-empty, one line each, unique, at most 255.

    Raises:
        UserError: naming ``source`` and the offending name.
    """
    for name in names:
        if not name.strip() or "\n" in name or "\r" in name or name != name.strip():
            raise UserError(f"{source}: class name {name!r} cannot be a line of classes.txt (empty, surrounding "
                            "spaces or a line break)")
    seen = Counter(names)
    twice = [n for n, c in seen.items() if c > 1]
    if twice:
        raise UserError(f"{source}: class name {twice[0]!r} is used by {seen[twice[0]]} classes; names must differ")
    if len(names) > IGNORE:
        raise UserError(f"{source}: {len(names)} classes (background included); at most 255 fit a mask "
                        "(value 255 means ignore)")
    return tuple(names)


def link_image(src: Path, dst: Path) -> str:
    """Place ``src`` at ``dst``: a hard link, else a symbolic link, else a copy; returns which.

    A hard link costs no space and survives the source's renaming; it needs one file system. A
    symbolic link (to the absolute path) is next where links are allowed at all.
    """
    try:
        os.link(src, dst)
        return LINK_KINDS[0]
    except OSError:
        pass
    try:
        os.symlink(src.resolve(), dst)
        return LINK_KINDS[1]
    except OSError:
        pass
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return LINK_KINDS[2]


def mask_png(mask: np.ndarray, palette: np.ndarray) -> bytes:
    """A mask as palette PNG bytes: pixel values are the class indices, colours only for viewing."""
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="P")
    colours = np.zeros((256, 3), dtype=np.uint8)
    colours[: len(palette)] = palette
    colours[IGNORE] = 255  # ignore: white
    img.putpalette(colours.reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def refuse_existing(out: Path, images: Path) -> None:
    """Refuse an ``--out`` that exists and is not empty, or one inside ``--images`` (it would import itself)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} already exists and is not empty; choose a new folder")
    if out.resolve().is_relative_to(images.resolve()):
        raise UserError(f"--out {out} is inside --images {images}; choose a folder outside it")


def write_segmentation_folder(export: SegmentationExport, out: str | Path, images: str | Path) -> ImportSummary:
    """Write ``export`` as the folder layout at ``out`` (see the module docstring), whole or not at all.

    Raises:
        UserError: ``out`` exists and is not empty or lies inside ``images``; any error the
            export's items raise while read (then nothing is left at ``out``).
    """
    out, images = Path(out).expanduser(), Path(images).expanduser()
    refuse_existing(out, images)
    classes = check_class_names(export.classes, "classes")
    palette = export.palette if export.palette is not None else voc_colormap(len(classes))
    summary = ImportSummary(out, classes)
    with atomic_folder(out) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for image, mask in export.items:
            summary.placed[link_image(image, tmp / "images" / image.name)] += 1
            if mask is None:
                summary.unlabelled += 1
                continue
            bad = mask[(mask >= len(classes)) & (mask != IGNORE)]
            if bad.size:  # a reader's bug, not the user's: the readers map every value
                raise ValueError(f"mask of {image} holds value {int(bad[0])}, not a class of {len(classes)}")
            write_bytes(tmp / "masks" / f"{image.stem}.png", mask_png(mask, palette))
            summary.labelled += 1
        write_text(tmp / "classes.txt", "".join(f"{name}\n" for name in classes))
        if export.palette is not None:
            write_text(tmp / "palette.txt", "".join(f"{r} {g} {b}\n" for r, g, b in export.palette.tolist()))
    for line in summary.lines():
        log.info(line)
    return summary

