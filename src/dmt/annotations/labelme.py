"""LabelMe JSON (one ``.json`` per image: ``shapes``, ``imagePath``, ``imageHeight``, ``imageWidth``) as class masks.

Every ``*.json`` below the export folder is one image's annotation (the export folder may be
``--images`` itself: LabelMe saves its JSON next to the image). The image is ``imagePath``,
looked up below ``--images`` by its relative path, else by its file name; ``imageData`` is never
read.

Shapes are drawn as LabelMe draws them (Pillow's ``ImageDraw``, pixel ``(x, y)`` centred on the
point ``(x, y)``, the outline included): ``polygon`` (three points or more), ``rectangle`` (two
opposite corners), ``circle`` (centre, then a point on the circle) and ``mask`` (a base64 PNG
over the box of its two points). Shapes without an area (``point``, ``line``, ``linestrip``...)
are skipped, and the log counts them.

Overlaps: shapes are painted in the file's order, so a **later shape wins**, as in LabelMe's
own drawing and its ``labelme2voc`` conversion. The label ``__ignore__`` paints 255 (ignore);
``_background_`` and ``background`` paint class 0.

Classes: ``background`` is class 0, then the other labels sorted by name (Python's ``sorted``),
or, given ``classes``, that list (a label missing from it is an error): an import of the next
batch then keeps the same class numbers. An image whose file holds no shape with an area, and
every image without a ``.json``, is unlabelled.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dmt.annotations.images import ImageIndex, check_vertices, checked_size
from dmt.annotations.layout import BACKGROUND, IGNORE, SegmentationExport, check_class_names, read_json
from dmt.errors import UserError

log = logging.getLogger("dmt")

AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
IGNORE_LABEL = "__ignore__"
BACKGROUND_LABELS = ("_background_", BACKGROUND)


def load_json(path: Path) -> dict[str, Any]:
    """One LabelMe file, checked to hold a ``shapes`` list and an ``imagePath``."""
    data = read_json(path, "LabelMe file")
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list) or not data.get("imagePath"):
        raise UserError(f"{path}: not a LabelMe file (expected 'shapes' and 'imagePath')")
    return data


def draw_shape(shape: dict[str, Any], height: int, width: int, entry: str) -> np.ndarray:
    """The ``(height, width)`` bool region of one area shape (see the module docstring)."""
    kind = shape.get("shape_type") or "polygon"
    try:
        xy = np.asarray(shape.get("points"), dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise UserError(f"{entry}: 'points' must be [[x, y], ...], got {str(shape.get('points'))[:60]}") from None
    need = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}[kind]
    if len(xy) < need:
        raise UserError(f"{entry}: a {kind} needs at least {need} points, got {len(xy)}")
    check_vertices(xy, height, width, entry)
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    points = [tuple(p) for p in xy.tolist()]
    if kind == "polygon":
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = xy[:2].min(axis=0), xy[:2].max(axis=0)
        draw.rectangle([x0, y0, x1, y1], outline=1, fill=1)
    elif kind == "circle":
        (cx, cy), (px, py) = xy[:2]
        r = float(np.hypot(px - cx, py - cy))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    else:
        return _mask_shape(shape, xy, height, width, entry)
    return np.asarray(canvas, dtype=bool)


def _mask_shape(shape: dict[str, Any], xy: np.ndarray, height: int, width: int, entry: str) -> np.ndarray:
    """A ``mask`` shape: a base64 PNG whose top-left pixel is the first point (rounded)."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape.get("mask") or ""))) as img:
            region = np.asarray(img.convert("L")) > 0
    except (OSError, ValueError) as e:
        raise UserError(f"{entry}: cannot read its base64 'mask' PNG: {e}") from None
    x0, y0 = (int(round(v)) for v in xy[0])
    h, w = region.shape
    if x0 < 0 or y0 < 0 or y0 + h > height or x0 + w > width:
        raise UserError(f"{entry}: its {w}x{h} mask at ({x0}, {y0}) lies outside the {width}x{height} image")
    out = np.zeros((height, width), dtype=bool)
    out[y0:y0 + h, x0:x0 + w] = region
    return out


def paint_shapes(shapes: list[tuple[np.ndarray, int]], height: int, width: int) -> np.ndarray:
    """The class mask from ``(region, class or 255)`` in file order: a later shape wins."""
    out = np.zeros((height, width), dtype=np.uint8)
    for region, value in shapes:
        out[region] = value
    return out


def _value(label: str, index: dict[str, int], entry: str) -> int:
    if label == IGNORE_LABEL:
        return IGNORE
    if label in BACKGROUND_LABELS:
        return 0
    if label not in index:
        raise UserError(f"{entry}: label {label!r} is not among the given classes ({', '.join(index)})")
    return index[label]


def read_labelme(export: str | Path, images: str | Path, classes: Sequence[str] | None = None) -> SegmentationExport:
    """Every LabelMe ``.json`` below ``export`` over the images below ``images`` (see the module docstring).

    Args:
        classes: the class names after background, in order; ``None``: the labels, sorted.
    """
    folder = Path(export).expanduser()
    if not folder.is_dir():
        raise UserError(f"LabelMe export {folder}: not a folder (expected a folder of .json files)")
    files = sorted(p for p in folder.rglob("*.json") if not any(part.startswith(".") for part in p.parts))
    if not files:
        raise UserError(f"LabelMe export {folder} holds no .json files")
    index = ImageIndex(images)
    annotated: dict[Path, Path] = {}  # image -> its JSON
    labels: set[str] = set()
    for file in files:  # one file at a time: a JSON may embed its image (imageData)
        data = load_json(file)
        image = index.find(str(data["imagePath"]), str(file))
        if image in annotated:
            raise UserError(f"{file}: image {image} is already annotated by {annotated[image]}")
        annotated[image] = file
        labels |= {str(s.get("label", "")) for s in data["shapes"] if (s.get("shape_type") or "polygon") in AREA_SHAPES}
    names = list(classes) if classes is not None else sorted(labels - {IGNORE_LABEL, *BACKGROUND_LABELS})
    class_index = {name: k for k, name in enumerate(names, 1)}

    def items() -> Iterator[tuple[Path, np.ndarray | None]]:
        skipped = 0
        for image in index.files.values():
            if image not in annotated:
                yield image, None
                continue
            file = annotated[image]
            data = load_json(file)
            height, width = checked_size(image, data.get("imageHeight"), data.get("imageWidth"), str(file))
            regions = []
            for k, shape in enumerate(data["shapes"]):
                if (shape.get("shape_type") or "polygon") not in AREA_SHAPES:
                    skipped += 1
                    continue
                entry = f"{file} shape {k} ({shape.get('label')!r})"
                regions.append((draw_shape(shape, height, width, entry),
                                _value(str(shape.get("label", "")), class_index, entry)))
            yield image, paint_shapes(regions, height, width) if regions else None
        if skipped:
            log.info(f"skipped {skipped} LabelMe shapes without an area (point, line, linestrip...)")

    return SegmentationExport(check_class_names((BACKGROUND, *names), f"LabelMe labels in {folder}"), items())
