"""Phase statistics of the step functions (mean dynamic weight, disagreement), summed so they survive a resume.

The steps add each batch's statistics, weighted by its number of pseudo targets; the training
of a stage stores the sums with every checkpoint and gathers them across processes.
"""

from __future__ import annotations

from typing import Any

import torch


class StatTotals:
    """Running sums of per-step statistics, weighted by the number of pseudo targets.

    :meth:`add` takes floats or 0-dim tensors and keeps tensors on their device (a step never
    waits to read them). :meth:`means` and :meth:`state_dict` read the sums (one device read)
    and leave them where they are.
    """

    def __init__(self, state: dict | None = None) -> None:
        self.sums: dict[str, Any] = dict((state or {}).get("sums", {}))
        self.count: Any = int((state or {}).get("count", 0))

    def add(self, stats: dict[str, Any], n: Any) -> None:
        for k, v in stats.items():
            v = v.double() if isinstance(v, torch.Tensor) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count = self.count + n

    def _read(self) -> tuple[dict[str, float], int]:
        """The sums as floats and the count as an int (device values read once, left in place)."""
        keys = list(self.sums)
        values = [torch.as_tensor(self.sums[k], dtype=torch.float64).detach().cpu() for k in keys]
        sums = dict(zip(keys, torch.stack(values).tolist())) if values else {}
        return sums, int(self.count)

    def means(self) -> dict[str, float]:
        sums, count = self._read()
        return {k: v / count for k, v in sums.items()} if count else {}

    @classmethod
    def summed(cls, states: list[dict]) -> "StatTotals":
        """The totals of several processes' :meth:`state_dict`, added in the given order."""
        merged = cls()
        for state in states:
            part = cls(state)
            for k, v in part.sums.items():
                merged.sums[k] = merged.sums.get(k, 0.0) + v
            merged.count += part.count
        return merged

    def state_dict(self) -> dict:
        sums, count = self._read()
        return {"sums": sums, "count": count}
