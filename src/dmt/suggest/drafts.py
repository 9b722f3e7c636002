"""Pre-annotations of chosen images in the tools' formats, written under ``<out>/drafts/``.

* ``coco``: ``drafts/coco.json`` (:mod:`dmt.annotations.draft_coco`: a polygon per region, RLE
  for regions with holes);
* ``cvat``: ``drafts/cvat/`` (:mod:`dmt.annotations.draft_cvat`: Segmentation mask 1.1; zip it);
* ``labelstudio``: ``drafts/labelstudio.json`` (:mod:`dmt.annotations.draft_labelstudio`: tasks
  with polygon predictions).

The prediction drafted is the last phase's: the mean of its members' class probabilities (one
member's own with one). Images the run generated in memory (the digit-scenes demo) have no file:
they are written to ``drafts/images/<name>.png`` so that the drafts name real files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmt.annotations.draft_coco import MIN_AREA, CocoDraft
from dmt.annotations.draft_cvat import CvatDraft
from dmt.annotations.draft_labelstudio import LabelStudioDraft
from dmt.data.segmentation import SegItem
from dmt.errors import UserError
from dmt.predict.outputs import save_png

FORMATS = ("coco", "cvat", "labelstudio")


def check_formats(formats: list[str]) -> list[str]:
    """The formats asked for, each once; an unknown one is refused."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"--drafts {' '.join(unknown)}: expected one or more of {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


class DraftWriters:
    """The writers of the formats asked for, fed one image at a time (:meth:`add`), closed by :meth:`close`.

    Args:
        image_url: prefix of a Label Studio task's image (e.g. ``/data/local-files/?d=photos/``);
            the image's file name follows it.
    """

    def __init__(self, folder: Path, formats: list[str], class_names: tuple[str, ...], palette: np.ndarray,
                 min_area: int = MIN_AREA, image_url: str = "", model_version: str = "dmt") -> None:
        self.folder, self.image_url = folder, image_url
        formats = check_formats(formats)
        self.coco = CocoDraft(class_names, min_area) if "coco" in formats else None
        self.cvat = CvatDraft(folder / "cvat", class_names, palette, min_area) if "cvat" in formats else None
        self.studio = (LabelStudioDraft(class_names, model_version, min_area) if "labelstudio" in formats
                       else None)

    def file_name(self, item: SegItem, pixels: np.ndarray) -> str:
        """The image's file name as the drafts name it (an in-memory image is written first)."""
        if isinstance(item.image, np.ndarray):
            save_png_array(pixels, self.folder / "images" / f"{item.name}.png")
            return f"{item.name}.png"
        return f"{item.name}{Path(item.image).suffix}"

    def add(self, item: SegItem, pixels: np.ndarray, classes: np.ndarray, score: float | None = None) -> None:
        """One image's drafts in every format asked for."""
        name = self.file_name(item, pixels)
        if self.coco is not None:
            self.coco.add(name, classes)
        if self.cvat is not None:
            self.cvat.add(item.name, classes)
        if self.studio is not None:
            self.studio.add(self.image_url + name, classes, score)

    def close(self) -> list[Path]:
        """Write the files that hold every image; returns what was written."""
        out = []
        if self.coco is not None:
            out.append(self.coco.write(self.folder / "coco.json"))
        if self.cvat is not None:
            out.append(self.cvat.write())
        if self.studio is not None:
            out.append(self.studio.write(self.folder / "labelstudio.json"))
        return out


def save_png_array(pixels: np.ndarray, path: Path) -> None:
    """``H x W x 3`` (or ``x 1``) uint8 pixels as a PNG, atomically."""
    from PIL import Image

    save_png(Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels), path)
