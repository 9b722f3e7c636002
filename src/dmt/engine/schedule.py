"""Learning-rate schedules as pure functions of the step (nothing to save or restore)."""

from __future__ import annotations

import math
from typing import Any


def learning_rate(base_lr: float, step: int, total_steps: int, schedule: str, power: float = 0.9) -> float:
    """The learning rate at ``step`` of ``total_steps``.

    ``cosine``: ``base * (1 + cos(pi t / T)) / 2`` (CIFAR-10 settings);
    ``poly``: ``base * (1 - t / T) ** power`` (DeepLab settings); ``constant``: ``base``.
    """
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "poly":
        return base_lr * (1.0 - t) ** power
    if schedule == "constant":
        return base_lr
    raise ValueError(f"unknown schedule {schedule!r}")


def set_learning_rate(optimizer: Any, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the rate ``lr`` times its ``lr_mult`` (1 if unset)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
