"""Writers of tiny segmentation datasets in the official on-disk layouts, for the data tests.

Everything is written with PIL as real files under the names and folders the real datasets
use, so the readers are tested on the formats they will meet: JPEG images and palette-mode
PNG masks for VOC, PNG images and grey labelId PNGs for Cityscapes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from dmt.data.voc import voc_colormap

# Cityscapes labelIds used by the fixture masks and the train ids they must map to.
CITY_IDS = np.array([7, 26, 0, 1, 33, 8, 24, 13], dtype=np.uint8)
CITY_TRAIN_IDS = np.array([0, 13, 255, 255, 18, 1, 11, 4], dtype=np.uint8)


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root``, keyed by relative path (to prove nothing was written)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def smooth_image(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth RGB uint8 image (JPEG keeps it close to the original)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    a, b, c = rng.uniform(40, 200, 3)
    rgb = np.stack([a + 50 * np.sin(x / 7), b + 40 * np.cos(y / 5), c + 30 * np.sin((x + y) / 9)], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def voc_mask(seed: int, size: tuple[int, int], num_classes: int = 21) -> np.ndarray:
    """Class regions in vertical bands, with VOC's 255 boundary lines between them and a 255 frame."""
    h, w = size
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, num_classes, 4)
    mask = np.repeat(classes, -(-w // 4))[:w][None].repeat(h, 0).astype(np.uint8)
    mask[:, np.flatnonzero(np.diff(mask[0].astype(int)) != 0)] = 255
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = 255
    return mask


def save_palette_png(mask: np.ndarray, path: Path) -> None:
    """Saves a class-index mask as a palette ('P') PNG with the VOC colours, as VOC ships them."""
    img = Image.fromarray(mask)
    img.putpalette(voc_colormap(256).tobytes())
    assert img.mode == "P"
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def write_voc_tree(
    root: Path,
    splits: dict[str, list[str]] | None = None,
    size: tuple[int, int] = (24, 32),
    below: str = "VOCdevkit/VOC2012",
    train_aug_file: str = "train_aug.txt",
) -> Path:
    """A VOC2012 + SegmentationClassAug tree; returns the VOC2012 folder.

    Item ``k`` (in order of first appearance) has image ``smooth_image(k)`` and mask ``voc_mask(k)``;
    odd items are one pixel wider, so sizes differ as in the real data.
    """
    splits = splits or {
        "train_aug": ["2007_000032", "2007_000039", "2008_000002", "2011_003276"],
        "train": ["2007_000032", "2007_000039"],
        "val": ["2007_000033", "2010_000005"],
    }
    base = root / below
    (base / "JPEGImages").mkdir(parents=True)
    (base / "SegmentationClassAug").mkdir(parents=True)
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    names = list(dict.fromkeys(n for items in splits.values() for n in items))
    for k, name in enumerate(names):
        h, w = size[0], size[1] + k % 2
        Image.fromarray(smooth_image(k, (h, w))).save(base / "JPEGImages" / f"{name}.jpg", quality=95)
        save_palette_png(voc_mask(k, (h, w)), base / "SegmentationClassAug" / f"{name}.png")
    for split, items in splits.items():
        file = train_aug_file if split == "train_aug" else f"{split}.txt"
        (lists / file).write_text("".join(f"{n}\n" for n in items))
    return base


def city_mask(seed: int, size: tuple[int, int]) -> np.ndarray:
    """labelIds constant on 2x2 blocks, drawn from ``CITY_IDS`` (so nearest /2 is exact)."""
    h, w = size
    rng = np.random.default_rng(seed)
    blocks = CITY_IDS[rng.integers(0, len(CITY_IDS), (h // 2, w // 2))]
    return blocks.repeat(2, 0).repeat(2, 1)


def write_cityscapes_tree(
    root: Path,
    cities: dict[str, dict[str, int]] | None = None,
    size: tuple[int, int] = (32, 64),
) -> Path:
    """A Cityscapes tree (leftImg8bit + gtFine with labelIds, color, instanceIds, polygons).

    ``cities`` maps split -> city -> number of frames. Returns ``root``.
    """
    cities = cities or {"train": {"bremen": 1, "aachen": 2}, "val": {"frankfurt": 2}, "test": {"berlin": 1}}
    k = 0
    for split, per_city in cities.items():
        for city, frames in per_city.items():
            for f in range(frames):
                stem = f"{city}_{f:06d}_{19 + 10 * f:06d}"
                img_dir = root / "leftImg8bit" / split / city
                gt_dir = root / "gtFine" / split / city
                img_dir.mkdir(parents=True, exist_ok=True)
                gt_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(smooth_image(100 + k, size)).save(img_dir / f"{stem}_leftImg8bit.png")
                ids = city_mask(k, size) if split != "test" else np.zeros(size, np.uint8)
                Image.fromarray(ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
                Image.fromarray(np.zeros((*size, 3), np.uint8)).save(gt_dir / f"{stem}_gtFine_color.png")
                Image.fromarray(ids.astype(np.uint16) * 1000).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
                (gt_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps({"imgHeight": size[0], "objects": []}))
                k += 1
    return root


def write_folder_tree(
    root: Path,
    labelled: dict[str, np.ndarray],
    unlabelled: list[str] = (),  # type: ignore[assignment]
    classes: tuple[str, ...] = ("background", "cat", "dog"),
    palette: list[tuple[int, int, int]] | None = None,
    splits: dict[str, list[str]] | None = None,
    image_ext: str = ".png",
) -> Path:
    """A custom-layout folder: ``labelled`` maps stem -> grey mask (image gets the mask's size)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k, (stem, mask) in enumerate(labelled.items()):
        Image.fromarray(smooth_image(200 + k, mask.shape)).save(root / "images" / f"{stem}{image_ext}")
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    for k, stem in enumerate(unlabelled):
        Image.fromarray(smooth_image(300 + k, (16, 20))).save(root / "images" / f"{stem}{image_ext}")
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    if palette is not None:
        (root / "palette.txt").write_text("".join(f"{r} {g} {b}\n" for r, g, b in palette))
    if splits:
        (root / "splits").mkdir()
        for name, stems in splits.items():
            (root / "splits" / f"{name}.txt").write_text("".join(f"{s}\n" for s in stems))
    return root
