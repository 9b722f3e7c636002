"""List files of classification images: CSV ``path,label`` rows, for images that live anywhere.

The format (``data.train_csv``, ``data.val_csv``, ``data.test_csv``)::

    path,label                  optional header (exactly these two names, any case)
    photos/2021/img_001.jpg,cat
    /mnt/archive/img_002.png,dog
    photos/unsorted/img_003.jpg,          empty label (or no comma at all): unlabelled

* A path is relative to the CSV's own folder, or absolute (``~`` is expanded). A path holding
  a comma is quoted (``"a,b.jpg",cat``), as the ``csv`` module writes it. Surrounding spaces of
  both fields are dropped; blank lines are skipped; the file is UTF-8 (a BOM is fine).
* Every listed file must exist (checked when the list is read; one line names the CSV, its line
  and the file). The extension is not checked: a listed file is read whatever its name.
* A path listed twice (after joining with the CSV's folder and normalising ``.`` / ``..``) is
  a mistake, whatever its labels: in particular no file is both labelled and unlabelled.
* The classes are the sorted set of labels of the training list; an evaluation list's labels
  must be among them, and every row of an evaluation list needs one.

Rows are put in a canonical order (class by class, then folder by folder and by name: see
:func:`path_key`), the order the equivalent folder layout gives, so a list file and the folders
it mirrors yield the same images in the same order, whatever the order of the rows.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from dmt.errors import UserError

_HEADER = ["path", "label"]


@dataclass
class ListRows:
    """The rows of one list file: ``files[k]`` (absolute, normalised) with ``labels[k]`` (``""``:
    unlabelled), from line ``lines[k]``. Paths stay strings until chosen: 100,000 ``Path`` objects
    cost seconds to build."""

    source: Path
    files: list[str]
    labels: list[str]
    lines: list[int]

    def where(self, k: int) -> str:
        """Row ``k``'s place, for messages: ``file.csv line 12``."""
        return f"{self.source} line {self.lines[k]}"


def path_key(path: str | os.PathLike) -> tuple[str, str]:
    """The sort key of (normalised) image paths: torchvision's ``ImageFolder`` order
    (``sorted(os.walk(...))``): folder by folder, folders sorted by their path as a string, each
    folder's files by name."""
    return os.path.split(os.fspath(path))


def read_list_file(path: str | os.PathLike, key: str) -> ListRows:
    """Every row of the list file at ``path`` (config key ``key``), each file checked to exist.

    Raises:
        UserError: the file is missing or unreadable, a row has more than two fields or no path,
            a listed file does not exist, or a path is listed twice.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise UserError(f"config key {key!r}: list file {source} not found")
    base = str(source.parent.absolute())
    rows = ListRows(source, [], [], [])
    seen: dict[str, int] = {}
    try:
        with open(source, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            for fields in reader:
                line = reader.line_num
                fields = [x.strip() for x in fields]
                if not any(fields):
                    continue
                if not rows.lines and [x.lower() for x in fields] == _HEADER:  # the header, if any
                    continue
                if len(fields) > 2 or not fields[0]:
                    raise UserError(f"{source} line {line}: expected 'path,label' (label empty for an unlabelled "
                                    f"image; quote a path that holds a comma), got {','.join(fields)!r}")
                file = os.path.normpath(os.path.join(base, os.path.expanduser(fields[0])))
                if file in seen:
                    raise UserError(f"{source} line {line}: {file} is already listed on line {seen[file]}; "
                                    "list each image once (labelled or unlabelled, not both)")
                if not os.path.isfile(file):
                    raise UserError(f"{source} line {line}: image {file} not found")
                seen[file] = line
                rows.files.append(file)
                rows.labels.append(fields[1] if len(fields) == 2 else "")
                rows.lines.append(line)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read list file {source}: {e}") from None
    if not rows.files:
        raise UserError(f"config key {key!r}: list file {source} lists no images")
    return rows


def list_classes(rows: ListRows) -> list[str]:
    """The classes of a training list: the sorted set of its labels.

    Raises:
        UserError: the list labels no image.
    """
    classes = sorted({label for label in rows.labels if label})
    if not classes:
        raise UserError(f"{rows.source}: no row has a label; the training list names the classes through "
                        "its labelled rows (path,class)")
    return classes


def labelled_rows(rows: ListRows, classes: list[str], need_labels: bool) -> tuple[list[Path], list[int]]:
    """The labelled rows' files and class indices, class by class, then by :func:`path_key`.

    Args:
        need_labels: every row must have a label (an evaluation list).

    Raises:
        UserError: a label not among ``classes``, or (``need_labels``) a row without one.
    """
    index = {name: k for k, name in enumerate(classes)}
    chosen = []
    for k, (file, label) in enumerate(zip(rows.files, rows.labels)):
        if not label:
            if need_labels:
                raise UserError(f"{rows.where(k)}: {file} has no label; every image of an evaluation list needs one")
            continue
        if label not in index:
            shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
            raise UserError(f"{rows.where(k)}: class {label!r} of {file} is not among the labelled classes "
                            f"({shown})")
        chosen.append((index[label], path_key(file), file))
    chosen.sort()
    return [Path(file) for _, _, file in chosen], [label for label, _, _ in chosen]


def unlabelled_rows(rows: ListRows) -> list[Path]:
    """The files of the rows without a label, by :func:`path_key`."""
    return [Path(f) for f in sorted((f for f, label in zip(rows.files, rows.labels) if not label), key=path_key)]
