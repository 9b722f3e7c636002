"""The training step on fixed buffers, ready to be captured as one CUDA graph (``train.cuda_graph``).

On a GPU, a DMT step at the paper's batch size is bound by the host issuing kernels, not by the
GPU (about 1,800 operator calls per DeepLab-v2 step). Captured once and replayed, the whole step
(forward, weights, loss, backward, optimizer, EMA) costs one launch. Replay needs every tensor
the step reads to live at a fixed address, so :class:`StaticStep`:

* copies each batch into static tensors allocated at the first step (a batch of another shape
  is refused: a graph replays fixed sizes);
* turns every parameter group's learning rate into a 0-d tensor on the device, filled before
  each step (the optimizer reads the tensor, so the schedule goes on inside the graph);
* runs forward, backward, optimizer step and EMA with no host read in between.

Run eagerly (on the CPU, and wherever capture is not possible) it computes exactly today's step
(``tests/engine/test_graphs.py``). On CUDA with ``capture=True`` it warms up on a side stream
(cuDNN autotuning and the optimizer's lazily created state happen there), then captures one
step with :func:`torch.cuda.graph` and replays it. A step function that computes host values
from the step number (a gamma ramp, mixup's per-step random draws) cannot be frozen into a
graph: it says so with ``graph_safe = False`` and the step stays eager, with one warning line.
The captured path has not yet run on a GPU (no GPU was lent while it was written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger("dmt")

WARMUP_STEPS = 3  # eager steps on a side stream before capture (torch's own examples use 3)


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return []


def _static_copy(tree: Any) -> Any:
    """A structure like ``tree`` whose tensors are fresh copies (the static input buffers)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _static_copy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_static_copy(v) for v in tree)
    return tree


def tensor_learning_rates(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Make every group's ``lr`` a 0-d tensor on ``device`` (the optimizer reads it in place).

    float64, so the number a checkpoint records is the schedule's own (the update itself is
    computed at the parameters' precision either way).
    """
    for group in optimizer.param_groups:
        if not isinstance(group["lr"], torch.Tensor) or group["lr"].device != device:
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float64, device=device)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Write this step's learning rate (times each group's ``lr_mult``) into the groups, floats or tensors."""
    for group in optimizer.param_groups:
        value = lr * group.get("lr_mult", 1.0)
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value


class StaticStep:
    """One training step on static buffers; captured as a CUDA graph when asked and possible.

    Args:
        step_fn: the method's step, ``(batch, step) -> {"loss", **scalars}``.
        model, optimizer, ema: what the step trains (``ema`` may be None).
        device: where the buffers live.
        autocast: the context the forward pass runs in (mixed precision).
        capture: capture on CUDA (else always eager).
    """

    def __init__(self, step_fn: Callable[[Any, int], dict[str, Any]], model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, ema: Any, device: torch.device,
                 autocast: Callable[[], Any], capture: bool) -> None:
        self.step_fn, self.model, self.optimizer, self.ema = step_fn, model, optimizer, ema
        self.device, self.autocast = device, autocast
        self.capture = capture and device.type == "cuda"
        if self.capture and not getattr(step_fn, "graph_safe", False):
            log.warning("train.cuda_graph: this step computes host values from the step number (a gamma ramp or "
                        "mixup's draws); it runs eagerly")
            self.capture = False
        self.batch: Any = None  # the static input buffers
        self.out: dict[str, Any] | None = None  # the static outputs of the captured step
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0

    def _body(self, step: int) -> dict[str, Any]:
        with self.autocast():
            out = self.step_fn(self.batch, step)
        self.optimizer.zero_grad(set_to_none=False)  # gradients keep their addresses (graph replay)
        out["loss"].backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return out

    def _load(self, batch: Any) -> None:
        if self.batch is None:
            self.batch = _static_copy(batch)
            return
        for static, new in zip(_tensors(self.batch), _tensors(batch)):
            if static.shape != new.shape:
                raise ValueError(f"train.cuda_graph: a batch of shape {tuple(new.shape)} after {tuple(static.shape)}; "
                                 "a captured step replays fixed sizes")
            static.copy_(new, non_blocking=True)

    def __call__(self, batch: Any, step: int, lr: float) -> dict[str, Any]:
        """Run one step on ``batch`` at learning rate ``lr``; returns the step's outputs."""
        if self.batch is None:  # the first step: buffers and learning-rate tensors on the device
            tensor_learning_rates(self.optimizer, self.device)
        self._load(batch)
        set_learning_rate(self.optimizer, lr)
        if not self.capture:
            return self._body(step)
        if self.graph is None and self.eager_steps < WARMUP_STEPS:
            self.eager_steps += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self._body(step)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            try:
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph):
                    self.out = self._body(step)
            except RuntimeError as exc:  # an operation the graph cannot hold: stay eager
                log.warning("train.cuda_graph: capture failed (%s); the step runs eagerly",
                            str(exc).strip().splitlines()[0][:200])
                self.graph, self.capture = None, False
                return self._body(step)
        self.graph.replay()
        assert self.out is not None
        # copies: the loop keeps each step's scalars until log time, the graph overwrites its outputs
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in self.out.items()}
