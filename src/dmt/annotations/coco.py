"""COCO JSON instance annotations (``images``, ``annotations``, ``categories``) as class masks.

Classes: ``background`` is class 0; the categories follow in increasing category id (class 1 is
the smallest id). A category named ``background`` is class 0 itself.

Each annotation's ``segmentation`` is rasterised by pycocotools, as COCO's own tools do: a list of
polygons (``[x1, y1, x2, y2, ...]`` in pixel coordinates, ``(0, 0)`` the top-left corner of the
top-left pixel; a pixel belongs to a polygon when it covers the pixel's centre, as
``pycocotools.mask.frPyObjects`` decides), an uncompressed RLE (``counts`` a list) or a
compressed one (``counts`` a string), both column-major over ``size = [height, width]``.

Overlaps: annotations are painted from the largest area to the smallest, so where two overlap
the **smaller one wins** (an object on a table keeps its pixels, whatever order the tool wrote
them in); of two with the same area the later one in the file wins. Crowd annotations
(``iscrowd: 1``) are painted last as 255 (ignore): whatever lies under a crowd region is neither
trained on nor scored.

An image with no annotation is unlabelled (no mask); so is every image below ``--images`` that
the file does not list. Errors name the entry: an image the file lists but ``--images`` lacks, a
size that differs from the file's, an unknown ``category_id`` or ``image_id``, a polygon vertex
more than one pixel outside the image, an RLE whose size is not the image's, an annotation
without a segmentation (a box only).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dmt.annotations.images import ImageIndex, check_vertices, checked_size
from dmt.annotations.layout import BACKGROUND, IGNORE, SegmentationExport, check_class_names, read_json
from dmt.errors import UserError

INSTALL = "COCO import needs pycocotools: pip install 'dmt[annotations]' (or pip install pycocotools)"


def mask_api():
    """``pycocotools.mask``, or one line saying how to install it."""
    try:
        from pycocotools import mask
    except ImportError:
        raise UserError(INSTALL) from None
    return mask


def coco_classes(categories: list[dict[str, Any]], source: str) -> tuple[tuple[str, ...], dict[int, int]]:
    """``(class names, category id -> class index)``: background 0, then categories by increasing id."""
    names, index = [BACKGROUND], {}
    for cat in sorted(categories, key=lambda c: _int(c, "id", source)):
        name = str(cat.get("name", ""))
        if name == BACKGROUND:
            index[cat["id"]] = 0
            continue
        index[cat["id"]] = len(names)
        names.append(name)
    return check_class_names(names, f"{source} categories"), index


def rle_length(counts: bytes) -> int:
    """How many pixels a compressed COCO RLE string covers (the sum of its runs).

    The string holds each run in 5-bit groups (character - 48; bit 0x20: more groups follow; in a
    run's last group bit 0x10 is the sign); from the fourth run on, a run is stored as its
    difference from the run two before it. pycocotools decodes a string that covers fewer pixels
    than ``size`` into garbage rather than refusing it, hence this count.
    """
    runs: list[int] = []
    value = shift = 0
    for char in counts:
        group = char - 48
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value |= -1 << shift
        runs.append(value + runs[-2] if len(runs) > 2 else value)
        value = shift = 0
    return sum(runs)


def annotation_rle(segmentation: Any, height: int, width: int, entry: str) -> dict:
    """The compressed RLE of one annotation's ``segmentation`` on an image of ``height`` x ``width``.

    Raises:
        UserError: a malformed polygon, a vertex outside the image, an RLE of another size.
    """
    mask = mask_api()
    if isinstance(segmentation, list):
        if not segmentation:
            raise UserError(f"{entry}: empty segmentation (a box only); dmt imports polygons or RLE")
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise UserError(f"{entry}: a polygon is a list of at least 3 x, y pairs, got {str(polygon)[:60]}")
            check_vertices(np.asarray(polygon, dtype=np.float64).reshape(-1, 2), height, width, entry)
        return mask.merge(mask.frPyObjects(segmentation, height, width))
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise UserError(f"{entry}: segmentation must be polygons or an RLE {{size, counts}}, got "
                        f"{str(segmentation)[:60]}")
    size = [int(v) for v in segmentation["size"]]
    counts = segmentation["counts"]
    covered = sum(int(c) for c in counts) if isinstance(counts, list) else rle_length(str(counts).encode("ascii"))
    if size != [height, width] or covered != height * width:
        raise UserError(f"{entry}: RLE of size {size[1] if len(size) > 1 else '?'}x{size[0] if size else '?'} "
                        f"covering {covered} pixels, but the image is {width}x{height} ({height * width} pixels)")
    if isinstance(counts, list):
        return mask.frPyObjects(segmentation, height, width)
    return {"size": size, "counts": str(counts).encode("ascii")}


def paint(rles: list[tuple[dict, int, bool]], height: int, width: int) -> np.ndarray:
    """The class mask of one image from its ``(rle, class, crowd)`` annotations, by the module's rule.

    Largest area first (ties: file order), so a smaller annotation wins where two overlap;
    crowd regions last, as 255. One decoded annotation at a time.
    """
    mask = mask_api()
    out = np.zeros((height, width), dtype=np.uint8)
    areas = [int(mask.area(rle)) for rle, _, _ in rles]
    order = sorted(range(len(rles)), key=lambda k: (rles[k][2], -areas[k], k))
    for k in order:
        rle, cls, crowd = rles[k]
        out[mask.decode(rle).astype(bool)] = IGNORE if crowd else cls
    return out


def _int(record: dict, key: str, source: str) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{source}: expected an integer {key!r} in {str(record)[:80]}")
    return value


def read_coco(export: str | Path, images: str | Path) -> SegmentationExport:
    """A COCO JSON file (``export``) over the images below ``images``, read as the module docstring says.

    The file's structure, its images, categories and ids are checked here; masks are rasterised
    lazily, one image at a time, as the returned ``items`` are read.
    """
    mask_api()
    source = Path(export).expanduser()
    data = read_json(source, "COCO file")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise UserError(f"{source}: not a COCO file (expected lists 'images', 'annotations', 'categories')")
    index = ImageIndex(images)
    classes, class_of = coco_classes(data["categories"], str(source))

    entries: dict[int, tuple[Path, dict]] = {}
    seen: dict[Path, int] = {}
    for record in data["images"]:
        image_id = _int(record, "id", f"{source} images")
        entry = f"{source} image id {image_id}"
        path = index.find(str(record.get("file_name", "")), entry)
        if path in seen:
            raise UserError(f"{entry}: {path} is already image id {seen[path]}")
        seen[path] = image_id
        entries[image_id] = (path, record)
    per_image: dict[int, list[dict]] = {}
    for ann in data.get("annotations") or []:
        ann_id = ann.get("id", "?")
        image_id, category = ann.get("image_id"), ann.get("category_id")
        if image_id not in entries:
            raise UserError(f"{source} annotation id {ann_id}: unknown image_id {image_id!r}")
        if category not in class_of:
            raise UserError(f"{source} annotation id {ann_id}: unknown category_id {category!r} "
                            f"(categories: {sorted(class_of)})")
        per_image.setdefault(image_id, []).append(ann)
    by_path = {entries[i][0]: i for i in per_image}

    def items() -> Iterator[tuple[Path, np.ndarray | None]]:
        for path in index.files.values():
            if path not in by_path:
                yield path, None
                continue
            image_id = by_path[path]
            record = entries[image_id][1]
            height, width = checked_size(path, record.get("height"), record.get("width"),
                                         f"{source} image id {image_id}")
            rles = [(annotation_rle(ann.get("segmentation"), height, width, f"{source} annotation id "
                                    f"{ann.get('id', '?')}"), class_of[ann["category_id"]], bool(ann.get("iscrowd")))
                    for ann in per_image[image_id]]
            yield path, paint(rles, height, width)

    return SegmentationExport(classes, items())
