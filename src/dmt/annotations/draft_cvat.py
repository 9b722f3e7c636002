"""Predicted class maps as a CVAT "Segmentation mask 1.1" folder, which CVAT imports as masks.

Layout (CVAT's documented format, a Pascal VOC segmentation layout; zip the folder to upload it)::

    labelmap.txt                      # label:r,g,b:parts:actions, one line per class
    ImageSets/Segmentation/default.txt  # the images' names without suffix
    SegmentationClass/<name>.png      # RGB: each pixel the colour of its class

Colours are the run's palette; the class named ``background`` is black (0, 0, 0), as CVAT reads
background, and no other class may share a colour (refused: CVAT could not tell them apart).
Regions of fewer than ``min_area`` pixels are painted as background, as in the COCO drafts
(:mod:`dmt.annotations.draft_coco`), so the three formats draft the same regions. CVAT's
``SegmentationObject/`` (instance masks) is not written: semantic masks need none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmt.annotations.draft_coco import MIN_AREA, skipped_classes
from dmt.atomic import atomic_path, write_text
from dmt.errors import UserError

ROWS = 512  # rows coloured at once: a large mask needs no full-size temporaries beyond its RGB picture


def cvat_colours(class_names: tuple[str, ...] | list[str], palette: np.ndarray) -> np.ndarray:
    """``K x 3`` uint8 colours: the palette, background black; a colour shared by two classes is refused."""
    colours = np.array(palette[: len(class_names)], dtype=np.uint8).reshape(-1, 3)
    if len(colours) < len(class_names):
        raise UserError(f"palette has {len(colours)} colours for {len(class_names)} classes")
    for c in skipped_classes(class_names):
        colours[c] = 0
    seen: dict[tuple[int, ...], str] = {}
    for name, colour in zip(class_names, colours):
        key = tuple(int(v) for v in colour)
        if key in seen:
            raise UserError(f"classes {seen[key]!r} and {name!r} share the colour {key}: CVAT masks need one "
                            "colour per class (pass a palette.txt with distinct colours)")
        seen[key] = name
    return colours


def drop_small(classes: np.ndarray, skip: set[int], min_area: int) -> np.ndarray:
    """The class map with 4-connected regions of fewer than ``min_area`` pixels painted as background
    (the lowest skipped class, else 0); ``classes`` itself when nothing is that small."""
    from scipy import ndimage

    background = min(skip) if skip else 0
    out = classes
    for class_id in (int(c) for c in np.unique(classes)):
        if class_id in skip or min_area <= 1:
            continue
        labels, n = ndimage.label(classes == class_id)
        small = np.flatnonzero(np.bincount(labels.reshape(-1), minlength=n + 1) < min_area)
        small = small[small > 0]  # label 0: the other classes' pixels
        if len(small):
            out = out.copy() if out is classes else out
            out[np.isin(labels, small)] = background
    return out


class CvatDraft:
    """A CVAT Segmentation mask 1.1 folder written image by image (:meth:`add`), closed by :meth:`write`."""

    def __init__(self, folder: Path, class_names: tuple[str, ...] | list[str], palette: np.ndarray,
                 min_area: int = MIN_AREA) -> None:
        self.folder, self.class_names, self.min_area = Path(folder), tuple(class_names), min_area
        self.colours = cvat_colours(self.class_names, palette)
        self.skip = skipped_classes(self.class_names)
        self.names: list[str] = []

    def add(self, name: str, classes: np.ndarray) -> Path:
        """One image's class map as ``SegmentationClass/<name>.png`` (``name``: the image's name without suffix)."""
        from PIL import Image

        classes = drop_small(classes, self.skip, self.min_area)
        rgb = np.empty(classes.shape + (3,), dtype=np.uint8)
        for r in range(0, classes.shape[0], ROWS):
            rgb[r : r + ROWS] = self.colours[classes[r : r + ROWS]]
        path = self.folder / "SegmentationClass" / f"{name}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
        self.names.append(name)
        return path

    def write(self) -> Path:
        """``labelmap.txt`` and ``ImageSets/Segmentation/default.txt``; returns the folder."""
        lines = ["# label:color_rgb:parts:actions"]
        lines += [f"{n}:{','.join(str(int(v)) for v in c)}::" for n, c in zip(self.class_names, self.colours)]
        write_text(self.folder / "labelmap.txt", "\n".join(lines) + "\n")
        write_text(self.folder / "ImageSets" / "Segmentation" / "default.txt", "".join(f"{n}\n" for n in self.names))
        return self.folder
