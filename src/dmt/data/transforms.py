"""Named segmentation train/eval transform presets, built from ``torchvision.transforms.v2``.

The presets are joint: the image (:class:`tv_tensors.Image`), the mask
(:class:`tv_tensors.Mask`) and, for pseudo-labelled data, the confidence map
(:class:`ConfidenceMap`) get the same random scale, crop and flip. Masks and confidence maps are
resized with NEAREST; padding uses the dataset's mean colour for the image, 255 (ignore) for the
mask and 0 for the confidence. Padding is added at the bottom and right only, so the original
image stays at the top-left and a prediction is cropped back with ``[:h, :w]``.

All randomness comes from torch's global generator (as in torchvision v2), so seeding torch per
sample or per worker makes every augmentation reproducible. Nothing here uses Python's
``random`` or numpy's global generator.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
_KEYS = ("image", "mask", "confidence")  # positional order when a sample is a tuple


class ConfidenceMap(tv_tensors.Mask):
    """A per-pixel confidence map (float, ``H x W``).

    A subclass of :class:`tv_tensors.Mask` so that every v2 geometric kernel treats it like a
    mask (NEAREST resizing, identical crops and flips), while its own type lets padding fill it
    with 0 instead of the mask's 255.
    """


class Transform(v2.Transform):
    """A v2 transform whose hooks also answer to their names before torchvision 0.21.

    Newer torchvision calls ``make_params``/``transform``; older releases (pyproject allows
    >= 0.16) call ``_get_params``/``_transform``. Subclasses implement the public pair.
    """

    def _get_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return self.make_params(flat_inputs)

    def _transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self.transform(inpt, params)


def size_of(flat_inputs: list[Any]) -> tuple[int, int]:
    """``(height, width)`` of the first image or mask of a flattened sample."""
    for inpt in flat_inputs:
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask)) or type(inpt) is torch.Tensor:
            h, w = F.get_size(inpt)
            return int(h), int(w)
    raise TypeError("no image or mask found in the sample")


def resize_mask_exact(mask: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Nearest resize that samples at pixel centres (``NEAREST_EXACT``), for ``[..., H, W]`` maps.

    torchvision's mask kernel uses plain ``NEAREST``, which samples each output pixel's top-left
    source pixel: shrinking by 2 then shifts the mask half a pixel against the bilinearly
    resized image. Sampling at centres keeps labels on the pixels they describe.
    """
    data = mask.as_subclass(torch.Tensor)
    flat = data.reshape(-1, *data.shape[-2:])
    out = F.resize_image(flat, size, interpolation=InterpolationMode.NEAREST_EXACT)
    out = out.reshape(*data.shape[:-2], *out.shape[-2:])
    return tv_tensors.wrap(out, like=mask) if isinstance(mask, tv_tensors.TVTensor) else out


class RandomScale(Transform):
    """Resizes everything by one factor drawn uniformly from ``scale_range`` (aspect kept).

    Images use bilinear interpolation with antialiasing; masks and confidence maps nearest at
    pixel centres (:func:`resize_mask_exact`).
    """

    def __init__(self, scale_range: tuple[float, float]) -> None:
        super().__init__()
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < min <= max, got {scale_range}")
        self.scale_range = (float(lo), float(hi))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = size_of(flat_inputs)
        lo, hi = self.scale_range
        s = lo + (hi - lo) * float(torch.rand(()))
        return {"size": [max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return resize_mask_exact(inpt, params["size"])
        return self._call_kernel(
            F.resize, inpt, params["size"], interpolation=InterpolationMode.BILINEAR, antialias=True
        )


class PadToSize(Transform):
    """Pads at the bottom and right up to ``size`` (H, W) where the input is smaller.

    Never crops. Fills: ``image_fill`` for images, 255 for masks, 0 for confidence maps.
    """

    def __init__(self, size: tuple[int, int], image_fill: Sequence[float] | float, mask_fill: int = 255) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.image_fill = [float(v) for v in image_fill] if isinstance(image_fill, Sequence) else float(image_fill)
        self.mask_fill = mask_fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = size_of(flat_inputs)
        # torchvision padding order: left, top, right, bottom
        return {"padding": [0, 0, max(0, self.size[1] - w), max(0, self.size[0] - h)]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not any(params["padding"]):
            return inpt
        if isinstance(inpt, ConfidenceMap):
            fill: Any = 0.0
        elif isinstance(inpt, tv_tensors.Mask):
            fill = self.mask_fill
        else:
            fill = self.image_fill
        return self._call_kernel(F.pad, inpt, padding=params["padding"], fill=fill)


class JointTransform:
    """Applies a v2 pipeline to a segmentation sample, given as a dict or a tuple.

    Accepts ``{'image', 'mask'?, 'confidence'?, ...}`` or ``(image, mask[, confidence])``.
    Plain tensors are wrapped into the right tv_tensor type by key/position, a uint8 image is
    converted to float in [0, 1] (padding colours are given in [0, 1]), and the result comes back
    in the same container with plain tensors. Other dict entries pass through untouched.
    """

    def __init__(self, pipeline: Callable[[Any], Any]) -> None:
        self.pipeline = pipeline

    def __call__(self, sample: dict[str, Any] | tuple[torch.Tensor, ...]) -> Any:
        as_tuple = not isinstance(sample, dict)
        data = dict(zip(_KEYS, sample)) if as_tuple else dict(sample)
        if "image" not in data:
            raise KeyError("a segmentation sample needs an 'image'")
        image = data["image"]
        if not image.is_floating_point():
            image = F.to_dtype(image.as_subclass(torch.Tensor), torch.float32, scale=True)
        data["image"] = tv_tensors.Image(image)
        if data.get("mask") is not None and not isinstance(data["mask"], tv_tensors.Mask):
            data["mask"] = tv_tensors.Mask(data["mask"])
        if data.get("confidence") is not None and not isinstance(data["confidence"], ConfidenceMap):
            data["confidence"] = ConfidenceMap(data["confidence"])
        out = self.pipeline(data)
        for key in _KEYS:
            if isinstance(out.get(key), torch.Tensor):
                out[key] = out[key].as_subclass(torch.Tensor)
        if as_tuple:
            return tuple(out[k] for k in _KEYS[: len(sample)])
        return out

    def __repr__(self) -> str:
        return f"JointTransform({self.pipeline})"


def seg_train_transform(
    crop_size: tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 1.5),
    fill: Sequence[float] = IMAGENET_MEAN,
) -> JointTransform:
    """The segmentation training preset: random scale, pad, random crop, horizontal flip.

    Args:
        crop_size: Output (H, W): VOC (321, 321), Cityscapes (256, 512).
        scale_range: Range of the random resize factor.
        fill: Image padding colour, RGB in [0, 1]; pass the dataset's mean colour
            (``SegSource.mean``) so padding looks like an average pixel to the network.

    Returns:
        A callable on ``{'image', 'mask'[, 'confidence']}`` dicts or ``(image, mask[, confidence])``
        tuples, applying the same randomness to every entry.
    """
    return JointTransform(
        v2.Compose(
            [
                RandomScale(scale_range),
                PadToSize(crop_size, fill),  # so the crop never has to pad on a random side
                v2.RandomCrop(crop_size),
                v2.RandomHorizontalFlip(p=0.5),
            ]
        )
    )


def seg_eval_transform(pad_to: tuple[int, int] | None = None, fill: Sequence[float] = IMAGENET_MEAN) -> JointTransform:
    """The segmentation evaluation preset: pad (bottom/right) to a fixed size, or nothing.

    Args:
        pad_to: (H, W) to pad up to; VOC uses (505, 505) so images batch together. Larger
            images are left as they are. ``None`` (Cityscapes at 512x1024) leaves samples as read.
        fill: Image padding colour, RGB in [0, 1].
    """
    steps: list[Callable[[Any], Any]] = [] if pad_to is None else [PadToSize(pad_to, fill)]
    return JointTransform(v2.Compose(steps) if steps else v2.Identity())
