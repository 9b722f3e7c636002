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
torch's SGD reads a tensor learning rate on the host, so the captured step applies the same
update with :func:`sgd_step_with_tensor_lr`; Adam-family optimizers run in their ``capturable`` mode.
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


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Let an Adam-family optimizer run inside a graph: its ``capturable`` mode reads the step
    counts and a tensor learning rate on the device (state loaded from a checkpoint moves there)."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = True
    for state in optimizer.state.values():
        if isinstance(state.get("step"), torch.Tensor):
            state["step"] = state["step"].to(device)


@torch.no_grad()
def sgd_step_with_tensor_lr(optimizer: torch.optim.SGD) -> None:
    """torch's foreach SGD update with each group's learning rate read from its 0-d device tensor.

    ``torch.optim.SGD`` turns a tensor learning rate into a host number (``alpha=-lr``: a device
    read, which a graph capture forbids), except under ``torch.compile``, where it multiplies the
    direction by the tensor instead. This is that same update: weight decay, momentum (buffers
    created by the eager warm-up steps), dampening, Nesterov, maximize. It differs from
    ``optimizer.step()`` only in rounding (a multiply, then an add, instead of one fused add).
    """
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        grads = [p.grad for p in params]
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        if group["momentum"]:
            bufs = [optimizer.state[p].get("momentum_buffer") for p in params]
            if any(b is None for b in bufs):
                raise RuntimeError("train.cuda_graph: a parameter has no momentum buffer after the warm-up steps")
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_add_(bufs, grads, alpha=1 - group["dampening"])
            grads = torch._foreach_add(grads, bufs, alpha=group["momentum"]) if group["nesterov"] else bufs
        torch._foreach_add_(params, torch._foreach_mul(grads, -group["lr"]))


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

    def _body(self, step: int, captured: bool = False) -> dict[str, Any]:
        with self.autocast():
            out = self.step_fn(self.batch, step)
        self.optimizer.zero_grad(set_to_none=False)  # gradients keep their addresses (graph replay)
        out["loss"].backward()
        if captured and isinstance(self.optimizer, torch.optim.SGD):
            sgd_step_with_tensor_lr(self.optimizer)
        else:
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
            if self.capture:
                make_capturable(self.optimizer, self.device)
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
                    self.out = self._body(step, captured=True)
            except RuntimeError as exc:
                # a failed capture may have left part of the step recorded and part run: going on
                # eagerly could train on a corrupted state, so the stage stops here
                raise RuntimeError(f"train.cuda_graph: capturing the step failed ({str(exc).strip().splitlines()[0][:200]}); "
                                   "run with train.cuda_graph=false") from exc
        self.graph.replay()
        assert self.out is not None
        # copies: the loop keeps each step's scalars until log time, the graph overwrites its outputs
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in self.out.items()}
