"""Predicted class maps as Label Studio pre-annotations: one task per image, its regions as polygons.

Label Studio's documented import format for predictions: a JSON list of tasks, each
``{"data": {"image": URL}, "predictions": [{"model_version", "score", "result": [...]}]}``, each
result a ``polygonlabels`` region::

    {"from_name": "label", "to_name": "image", "type": "polygonlabels",
     "original_width": W, "original_height": H, "image_rotation": 0,
     "value": {"points": [[x%, y%], ...], "closed": true, "polygonlabels": ["cat"]}}

with points in percent of the image's width and height. ``from_name`` / ``to_name`` must match
the project's labelling config (``<PolygonLabels name="label" toName="image">`` and
``<Image name="image" value="$image">``, Label Studio's semantic segmentation with polygons
template); both are parameters. The regions are the COCO drafts' (:func:`~dmt.annotations.draft_coco.regions`:
4-connected, small ones dropped, background left out); Label Studio's polygons hold no holes, so
a region with holes is drafted as its outer outline (its holes filled: the labeller cuts them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dmt.annotations.draft_coco import MIN_AREA, libraries, regions, skipped_classes
from dmt.atomic import write_json


def percent_points(xy: list[float], width: int, height: int) -> list[list[float]]:
    """COCO ``[x1, y1, x2, y2, ...]`` pixels as Label Studio's ``[[x%, y%], ...]`` of the image's size."""
    return [[round(100.0 * x / width, 4), round(100.0 * y / height, 4)] for x, y in zip(xy[0::2], xy[1::2])]


class LabelStudioDraft:
    """Label Studio tasks with predictions, built image by image (:meth:`add`), written by :meth:`write`."""

    def __init__(self, class_names: tuple[str, ...] | list[str], model_version: str = "dmt",
                 min_area: int = MIN_AREA, from_name: str = "label", to_name: str = "image") -> None:
        libraries()
        self.class_names, self.min_area = tuple(class_names), min_area
        self.model_version, self.from_name, self.to_name = model_version, from_name, to_name
        self.skip = skipped_classes(self.class_names)
        self.tasks: list[dict[str, Any]] = []

    def add(self, image_url: str, classes: np.ndarray, score: float | None = None) -> int:
        """One image (``image_url``: what the task's ``data.image`` says) and its class map; returns its regions."""
        h, w = classes.shape
        result = []
        for n, r in enumerate(regions(classes, self.skip, self.min_area)):
            result.append({"id": f"r{n}", "from_name": self.from_name, "to_name": self.to_name,
                           "type": "polygonlabels", "original_width": int(w), "original_height": int(h),
                           "image_rotation": 0,
                           "value": {"points": percent_points(r.outline, w, h), "closed": True,
                                     "polygonlabels": [self.class_names[r.class_id]]}})
        prediction: dict[str, Any] = {"model_version": self.model_version, "result": result}
        if score is not None:
            prediction["score"] = float(score)
        self.tasks.append({"data": {"image": image_url}, "predictions": [prediction]})
        return len(result)

    def write(self, path: Path) -> Path:
        """The tasks JSON file, atomically."""
        write_json(path, self.tasks, indent=None)
        return path
