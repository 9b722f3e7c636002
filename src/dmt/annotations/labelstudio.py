"""Label Studio's JSON export of an image classification project (``Choices``) as image labels.

The export is a list of tasks::

    [{"id": 1, "data": {"image": "/data/upload/1/5a1b2c3d-cat_01.jpg"},
      "annotations": [{"was_cancelled": false,
                       "result": [{"type": "choices", "value": {"choices": ["cat"]}, ...}]}]}, ...]

A task's image is its ``data["image"]`` (else the one string value of ``data``), found below
``--images`` by its path (``/data/local-files/?d=PATH`` gives ``PATH``) or file name; Label
Studio's uploads prefix the name with 8 hex digits and a dash (``5a1b2c3d-``), which is tried
without. Its label is the one choice of its **last** annotation that was not cancelled; a task
with none is unlabelled, as is every image below ``--images`` no task names. A task naming
several choices (a multi-label project) is an error.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from dmt.annotations.classes import ClassificationExport, labelled_export
from dmt.annotations.images import ImageIndex
from dmt.annotations.layout import read_json
from dmt.errors import UserError

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


def image_reference(data: dict[str, Any], entry: str) -> str:
    """The image path a task's ``data`` names (local-files' ``?d=`` unwrapped, URLs reduced to their path)."""
    value = data.get("image")
    if not isinstance(value, str):
        strings = [v for v in data.values() if isinstance(v, str)]
        if len(strings) != 1:
            raise UserError(f"{entry}: 'data' has no 'image' key and not exactly one string value")
        value = strings[0]
    url = urlparse(value)
    if "d" in parse_qs(url.query):
        return unquote(parse_qs(url.query)["d"][0])
    return unquote(url.path)


def find_image(index: ImageIndex, reference: str, entry: str) -> Path:
    """The image below ``--images`` that ``reference`` names, upload prefix tolerated."""
    try:
        return index.find(reference, entry)
    except UserError:
        bare = _UPLOAD_PREFIX.match(PurePosixPath(reference).name)
        if bare is None:
            raise
        return index.find(bare.group(1), entry)


def task_label(task: dict[str, Any], entry: str) -> str | None:
    """The choice of a task's last annotation that was not cancelled; ``None``: no such annotation."""
    kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    for annotation in reversed(kept):
        choices = [c for r in annotation.get("result") or [] if r.get("type") == "choices"
                   for c in (r.get("value") or {}).get("choices") or []]
        if len(choices) > 1:
            raise UserError(f"{entry}: {len(choices)} choices ({', '.join(map(str, choices))}); dmt imports one "
                            "class per image")
        if choices:
            return str(choices[0])
    return None


def read_labelstudio(export: str | Path, images: str | Path) -> ClassificationExport:
    """A Label Studio JSON export (see the module docstring) over the images below ``images``."""
    source = Path(export).expanduser()
    tasks = read_json(source, "Label Studio export")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
        raise UserError(f"{source}: not a Label Studio JSON export (expected a list of tasks with 'data')")
    index = ImageIndex(images)
    labels: dict[Path, str] = {}
    seen: dict[Path, str] = {}
    for number, task in enumerate(tasks):
        entry = f"{source} task id {task.get('id', f'#{number}')}"
        image = find_image(index, image_reference(task["data"], entry), entry)
        if image in seen:
            raise UserError(f"{entry}: image {image} is already {seen[image]}'s")
        seen[image] = entry.rsplit(" ", 1)[-1]
        label = task_label(task, entry)
        if label is not None:
            labels[image] = label
    return labelled_export(index, labels)
