"""What ``dmt predict`` reads: image files, folders (recursively) and list files, output names, reading size.

An input argument is

* a folder: every file in it and below whose suffix PIL can read, in sorted order, except those
  in a ``masks/`` folder (label masks, not photos: name such a folder itself to predict it) and
  those dmt predict wrote under the command's output folder (``masks/``, ``overlays/``,
  ``probs/``: a second run never predicts the first one's outputs);
* a segmentation folder dataset's root (:mod:`dmt.data.folder`: ``images/`` beside
  ``classes.txt`` or ``masks/``): the files of its ``images/`` folder only, named as if
  ``images/`` itself had been given, so ``data/images/a.jpg`` writes ``<out>/masks/a.png``;
* a list file (``.txt`` or ``.lst``): one image path per line (relative to the list's folder;
  blank lines and ``#`` comments skipped);
* any other file: one image.

Each image gets an output name: its path relative to the folder it was found in (or its file
name when named directly), without the suffix, so ``photos/2024/a.jpg`` found under ``photos``
writes ``<out>/masks/2024/a.png``. Two inputs that would share a name keep their suffix
(``a_jpg``, ``a_png``) instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dmt.data.images import DEFAULT_MAX_PIXELS, open_image
from dmt.errors import UserError

LIST_SUFFIXES = (".txt", ".lst")
MASK_FOLDER = "masks"  # the folder dataset's label masks (dmt.data.folder)
OUTPUT_FOLDERS = ("masks", "overlays", "probs")  # what outputs.write_segmentation writes under --out

log = logging.getLogger("dmt")


@dataclass(frozen=True)
class InputImage:
    """One image to predict: where it is, and the output name (a relative path without suffix)."""

    path: Path
    name: str


def image_suffixes() -> set[str]:
    """Lower-case file suffixes PIL can open (``.png``, ``.jpg``, ``.webp``, ...)."""
    return {s.lower() for s, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def is_folder_dataset(folder: Path) -> bool:
    """Whether ``folder`` is a segmentation folder dataset's root: ``images/`` beside ``classes.txt`` or ``masks/``."""
    return (folder / "images").is_dir() and ((folder / "classes.txt").is_file() or (folder / MASK_FOLDER).is_dir())


def _written_by_predict(path: Path, out: Path | None) -> bool:
    if out is None:
        return False
    resolved = path.resolve()
    return any(resolved.is_relative_to(out / sub) for sub in OUTPUT_FOLDERS)


def _from_folder(folder: Path, suffixes: set[str], out: Path | None) -> list[tuple[Path, str]]:
    """The images under ``folder`` with their names; masks/ folders and the output folder left out (one log line)."""
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    outputs = {p for p in found if _written_by_predict(p, out)}
    masks = {p for p in found if p not in outputs and MASK_FOLDER in p.relative_to(folder).parent.parts}
    if outputs:
        log.info("%s: left out %d file(s) a prediction wrote under the output folder %s", folder, len(outputs), out)
    if masks:
        log.info("%s: left out %d file(s) in masks/ folders (label masks, not photos; give a masks/ folder itself "
                 "to predict it)", folder, len(masks))
    return [(p, p.relative_to(folder).with_suffix("").as_posix()) for p in found if p not in outputs | masks]


def _from_dataset(root: Path, suffixes: set[str], out: Path | None) -> list[tuple[Path, str]]:
    """A folder dataset's ``images/`` only (its masks are labels, not photos), named relative to ``images/``."""
    found = _from_folder(root / "images", suffixes, out)
    log.info("%s: a folder dataset (images/, masks/, classes.txt): predicting its images/ only, %d image(s)",
             root, len(found))
    return found


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


def collect_inputs(sources: list[str], out: Path | None = None) -> list[InputImage]:
    """Every image named by the command's INPUTS, in order, each once, with a unique output name.

    ``out`` is the command's output folder: what a prediction writes there (``masks/``,
    ``overlays/``, ``probs/``) is never an input, even when it lies inside an input folder. Missing paths, empty folders and empty list files are refused (one
    line naming them); files that exist but cannot be read are found later, image by image.
    """
    suffixes = image_suffixes()
    out = out.expanduser().resolve() if out is not None else None
    pairs: list[tuple[Path, str]] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            dataset = is_folder_dataset(path)
            found = _from_dataset(path, suffixes, out) if dataset else _from_folder(path, suffixes, out)
            if not found:
                where = path / "images" if dataset else path
                raise UserError(f"{where}: folder holds no image files (looked for {', '.join(sorted(suffixes)[:6])}, ...)")
            pairs += found
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            pairs += _from_list(path)
        elif path.exists():
            pairs.append((path, path.stem))
        else:
            raise UserError(f"{path}: no such image, folder or list file")
    return unique_names(pairs)


def warn_if_classifying_masks(sources: list[str], task: str, model: str) -> None:
    """One warning line when a classification model is given segmentation folder datasets (a mask per
    image was probably meant; each image gets one class)."""
    roots = [s for s in sources if task == "classification" and Path(s).expanduser().is_dir()
             and is_folder_dataset(Path(s).expanduser())]
    if roots:
        log.warning("%s is a segmentation folder dataset (images/, masks/) but %s is a classification model: "
                    "each image gets one class, not a mask", ", ".join(roots), model)


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
