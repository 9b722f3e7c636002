"""Wide-ResNet (Zagoruyko & Komodakis, 2016) as used for semi-supervised classification.

WRN-28-2 is the network of the semi-supervised classification literature (Oliver et al.,
2018) and of DMT's CIFAR-10 experiments; the benchmarks (FixMatch, USB) use WRN-28-8 for
CIFAR-100 and, for STL-10's 96x96 images, WRN-37-2: a fourth group of blocks and a stride of 2
in the first group (USB's ``wrn_var_37_2``). We follow the DMT implementation: pre-activation
basic blocks with BatchNorm + plain ReLU (not the LeakyReLU(0.1) of MixMatch/FixMatch),
Kaiming-normal (fan_out) convolutions, a final BN-ReLU, global average pooling and a
linear classifier. Where a block changes width, its 1x1 projection shortcut reads the
*pre-activated* input, as in the original pre-activation ResNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dmt.errors import UserError
from dmt.models.conventions import CIFAR10, InputConvention, InputNormalization
from dmt.models.registry import register


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 with an identity or 1x1 projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        # WRN only projects when the width changes; a change of stride alone never happens
        # here because every group's first block also widens.
        self.shortcut: nn.Module | None = None
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        # The projection shortcut sees the activated input; the identity sees the raw one.
        residual = x if self.shortcut is None else self.shortcut(pre)
        out = F.relu(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return residual + self.conv2(out)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor``: a 3x3 stem and ``G`` groups of pre-activation blocks.

    Group widths are ``16k, 32k, 64k`` (and ``128k`` with a fourth group) after a 16-channel
    stem; each group's first block has that group's stride (``1, 2, 2`` by default: the second
    and third groups halve the resolution). Works on any input size (global average pooling).

    Args:
        depth: total depth, counted as the literature does: ``2 G n + G + 1`` for ``n`` blocks
            per group (3 groups: ``6n + 4``, so ``28`` gives 4 blocks; 4 groups: ``8n + 5``,
            so ``37`` gives 4).
        widen_factor: the width multiplier ``k``.
        num_classes: number of output logits.
        drop_rate: dropout between the two convolutions of each block (0 disables it).
        in_channels: channels of the input image.
        convention: how the network wants its [0, 1] RGB input normalised.
        strides: each group's stride; its length is the number of groups ``G``.
    """

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int,
        drop_rate: float = 0.0,
        in_channels: int = 3,
        convention: InputConvention = CIFAR10,
        strides: tuple[int, ...] = (1, 2, 2),
    ) -> None:
        super().__init__()
        num_groups = len(strides)
        fixed = num_groups + 1  # the stem, the classifier and the projections besides the first
        if num_groups < 1 or depth < 2 * num_groups + fixed or (depth - fixed) % (2 * num_groups) != 0:
            raise UserError(f"model option depth: expected {2 * num_groups}n+{fixed} with n >= 1 for "
                            f"{num_groups} groups (e.g. {8 * num_groups + fixed}), got {depth}")
        if widen_factor < 1:
            raise UserError(f"model option widen_factor: expected a positive integer, got {widen_factor}")
        if not 0.0 <= drop_rate < 1.0:
            raise UserError(f"model option drop_rate: expected a value in [0, 1), got {drop_rate}")
        blocks_per_group = (depth - fixed) // (2 * num_groups)
        widths = [16] + [16 * widen_factor * 2**g for g in range(num_groups)]

        self.input_convention = convention
        self.normalize = InputNormalization(convention)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.num_groups = num_groups
        for g, stride in enumerate(strides):
            blocks = [
                PreActBlock(widths[g] if b == 0 else widths[g + 1], widths[g + 1], stride if b == 0 else 1, drop_rate)
                for b in range(blocks_per_group)
            ]
            # named group1, group2, ... (the checkpoints' parameter names), in this order
            self.add_module(f"group{g + 1}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(widths[-1])  # the blocks are pre-activation: one last BN-ReLU
        self.fc = nn.Linear(widths[-1], num_classes)
        self.feature_dim = widths[-1]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)  # weight keeps PyTorch's default, as in the DMT code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map RGB images in [0, 1] (``N x 3 x H x W``) to logits (``N x num_classes``)."""
        x = self.stem(self.normalize(x))
        for g in range(self.num_groups):
            x = getattr(self, f"group{g + 1}")(x)
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@register
def wrn_28_2(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-28-2 (about 1.47 M parameters for 10 classes), CIFAR-10 input normalisation."""
    return WideResNet(depth=28, widen_factor=2, num_classes=num_classes, drop_rate=drop_rate)


@register
def wrn_28_8(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-28-8 (about 23.4 M parameters for 100 classes): the CIFAR-100 network of FixMatch and USB."""
    return WideResNet(depth=28, widen_factor=8, num_classes=num_classes, drop_rate=drop_rate)


@register
def wrn_37_2(num_classes: int, drop_rate: float = 0.0) -> WideResNet:
    """WRN-37-2 (about 5.9 M parameters): four groups of 4 blocks (widths 32 to 256), all of stride 2.

    The STL-10 network of the benchmarks (USB's ``wrn_var_37_2``): the first group's stride of 2
    and the fourth group take 96x96 images to 6x6 before pooling, as WRN-28 takes 32x32 to 8x8.
    """
    return WideResNet(depth=37, widen_factor=2, num_classes=num_classes, drop_rate=drop_rate, strides=(2, 2, 2, 2))
