"""The curriculum of phases: ratios and the gamma ramp-up."""

from __future__ import annotations

import math

DEFAULT_RATIOS = (0.2, 0.4, 0.6, 0.8, 1.0)


def ramped_gamma(gamma: float, step: int, total_steps: int, enabled: bool = True) -> float:
    """``gamma * exp(-5 (1 - t/T)^2)``: the sigmoid-shaped ramp-up of the weights' exponent.

    Early in a phase gamma is near 0 (every pseudo label counts fully, like curriculum labelling)
    and reaches its full value at the end, once the student is good enough for its own confidence
    to be informative.

    Args:
        gamma: the exponent at the end of the phase.
        step: current step ``t`` (clipped to ``[0, T]``).
        total_steps: steps in the phase ``T``.
        enabled: with ``False`` the full gamma applies from the first step.
    """
    if not enabled or total_steps <= 0:
        return gamma
    t = min(max(step, 0), total_steps) / total_steps
    return gamma * math.exp(-5.0 * (1.0 - t) ** 2)


def check_ratios(ratios: list[float] | tuple[float, ...]) -> None:
    """Ratios must be increasing fractions in (0, 1]."""
    if not ratios:
        raise ValueError("at least one curriculum ratio is needed")
    for r in ratios:
        if not 0 < r <= 1:
            raise ValueError(f"curriculum ratio {r} is not in (0, 1]")
    if list(ratios) != sorted(ratios):
        raise ValueError(f"curriculum ratios must increase, got {list(ratios)}")
