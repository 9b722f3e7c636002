"""What ``dmt predict`` reads: image files, folders (recursively) and list files, output names, reading size.

An input argument is

* a folder: every file in it and below whose suffix PIL can read, in sorted order;
* a list file (``.txt`` or ``.lst``): one image path per line (relative to the list's folder;
  blank lines and ``#`` comments skipped);
* any other file: one image.

Each image gets an output name: its path relative to the folder it was found in (or its file
name when named directly), without the suffix, so ``photos/2024/a.jpg`` found under ``photos``
writes ``<out>/masks/2024/a.png``. Two inputs that would share a name keep their suffix
(``a_jpg``, ``a_png``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dmt.data.images import DEFAULT_MAX_PIXELS, open_image
from dmt.errors import UserError

LIST_SUFFIXES = (".txt", ".lst")


@dataclass(frozen=True)
class InputImage:
    """One image to predict: where it is, and the output name (a relative path without suffix)."""

    path: Path
    name: str


def image_suffixes() -> set[str]:
    """Lower-case file suffixes PIL can open (``.png``, ``.jpg``, ``.webp``, ...)."""
    return {s.lower() for s, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def _from_folder(folder: Path, suffixes: set[str]) -> list[tuple[Path, str]]:
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    return [(p, p.relative_to(folder).with_suffix("").as_posix()) for p in found]


def _from_list(path: Path) -> list[tuple[Path, str]]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    out = []
    for entry in filter(None, lines):
        image = Path(entry).expanduser()
        image = image if image.is_absolute() else path.parent / image
        # relative entries keep their folders in the output name; absolute ones only their stem
        parts = [] if Path(entry).is_absolute() else [q for q in Path(entry).parent.parts if q not in (".", "..")]
        out.append((image, "/".join([*parts, image.stem])))
    if not out:
        raise UserError(f"list file {path} names no images")
    return out


def collect_inputs(sources: list[str]) -> list[InputImage]:
    """Every image named by the command's INPUTS, in order, each once, with a unique output name.

    Missing paths, empty folders and empty list files are refused (one line naming them); files
    that exist but cannot be read are found later, image by image.
    """
    suffixes = image_suffixes()
    pairs: list[tuple[Path, str]] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            found = _from_folder(path, suffixes)
            if not found:
                raise UserError(f"{path}: folder holds no image files (looked for {', '.join(sorted(suffixes)[:6])}, ...)")
            pairs += found
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            pairs += _from_list(path)
        elif path.exists():
            pairs.append((path, path.stem))
        else:
            raise UserError(f"{path}: no such image, folder or list file")
    return unique_names(pairs)


def unique_names(pairs: list[tuple[Path, str]]) -> list[InputImage]:
    """Drop repeated files; names shared by different files keep their suffix (``a_jpg``)."""
    seen: set[Path] = set()
    kept = []
    for path, name in pairs:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            kept.append((path, name))
    counts: dict[str, int] = {}
    for _, name in kept:
        counts[name] = counts.get(name, 0) + 1
    out = []
    for path, name in kept:
        if counts[name] > 1:
            name = f"{name}_{path.suffix.lstrip('.').lower()}" if path.suffix else name
        out.append(InputImage(path, name))
    names = [i.name for i in out]
    if len(set(names)) != len(names):  # e.g. the same relative name under two input folders
        dup = next(n for n in names if names.count(n) > 1)
        paths = [str(i.path) for i in out if i.name == dup]
        raise UserError(f"{paths[0]} and {paths[1]} would both be written as {dup!r}; predict them separately")
    return out


def read_rgb(path: Path, channels: int = 3, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file as ``H x W x 3`` (or ``H x W x 1`` grey) uint8.

    A missing, unreadable or truncated file, or one of more than ``max_pixels`` pixels (refused
    from its header, before decoding), is a :class:`UserError` naming it.
    """
    with open_image(path, "image", max_pixels) as img:
        return np.asarray(img.convert("L" if channels == 1 else "RGB")).reshape(img.height, img.width, channels)


def reading_size(height: int, width: int, scale: float, size: int | None) -> tuple[int, int]:
    """The size an image is resized to on reading: ``size x size`` (classification: the training
    size) or the image scaled by ``scale`` (segmentation: the dataset's reading scale, Cityscapes 0.5)."""
    if size is not None:
        return size, size
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
