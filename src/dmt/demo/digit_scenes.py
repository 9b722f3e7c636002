"""Digit scenes: an offline segmentation demo built from scikit-learn's bundled digits.

Each scene is a small colour image: a smooth random-colour background with one or more 8x8
handwritten digits (``sklearn.datasets.load_digits``) scaled up, tinted and pasted on it. The
mask labels every stroke pixel with its digit's class (position in ``digits`` plus 1) and
everything else 0 (background); where digits overlap the later one wins. Strokes are always
brighter than the background, so finding them is easy and telling the digits apart is the task.

Test scenes are drawn from a disjoint pool of source digits (every fifth ``load_digits``
image), so a model is scored on handwriting it never saw. Generation is deterministic per seed
and uses its own numpy generator, never global random state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as tnf

from dmt.data.segmentation import SegItem, SegSource
from dmt.data.voc import voc_colormap
from dmt.errors import UserError

TEST_EVERY = 5  # load_digits images with index % 5 == 0 (360 of 1,797) only appear in test scenes
_GRID = 4  # the background is bilinear-upsampled from a 4x4 grid of random colours: smooth
_TEXTURE = 0.03  # std of the per-pixel noise on the background
_BACKGROUND_MAX = 0.35  # background channels lie in [0, 0.35] ...
_TINT_MIN = 0.55  # ... digit tints in [0.55, 1] with one channel at 1: strokes stand out


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # deferred: scikit-learn is slow to import

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def digit_pool(split: Literal["train", "test"]) -> np.ndarray:
    """Indices into ``load_digits`` whose images may appear in ``split`` scenes (disjoint)."""
    index = np.arange(len(_digits()[1]))
    if split == "test":
        return index[index % TEST_EVERY == 0]
    if split == "train":
        return index[index % TEST_EVERY != 0]
    raise ValueError(f"pool must be 'train' or 'test', got {split!r}")


@dataclass(frozen=True)
class DigitScenesPlan:
    """Every random choice behind a set of scenes; one row per pasted digit, in painting order."""

    size: tuple[int, int]
    seed: int | tuple[int, ...]
    background: np.ndarray  # N x 4 x 4 x 3 float32 in [0, 1]: the coarse background colours
    scene: np.ndarray  # P int64: which scene the digit goes into
    source: np.ndarray  # P int64: index into load_digits
    label: np.ndarray  # P uint8: mask value of its stroke (1..len(digits))
    top: np.ndarray  # P int64
    left: np.ndarray  # P int64
    side: np.ndarray  # P int64: the digit is scaled to side x side
    tint: np.ndarray  # P x 3 float32 in [0, 1]


def plan_digit_scenes(
    num_scenes: int,
    size: tuple[int, int] = (48, 48),
    digits: Sequence[int] = tuple(range(10)),
    digits_per_scene: tuple[int, int] = (1, 3),
    digit_scale: tuple[float, float] = (2.0, 3.0),
    seed: int | Sequence[int] = 0,
    pool: Literal["train", "test"] | Sequence[int] = "train",
) -> DigitScenesPlan:
    """Draws the layout of ``num_scenes`` scenes; see :func:`make_digit_scenes` for the arguments."""
    digits = tuple(int(d) for d in digits)
    if not digits or len(set(digits)) != len(digits) or not all(0 <= d <= 9 for d in digits):
        raise ValueError(f"digits must be distinct values in 0..9, got {digits}")
    lo, hi = digits_per_scene
    if not 0 <= lo <= hi:
        raise ValueError(f"digits_per_scene must satisfy 0 <= min <= max, got {digits_per_scene}")
    if not 0 < digit_scale[0] <= digit_scale[1]:
        raise ValueError(f"digit_scale must satisfy 0 < min <= max, got {digit_scale}")
    height, width = size
    _, targets = _digits()
    pool_index = digit_pool(pool) if isinstance(pool, str) else np.asarray(pool, dtype=np.int64)
    candidates = pool_index[np.isin(targets[pool_index], digits)]
    if len(candidates) == 0:
        raise ValueError(f"the pool holds no images of digits {digits}")
    label_of = np.zeros(10, dtype=np.uint8)
    label_of[list(digits)] = np.arange(1, len(digits) + 1)

    rng = np.random.default_rng(seed)
    background = rng.uniform(0.0, _BACKGROUND_MAX, (num_scenes, _GRID, _GRID, 3)).astype(np.float32)
    counts = rng.integers(lo, hi + 1, num_scenes)
    scene = np.repeat(np.arange(num_scenes), counts)
    n = len(scene)
    source = rng.choice(candidates, n)
    side = np.rint(8 * rng.uniform(digit_scale[0], digit_scale[1], n)).astype(np.int64)
    side = np.clip(side, 1, min(height, width))
    top = rng.integers(0, height - side + 1)
    left = rng.integers(0, width - side + 1)
    tint = rng.uniform(_TINT_MIN, 1.0, (n, 3))
    tint[np.arange(n), rng.integers(0, 3, n)] = 1.0  # a saturated channel: varied, bright hues
    return DigitScenesPlan(
        size=(height, width),
        seed=seed if isinstance(seed, int) else tuple(seed),
        background=background,
        scene=scene,
        source=source,
        label=label_of[targets[source]],
        top=top,
        left=left,
        side=side,
        tint=tint.astype(np.float32),
    )


def render_digit_scenes(plan: DigitScenesPlan, stroke_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Paints the scenes of a plan.

    Returns:
        ``(images, masks)``: uint8 ``N x H x W x 3`` and uint8 ``N x H x W``.
    """
    height, width = plan.size
    num_scenes = len(plan.background)
    coarse = torch.from_numpy(plan.background).permute(0, 3, 1, 2)
    canvas = tnf.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    canvas = canvas.permute(0, 2, 3, 1).numpy().copy()
    texture_rng = np.random.default_rng([*np.atleast_1d(plan.seed), 1])  # a stream apart from the plan's
    canvas += texture_rng.normal(0.0, _TEXTURE, canvas.shape).astype(np.float32)
    masks = np.zeros((num_scenes, height, width), dtype=np.uint8)

    # Scale all digits of one side length in a single bilinear call (a handful of calls in all).
    glyphs, _ = _digits()
    patches: list[np.ndarray | None] = [None] * len(plan.scene)
    for side in np.unique(plan.side):
        rows = np.flatnonzero(plan.side == side)
        src = torch.from_numpy(glyphs[plan.source[rows]])[:, None]
        scaled = tnf.interpolate(src, size=(int(side), int(side)), mode="bilinear", align_corners=False)
        for row, patch in zip(rows, scaled[:, 0].clamp_(0, 1).numpy()):
            patches[row] = patch

    for p, alpha in enumerate(patches):  # painting order: a later digit covers an earlier one
        s, t, l, side = plan.scene[p], plan.top[p], plan.left[p], plan.side[p]
        region = canvas[s, t : t + side, l : l + side]
        region += alpha[..., None] * (plan.tint[p] - region)  # alpha blend towards the tint
        masks[s, t : t + side, l : l + side][alpha >= stroke_threshold] = plan.label[p]
    images = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return images, masks


def make_digit_scenes(
    num_scenes: int,
    size: tuple[int, int] = (48, 48),
    digits: Sequence[int] = tuple(range(10)),
    digits_per_scene: tuple[int, int] = (1, 3),
    digit_scale: tuple[float, float] = (2.0, 3.0),
    seed: int | Sequence[int] = 0,
    pool: Literal["train", "test"] | Sequence[int] = "train",
    stroke_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Generates digit scenes.

    Args:
        num_scenes: Number of scenes N.
        size: Scene (H, W).
        digits: The digit classes used; digit ``digits[k]`` gets mask label ``k + 1``.
        digits_per_scene: Inclusive range of digits pasted per scene.
        digit_scale: Range of the upscaling factor of the 8x8 digits (2-3 gives 16-24 px).
        seed: Seed (int or ints) of the private generator: same seed, same scenes.
        pool: ``"train"`` or ``"test"`` source-digit pool (disjoint), or explicit indices.
        stroke_threshold: Scaled digit intensity (0..1) above which a pixel is labelled stroke.

    Returns:
        ``(images, masks)``: uint8 ``N x H x W x 3`` RGB and uint8 ``N x H x W`` labels.
    """
    plan = plan_digit_scenes(num_scenes, size, digits, digits_per_scene, digit_scale, seed, pool)
    return render_digit_scenes(plan, stroke_threshold)


class _InMemoryLayout:
    """Names -> in-memory items (a class, not closures, so datasets pickle)."""

    def __init__(self, splits: dict[str, list[SegItem]]) -> None:
        self.splits = splits
        self.by_name = {item.name: item for items in splits.values() for item in items}

    def list_split(self, split: str) -> list[str]:
        return [item.name for item in self.splits[split]]

    def make_item(self, name: str) -> SegItem:
        if name not in self.by_name:
            raise UserError(f"digit scenes have no item {name!r} (names look like 'train/00000')")
        return self.by_name[name]


def digit_scenes_source(
    num_train: int = 1000,
    num_val: int = 200,
    size: tuple[int, int] = (48, 48),
    digits: Sequence[int] = tuple(range(10)),
    digits_per_scene: tuple[int, int] = (1, 3),
    digit_scale: tuple[float, float] = (2.0, 3.0),
    seed: int = 0,
) -> SegSource:
    """Digit scenes as a :class:`SegSource` with splits ``train`` and ``val``, held in memory.

    ``val`` scenes use the test pool of source digits and their own random stream, so they do
    not change when ``num_train`` does. Item names are ``train/00000``, ``val/00000``, ...
    """
    splits: dict[str, list[SegItem]] = {}
    mean = (0.5, 0.5, 0.5)
    for stream, (split, count, pool) in enumerate((("train", num_train, "train"), ("val", num_val, "test"))):
        images, masks = make_digit_scenes(count, size, digits, digits_per_scene, digit_scale, (seed, stream), pool)
        splits[split] = [SegItem(f"{split}/{i:05d}", images[i], masks[i]) for i in range(count)]
        if split == "train" and count:
            mean = tuple(float(v) for v in images.reshape(-1, 3).mean(0) / 255.0)
    layout = _InMemoryLayout(splits)
    class_names = ("background", *(str(int(d)) for d in digits))
    return SegSource(
        name="digit_scenes",
        class_names=class_names,
        split_names=("train", "val"),
        list_split=layout.list_split,
        make_item=layout.make_item,
        palette=voc_colormap(len(class_names)),
        mean=mean,  # type: ignore[arg-type]
    )
