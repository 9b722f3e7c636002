"""Predicted class maps as COCO JSON drafts: one annotation per connected region of a class.

The regions of a class map (:func:`regions`) are its 4-connected components per class, except
the skipped classes (the run's ``background``) and components of fewer than ``min_area`` pixels
(default :data:`MIN_AREA`: specks a labeller would delete first). Each region is written as

* a **polygon** (``[x1, y1, x2, y2, ...]``, ``(0, 0)`` the top-left corner of the top-left pixel)
  when it has no hole: its outline is traced through the midpoints between pixel centres
  (``skimage.measure.find_contours`` at level 0.5, straight runs merged by
  ``approximate_polygon(tolerance=0)``), so every pixel centre of the region lies inside it and
  every other centre outside; the polygon is rasterised back by pycocotools and kept only if it
  gives the region's pixels exactly (else the region is written as RLE);
* a **compressed RLE** (``{"size": [h, w], "counts": "..."}``, pycocotools' encoding, ``iscrowd``
  0) when it has holes, which COCO polygons cannot hold (a polygon's holes would be filled), and
  when its bounding box holds more than :data:`TRACED_PIXELS` pixels: such a region's outline (what
  polygon-only tools get) is traced on every ``step``-th pixel, so memory stays bounded whatever
  the image's size.

The round-trip rule: decoding the drafts (pycocotools ``annToMask``, painted on background)
gives the predicted map exactly, except that skipped classes and the dropped small regions read
as background. Category ids are the run's class indices; names are the run's class names.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dmt.atomic import write_json
from dmt.errors import UserError

MIN_AREA = 10  # pixels: smaller regions are dropped from the drafts
TRACED_PIXELS = 1 << 20  # a region's box is traced at full resolution up to this many pixels (8 MiB as float64)
INSTALL = "drafts need pycocotools and scikit-image: pip install 'dmt[annotations]'"


def libraries() -> tuple[Any, Any]:
    """``(pycocotools.mask, skimage.measure)``, or one line saying how to install them."""
    try:
        from pycocotools import mask
        from skimage import measure
    except ImportError:
        raise UserError(INSTALL) from None
    return mask, measure


@dataclass
class Region:
    """One connected region of one class.

    Attributes:
        bbox: ``[x, y, width, height]`` in pixels; area: its pixels.
        polygon: the exact outline (no holes), or None; rle: COCO compressed RLE when it has holes.
        outline: the outer outline, holes ignored (what a tool that takes polygons only gets).
    """

    class_id: int
    bbox: list[int]
    area: int
    polygon: list[float] | None
    rle: dict[str, Any] | None
    outline: list[float]


def as_xy(contour: np.ndarray, x0: int, y0: int) -> list[float]:
    """A contour of a crop padded by one pixel (``(row, col)`` pixel-centre units, closed) as COCO
    ``[x1, y1, ...]`` of the whole image (pixel edges: centre of pixel ``i`` at ``i + 0.5``)."""
    points = contour[:-1] if len(contour) > 1 and np.array_equal(contour[0], contour[-1]) else contour
    xy = np.stack([points[:, 1] - 0.5 + x0, points[:, 0] - 0.5 + y0], axis=1)
    return [float(v) for v in xy.reshape(-1)]


def traced(crop: np.ndarray, measure: Any) -> tuple[list[np.ndarray], int]:
    """``(contours, step)``: the crop's outlines in crop pixel units, traced on every ``step``-th pixel.

    skimage traces a float64 copy of what it is given (8 bytes per pixel of the box); a crop of more
    than :data:`TRACED_PIXELS` is traced on a strided view of at most that many pixels, so a region
    as large as the image costs a bounded copy. Its outline is then approximate (``step`` > 1), and
    the region is drafted as RLE, which is exact whatever its size.
    """
    step = max(1, int(np.ceil(np.sqrt(crop.size / TRACED_PIXELS))))
    view = crop[::step, ::step] if step > 1 else crop
    contours = measure.find_contours(np.pad(view, 1).view(np.uint8), 0.5)
    contours = [measure.approximate_polygon(c, tolerance=0) for c in contours]
    if step > 1:  # back to crop pixels: the padded view's pixel i is crop pixel (i - 1) * step
        contours = [(c - 1) * step + 1 for c in contours]
    return contours, step


def region(crop: np.ndarray, class_id: int, x0: int, y0: int, shape: tuple[int, int]) -> Region:
    """The :class:`Region` of a component given as a boolean crop whose top-left pixel is ``(x0, y0)``."""
    mask_api, measure = libraries()
    h, w = crop.shape
    contours, step = traced(crop, measure)
    outer = max(contours, key=lambda c: np.ptp(c[:, 0]) + np.ptp(c[:, 1]))
    outline = as_xy(outer, x0, y0)
    polygon = None
    if step == 1 and len(contours) == 1 and len(outline) >= 6:
        local = as_xy(outer, 0, 0)
        drawn = mask_api.decode(mask_api.frPyObjects([local], h, w)[0])
        if np.array_equal(drawn.astype(bool), crop):
            polygon = outline
    rle = None
    if polygon is None:
        full = np.zeros(shape, dtype=np.uint8, order="F")
        full[y0 : y0 + h, x0 : x0 + w] = crop
        encoded = mask_api.encode(full)
        rle = {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}
    return Region(class_id, [x0, y0, w, h], int(crop.sum()), polygon, rle, outline)


def regions(classes: np.ndarray, skip: Collection[int] = (), min_area: int = MIN_AREA) -> Iterator[Region]:
    """Every region of an ``H x W`` class map (see module doc), class by class, top to bottom."""
    from scipy import ndimage

    for class_id in (int(c) for c in np.unique(classes)):
        if class_id in skip:
            continue
        labels = component_labels(classes == class_id, ndimage)  # 4-connected (the default cross)
        for k, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None:
                continue
            crop = labels[box] == k
            if int(crop.sum()) < min_area:
                continue
            yield region(crop, class_id, box[1].start, box[0].start, classes.shape)
        del labels


def component_labels(mask: np.ndarray, ndimage: Any) -> np.ndarray:
    """The mask's 4-connected components numbered 1.., in 16 bits where they fit (half of int32's map)."""
    labels = np.zeros(mask.shape, dtype=np.uint16)
    try:
        ndimage.label(mask, output=labels)
    except RuntimeError:  # more than 65,535 components
        labels = ndimage.label(mask)[0]
    return labels


def skipped_classes(class_names: tuple[str, ...] | list[str]) -> set[int]:
    """The classes drafts leave out: the one named ``background`` (what an unannotated pixel imports as)."""
    return {c for c, name in enumerate(class_names) if name.lower() == "background"}


class CocoDraft:
    """A COCO JSON file of drafts built image by image (:meth:`add`), written once (:meth:`write`).

    Only the regions are kept between images, never a class map.
    """

    def __init__(self, class_names: tuple[str, ...] | list[str], min_area: int = MIN_AREA) -> None:
        libraries()
        self.class_names, self.min_area = tuple(class_names), min_area
        self.skip = skipped_classes(self.class_names)
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def add(self, file_name: str, classes: np.ndarray) -> int:
        """One image's ``H x W`` uint8 class map; returns how many regions it gave."""
        image_id = len(self.images) + 1
        h, w = classes.shape
        self.images.append({"id": image_id, "file_name": file_name, "width": int(w), "height": int(h)})
        before = len(self.annotations)
        for r in regions(classes, self.skip, self.min_area):
            self.annotations.append({
                "id": len(self.annotations) + 1, "image_id": image_id, "category_id": r.class_id,
                "segmentation": [r.polygon] if r.polygon is not None else r.rle, "area": r.area,
                "bbox": r.bbox, "iscrowd": 0})
        return len(self.annotations) - before

    def to_dict(self) -> dict[str, Any]:
        """The COCO document so far: ``info``, ``images``, ``annotations``, ``categories`` (no background)."""
        categories = [{"id": c, "name": n, "supercategory": ""} for c, n in enumerate(self.class_names)
                      if c not in self.skip]
        return {"info": {"description": "dmt suggest drafts (model predictions to correct)"},
                "images": self.images, "annotations": self.annotations, "categories": categories}

    def write(self, path: Path) -> Path:
        """The COCO JSON file, atomically."""
        write_json(path, self.to_dict(), indent=None)
        return path
