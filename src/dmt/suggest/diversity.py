"""The diversity rule: the top images, skipping near-duplicates of images already chosen.

Each image is summarised by a :func:`thumbnail`: its pixels averaged over a ``side x side`` grid
of blocks, scaled to [0, 1] (a few hundred numbers, computed a block of rows at a time, so a large
image needs no float copy of itself). Two images are near-duplicates when the mean absolute
difference of their thumbnails (:func:`distance`) is below ``min_distance`` (default 0.04: 4 % of
the intensity range on average: the same scene shot twice, or a frame and its neighbour).

:func:`pick` walks the images from the highest score down and takes an image unless it is a
near-duplicate of one already taken. When fewer than ``count`` images are that distinct, the
skipped ones fill the rest in score order, each marked with the chosen image it resembles.
"""

from __future__ import annotations

import numpy as np

THUMB_SIDE = 16
MIN_DISTANCE = 0.04


def thumbnail(pixels: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """``side x side x C`` float32 in [0, 1]: the mean of each block of ``H x W x C`` uint8 pixels.

    Block edges are ``round(i * H / side)``; an image smaller than ``side`` repeats its pixels.
    """
    h, w = pixels.shape[:2]
    rows = np.minimum((np.arange(side + 1) * h / side).round().astype(int), h)
    cols = np.minimum((np.arange(side + 1) * w / side).round().astype(int), w)
    out = np.empty((side, side, pixels.shape[2]), dtype=np.float32)
    for i in range(side):
        r0, r1 = rows[i], max(rows[i + 1], rows[i] + 1)
        band = pixels[min(r0, h - 1) : min(r1, h)].mean(axis=0, dtype=np.float64)  # W x C, one block of rows
        for j in range(side):
            c0, c1 = cols[j], max(cols[j + 1], cols[j] + 1)
            out[i, j] = band[min(c0, w - 1) : min(c1, w)].mean(axis=0)
    return out / 255.0


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails (grey against colour: compared as grey)."""
    if a.shape != b.shape:
        a, b = a.mean(axis=2, keepdims=True), b.mean(axis=2, keepdims=True)
    return float(np.abs(a - b).mean())


def pick(scores: list[float], thumbs: list[np.ndarray], count: int, min_distance: float = MIN_DISTANCE
         ) -> list[tuple[int, int | None]]:
    """``(image index, index of the chosen image it resembles or None)`` of ``count`` images, best first.

    Ties in score keep the input order (a stable sort).
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    chosen: list[int] = []
    skipped: list[tuple[int, int]] = []
    for i in order:
        if len(chosen) == count:
            break
        near = next((c for c in chosen if distance(thumbs[i], thumbs[c]) < min_distance), None)
        if near is None:
            chosen.append(i)
        else:
            skipped.append((i, near))
    out: list[tuple[int, int | None]] = [(i, None) for i in chosen]
    # fewer distinct images than asked for (the loop ran out, so every other image was skipped):
    # the near-duplicates fill the rest, best first
    out += skipped[: count - len(out)]
    return out
