"""Operator calls per training step, by part of the step: the host's work that bounds a GPU step.

On a GPU each operator call is host work (Python, the dispatcher, usually a kernel launch), and
DeepLab-v2's DMT step at the presets' batch 8 is bound by it (docs/performance.md: the GPU is
busy about a quarter of the time). The same Python code issues the same calls on the CPU, so
counting them there with a :class:`~torch.utils._python_dispatch.TorchDispatchMode` shows, without
a GPU and without timing noise, what a change adds to or removes from that work. The optimizer is
counted as it runs on CUDA (torch's ``foreach`` SGD; on the CPU torch defaults to a Python loop
over the parameters).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dmt.engine.loop import FitOptions, TrainState, fit

PARTS = ("forward", "backward", "optimizer", "ema", "loop")


class OpCounter(TorchDispatchMode):
    """Counts every operator call, charged to the part of the step that is running."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.part = "loop"

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.counts[self.part] += 1
        return func(*args, **(kwargs or {}))

    def charged_to(self, part: str, fn: Callable) -> Callable:
        """``fn`` with its calls charged to ``part`` (nested parts keep the innermost)."""
        def run(*args: Any, **kwargs: Any) -> Any:
            outer, self.part = self.part, part
            try:
                return fn(*args, **kwargs)
            finally:
                self.part = outer
        return run


@contextmanager
def _backward_charged(counter: OpCounter) -> Iterator[None]:
    original = torch.Tensor.backward
    torch.Tensor.backward = counter.charged_to("backward", original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.backward = original  # type: ignore[method-assign]


def step_op_counts(state: TrainState, step_fn: Callable, batch: Any, opts: FitOptions) -> dict[str, int]:
    """Operator calls of one training step of ``fit``, per part.

    Parts: ``forward`` (the step function: model forward, dynamic weights, loss), ``backward``,
    ``optimizer``, ``ema`` and ``loop`` (the rest of the loop: learning rate, batch moves, the
    scalars kept on the device). Three steps run and the second is counted, from its step
    function to the next one's: the first builds the optimizer's state, and the last one's log
    and finite checks happen once per ``log_every`` steps, not every step. ``state`` is trained by
    them; ``opts.total_steps`` and ``opts.log_every`` are replaced.
    """
    for group in state.optimizer.param_groups:
        group["foreach"] = True  # as on CUDA, where torch picks it by default
    run_opts = FitOptions(**{**opts.__dict__, "total_steps": 3, "log_every": 3})
    state.step = 0
    counter = OpCounter()
    state.optimizer.step = counter.charged_to("optimizer", state.optimizer.step)  # type: ignore[method-assign]
    if state.ema is not None:
        state.ema.update_parameters = counter.charged_to("ema", state.ema.update_parameters)  # type: ignore[method-assign]
    counted: dict[str, int] = {}

    def marked_step(b: Any, step: int) -> Any:
        if step == 1:  # the second step starts
            counter.counts.clear()
        elif step == 2:  # ... and ends where the third starts
            counted.update(counter.counts)
        return counter.charged_to("forward", step_fn)(b, step)
    try:
        with _backward_charged(counter), counter:
            fit(marked_step, state, [batch] * 3, run_opts, save=lambda s: None)
    finally:
        del state.optimizer.step
        if state.ema is not None:
            del state.ema.update_parameters
    out = {part: counted.get(part, 0) for part in PARTS}
    out["total"] = sum(out.values())
    return out
