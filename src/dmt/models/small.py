"""Small classification networks for tests, smoke runs and the offline digits demo."""

from __future__ import annotations

import torch
from torch import nn

from dmt.errors import UserError
from dmt.models.conventions import CIFAR10, GRAY, InputNormalization
from dmt.models.registry import register


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),  # BN makes a bias redundant
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyCNN(nn.Module):
    """Two conv stages (``width`` then ``2 * width`` channels) with one 2x2 pool between them.

    A single pooling step keeps enough resolution for 8x8 inputs (sklearn digits); the global
    average pool makes any input size work (32x32 CIFAR-sized images included).

    Args:
        num_classes: number of output logits.
        in_channels: 1 (grayscale, :data:`GRAY` convention) or 3 (RGB, :data:`CIFAR10`).
        width: channels of the first stage.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise UserError(f"model option in_channels: expected 1 or 3, got {in_channels}")
        if width < 1:
            raise UserError(f"model option width: expected a positive integer, got {width}")
        self.input_convention = GRAY if in_channels == 1 else CIFAR10
        self.normalize = InputNormalization(self.input_convention)
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, width),
            _conv_bn_relu(width, width),
            nn.MaxPool2d(2),
            _conv_bn_relu(width, 2 * width),
            _conv_bn_relu(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(2 * width, num_classes)
        self.feature_dim = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images in [0, 1] (``N x in_channels x H x W``, H, W >= 2) to logits ``N x num_classes``."""
        return self.fc(self.features(self.normalize(x)))


@register
def tiny_cnn(num_classes: int, in_channels: int = 3, width: int = 16) -> TinyCNN:
    """A four-conv BN network; trains to >95% on sklearn's 8x8 digits in seconds on a CPU."""
    return TinyCNN(num_classes, in_channels=in_channels, width=width)
