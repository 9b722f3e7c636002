"""Writers and readers for the import tests: tiny fabricated images (8 x 6), masks read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

W, H = 8, 6


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (W, H)) -> Path:
    """Write one small RGB image per name (format from the suffix) into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        pixels = np.full((size[1], size[0], 3), 40 * k % 256, dtype=np.uint8)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
    return folder


def read_mask(path: Path) -> np.ndarray:
    """A written mask's pixel values (palette indices, not colours)."""
    with Image.open(path) as img:
        assert img.mode in ("P", "L")
        return np.asarray(img).copy()


def assert_masks(read, expected: dict[str, np.ndarray], unannotated: list[str]) -> dict[str, np.ndarray | None]:
    """An import's masks by image stem: ``unannotated`` images have none (unlabelled), the others
    equal ``expected`` pixel for pixel. Returns them, for further checks."""
    got = {p.stem: m for p, m in read.items}
    assert [got[stem] for stem in unannotated] == [None] * len(unannotated)
    for stem, mask in expected.items():
        np.testing.assert_array_equal(got[stem], mask, err_msg=stem)
    return got
