"""Classification imports: one label (or none) per image, written as a layout ``imagefolder`` reads.

Two layouts (:mod:`dmt.data.class_folders`, :mod:`dmt.data.class_lists`):

* ``folders``: ``FOLDER/labelled/<class>/<path>`` and ``FOLDER/unlabelled/<path>``, ``<path>``
  each image's path below ``--images`` (so no two names collide), placed as the segmentation
  import places images (hard link, else symbolic link, else copy); ``data.root=FOLDER``.
* ``list``: ``FOLDER/train.csv`` with ``path,label`` rows (absolute paths, empty label:
  unlabelled); ``data.train_csv=FOLDER/train.csv``. Nothing is linked.

Every image below ``--images`` is in the import; those the export labels none are unlabelled.
Classes are the labels, sorted as ``imagefolder`` sorts class folders. The ``folders`` layout
needs at least one unlabelled image (``imagefolder`` reads a folder with labelled images only as
a benchmark's ``train/``); a label that cannot be a folder name is refused.

A CSV export (:func:`read_label_csv`) has ``path,label`` rows (an optional ``path,label``
header; the path relative to ``--images``, or an image's file name; an empty label: unlabelled).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dmt.annotations.images import ImageIndex
from dmt.annotations.layout import ImportSummary, link_image, refuse_existing
from dmt.atomic import atomic_folder, write_text
from dmt.errors import UserError

log = logging.getLogger("dmt")

LAYOUTS = ("folders", "list")


@dataclass
class ClassificationExport:
    """Every image below ``--images`` (its path relative to it, the file) with its label or ``None``."""

    items: list[tuple[str, Path, str | None]]

    @property
    def classes(self) -> list[str]:
        """The labels used, sorted (class ``k`` is the ``k``-th)."""
        return sorted({label for _, _, label in self.items if label is not None})


def labelled_export(index: ImageIndex, labels: dict[Path, str]) -> ClassificationExport:
    """Every image of ``index``, labelled where ``labels`` says."""
    rel_of = {path: rel for rel, path in index.files.items()}
    if not labels:
        raise UserError(f"the export labels none of the images below --images {index.root}")
    return ClassificationExport([(rel_of[p], p, labels.get(p)) for p in index.files.values()])


def read_label_csv(export: str | Path, images: str | Path) -> ClassificationExport:
    """A ``path,label`` CSV (see the module docstring) over the images below ``images``."""
    source = Path(export).expanduser()
    try:
        text = source.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"CSV file {source} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read CSV file {source}: {e}") from None
    index = ImageIndex(images)
    labels: dict[Path, str] = {}
    seen: dict[Path, int] = {}
    reader = csv.reader(io.StringIO(text))
    for fields in reader:
        line = reader.line_num
        fields = [f.strip() for f in fields]
        if not any(fields) or (line == 1 and [f.lower() for f in fields] == ["path", "label"]):
            continue
        if len(fields) > 2:
            raise UserError(f"{source} line {line}: expected 'path,label', got {','.join(fields)!r}")
        image = index.find(fields[0], f"{source} line {line}")
        if image in seen:
            raise UserError(f"{source} line {line}: {image} is already listed on line {seen[image]}")
        seen[image] = line
        if len(fields) == 2 and fields[1]:
            labels[image] = fields[1]
    return labelled_export(index, labels)


def check_folder_name(name: str) -> None:
    """Refuse a label that cannot be a class folder ``imagefolder`` reads."""
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0\n"):
        raise UserError(f"label {name!r} cannot be a class folder name (empty, hidden, or holding a path "
                        "separator); rename it in the tool, or use --layout list")


def write_classification(export: ClassificationExport, out: str | Path, images: str | Path,
                         layout: str = "folders") -> ImportSummary:
    """Write ``export`` at ``out`` in ``layout`` (``folders`` or ``list``), whole or not at all."""
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    out, images = Path(out).expanduser(), Path(images).expanduser()
    refuse_existing(out, images)
    classes = export.classes
    summary = ImportSummary(out, tuple(classes), placed=Counter())
    summary.labelled = sum(label is not None for _, _, label in export.items)
    summary.unlabelled = len(export.items) - summary.labelled
    if layout == "folders":
        for name in classes:
            check_folder_name(name)
        if not summary.unlabelled:
            raise UserError(f"every image below --images {images} is labelled; the folders layout needs unlabelled "
                            "images (add them to --images), or use --layout list")
    with atomic_folder(out) as tmp:
        if layout == "list":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["path", "label"])
            writer.writerows([str(path.absolute()), label or ""] for _, path, label in export.items)
            write_text(tmp / "train.csv", buf.getvalue())
        else:
            for rel, path, label in export.items:
                dst = tmp / ("unlabelled" if label is None else f"labelled/{label}") / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                summary.placed[link_image(path, dst)] += 1
    log.info(f"wrote {out}: {summary.labelled} labelled and {summary.unlabelled} unlabelled images, "
             f"{len(classes)} classes ({layout} layout)")
    if summary.placed:
        log.info("images placed " + ", ".join(f"{n} by {kind}" for kind, n in summary.placed.items()))
    return summary
