"""The heads of the DeepLab family: DeepLab-v2's ASPP classifier, DeepLab-v3's ASPP and DeepLab-v3+'s decoder.

Each takes the features of a body (:mod:`dmt.models.backbones`) and keeps their spatial size
(the decoder returns ``layer1``'s); the models upsample the logits to the input.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ASPP_RATES = (6, 12, 18)  # DeepLab-v3's rates at output stride 16; doubled at 8
SKIP_CHANNELS = 48  # the low-level projection of the paper: few channels, so the ASPP features dominate


class ASPPv2(nn.Module):
    """DeepLab-v2 atrous spatial pyramid pooling: parallel dilated 3x3 convs whose logits are summed.

    Each branch maps ``in_channels`` straight to ``num_classes`` (with bias), dilation = padding
    = rate, so the output keeps the input's spatial size.

    The original PyTorch port (AdvSemiSeg, inherited by DMT) returns from inside its summation
    loop after adding the *second* branch, so only rates 6 and 12 ever contribute; the 18 and 24
    convolutions are dead parameters that still appear in checkpoints. ``legacy=True`` reproduces
    exactly that (all four convs exist, so checkpoints load both ways); the default sums all.

    Args:
        in_channels: channels of the backbone features (2048 for ResNet-101).
        num_classes: output logits per pixel.
        rates: dilation rates of the branches.
        legacy: sum only the first two branches, like the original implementation.
    """

    def __init__(
        self, in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24), legacy: bool = False
    ) -> None:
        super().__init__()
        if legacy and len(rates) < 2:
            raise ValueError("legacy ASPP needs at least two rates")
        self.rates = tuple(rates)
        self.legacy = legacy
        # the legacy branches 3-4 never reach the output: DDP must be told (find_unused_parameters)
        self.has_dead_parameters = legacy
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r, bias=True) for r in self.rates
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = self.convs[:2] if self.legacy else self.convs
        out = branches[0](x)
        for conv in branches[1:]:
            out = out + conv(x)
        return out


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """ASPP dilation rates: 6/12/18 at output stride 16, twice that at 8 (same field of view in pixels)."""
    return tuple(r * 16 // output_stride for r in ASPP_RATES)


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling of DeepLab-v3: five branches concatenated and projected.

    Branches: a 1x1 conv, one dilated 3x3 conv per rate, and image pooling (global average ->
    1x1 conv, broadcast back to the feature size); each conv is followed by BN and ReLU.

    Args:
        in_channels: channels of the backbone's last stage (2048 for ResNet-101).
        channels: channels of every branch and of the output (256 in the paper).
        rates: dilation rates of the 3x3 branches.
    """

    def __init__(self, in_channels: int, channels: int, rates: Sequence[int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, channels)] + [conv_bn_relu(in_channels, channels, 3, r) for r in rates]
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(in_channels, channels))
        self.project = conv_bn_relu(channels * (len(rates) + 2), channels)

    @property
    def rates(self) -> tuple[int, ...]:
        return tuple(b[0].dilation[0] for b in self.branches[1:])

    def set_rates(self, rates: Sequence[int]) -> None:
        """Change the dilation (and padding) of the 3x3 branches; the weights stay."""
        if len(rates) != len(self.branches) - 1:
            raise ValueError(f"expected {len(self.branches) - 1} rates, got {len(rates)}")
        for branch, r in zip(self.branches[1:], rates):
            branch[0].dilation, branch[0].padding = (r, r), (r, r)

    def forward(self, x: Tensor) -> Tensor:
        feats = [b(x) for b in self.branches]
        # bilinear upsampling of a 1x1 map is a broadcast: expand is exact and allocates nothing
        feats.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(feats, dim=1))


class Decoder(nn.Module):
    """DeepLab-v3+ decoder: ASPP features upsampled to ``layer1``'s size, joined with its projection.

    Args:
        low_channels: channels of ``layer1`` (256 for ResNet-101).
        high_channels: channels of the ASPP output.
        channels: channels of the two 3x3 convs.
        skip_channels: channels of the 1x1 projection of ``layer1``.
    """

    def __init__(self, low_channels: int, high_channels: int, channels: int = 256,
                 skip_channels: int = SKIP_CHANNELS) -> None:
        super().__init__()
        self.reduce = conv_bn_relu(low_channels, skip_channels)
        self.fuse = nn.Sequential(conv_bn_relu(high_channels + skip_channels, channels, 3),
                                  conv_bn_relu(channels, channels, 3))

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.fuse(torch.cat([self.reduce(low), high], dim=1))
