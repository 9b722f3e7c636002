"""CVAT's "Segmentation mask 1.1" export (a zip, or that zip unpacked) as class masks.

The export holds::

    labelmap.txt                      "# label:color_rgb:parts:actions", then "name:r,g,b::" per label
    ImageSets/Segmentation/<subset>.txt   the image names (without extension)
    SegmentationClass/<name>.png      a colour mask per annotated image: each pixel the colour of its label
    SegmentationObject/<name>.png     instance masks (not read)

Classes follow ``labelmap.txt``: the label ``background`` is class 0, the others classes 1, 2...
in the file's order; ``palette.txt`` keeps the tool's colours. Without a ``background`` label,
black (``0,0,0``) is class 0. Without ``labelmap.txt`` (CVAT leaves it out when the labels are
Pascal VOC's) the classes and colours are VOC's 21. Each ``SegmentationClass`` mask is mapped colour by colour; a
colour no label has is an error naming the file and the colour, as is a mask whose size is not
its image's. The image of ``SegmentationClass/<name>.png`` is ``<name>.<any extension>`` below
``--images``; images without a mask are unlabelled.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from dmt.annotations.images import ImageIndex, checked_size
from dmt.annotations.layout import BACKGROUND, SegmentationExport, check_class_names
from dmt.data.voc import VOC_CLASSES, voc_colormap
from dmt.errors import UserError

LABELMAP = "labelmap.txt"
MASKS = "SegmentationClass"


class ExportFiles:
    """The files of an export given as a folder or a zip, by posix path below the export's top folder."""

    def __init__(self, export: Path) -> None:
        self.export = export
        self.zip: zipfile.ZipFile | None = None
        if export.is_dir():
            names = [p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()]
        elif zipfile.is_zipfile(export):
            self.zip = zipfile.ZipFile(export)
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
        else:
            raise UserError(f"CVAT export {export}: not a folder or a zip file")
        # the export's top folder: where labelmap.txt is, else where SegmentationClass/ is
        tops = sorted({n[: -len(LABELMAP)] for n in names if PurePosixPath(n).name == LABELMAP}, key=len) or \
            sorted({n[: n.index(f"{MASKS}/")] for n in names if f"{MASKS}/" in n and
                    (n.startswith(f"{MASKS}/") or f"/{MASKS}/" in n)}, key=len)
        if not tops:
            raise UserError(f"CVAT export {export} holds neither {LABELMAP} nor {MASKS}/; export the task as "
                            "'Segmentation mask 1.1'")
        self.prefix = tops[0]
        self.names = sorted(n[len(self.prefix):] for n in names if n.startswith(self.prefix))

    def read(self, name: str) -> bytes:
        """The bytes of the export's file ``name``."""
        if self.zip is not None:
            return self.zip.read(self.prefix + name)
        return (self.export / self.prefix / name).read_bytes()

    def __enter__(self) -> ExportFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.zip is not None:
            self.zip.close()

    def where(self, name: str) -> str:
        """``name`` as the user can find it, for messages."""
        return f"{self.export}:{self.prefix}{name}" if self.zip is not None else str(self.export / self.prefix / name)


def parse_labelmap(text: str, source: str) -> tuple[tuple[str, ...], np.ndarray]:
    """``(class names, (K, 3) uint8 colours)`` from labelmap.txt's lines (background first, as class 0).

    Raises:
        UserError: a malformed line, or two labels of one colour.
    """
    names, colours = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        try:
            rgb = [int(v) for v in fields[1].split(",")]
        except (IndexError, ValueError):
            rgb = []
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise UserError(f"{source} line {number}: expected 'label:r,g,b:parts:actions', got {line.strip()!r}")
        names.append(fields[0])
        colours.append(rgb)
    if not names:
        raise UserError(f"{source} names no label")
    if BACKGROUND in names:
        k = names.index(BACKGROUND)
        names.insert(0, names.pop(k))
        colours.insert(0, colours.pop(k))
    else:
        names.insert(0, BACKGROUND)
        colours.insert(0, [0, 0, 0])
    packed = [(r << 16) | (g << 8) | b for r, g, b in colours]
    for k, value in enumerate(packed):
        if packed.index(value) != k:
            raise UserError(f"{source}: labels {names[packed.index(value)]!r} and {names[k]!r} share the colour "
                            f"{','.join(map(str, colours[k]))}; each label needs its own")
    return check_class_names(names, source), np.array(colours, dtype=np.uint8)


def colours_to_classes(rgb: np.ndarray, palette: np.ndarray, where: str) -> np.ndarray:
    """An ``(H, W, 3)`` colour mask as class indices (row ``k`` of ``palette`` is class ``k``).

    Raises:
        UserError: a colour not in ``palette``, naming ``where`` and the colour.
    """
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    known = (palette[:, 0].astype(np.int32) << 16) | (palette[:, 1].astype(np.int32) << 8) | palette[:, 2]
    order = np.argsort(known)
    found = np.searchsorted(known[order], packed).clip(0, len(known) - 1)
    hit = known[order][found] == packed
    if not hit.all():
        y, x = np.argwhere(~hit)[0]
        raise UserError(f"{where}: colour {','.join(map(str, rgb[y, x].tolist()))} at pixel ({x}, {y}) is no "
                        f"label's colour in {LABELMAP}")
    return order[found].astype(np.uint8)


def read_cvat(export: str | Path, images: str | Path) -> SegmentationExport:
    """A CVAT "Segmentation mask 1.1" export (folder or zip) over the images below ``images``."""
    files = ExportFiles(Path(export).expanduser())
    try:
        if LABELMAP in files.names:
            classes, palette = parse_labelmap(files.read(LABELMAP).decode("utf-8"), files.where(LABELMAP))
        else:  # CVAT leaves it out for Pascal VOC's own labels
            classes, palette = VOC_CLASSES, voc_colormap(len(VOC_CLASSES))
        index = ImageIndex(images)
        masks: dict[Path, str] = {}
        for name in files.names:
            if name.startswith(f"{MASKS}/") and name.lower().endswith(".png"):
                masks[index.find_stem(name[len(MASKS) + 1: -4], files.where(name))] = name
    except BaseException:
        files.__exit__()
        raise

    def items() -> Iterator[tuple[Path, np.ndarray | None]]:
        with files:
            for image in index.files.values():
                if image not in masks:
                    yield image, None
                    continue
                name = masks[image]
                try:
                    with Image.open(io.BytesIO(files.read(name))) as img:
                        rgb = np.asarray(img.convert("RGB"))
                except OSError as e:
                    raise UserError(f"cannot read mask {files.where(name)}: {e}") from None
                checked_size(image, *rgb.shape[:2], files.where(name))
                yield image, colours_to_classes(rgb, palette, files.where(name))

    return SegmentationExport(classes, items(), palette)
