"""Mixup for semi-supervised training, with the first image keeping its identity."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def sample_lambda(alpha: float, rng: np.random.Generator, keep_max: bool = True) -> float:
    """Draw ``lambda ~ Beta(alpha, alpha)``; with ``keep_max`` return ``max(lambda, 1 - lambda)``.

    ``keep_max`` makes the first image of each pair dominate, so its (pseudo) label and dynamic
    weight stay meaningful. ``alpha <= 0`` disables mixup (lambda = 1).
    """
    if alpha <= 0:
        return 1.0
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam) if keep_max else lam


def mix(x: Tensor, lam: float, perm: Tensor) -> Tensor:
    """``lam * x + (1 - lam) * x[perm]`` along the first dimension (images or per-image weights)."""
    return lam * x + (1.0 - lam) * x[perm.to(x.device, non_blocking=True)]  # no wait for the device


def random_permutation(n: int, generator: torch.Generator) -> Tensor:
    """A random pairing of the ``n`` images of a batch (on the CPU, so it is device-independent)."""
    return torch.randperm(n, generator=generator)
