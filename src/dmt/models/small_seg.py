"""Small segmentation networks for tests and the offline demo on tiny synthetic scenes.

Both return full-resolution logits ``N x C x H x W`` for any input size (odd sizes included).
Inputs are images in [0, 1], centred with mean 0.5 / std 0.5 per channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dmt.errors import UserError
from dmt.models.conventions import InputConvention, InputNormalization
from dmt.models.registry import register


def centered_convention(channels: int) -> InputConvention:
    """``(x - 0.5) / 0.5`` on every channel: enough for networks trained from scratch."""
    return InputConvention("RGB", 1.0, (0.5,) * channels, (0.5,) * channels)


def _check(in_channels: int, width: int) -> None:
    if in_channels < 1:
        raise UserError(f"model option in_channels: expected a positive integer, got {in_channels}")
    if width < 1:
        raise UserError(f"model option width: expected a positive integer, got {width}")


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyUNet(nn.Module):
    """A three-level U-Net (``width``, ``2 width``, ``4 width`` channels; ~0.12 M params at width 16).

    Decoder stages upsample bilinearly *to the skip connection's size* rather than by a fixed
    factor, so inputs whose sides are not multiples of 4 still line up.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        _check(in_channels, width)
        self.input_convention = centered_convention(in_channels)
        self.normalize = InputNormalization(self.input_convention)
        self.enc1 = _double_conv(in_channels, width)
        self.enc2 = _double_conv(width, 2 * width)
        self.bottom = _double_conv(2 * width, 4 * width)
        self.dec2 = _double_conv(4 * width + 2 * width, 2 * width)
        self.dec1 = _double_conv(2 * width + width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    @staticmethod
    def _up_cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([x, skip], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images in [0, 1] (``N x in_channels x H x W``) to logits ``N x num_classes x H x W``."""
        s1 = self.enc1(self.normalize(x))
        s2 = self.enc2(F.max_pool2d(s1, 2, ceil_mode=True))
        x = self.bottom(F.max_pool2d(s2, 2, ceil_mode=True))
        x = self.dec2(self._up_cat(x, s2))
        x = self.dec1(self._up_cat(x, s1))
        return self.head(x)


class TinyFCN(nn.Module):
    """Four full-resolution 3x3 convs with dilations 1, 2, 4, 8 (31x31 receptive field), then a 1x1 classifier.

    No downsampling at all: cheaper than :class:`TinyUNet` on tiny images and exact at the borders.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        _check(in_channels, width)
        self.input_convention = centered_convention(in_channels)
        self.normalize = InputNormalization(self.input_convention)
        layers: list[nn.Module] = []
        channels = in_channels
        for dilation in (1, 2, 4, 8):
            layers += [
                nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images in [0, 1] (``N x in_channels x H x W``) to logits ``N x num_classes x H x W``."""
        return self.head(self.features(self.normalize(x)))


@register(task="segmentation")
def tiny_unet(num_classes: int, in_channels: int = 3, width: int = 16) -> TinyUNet:
    """A ~0.12 M-parameter U-Net for 32x32 to 64x64 synthetic scenes; full-resolution output."""
    return TinyUNet(num_classes, in_channels=in_channels, width=width)


@register(task="segmentation")
def tiny_fcn(num_classes: int, in_channels: int = 3, width: int = 16) -> TinyFCN:
    """An ~8 k-parameter dilated FCN; the cheapest segmentation model, full-resolution output."""
    return TinyFCN(num_classes, in_channels=in_channels, width=width)
