"""Your own classification images (``data.name: imagefolder``): class folders or list files, as image sets.

The layout under ``data.root``::

    labelled/<class>/...     images sorted into one folder per class (any depth below it)
    unlabelled/...           the images without labels (any nesting, no classes)
    val/<class>/...          optional: labelled images to evaluate on while training
    test/<class>/...         optional: labelled images to report on

or, to measure DMT on data you have fully labelled (*benchmark mode*), ``train/<class>/...``
instead of ``labelled/`` and ``unlabelled/``: the paper's protocol then picks
``data.labels_per_class`` labelled images of each class (the rest are unlabelled, their true
labels kept for the oracle), as for CIFAR-10.

* Classes are the names of ``labelled/``'s (or ``train/``'s) subfolders, sorted as torchvision's
  ``ImageFolder`` sorts them (Python's ``sorted``: by code point, so ``B`` before ``a``);
  class ``k`` is the ``k``-th. A ``val/`` or ``test/`` class folder must be one of them (a
  class may have no ``val/`` folder).
* Images are the files with one of torchvision's image extensions (``IMG_EXTENSIONS``, any
  case); hidden files and folders (``.name``) are skipped, symbolic links followed. The order
  is torchvision's: class by class, then folder by folder (sorted by path), each folder's files
  by name, so the labelled images are exactly ``ImageFolder(root / "labelled").samples``.
* Each of the training, val and test sets comes from its list file when one is given
  (``data.train_csv``, ``data.val_csv``, ``data.test_csv``; :mod:`dmt.data.class_lists`),
  else from its folder; a training list with no unlabelled row is benchmark mode.
* With neither a val nor a test set, ``data.val_share`` of each class's labelled images is held
  out as the val set (:func:`dmt.data.folder.choose_held_out`: the same images whatever the
  run's seed), so a run is never scored on the labels it trains on; a class of fewer than 2
  labelled images is refused. Benchmark mode holds them out only with
  ``data.valtiny_per_class: 0``, as valtiny is a held-out set already.

:func:`load_imagefolder` scans the files (paths only: 100,000 files cost a list of paths) and
raises one line for a layout mistake: no class folder, an empty class folder, an image outside
any class folder, an unknown ``val/`` / ``test/`` class, a class too small to hold a val image
out. Reading every file is the pre-flight check's job (:mod:`dmt.run.preflight`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmt.config.schema import DataConfig
from dmt.data.class_lists import labelled_rows, list_classes, read_list_file, unlabelled_rows
from dmt.data.folder import choose_held_out
from dmt.data.image_files import ImageFileSet
from dmt.errors import UserError

#: data.image_size 0 on ``imagefolder``, whose images have no one size: STL-10's side (USB's for it)
DEFAULT_FOLDER_SIZE = 96


@dataclass
class FolderData:
    """The image sets of an ``imagefolder`` dataset.

    Attributes:
        train: the training pool: labelled images first (class by class), then unlabelled ones
            (label -1); in benchmark mode every image of ``train/`` with its true label.
        labelled: indices of ``train``'s labelled images; ``None`` in benchmark mode (the split
            protocol picks them).
        unlabelled: indices of ``train``'s unlabelled images; ``None`` in benchmark mode.
        val, test: the evaluation sets, if given (``val`` held out of the labelled images when neither is).
        classes: the class names; label ``k`` is ``classes[k]``.
        val_held_out: ``val`` was held out of the labelled images (none was given).
    """

    train: ImageFileSet
    labelled: np.ndarray | None
    unlabelled: np.ndarray | None
    val: ImageFileSet | None
    test: ImageFileSet | None
    classes: list[str]
    val_held_out: bool = False

    @property
    def benchmark(self) -> bool:
        """Benchmark mode: a fully labelled pool, split by the protocol."""
        return self.labelled is None


def folder_image_size(d: DataConfig) -> int:
    """The side ``imagefolder`` images are read at: ``data.image_size``, or :data:`DEFAULT_FOLDER_SIZE` if 0."""
    return d.image_size or DEFAULT_FOLDER_SIZE


def image_extensions() -> tuple[str, ...]:
    """torchvision's image extensions (lower case), which ``ImageFolder`` reads."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def find_classes(folder: Path) -> list[str]:
    """The names of ``folder``'s visible subfolders, sorted as torchvision's ``find_classes`` sorts them."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if not _hidden(e.name) and e.is_dir())
    except OSError as e:
        raise UserError(f"cannot read folder {folder}: {e.strerror or e}") from None


def image_files(folder: Path) -> list[Path]:
    """Every image file at any depth below ``folder``, hidden ones skipped, in ``ImageFolder``'s order."""
    extensions = image_extensions()
    found: list[tuple[str, str]] = []  # (folder, name): class_lists.path_key's order
    visited: set[str] = set()

    def refuse(e: OSError) -> None:
        raise UserError(f"cannot read folder {e.filename}: {e.strerror or e}")

    for top, dirs, files in os.walk(folder, onerror=refuse, followlinks=True):
        real = os.path.realpath(top)
        if real in visited:  # a symbolic link back up the tree: walked once
            dirs.clear()
            continue
        visited.add(real)
        dirs[:] = [d for d in dirs if not _hidden(d)]
        found += [(top, f) for f in files if not _hidden(f) and f.lower().endswith(extensions)]
    found.sort()
    out, parent, base = [], None, Path()
    for top, name in found:
        if top != parent:  # one parsed Path per folder: building 100,000 paths from strings costs seconds
            parent, base = top, Path(top)
        out.append(base / name)
    return out


def class_tree(folder: Path, classes: list[str] | None = None, classes_from: Path | None = None
               ) -> tuple[list[Path], list[int], list[str]]:
    """The images of a ``<class>/...`` tree: ``(files, class indices, classes)``, class by class.

    Args:
        classes: the known classes (a ``val/`` or ``test/`` tree); ``None``: this tree's own.
        classes_from: the folder that named ``classes``, for messages.

    Raises:
        UserError: no class folder, an image outside any class folder, an empty class folder, or
            a class not among ``classes``.
    """
    names = find_classes(folder)
    if not names:
        raise UserError(f"{folder} holds no class folders; expected one subfolder of images per class")
    loose = _shallow_images(folder)
    if loose:
        raise UserError(f"image {loose[0]} is not inside a class folder of {folder}; move it into one")
    classes = names if classes is None else classes
    index = {name: k for k, name in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    for name in names:
        if name not in index:
            shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
            raise UserError(f"class folder {folder / name}: class {name!r} has no folder in {classes_from} "
                            f"(its classes: {shown})")
        found = image_files(folder / name)
        if not found:
            raise UserError(f"class folder {folder / name} holds no images ({' '.join(image_extensions())})")
        files += found
        labels += [index[name]] * len(found)
    return files, labels, classes


def _shallow_images(folder: Path) -> list[Path]:
    extensions = image_extensions()
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries
                      if not _hidden(e.name) and e.name.lower().endswith(extensions) and e.is_file())


def _root(d: DataConfig) -> Path | None:
    if d.root is None:
        if not d.train_csv:
            raise UserError("config key 'data.root': imagefolder needs the folder of your images (labelled/ and "
                            "unlabelled/, or train/ for benchmark mode), or data.train_csv")
        return None
    root = Path(os.path.normpath(Path(d.root).expanduser().absolute()))
    if not root.is_dir():
        raise UserError(f"config key 'data.root': {root} is not a folder")
    return root


def _training_folders(root: Path) -> tuple[list[Path], list[int], list[Path], list[str], bool]:
    """``(labelled files, their labels, unlabelled files, classes, benchmark mode)`` of the folders."""
    labelled, unlabelled, train = root / "labelled", root / "unlabelled", root / "train"
    if labelled.is_dir() and train.is_dir():
        raise UserError(f"{root} holds both labelled/ and train/; keep labelled/ with unlabelled/ for your "
                        "semi-supervised data, or train/ alone for benchmark mode")
    if train.is_dir():
        files, labels, classes = class_tree(train)
        return files, labels, [], classes, True
    if not labelled.is_dir():
        raise UserError(f"config key 'data.root': {root} holds no labelled/ folder (labelled/<class>/... with "
                        "unlabelled/...) and no train/ folder (benchmark mode: train/<class>/...)")
    if not unlabelled.is_dir():
        raise UserError(f"{root} holds labelled/ but no unlabelled/ folder; put the unsorted images there, or "
                        "rename labelled/ to train/ for benchmark mode (data.labels_per_class)")
    files, labels, classes = class_tree(labelled)
    loose = image_files(unlabelled)
    if not loose:
        raise UserError(f"folder {unlabelled} holds no images ({' '.join(image_extensions())})")
    return files, labels, loose, classes, False


def _evaluation_set(name: str, csv: str | None, root: Path | None, classes: list[str], classes_from: Path,
                    size: int, max_pixels: int) -> ImageFileSet | None:
    """``val`` or ``test``: from its list file if given, else from ``root/<name>/`` if it exists."""
    if csv:
        rows = read_list_file(csv, f"data.{name}_csv")
        files, labels = labelled_rows(rows, classes, need_labels=True)
    elif root is not None and (root / name).is_dir():
        files, labels, _ = class_tree(root / name, classes, classes_from)
    else:
        return None
    return ImageFileSet(files, labels, classes, size, max_pixels)


def hold_out_per_class(files: list[Path], labels: list[int], classes: list[str], share: float, where: Path
                       ) -> tuple[list[int], list[int]]:
    """``(kept, held out)`` positions: ``share`` of each class's images held out (:func:`choose_held_out`).

    Raises:
        UserError: a class of fewer than 2 images, naming it and ``where`` (its folder or list file).
    """
    by_class: list[dict[str, int]] = [{} for _ in classes]
    for i, label in enumerate(labels):
        by_class[label][str(files[i])] = i
    held: set[int] = set()
    for name, mine in zip(classes, by_class):
        if len(mine) < 2:
            raise UserError(f"class {name!r} has {len(mine)} labelled image(s) in {where}; with no val/ or test/ "
                            "(nor data.val_csv / data.test_csv) dmt holds data.val_share of each class out to evaluate "
                            "on and needs 2 at least: add labelled images of it, or give a val/ folder")
        held.update(mine[f] for f in choose_held_out(list(mine), share))
    return [i for i in range(len(files)) if i not in held], sorted(held)


def load_imagefolder(d: DataConfig) -> FolderData:
    """The image sets of ``data.name: imagefolder`` (see the module docstring); reads no pixels.

    Raises:
        UserError: one line naming the folder, list file (and line) or config key at fault.
    """
    size, max_pixels = folder_image_size(d), d.max_pixels
    root = _root(d)
    if d.train_csv:
        rows = read_list_file(d.train_csv, "data.train_csv")
        classes = list_classes(rows)
        files, labels = labelled_rows(rows, classes, need_labels=False)
        loose = unlabelled_rows(rows)
        benchmark, classes_from = not loose, rows.source
    else:
        assert root is not None  # _root refuses neither root nor list
        files, labels, loose, classes, benchmark = _training_folders(root)
        classes_from = root / ("train" if benchmark else "labelled")
    val = _evaluation_set("val", d.val_csv, root, classes, classes_from, size, max_pixels)
    test = _evaluation_set("test", d.test_csv, root, classes, classes_from, size, max_pixels)
    # never scored on training labels: without val and test, a share of each class is held out
    # (benchmark mode's valtiny is held out already, unless valtiny_per_class is 0)
    held_out = val is None and test is None and not (benchmark and d.valtiny_per_class > 0)
    if held_out:
        kept, chosen = hold_out_per_class(files, labels, classes, d.val_share, classes_from)
        val = ImageFileSet([files[i] for i in chosen], [labels[i] for i in chosen], classes, size, max_pixels)
        files, labels = [files[i] for i in kept], [labels[i] for i in kept]
    train = ImageFileSet([*files, *loose], [*labels, *[-1] * len(loose)], classes, size, max_pixels)
    n = len(files)
    return FolderData(
        train=train,
        labelled=None if benchmark else np.arange(n, dtype=np.int64),
        unlabelled=None if benchmark else np.arange(n, len(train), dtype=np.int64),
        val=val,
        test=test,
        classes=classes,
        val_held_out=held_out,
    )
