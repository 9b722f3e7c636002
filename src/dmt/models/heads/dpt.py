"""The DPT head (Ranftl et al., 2021) as the DINOv2 / Depth-Anything / UniMatch-V2 line uses it for segmentation.

A vision transformer gives one grid of patch features per block. The head takes four of them
(already through the encoder's final norm), and:

1. **projects** each to its own width with a 1x1 convolution;
2. **reassembles** them at four scales of the patch grid: 4x and 2x by transposed convolutions,
   1x as is, 0.5x by a strided 3x3 convolution (early blocks keep detail, late ones context);
3. maps each to ``features`` channels (3x3, no bias) and **fuses top-down**: starting from the
   coarsest, each :class:`FusionBlock` adds the next finer map (through a residual unit),
   refines, upsamples to that map's size and mixes channels with a 1x1 convolution;
4. a 3x3 convolution, ReLU and a 1x1 **classifier** give logits at 8x the patch grid, which the
   model upsamples to its (padded) input size.

Widths per encoder size are explicit (:data:`DPT_WIDTHS`), those of Depth-Anything and
UniMatch-V2. Imports torch alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class DPTWidths:
    """Channels of one DPT head: the fused ``features`` and the four reassembled maps (finest first)."""

    features: int
    out_channels: tuple[int, int, int, int]


DPT_WIDTHS = {
    "small": DPTWidths(64, (48, 96, 192, 384)),  # ViT-S (384-d tokens)
    "base": DPTWidths(128, (96, 192, 384, 768)),  # ViT-B (768-d)
    "large": DPTWidths(256, (256, 512, 1024, 1024)),  # ViT-L (1024-d)
    "tiny": DPTWidths(16, (8, 16, 32, 32)),  # tests and smoke runs of the tiny encoders
}


class ResidualConvUnit(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with two 3x3 convolutions of ``channels`` channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        # not in place: x is the residual (and, in the first unit, the caller's tensor)
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """One top-down step: add the finer map (refined), refine the sum, upsample, mix channels.

    The coarsest step has no finer map to add (``skip=False``): it has no unit for it, so that
    every parameter takes part in every step (DDP needs no search for unused ones).
    """

    def __init__(self, channels: int, skip: bool = True) -> None:
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels) if skip else None
        self.unit = ResidualConvUnit(channels)
        self.mix = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        """``x`` (coarser path), ``skip`` (this level's map, same size), ``size`` (next level; None: x2)."""
        if skip is not None:
            if self.skip_unit is None:
                raise ValueError("this fusion block was built without a skip input")
            x = x + self.skip_unit(skip)
        x = self.unit(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.mix(x)


def _reassemble(channels: int, scale: str) -> nn.Module:
    """Bring a map of the patch grid to 4x, 2x, 1x or 0.5x of it."""
    if scale == "4x":
        return nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=4)
    if scale == "2x":
        return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)
    if scale == "1x":
        return nn.Identity()
    return nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)


class DPTHead(nn.Module):
    """Four patch-grid feature maps (early to late block) -> logits at 8x the patch grid.

    Args:
        in_channels: the encoder's token width.
        num_classes: output logits per pixel.
        widths: the head's channels (:data:`DPT_WIDTHS`).
    """

    SCALES = ("4x", "2x", "1x", "0.5x")

    def __init__(self, in_channels: int, num_classes: int, widths: DPTWidths) -> None:
        super().__init__()
        out = widths.out_channels
        self.project = nn.ModuleList(nn.Conv2d(in_channels, c, 1) for c in out)
        self.reassemble = nn.ModuleList(_reassemble(c, s) for c, s in zip(out, self.SCALES))
        self.to_features = nn.ModuleList(nn.Conv2d(c, widths.features, 3, padding=1, bias=False) for c in out)
        self.fuse = nn.ModuleList(FusionBlock(widths.features, skip=i < 3) for i in range(4))
        self.classifier = nn.Sequential(nn.Conv2d(widths.features, widths.features, 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(widths.features, num_classes, 1))

    def forward(self, features: list[Tensor]) -> Tensor:
        if len(features) != 4:
            raise ValueError(f"the DPT head takes 4 feature maps, got {len(features)}")
        maps = [f(r(p(x))) for x, p, r, f in zip(features, self.project, self.reassemble, self.to_features)]
        x = self.fuse[3](maps[3], size=maps[2].shape[-2:])
        x = self.fuse[2](x, maps[2], size=maps[1].shape[-2:])
        x = self.fuse[1](x, maps[1], size=maps[0].shape[-2:])
        x = self.fuse[0](x, maps[0])  # 4x -> 8x the patch grid
        return self.classifier(x)
