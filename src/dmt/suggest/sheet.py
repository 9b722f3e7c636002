"""The contact sheet of the top suggestions: one row per image (image, member A, member B, disagreement).

Every picture is a small tile (the longer side :data:`TILE` pixels) sampled from the full-size
maps by nearest neighbour, so a row costs a few tens of kB whatever the image's size. The
disagreement tile shows the image darkened, red where the members' classes differ. A one-member
run's rows are image, prediction and low confidence (red where the probability is below the
threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dmt.atomic import atomic_path

TILE = 160  # pixels: the longer side of every tile
LABEL_H = 18  # pixels: the caption above each row
RED = np.array([230, 30, 30], dtype=np.uint8)


def sample_grid(shape: tuple[int, ...], side: int = TILE) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices that sample an ``H x W`` map to a tile of longer side ``side`` (pixel centres)."""
    h, w = shape[:2]
    scale = side / max(h, w)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    rows = np.minimum(((np.arange(th) + 0.5) * h / th).astype(int), h - 1)
    cols = np.minimum(((np.arange(tw) + 0.5) * w / tw).astype(int), w - 1)
    return rows, cols


def tile(values: np.ndarray, side: int = TILE) -> np.ndarray:
    """``values`` (``H x W`` or ``H x W x C``) sampled at :func:`sample_grid` (a copy of a few kB)."""
    rows, cols = sample_grid(values.shape, side)
    return values[rows][:, cols]


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """``H x W x 1`` grey repeated to three channels; RGB as it is."""
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def marked(image_tile: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The image tile darkened to a third, red where ``where`` is true."""
    out = (as_rgb(image_tile) // 3).astype(np.uint8)
    out[where] = RED
    return out


@dataclass
class SheetRow:
    """One image's tiles: the image, the members' class tiles (one or two) and the marked tile."""

    caption: str
    image: np.ndarray
    classes: list[np.ndarray]
    marks: np.ndarray


def sheet_row(caption: str, image_tile: np.ndarray, class_tiles: list[np.ndarray], confidence_tile: np.ndarray | None,
              threshold: float) -> SheetRow:
    """A :class:`SheetRow` from tiles (:func:`tile`): two members' classes, or one member's classes and
    its uint8 confidence (marked below ``threshold``)."""
    image = as_rgb(image_tile)
    if len(class_tiles) == 2:
        where = class_tiles[0] != class_tiles[1]
    else:
        assert confidence_tile is not None
        where = confidence_tile.astype(np.float32) < 255.0 * threshold
    return SheetRow(caption, image, class_tiles, marked(image, where))


def write_sheet(path: Path, rows: list[SheetRow], palette: np.ndarray, headers: list[str]) -> Path:
    """The sheet PNG: a header line, then one captioned row of tiles per image."""
    cell = TILE + 8
    columns = len(headers)
    height = LABEL_H + len(rows) * (LABEL_H + cell)
    sheet = Image.new("RGB", (columns * cell, max(height, LABEL_H + 1)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for j, text in enumerate(headers):
        draw.text((j * cell + 4, 3), text, fill=(0, 0, 0), font=font)
    for i, row in enumerate(rows):
        y = LABEL_H + i * (LABEL_H + cell)
        draw.text((4, y + 3), row.caption, fill=(0, 0, 0), font=font)
        pictures = [row.image, *(palette[c] for c in row.classes), row.marks]
        for j, picture in enumerate(pictures):
            sheet.paste(Image.fromarray(np.ascontiguousarray(picture, dtype=np.uint8)), (j * cell + 4, y + LABEL_H + 4))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
