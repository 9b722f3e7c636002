"""Input conventions: how an RGB image in [0, 1] becomes the tensor a network was trained on.

Every dataset in dmt yields RGB float images in [0, 1]. Each model owns an
:class:`InputNormalization` module as its first layer, built from an :class:`InputConvention`,
and the convention is written into every checkpoint. Training, pseudo-labelling, evaluation and
prediction therefore cannot disagree about channel order, scale or mean: the weights carry it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class InputConvention:
    """Channel order, value scale and per-channel mean/std the network expects.

    ``x_net = (flip_if_bgr(x_rgb01) * scale - mean) / std``
    """

    channel_order: str = "RGB"  # "RGB" or "BGR"
    scale: float = 1.0  # 1.0 for [0, 1] inputs, 255.0 for caffe-style 0-255 inputs
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if len(self.mean) != len(self.std):
            raise ValueError("mean and std need one value per channel")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputConvention":
        return cls(
            channel_order=str(d["channel_order"]),
            scale=float(d["scale"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
        )


# ImageNet-pretrained torchvision weights: RGB in [0, 1], ImageNet mean and std.
IMAGENET = InputConvention("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The caffe-converted COCO DeepLab-v2 checkpoint (AdvSemiSeg): BGR, 0-255, mean only.
COCO_CAFFE = InputConvention("BGR", 255.0, (104.008, 116.669, 122.675), (1.0, 1.0, 1.0))
# CIFAR-10 statistics, as used by the semi-supervised classification literature.
CIFAR10 = InputConvention("RGB", 1.0, (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768))
# Single-channel data already in [0, 1] (the digits demo): centre around 0.5.
GRAY = InputConvention("RGB", 1.0, (0.5,), (0.5,))


class InputNormalization(nn.Module):
    """Applies an :class:`InputConvention` to RGB [0, 1] input; the first layer of every dmt model."""

    def __init__(self, convention: InputConvention) -> None:
        super().__init__()
        self.convention = convention
        c = len(convention.mean)
        # Non-persistent: the convention itself (not these tensors) is what checkpoints record.
        self.register_buffer("mean", torch.tensor(convention.mean).view(1, c, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(convention.std).view(1, c, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected {self.mean.shape[1]} input channels, got {x.shape[1]}")
        if self.convention.channel_order == "BGR":
            x = x.flip(1)
        return (x * self.convention.scale - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def apply_convention(model: nn.Module, convention: InputConvention) -> nn.Module:
    """Give a built model another input convention (its ``normalize`` layer and attribute).

    Used when a trained model is rebuilt from a checkpoint: the network is built without reading
    any pretrained file, and the convention recorded with the weights is put back.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.input_convention = convention
    model.normalize = InputNormalization(convention).to(device)
    return model
