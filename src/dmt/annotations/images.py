"""The images an import covers: every image file below ``--images``, found by the names exports use.

Every format names its images its own way: COCO by ``file_name`` (often a bare name, sometimes a
path from the tool's storage), LabelMe by ``imagePath`` relative to its JSON file (Windows
separators included), CVAT by the name without extension, Label Studio by an upload URL. An
:class:`ImageIndex` answers all of them the same way: the path relative to ``--images`` if it is
one, else the file name, which must then be unique below ``--images``.

Every image below ``--images`` is part of the import (hidden files and folders skipped); those no
annotation covers become unlabelled. The folder layout names an image by its stem, so two images
with the same stem are refused here, before anything is written.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePosixPath

import numpy as np

from dmt.data.folder import IMAGE_EXTENSIONS
from dmt.data.images import image_size
from dmt.errors import UserError


class ImageIndex:
    """Every image file below one folder, by relative path, by name and by stem."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise UserError(f"--images {self.root}: not a folder")
        self.files: dict[str, Path] = {}  # relative posix path -> file
        for top, dirs, names in os.walk(self.root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                    path = Path(top) / name
                    self.files[path.relative_to(self.root).as_posix()] = path
        if not self.files:
            raise UserError(f"--images {self.root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.files = dict(sorted(self.files.items()))
        self._by_name: dict[str, list[str]] = {}
        self._by_stem: dict[str, str] = {}
        self._by_path_stem = {str(PurePosixPath(rel).with_suffix("")): rel for rel in self.files}
        for rel in self.files:
            pure = PurePosixPath(rel)
            self._by_name.setdefault(pure.name, []).append(rel)
            if pure.stem in self._by_stem:
                raise UserError(f"images {self.files[self._by_stem[pure.stem]]} and {self.files[rel]} share the "
                                f"stem {pure.stem!r}; the folder layout names images by stem, rename one")
            self._by_stem[pure.stem] = rel

    def find(self, name: str, entry: str) -> Path:
        """The image an export names ``name`` (a relative path or a file name); ``entry`` is for messages.

        Raises:
            UserError: no such image below the folder, or only a file name shared by several images.
        """
        rel = posixpath.normpath(name.replace("\\", "/"))
        if rel in self.files:
            return self.files[rel]
        matches = self._by_name.get(PurePosixPath(rel).name, [])
        if len(matches) == 1:
            return self.files[matches[0]]
        if matches:
            raise UserError(f"{entry}: image {name!r} matches {len(matches)} files below {self.root} "
                            f"({', '.join(matches[:3])}); name it by its path relative to --images")
        raise UserError(f"{entry}: image {name!r} not found below --images {self.root}")

    def find_stem(self, name: str, entry: str) -> Path:
        """The image whose path without extension is ``name`` (relative, or just the stem)."""
        rel = posixpath.normpath(name.replace("\\", "/"))
        if rel in self._by_path_stem:
            return self.files[self._by_path_stem[rel]]
        stem = PurePosixPath(rel).name
        if stem in self._by_stem:
            return self.files[self._by_stem[stem]]
        raise UserError(f"{entry}: no image named {name!r} (any extension) below --images {self.root}")


def checked_size(path: Path, height: int | None, width: int | None, entry: str) -> tuple[int, int]:
    """``(height, width)`` of the image at ``path`` from its header, checked against the export's, if given.

    Raises:
        UserError: the export states another size than the file has.
    """
    (h, w), _ = image_size(path)
    if height is not None and width is not None and (int(height), int(width)) != (h, w):
        raise UserError(f"{entry}: the export says {int(width)}x{int(height)} but image {path} is {w}x{h}")
    return h, w


#: how far (pixels) a vertex may lie outside the image: tools round a click on the edge outwards
OUTSIDE_TOLERANCE = 1.0


def check_vertices(xy: np.ndarray, height: int, width: int, entry: str) -> None:
    """Refuse a shape with a vertex (``xy``: ``(N, 2)`` x, y) more than a pixel outside ``[0, W] x [0, H]``.

    Raises:
        UserError: naming ``entry`` and the first such vertex.
    """
    outside = (xy[:, 0] < -OUTSIDE_TOLERANCE) | (xy[:, 0] > width + OUTSIDE_TOLERANCE) \
        | (xy[:, 1] < -OUTSIDE_TOLERANCE) | (xy[:, 1] > height + OUTSIDE_TOLERANCE)
    if outside.any():
        x, y = xy[np.argmax(outside)]
        raise UserError(f"{entry}: vertex ({x:g}, {y:g}) lies outside the {width}x{height} image")
