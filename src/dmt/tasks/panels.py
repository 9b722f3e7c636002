"""Sample panels written at the end of a stage: images, pseudo labels and predictions side by side.

A segmentation stage writes ``stages/<stage>/samples.png`` (one row per sample image; columns
image, ground truth where known, the teacher's kept pseudo labels for a phase, the final
model's prediction) and ``samples.json`` describing it; the same grid goes to TensorBoard.
``dmt report`` shows these files, so they survive ``phases.keep_labels: false``.

The functions here are pure (numpy arrays in, arrays out) apart from :func:`save_samples`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dmt.atomic import atomic_path, write_text

IGNORE_COLOUR = (224, 224, 192)  # the VOC devkit's cream: pixels with no label (255) or no pseudo label
GAINED_COLOUR = (0, 170, 0)  # a changes map: right after, wrong before
LOST_COLOUR = (220, 0, 0)  # wrong after, right before
UNCHANGED_COLOUR = (255, 255, 255)
COMPARISON_COLUMNS = ["image", "ground truth", "better baseline", "last phase", "changes"]
SAMPLES_PNG = "samples.png"
SAMPLES_JSON = "samples.json"


def class_palette(num_classes: int, palette: np.ndarray | None = None) -> np.ndarray:
    """``num_classes x 3`` uint8 colours: the dataset's palette, else the VOC colour map."""
    if palette is not None:
        return np.asarray(palette, dtype=np.uint8)[:num_classes]
    from dmt.data.voc import voc_colormap

    return voc_colormap(256)[:num_classes]


def colourise(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class map ``H x W`` -> ``H x W x 3`` uint8; 255 and any value outside the palette in cream."""
    mask = np.asarray(mask)
    table = np.tile(np.array(IGNORE_COLOUR, dtype=np.uint8), (256, 1))
    table[: len(palette)] = palette
    return table[np.clip(mask.astype(np.int64), 0, 255)]


def upscale(image: np.ndarray, min_side: int) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor so the shorter side reaches ``min_side`` (tiny images)."""
    factor = max(1, -(-min_side // max(min(image.shape[:2]), 1)))
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def grid(rows: Sequence[Sequence[np.ndarray | None]], pad: int = 2, fill: int = 255) -> np.ndarray:
    """Cells (``H x W x 3`` uint8, or ``None`` for an empty cell) tiled row by row, each in a cell of the largest size."""
    cells = [c for row in rows for c in row if c is not None]
    if not cells:
        return np.full((1, 1, 3), fill, dtype=np.uint8)
    ch, cw = max(c.shape[0] for c in cells), max(c.shape[1] for c in cells)
    ncols = max(len(r) for r in rows)
    out = np.full((len(rows) * (ch + pad) + pad, ncols * (cw + pad) + pad, 3), fill, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            if cell is None:
                continue
            y, x = pad + i * (ch + pad), pad + j * (cw + pad)
            out[y : y + cell.shape[0], x : x + cell.shape[1]] = cell
    return out


def segmentation_rows(images: Sequence[np.ndarray], truths: Sequence[np.ndarray | None],
                      pseudo: Sequence[np.ndarray | None] | None, predictions: Sequence[np.ndarray],
                      palette: np.ndarray, min_side: int = 96) -> tuple[list[list[np.ndarray | None]], list[str]]:
    """The cells of a segmentation sample grid and its column titles.

    Args:
        images: ``H x W x 3`` uint8 per sample.
        truths: ground-truth class maps (``None`` where the image has none).
        pseudo: the kept pseudo labels (255 where not kept), or ``None`` for a stage without.
        predictions: the model's class maps, each at its image's size.
        palette: class colours.
        min_side: tiny images are enlarged (nearest) to at least this many pixels.
    """
    columns = ["image"]
    with_truth = any(t is not None for t in truths)
    if with_truth:
        columns.append("ground truth")
    if pseudo is not None:
        columns.append("kept pseudo labels")
    columns.append("prediction")
    rows = []
    for k, image in enumerate(images):
        row: list[np.ndarray | None] = [image]
        if with_truth:
            row.append(colourise(truths[k], palette) if truths[k] is not None else None)
        if pseudo is not None:
            row.append(colourise(pseudo[k], palette) if pseudo[k] is not None else None)
        row.append(colourise(predictions[k], palette))
        rows.append([upscale(c, min_side) if c is not None else None for c in row])
    return rows, columns


def changes_map(truth: np.ndarray, before: np.ndarray, after: np.ndarray, ignore: int = 255) -> np.ndarray:
    """``H x W x 3`` uint8: green where ``after`` is right and ``before`` wrong, red the reverse,
    white where neither changed from right to wrong or back, cream where ``truth`` is ``ignore``."""
    truth, before, after = np.asarray(truth), np.asarray(before), np.asarray(after)
    out = np.empty((*truth.shape, 3), dtype=np.uint8)
    out[...] = UNCHANGED_COLOUR
    right_before, right_after = before == truth, after == truth
    out[right_after & ~right_before] = GAINED_COLOUR
    out[right_before & ~right_after] = LOST_COLOUR
    out[truth == ignore] = IGNORE_COLOUR
    return out


def comparison_rows(images: Sequence[np.ndarray], truths: Sequence[np.ndarray], before: Sequence[np.ndarray],
                    after: Sequence[np.ndarray], palette: np.ndarray, min_side: int = 96) -> list[list[np.ndarray]]:
    """The cells of an evaluation-image comparison, one row per image in the order of
    :data:`COMPARISON_COLUMNS`: image | ground truth | before | after | :func:`changes_map`.

    ``before`` / ``after``: two models' class maps at each image's size (the better baseline and
    the last phase's better model); tiny images are enlarged (nearest) to ``min_side``.
    """
    rows = []
    for image, truth, b, a in zip(images, truths, before, after, strict=True):
        row = [image, colourise(truth, palette), colourise(b, palette), colourise(a, palette), changes_map(truth, b, a)]
        rows.append([upscale(c, min_side) for c in row])
    return rows


def save_samples(stage_dir: Path, picture: np.ndarray, info: dict) -> None:
    """Write ``samples.png`` and ``samples.json`` (names, columns, classes, palette) into ``stage_dir``."""
    from PIL import Image

    with atomic_path(stage_dir / SAMPLES_PNG) as tmp:  # the suffix (.png) chooses the format
        Image.fromarray(picture).save(tmp)
    write_text(stage_dir / SAMPLES_JSON, json.dumps(info, indent=1))


def titled(picture: np.ndarray, titles: Sequence[str], cell_width: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """``picture`` (a :func:`grid` of ``cell_width``-wide cells) under a strip naming its columns.

    Each title is drawn in PIL's default bitmap font, one line per ``"\\n"``-separated part, left
    aligned over its column, so the picture reads on its own outside ``dmt report``.
    """
    from PIL import Image, ImageDraw

    lines = max((t.count("\n") + 1 for t in titles), default=1)
    strip = Image.new("RGB", (picture.shape[1], 12 * lines + 2 * pad), (fill,) * 3)
    draw = ImageDraw.Draw(strip)
    for k, title in enumerate(titles):
        draw.multiline_text((pad + k * (cell_width + pad) + 1, pad), title, fill=(0, 0, 0), spacing=1)
    return np.concatenate([np.asarray(strip), picture], axis=0)
