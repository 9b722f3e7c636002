"""Annotation tools' exports as the layouts dmt trains on (``dmt import``).

Segmentation: COCO JSON (:mod:`.coco`), LabelMe JSON (:mod:`.labelme`) and CVAT's "Segmentation
mask 1.1" (:mod:`.cvat`) are each read into a :class:`SegmentationExport` (the classes, then one
image with its mask or ``None`` at a time), which :func:`write_segmentation_folder` writes as the
folder layout of :mod:`dmt.data.folder`. Classification: Label Studio JSON (:mod:`.labelstudio`)
and ``path,label`` CSV files are read into a :class:`ClassificationExport`, which
:func:`write_classification` writes as ``imagefolder``'s class folders or list file.

The way back, predictions as drafts a tool imports (``dmt suggest --drafts``), is written by
:mod:`.draft_coco`, :mod:`.draft_cvat` and :mod:`.draft_labelstudio`.

A layer above ``data`` (whose layouts it writes and whose image reading it uses), below ``models``.
"""

from __future__ import annotations

from dmt.annotations.classes import ClassificationExport, read_label_csv, write_classification
from dmt.annotations.coco import read_coco
from dmt.annotations.cvat import read_cvat
from dmt.annotations.labelme import read_labelme
from dmt.annotations.labelstudio import read_labelstudio
from dmt.annotations.layout import ImportSummary, SegmentationExport, write_segmentation_folder

SEGMENTATION_READERS = {"coco": read_coco, "labelme": read_labelme, "cvat": read_cvat}
CLASSIFICATION_READERS = {"labelstudio": read_labelstudio, "csv": read_label_csv}

__all__ = ["CLASSIFICATION_READERS", "SEGMENTATION_READERS", "ClassificationExport", "ImportSummary",
           "SegmentationExport", "read_coco", "read_cvat", "read_label_csv", "read_labelme", "read_labelstudio",
           "write_classification", "write_segmentation_folder"]
