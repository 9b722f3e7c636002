"""Named classification train/eval transform presets (CIFAR-style, also for 1-channel 8x8 digits).

RandomCrop with padding, horizontal flip, RandAugment (torchvision's operations at a random
magnitude, or the DMT paper's own variant, :mod:`dmt.data.randaugment`) and Cutout. All
randomness comes from torch's global generator, as in :mod:`dmt.data.transforms`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from dmt.data.randaugment import OriginalRandAugment
from dmt.data.transforms import Transform, size_of


class Cutout(Transform):
    """Sets one ``size x size`` square of an image to a constant grey.

    The square's centre is uniform over the image and the square is clipped at the border, so
    near the edges less than ``size x size`` is covered (as in DeVries & Taylor, 2017). Unlike
    ``v2.RandomErasing``, whose area and aspect are random, the side is fixed.
    """

    def __init__(self, size: int, value: float = 0.5) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"cutout size must be >= 1, got {size}")
        self.size = int(size)
        self.value = float(value)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = size_of(flat_inputs)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half = self.size // 2
        top, left = max(0, cy - half), max(0, cx - half)
        return {"rows": slice(top, min(h, cy - half + self.size)), "cols": slice(left, min(w, cx - half + self.size))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask) or not isinstance(inpt, torch.Tensor):
            return inpt
        out = inpt.clone()
        value = self.value if out.is_floating_point() else round(self.value * 255)
        out[..., params["rows"], params["cols"]] = value
        return out


class RandomMagnitudeRandAugment(v2.RandAugment):
    """RandAugment whose magnitude is drawn per image, uniformly from 1..``max_magnitude``.

    Magnitudes are on a 0..10 scale (``magnitude / 10`` of each operation's range), as in the
    RandAugment variant the DMT paper trained with; ``v2.RandAugment`` alone keeps it fixed.
    """

    def __init__(self, num_ops: int, max_magnitude: int, fill: int | float) -> None:
        if not 1 <= max_magnitude <= 10:
            raise ValueError(f"max_magnitude must be in 1..10, got {max_magnitude}")
        super().__init__(num_ops=num_ops, magnitude=max_magnitude, num_magnitude_bins=11, fill=fill)
        self.max_magnitude = max_magnitude

    def forward(self, *inputs: Any) -> Any:
        self.magnitude = int(torch.randint(1, self.max_magnitude + 1, ()))
        return super().forward(*inputs)


def classification_train_transform(
    size: int,
    padding: int = 4,
    fill: int = 128,
    randaugment: bool = True,
    num_ops: int = 1,
    magnitude: int = 10,
    random_magnitude: bool = True,
    cutout: int | None = 16,
    hflip: bool = True,
    policy: str = "torchvision",
) -> v2.Compose:
    """The classification training preset (CIFAR-style, also for 1-channel 8x8 digits).

    RandomCrop(size, padding, fill) -> horizontal flip -> RandAugment -> float [0, 1] -> Cutout.

    Args:
        size: Output side (32 for CIFAR, 8 for digits).
        padding: Crop padding on every side (4 for CIFAR, 1 for 8x8 digits).
        fill: Padding and RandAugment fill value, as uint8 (128 = mid grey).
        randaugment: Apply RandAugment.
        num_ops: RandAugment operations per image.
        magnitude: RandAugment magnitude on a 0..10 scale; the maximum when ``random_magnitude``.
        random_magnitude: Draw the magnitude per image from 1..``magnitude`` (the paper's setting)
            instead of using it fixed.
        cutout: Side of the grey (0.5) Cutout square, ``None`` for none (16 for CIFAR, 3-4 for 8x8).
        hflip: Random horizontal flips (off for digits: a mirrored digit is another glyph).
        policy: ``"torchvision"``: torchvision's RandAugment operations (``fill`` for geometric
            operations); ``"original"``: the DMT paper's variant
            (:class:`dmt.data.randaugment.OriginalRandAugment`: 16 operations with Cutout among
            them, absolute translations; ``num_ops`` and ``magnitude`` as the maximum, the
            magnitude always random). The original uses no separate Cutout: pass ``cutout=None``.

    Returns:
        A transform from a uint8 ``C x H x W`` tensor (or tv_tensors.Image) to float32 in [0, 1].
    """
    steps: list[Callable[[Any], Any]] = [
        v2.RandomCrop(size, padding=padding, fill=fill),
        v2.RandomHorizontalFlip(p=0.5 if hflip else 0.0),
    ]
    if policy not in ("torchvision", "original"):
        raise ValueError(f"policy must be 'torchvision' or 'original', got {policy!r}")
    if randaugment and policy == "original":
        steps.append(OriginalRandAugment(num_ops, magnitude))
    elif randaugment:
        if random_magnitude:
            steps.append(RandomMagnitudeRandAugment(num_ops, magnitude, fill))
        else:
            steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=11, fill=fill))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    if cutout:
        steps.append(Cutout(cutout, 0.5))
    steps.append(v2.ToPureTensor())
    return v2.Compose(steps)


def classification_eval_transform() -> v2.Compose:
    """uint8 ``C x H x W`` -> float32 in [0, 1], nothing else."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()])
