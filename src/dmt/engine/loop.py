"""The thin training engine: backward, mixed precision, optimizer, schedule, EMA, checkpoints.

Method logic lives in a *step function* ``step_fn(batch, step) -> dict`` that runs the forward
pass and returns ``{"loss": tensor, **scalars}`` (timm's task / detectron2's ``run_step``
pattern). :func:`fit` owns everything else, so every method shares one loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dmt.engine.progress import Progress
from dmt.engine.schedule import learning_rate

log = logging.getLogger("dmt")


def make_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """EMA of weights *and* buffers (BN statistics), or ``None`` when ``decay`` is 0."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def make_sgd(model: nn.Module, lr: float, momentum: float, weight_decay: float, nesterov: bool = False,
             param_groups: list[dict] | None = None) -> torch.optim.SGD:
    """SGD over ``param_groups`` (each may carry an ``lr_mult``) or all parameters."""
    groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    for g in groups:
        g.setdefault("lr_mult", 1.0)
        g["lr"] = lr * g["lr_mult"]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def amp_settings(device: torch.device, enabled: bool) -> tuple[bool, torch.dtype]:
    """Autocast on CUDA only: bfloat16 where supported (no loss scaling needed), else float16."""
    if not enabled or device.type != "cuda":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


@dataclass
class TrainState:
    """What a stage checkpoints to resume: model, optimizer, EMA, loss scaler and the step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    ema: AveragedModel | None = None
    scaler: torch.amp.GradScaler | None = None
    step: int = 0
    extra: dict = field(default_factory=dict)  # small JSON-able values a stage wants back

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None and self.scaler.is_enabled() else None,
            "step": self.step,
            "extra": self.extra,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.model.load_state_dict(d["model"])
        self.optimizer.load_state_dict(d["optimizer"])
        if self.ema is not None and d.get("ema") is not None:
            self.ema.load_state_dict(d["ema"])
        if self.scaler is not None and d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
        self.step = int(d["step"])
        self.extra = dict(d.get("extra") or {})


@dataclass
class FitOptions:
    """How :func:`fit` runs a stage."""

    total_steps: int
    base_lr: float
    schedule: str = "cosine"
    poly_power: float = 0.9
    steps_per_epoch: int = 1  # a checkpoint is written after each epoch ...
    checkpoint_seconds: float = 300.0  # ... and at least every few minutes of work;
    checkpoint_min_seconds: float = 10.0  # tiny epochs (one step) skip saves younger than this
    log_every: int = 50
    description: str = "train"
    device: torch.device = torch.device("cpu")
    amp: bool = False


def fit(
    step_fn: Callable[[Any, int], dict[str, Any]],
    state: TrainState,
    batches: Iterable[Any],
    opts: FitOptions,
    save: Callable[[TrainState], None],
    log_scalars: Callable[[int, dict[str, float]], None] | None = None,
    every_epoch: Callable[[int], None] | None = None,
) -> None:
    """Run steps ``state.step .. opts.total_steps - 1``, one batch each.

    Args:
        step_fn: ``(batch, step) -> {"loss": scalar tensor, **floats}``; called under autocast.
        state: model/optimizer/EMA/scaler and the step to resume from (updated in place).
        batches: yields exactly the batches of the remaining steps, in order.
        opts: schedule, length and checkpoint cadence.
        save: writes ``state`` to disk (called after each epoch, every few minutes, at the end).
        log_scalars: receives the mean of each returned scalar every ``opts.log_every`` steps.
        every_epoch: called with the finished epoch number (evaluation during training).
    """
    use_amp, amp_dtype = amp_settings(opts.device, opts.amp)
    if state.scaler is None:
        state.scaler = torch.amp.GradScaler(opts.device.type, enabled=use_amp and amp_dtype == torch.float16)
    model, optimizer = state.model, state.optimizer
    model.train()
    sums: dict[str, float] = {}
    count = 0
    last_save = time.monotonic()
    with Progress(opts.description, opts.total_steps, start=state.step) as bar:
        for batch in batches:
            step = state.step
            if step >= opts.total_steps:
                break
            lr = learning_rate(opts.base_lr, step, opts.total_steps, opts.schedule, opts.poly_power)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_mult", 1.0)
            batch = move_to(batch, opts.device)
            with torch.autocast(opts.device.type, dtype=amp_dtype, enabled=use_amp):
                out = step_fn(batch, step)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{opts.description}: loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            state.scaler.scale(loss).backward()
            state.scaler.step(optimizer)
            state.scaler.update()
            if state.ema is not None:
                state.ema.update_parameters(model)
            state.step = step + 1

            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
            count += 1
            if count == opts.log_every or state.step == opts.total_steps:
                means = {k: v / count for k, v in sums.items()}
                means["lr"] = lr
                if log_scalars is not None:
                    log_scalars(state.step, means)
                sums, count = {}, 0
            bar.advance(1, loss=float(loss.detach()))

            epoch_end = state.step % opts.steps_per_epoch == 0
            age = time.monotonic() - last_save
            if state.step == opts.total_steps or age > opts.checkpoint_seconds or \
                    (epoch_end and age >= opts.checkpoint_min_seconds):
                save(state)
                last_save = time.monotonic()
            if epoch_end and every_epoch is not None:
                every_epoch(state.step // opts.steps_per_epoch)
                model.train()
