"""What the training loop keeps on the device between two reads: each step's scalars and its bad-step flag.

A step never waits for the accelerator: its loss, its other scalars and whether it was bad stay
on the device until the loop reads them all at once, at a log point or before a checkpoint
(:meth:`Pending.means`, :meth:`Pending.take_nonfinite`).
"""

from __future__ import annotations

from typing import Any

import torch


class Pending:
    """Scalars and the count of bad steps since the last read, kept on the device.

    The means are summed in float64 on the host in step order, exactly as a per-step
    ``float(v)`` would have.
    """

    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {}
        self.count = 0  # steps since the last read of the means
        self.nonfinite: torch.Tensor | None = None  # bad steps since the last check (0-d int64)
        self.first_unchecked: int | None = None

    def add(self, out: dict[str, Any], step: int, skipped: torch.Tensor | None = None) -> None:
        """Keep a step's scalars; ``skipped`` (0-d bool): the step was undone (skip_nonfinite),
        else a non-finite ``out["loss"]`` counts as a bad step."""
        loss = out["loss"].detach()
        bad = (~torch.isfinite(loss) if skipped is None else skipped).reshape(()).to(torch.int64)
        # a count of bad steps: exact for skipping, and "> 0" is the plain any-flag
        self.nonfinite = bad if self.nonfinite is None else self.nonfinite + bad
        if self.first_unchecked is None:
            self.first_unchecked = step
        for k, v in out.items():
            self.values.setdefault(k, []).append(v.detach() if isinstance(v, torch.Tensor) else v)
        self.count += 1

    def take_nonfinite(self) -> tuple[torch.Tensor, int] | None:
        """``(count of bad steps on the device, first step since the last check)`` and start a new
        count; ``None`` when no step was added since the last check."""
        if self.nonfinite is None or self.first_unchecked is None:
            return None
        taken = (self.nonfinite, self.first_unchecked)
        self.nonfinite, self.first_unchecked = None, None
        return taken

    def means(self) -> dict[str, float]:
        """Mean of each scalar since the last call (one device read for all of them)."""
        tensors = [v.reshape(()).double() for vs in self.values.values() for v in vs if isinstance(v, torch.Tensor)]
        read = iter(torch.stack(tensors).tolist()) if tensors else iter(())
        out = {}
        for k, vs in self.values.items():
            total = 0.0
            for v in vs:
                total += next(read) if isinstance(v, torch.Tensor) else float(v)
            out[k] = total / self.count
        self.values, self.count = {}, 0
        return out
