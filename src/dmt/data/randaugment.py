"""The RandAugment variant of the DMT paper's CIFAR-10 experiments (``data.randaugment_policy: original``).

The original trains with a RandAugment whose operation list follows the TPU EfficientNet
policy: 16 operations, Cutout among them, and absolute pixel translations. Per image it draws
one magnitude ``m`` uniformly from ``1 .. max_magnitude`` (10) and ``num_ops`` (1) operations
with replacement, each applied for sure with the value ``m / 10 * (high - low) + low`` of its
range. There is no separate Cutout after it.

=============  ==============  ====================================================
operation      range           value at magnitude m = 1 .. 10
=============  ==============  ====================================================
AutoContrast   -               per-channel min/max stretch
Equalize       -               per-channel histogram equalisation
Invert         -               255 - x
Rotate         0 .. 30         ±3m degrees (random sign), black corners
Posterize      0 .. 4          keep max(1, int(0.4m)) bits: 1, 1, 1, 1, 2, 2, 2, 3, 3, 4
Solarize       0 .. 256        invert pixels >= 25.6m (m = 10: none)
SolarizeAdd    0 .. 110        add 11m (clipped to 255), then invert pixels >= 128
Color          0.1 .. 1.9      saturation factor 0.1 + 0.18m
Contrast       0.1 .. 1.9      contrast factor 0.1 + 0.18m
Brightness     0.1 .. 1.9      brightness factor 0.1 + 0.18m
Sharpness      0.1 .. 1.9      sharpness factor 0.1 + 0.18m
ShearX/ShearY  0 .. 0.3        ±0.03m shear about the top-left corner, black fill
Cutout         0 .. 40         a square of side 4m (+1, see :func:`cutout`) in (125, 123, 114)
TranslateX/Y   0 .. 100        ±10m pixels (on 32-pixel CIFAR, m >= 4 empties the image), black
=============  ==============  ====================================================

Written from that description with ``torchvision.transforms.v2.functional`` kernels on uint8
tensors (``C x H x W``); all randomness comes from torch's global generator, like the other
transforms of :mod:`dmt.data.transforms`. The photometric kernels are torchvision's, not PIL's,
so single pixel values may differ by rounding from the original's PIL output; geometric
operations use nearest-neighbour sampling and black fill, as PIL's defaults did there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from dmt.data.transforms import Transform, size_of

CUTOUT_COLOUR = (125, 123, 114)  # RGB of the original's Cutout patch (about CIFAR-10's mean)


# ---- kernels: pure functions of a uint8 image and the operation's value -----------------------
def invert(image: torch.Tensor) -> torch.Tensor:
    """``255 - x``."""
    return F.invert(image)


def posterize(image: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the ``bits`` (1..8) high bits of every value."""
    return F.posterize(image, int(bits))


def solarize(image: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert the values ``>= threshold``; a threshold above 255 changes nothing."""
    # a float threshold: an int one would be cast to uint8 first, and 256 would wrap to 0
    return torch.where(image >= float(threshold), 255 - image, image)


def solarize_add(image: torch.Tensor, addition: float, threshold: float = 128) -> torch.Tensor:
    """Add ``addition``, clip to 0..255 and truncate to integers, then :func:`solarize`."""
    added = (image.to(torch.float32) + addition).clamp(0, 255).floor().to(torch.uint8)
    return solarize(added, threshold)


def translate(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Move the content by ``dx`` pixels right and ``dy`` down; uncovered pixels are black."""
    h, w = image.shape[-2:]
    out = torch.zeros_like(image)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[..., max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
        image[..., max(-dy, 0): h - max(dy, 0), max(-dx, 0): w - max(dx, 0)]
    return out


def shear(image: torch.Tensor, factor: float, axis: str) -> torch.Tensor:
    """Shear by ``factor`` (x' = x + factor * y for ``axis="x"``) about the top-left corner."""
    angle = math.degrees(math.atan(factor))
    return F.affine(image, angle=0.0, translate=[0, 0], scale=1.0,
                    shear=[angle, 0.0] if axis == "x" else [0.0, angle],
                    interpolation=InterpolationMode.NEAREST, fill=0, center=[0, 0])


def rotate(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate counter-clockwise about the centre, nearest neighbour, black corners."""
    return F.rotate(image, degrees, interpolation=InterpolationMode.NEAREST, fill=0)


def cutout_box(size: float, centre_x: float, centre_y: float, height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns the original's Cutout paints.

    Its corner is ``int(max(0, centre - size / 2))`` on each axis and the patch is drawn as a
    rectangle from the corner to ``corner + size`` *inclusive* (PIL's rectangle includes its end
    point), clipped to the image: an unclipped patch is ``size + 1`` pixels on a side.
    """
    left, top = int(max(0.0, centre_x - size / 2)), int(max(0.0, centre_y - size / 2))
    right, bottom = min(width - 1, int(left + size)), min(height - 1, int(top + size))
    return slice(top, bottom + 1), slice(left, right + 1)


def cutout(image: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """Paint ``image[rows, cols]`` in :data:`CUTOUT_COLOUR` (its mean for one channel)."""
    out = image.clone()
    colour = torch.tensor(CUTOUT_COLOUR, dtype=image.dtype, device=image.device)
    if image.shape[-3] == 1:
        colour = colour.float().mean().round().to(image.dtype).reshape(1)
    out[..., rows, cols] = colour.reshape(-1, 1, 1)
    return out


# ---- the operation list -----------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    """One operation: its range and how it applies a value (``sign`` is -1 or +1, drawn per use;
    ``centre`` is a point in the image, used by Cutout)."""

    name: str
    low: float
    high: float
    apply: Callable[[torch.Tensor, float, int, tuple[float, float]], torch.Tensor]

    def value(self, magnitude: int) -> float:
        """The operation's value at ``magnitude`` (0..10): ``magnitude / 10`` of its range."""
        return magnitude / 10 * (self.high - self.low) + self.low


def _cutout_op(image: torch.Tensor, size: float, sign: int, centre: tuple[float, float]) -> torch.Tensor:
    h, w = image.shape[-2:]
    return cutout(image, *cutout_box(size, centre[0], centre[1], h, w))


OPERATIONS: tuple[Operation, ...] = (
    Operation("AutoContrast", 0, 1, lambda x, v, s, c: F.autocontrast(x)),
    Operation("Equalize", 0, 1, lambda x, v, s, c: F.equalize(x)),
    Operation("Invert", 0, 1, lambda x, v, s, c: invert(x)),
    Operation("Rotate", 0, 30, lambda x, v, s, c: rotate(x, s * v)),
    Operation("Posterize", 0, 4, lambda x, v, s, c: posterize(x, max(1, int(v)))),
    Operation("Solarize", 0, 256, lambda x, v, s, c: solarize(x, v)),
    Operation("SolarizeAdd", 0, 110, lambda x, v, s, c: solarize_add(x, v)),
    Operation("Color", 0.1, 1.9, lambda x, v, s, c: F.adjust_saturation(x, v)),
    Operation("Contrast", 0.1, 1.9, lambda x, v, s, c: F.adjust_contrast(x, v)),
    Operation("Brightness", 0.1, 1.9, lambda x, v, s, c: F.adjust_brightness(x, v)),
    Operation("Sharpness", 0.1, 1.9, lambda x, v, s, c: F.adjust_sharpness(x, v)),
    Operation("ShearX", 0, 0.3, lambda x, v, s, c: shear(x, s * v, "x")),
    Operation("ShearY", 0, 0.3, lambda x, v, s, c: shear(x, s * v, "y")),
    Operation("Cutout", 0, 40, _cutout_op),
    Operation("TranslateX", 0, 100, lambda x, v, s, c: translate(x, round(s * v), 0)),
    Operation("TranslateY", 0, 100, lambda x, v, s, c: translate(x, 0, round(s * v))),
)


class OriginalRandAugment(Transform):
    """The original's RandAugment: ``num_ops`` operations of :data:`OPERATIONS` at one random magnitude.

    Args:
        num_ops: Operations per image, drawn with replacement (the paper: 1).
        max_magnitude: Magnitudes are drawn uniformly from ``1 .. max_magnitude`` (the paper: 10).

    Applies to uint8 images (plain tensors or ``tv_tensors.Image``); anything else passes through.
    """

    def __init__(self, num_ops: int = 1, max_magnitude: int = 10) -> None:
        super().__init__()
        if num_ops < 1:
            raise ValueError(f"num_ops must be >= 1, got {num_ops}")
        if not 1 <= max_magnitude <= 10:
            raise ValueError(f"max_magnitude must be in 1..10, got {max_magnitude}")
        self.num_ops, self.max_magnitude = num_ops, max_magnitude

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = size_of(flat_inputs)
        magnitude = int(torch.randint(1, self.max_magnitude + 1, ()))
        steps = []
        for _ in range(self.num_ops):
            op = OPERATIONS[int(torch.randint(len(OPERATIONS), ()))]
            sign = -1 if float(torch.rand(())) < 0.5 else 1
            # the original draws Cutout's centre with np.random.uniform(w): between 1 and w
            u, v = torch.rand(2).tolist()
            steps.append((op, sign, (1 + (w - 1) * u, 1 + (h - 1) * v)))
        return {"magnitude": magnitude, "steps": steps}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask) or not isinstance(inpt, torch.Tensor):
            return inpt
        if inpt.dtype != torch.uint8:
            raise TypeError(f"the original RandAugment works on uint8 images, got {inpt.dtype}")
        out = inpt.as_subclass(torch.Tensor)
        for op, sign, centre in params["steps"]:
            out = op.apply(out, op.value(params["magnitude"]), sign, centre)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out
