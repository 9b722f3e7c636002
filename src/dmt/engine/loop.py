"""The thin training engine: backward, mixed precision, optimizer, schedule, EMA, checkpoints.

Method logic lives in a *step function* ``step_fn(batch, step) -> dict`` that runs the forward
pass and returns ``{"loss": tensor, **scalars}`` (timm's task / detectron2's ``run_step``
pattern). :func:`fit` owns everything else, so every method shares one loop.
"""

from __future__ import annotations

import functools
import logging
import signal
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dmt.engine import signals
from dmt.engine.accel import autocast_dtype, to_channels_last
from dmt.engine.distributed import ONE, Processes
from dmt.engine.graphs import StaticStep, set_learning_rate
from dmt.engine.optim import make_optimizer
from dmt.engine.progress import Progress
from dmt.engine.schedule import learning_rate

log = logging.getLogger("dmt")


class EMA(AveragedModel):
    """:class:`AveragedModel` with the EMA rule, updated without reading the device.

    torch's ``update_parameters`` tests ``n_averaged == 0`` and copies ``n_averaged`` to the
    device on every call: two host synchronisations per step on CUDA. This keeps the same
    arithmetic (copy on the first update, then ``lerp`` towards the model for floating tensors,
    ``p * decay + q * (1 - decay)`` for integer buffers) and the same state dict.

    It also issues few operator calls, which matters where the host is the bottleneck (a
    DeepLab-v2 step issues about 1,800; ``dmt bench --only step_ops``): the tensor lists are
    collected once, the floating tensors
    move in one ``_foreach_lerp_``, and ResNet-101's 104 BatchNorm ``num_batches_tracked``
    counters in one stacked computation and one ``_foreach_copy_`` instead of four kernels each.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = decay
        self._started: bool | None = None  # known after the first update or a load
        # (weak reference to the model, EMA floats, model floats, EMA integers, model integers,
        # whether the integers stack); a weak reference, not id(): a new model could reuse an id
        self._pairs: tuple[weakref.ref, list, list, list, list, bool] | None = None

    def _tensors(self, model: nn.Module) -> tuple[list, list, list, list, bool]:
        """(EMA floats, model floats, EMA integers, model integers, integers all 0-d of one dtype
        and device), collected once per model."""
        if self._pairs is None or self._pairs[0]() is not model:
            ema = list(self.module.parameters()) + list(self.module.buffers())
            cur = list(model.parameters()) + list(model.buffers())
            if len(ema) != len(cur):
                raise ValueError(f"EMA holds {len(ema)} tensors, the model {len(cur)}")
            pairs = list(zip(ema, cur))
            ints = [t for e, c in pairs if not e.is_floating_point() for t in (e, c)]
            stack = all(t.dim() == 0 for t in ints) and len({(t.dtype, t.device) for t in ints}) <= 1
            self._pairs = (weakref.ref(model), [e for e, _ in pairs if e.is_floating_point()],
                           [c for e, c in pairs if e.is_floating_point()],
                           [e for e, _ in pairs if not e.is_floating_point()],
                           [c for e, c in pairs if not e.is_floating_point()], stack)
        return self._pairs[1:]

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if self._started is None:
            self._started = bool(self.n_averaged.item() > 0)  # once per stage (n_averaged may be restored)
        ema_f, cur_f, ema_i, cur_i, stack = self._tensors(model)
        if not self._started:
            torch._foreach_copy_(ema_f + ema_i, cur_f + cur_i)
        else:
            if ema_f:
                torch._foreach_lerp_(ema_f, cur_f, 1 - self.decay)
            if ema_i:
                # integer buffers (BatchNorm counters, all 0-d) as torch's rule does it, tensor by
                # tensor: (e * decay + c * (1 - decay)) in the default float dtype, truncated back
                if stack:
                    new = torch.stack(ema_i) * self.decay + torch.stack(cur_i) * (1 - self.decay)
                    torch._foreach_copy_(ema_i, list(new.to(ema_i[0].dtype).unbind()))
                else:
                    for e, c in zip(ema_i, cur_i):
                        e.copy_(e * self.decay + c * (1 - self.decay))
        self._started = True
        self.n_averaged += 1

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._started = None
        return super().load_state_dict(*args, **kwargs)


def make_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """EMA of weights *and* buffers (BN statistics), or ``None`` when ``decay`` is 0."""
    if decay <= 0:
        return None
    return EMA(model, decay)


def make_sgd(model: nn.Module, lr: float, momentum: float, weight_decay: float,
             nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD over the model's parameters (:func:`dmt.engine.optim.make_optimizer` with ``kind="sgd"``)."""
    return make_optimizer(model, "sgd", lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def amp_settings(device: torch.device, enabled: bool | str) -> tuple[bool, torch.dtype]:
    """``(autocast on?, dtype)`` for the ``amp`` setting (``True``/``"auto"``/``False``) on ``device``.

    bfloat16 on CUDA where supported (no loss scaling needed), else float16; bfloat16 on CPUs with
    native bf16 (:func:`dmt.engine.accel.autocast_dtype`); float32 otherwise.
    """
    dtype = autocast_dtype(device, enabled)
    return (False, torch.float32) if dtype is None else (True, dtype)


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
        optimizer = self.optimizer.state_dict()
        for group in optimizer["param_groups"]:  # a graph-ready step's learning rates are tensors
            if isinstance(group.get("lr"), torch.Tensor):
                group["lr"] = float(group["lr"])
        return {
            "model": self.model.state_dict(),
            "optimizer": optimizer,
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
    amp: bool | str = False  # True / "auto": mixed precision where fast (see amp_settings)
    channels_last: bool = False  # move 4-D float inputs to channels_last (the model already is)
    skip_nonfinite: int = 0  # steps with a non-finite loss or gradient to skip (undo) before stopping
    cuda_graph: bool = False  # the step on static buffers, captured as one CUDA graph (engine.graphs)


class NonFiniteLoss(FloatingPointError):
    """A loss (or, when skipping, a gradient) was not finite; the message names the steps."""


class _Pending:
    """What the loop keeps on the device between two reads: scalars and the finite-loss flag.

    Nothing here reads the device until :meth:`means` or :meth:`check_finite` (at log and
    checkpoint time), so a step never waits for the accelerator. The means are summed in
    float64 on the host in step order, exactly as a per-step ``float(v)`` would have.
    """

    def __init__(self, processes: Processes) -> None:
        self.processes = processes  # they agree on the finite checks
        self.values: dict[str, list[Any]] = {}
        self.count = 0
        self.nonfinite: torch.Tensor | None = None  # any non-finite loss since the last check
        self.first_unchecked: int | None = None

    def add(self, out: dict[str, Any], step: int, skipped: torch.Tensor | None = None) -> None:
        """Keep a step's scalars; ``skipped`` (0-d bool): the step was undone (skip_nonfinite)."""
        loss = out["loss"].detach()
        bad = (~torch.isfinite(loss) if skipped is None else skipped).reshape(()).to(torch.int64)
        # a count of bad steps: exact for skipping, and "> 0" is the old any-flag
        self.nonfinite = bad if self.nonfinite is None else self.nonfinite + bad
        if self.first_unchecked is None:
            self.first_unchecked = step
        for k, v in out.items():
            self.values.setdefault(k, []).append(v.detach() if isinstance(v, torch.Tensor) else v)
        self.count += 1

    def check_finite(self, description: str, last_step: int, state: TrainState | None = None,
                     allowed: int = 0) -> None:
        """Raise :class:`NonFiniteLoss` (on every process) if a loss since the last check was not finite.

        With ``allowed > 0`` the bad steps were skipped: their count is added to
        ``state.extra["skipped_nonfinite"]`` and only more than ``allowed`` in the stage raise.
        """
        if self.nonfinite is None:
            return
        count = self.nonfinite
        first, self.nonfinite, self.first_unchecked = self.first_unchecked, None, None
        if allowed <= 0 or state is None:
            if self.processes.any_process(bool(count)):
                raise NonFiniteLoss(f"{description}: non-finite loss {_steps(first, last_step)}")
            return
        # skipping: every process took the same decision (see fit), rank 0's count stands for all
        n = int(self.processes.all_reduce_max(count))
        if n == 0:
            return
        total = int(state.extra.get("skipped_nonfinite", 0)) + n
        state.extra["skipped_nonfinite"] = total
        log.warning("%s: skipped %d step(s) with a non-finite loss or gradient %s (%d of train.skip_nonfinite=%d "
                    "used)", description, n, _steps(first, last_step), total, allowed)
        if total > allowed:
            raise NonFiniteLoss(f"{description}: non-finite loss {_steps(first, last_step)}, after {total} "
                                f"skipped steps (more than train.skip_nonfinite={allowed})")

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


def fit(
    step_fn: Callable[[Any, int], dict[str, Any]],
    state: TrainState,
    batches: Iterable[Any],
    opts: FitOptions,
    save: Callable[[TrainState], None],
    log_scalars: Callable[[int, dict[str, float]], None] | None = None,
    every_epoch: Callable[[int], None] | None = None,
    processes: Processes = ONE,
) -> None:
    """Run steps ``state.step .. opts.total_steps - 1``, one batch each.

    The step never waits for the device: losses and scalars stay on it until log time (every
    ``opts.log_every`` steps and the last), when their means are logged and a non-finite loss
    raises :class:`NonFiniteLoss` naming the steps. Before every checkpoint the finite check
    runs too, so a checkpoint never holds weights trained on a non-finite loss. With
    ``opts.skip_nonfinite = N`` a step whose loss or gradients are not finite is undone on the
    device instead (weights, BN statistics, optimizer state and EMA keep their values) and the
    error comes only after more than N such steps in the stage.

    A stop requested by SIGTERM / SIGINT (:mod:`dmt.engine.signals`) is honoured at the next
    step boundary (with several processes: the next log point or epoch end, where they agree
    on it): a checkpoint of that step is written and :class:`~dmt.engine.signals.StopRequested`
    raised.

    Args:
        step_fn: ``(batch, step) -> {"loss": scalar tensor, **scalars}`` (tensors or floats);
            called under autocast.
        state: model/optimizer/EMA/scaler and the step to resume from (updated in place).
        batches: yields exactly the batches of the remaining steps, in order.
        opts: schedule, length, checkpoint cadence, AMP and input layout.
        save: writes ``state`` to disk (called after each epoch, every few minutes, at the end).
        log_scalars: receives the mean of each returned scalar every ``opts.log_every`` steps.
        every_epoch: called with the finished epoch number (evaluation during training).
        processes: the processes sharing each step's batch (DDP): they agree on finite checks,
            checkpoint times and stops, and rank 0 shows progress.
    """
    use_amp, amp_dtype = amp_settings(opts.device, opts.amp)
    if state.scaler is None:
        state.scaler = torch.amp.GradScaler(opts.device.type, enabled=use_amp and amp_dtype == torch.float16)
    model, optimizer = state.model, state.optimizer
    model.train()
    static = _static_step(step_fn, state, opts, use_amp, amp_dtype)
    pending = _Pending(processes)
    last_save = time.monotonic()
    skip = opts.skip_nonfinite > 0

    def check(step: int) -> None:
        pending.check_finite(opts.description, step, state, opts.skip_nonfinite)

    def save_if_finite(step: int) -> None:
        check(step)
        # a finite loss can still have taken the weights to inf (a huge learning rate): such a state
        # is no "last good checkpoint" (one device read, at checkpoint time only)
        if not processes.any_process(not _finite(model)):
            save(state)
            return
        raise NonFiniteLoss(f"{opts.description}: non-finite weights after step {step}")

    with signals.deferred(), Progress(opts.description, opts.total_steps, start=state.step, steps_per_epoch=opts.steps_per_epoch,
                                      enabled=processes.shows_progress()) as bar:
        for batch in batches:
            step = state.step
            if step >= opts.total_steps:
                break
            lr = learning_rate(opts.base_lr, step, opts.total_steps, opts.schedule, opts.poly_power)
            batch = move_to(batch, opts.device)
            if opts.channels_last:
                batch = to_channels_last(batch)
            bad = None
            if static is not None:  # forward, backward, optimizer and EMA on static buffers (a CUDA graph)
                out = static(batch, step, lr)
            else:
                set_learning_rate(optimizer, lr)
                kept = _Snapshot(state) if skip else None  # before the forward, which moves BN statistics
                with torch.autocast(opts.device.type, dtype=amp_dtype, enabled=use_amp):
                    out = step_fn(batch, step)
                loss = out["loss"]
                optimizer.zero_grad(set_to_none=True)
                state.scaler.scale(loss).backward()
                bad = _nonfinite_step(loss, model, processes) if skip else None
                state.scaler.step(optimizer)
                state.scaler.update()
                if state.ema is not None:
                    state.ema.update_parameters(model)
                if kept is not None and bad is not None:
                    kept.restore_where(bad, state)
            state.step = step + 1
            pending.add(out, step, bad)

            if pending.count == opts.log_every or state.step == opts.total_steps:
                check(step)
                means = pending.means()
                means["lr"] = lr
                if log_scalars is not None:
                    log_scalars(state.step, means)
                bar.advance(1, loss=means["loss"])
            else:
                bar.advance(1)

            epoch_end = state.step % opts.steps_per_epoch == 0
            age = time.monotonic() - last_save
            due = state.step == opts.total_steps or age > opts.checkpoint_seconds or \
                (epoch_end and age >= opts.checkpoint_min_seconds)
            if processes.size > 1 and state.step != opts.total_steps:
                # every process saves at the same steps (a save gathers their statistics): they
                # compare clocks only at epoch ends and log points, never inside a stretch of steps
                due = (epoch_end or pending.count == 0) and processes.any_process(due)
            if due:
                save_if_finite(step)
                last_save = time.monotonic()
            stop = signals.requested()
            if processes.size > 1:
                # agreed where the processes meet anyway, so that every one of them saves
                at_meeting = epoch_end or pending.count == 0 or state.step == opts.total_steps
                stop = (stop or signal.SIGTERM) if at_meeting and processes.any_process(stop is not None) else None
            if stop and state.step < opts.total_steps:
                if not due:
                    save_if_finite(step)
                raise signals.StopRequested(stop, f"{opts.description}: checkpoint written at step {state.step} "
                                                  f"of {opts.total_steps}")
            if epoch_end and every_epoch is not None:
                check(step)
                every_epoch(state.step // opts.steps_per_epoch)
                model.train()


def _static_step(step_fn: Callable, state: TrainState, opts: FitOptions, use_amp: bool,
                 amp_dtype: torch.dtype) -> StaticStep | None:
    """The graph-ready step when ``opts.cuda_graph`` asks for it and the loop's checks allow it."""
    if not opts.cuda_graph:
        return None
    if state.scaler.is_enabled() or opts.skip_nonfinite > 0:
        log.warning("train.cuda_graph: float16 loss scaling and train.skip_nonfinite decide on the host at every "
                    "step; the step runs eagerly")
        return None
    autocast = functools.partial(torch.autocast, opts.device.type, dtype=amp_dtype, enabled=use_amp)
    return StaticStep(step_fn, state.model, state.optimizer, state.ema, opts.device, autocast, capture=True)


def _finite(model: nn.Module) -> bool:
    """Whether every weight and buffer of ``model`` is finite."""
    tensors = [t.detach() for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    return not tensors or bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors)).float().sum()))


def _steps(first: int | None, last: int) -> str:
    return f"at step {last}" if first == last else f"between steps {first} and {last}"


class _Snapshot:
    """Copies of everything one optimizer step changes, to undo a step with a non-finite loss.

    Restoring is ``torch.where`` on the device (no host synchronisation): a few copies of the
    weights per step, paid only when ``train.skip_nonfinite`` is set.
    """

    def __init__(self, state: TrainState) -> None:
        self.tensors = _mutable_tensors(state)
        self.copies = [t.detach().clone() for t in self.tensors]
        self.ids = {id(t) for t in self.tensors}

    @torch.no_grad()
    def restore_where(self, bad: torch.Tensor, state: TrainState) -> None:
        for t, old in zip(self.tensors, self.copies):
            t.copy_(torch.where(bad, old, t))
        for t in _mutable_tensors(state):
            if id(t) not in self.ids:  # optimizer state born in this step (SGD's first momentum)
                t.copy_(torch.where(bad, torch.zeros_like(t), t))


def _mutable_tensors(state: TrainState) -> list[torch.Tensor]:
    """Floating tensors an optimizer step (and the forward before it) may change."""
    out = list(state.model.parameters())  # the objects themselves: restore_where compares identities
    out += [b for b in state.model.buffers() if b.is_floating_point()]
    if state.ema is not None:
        out += [t for t in list(state.ema.module.parameters()) + list(state.ema.module.buffers())
                if t.is_floating_point()]
    for st in state.optimizer.state.values():
        out += [v for v in st.values() if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dim() > 0]
    return out


def _nonfinite_step(loss: torch.Tensor, model: nn.Module, processes: Processes) -> torch.Tensor:
    """0-d bool on the device: the loss or a gradient is not finite (the same on every process)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    bad = ~torch.isfinite(loss.detach().float())
    if grads:
        bad = bad | ~torch.isfinite(torch.stack(torch._foreach_norm(grads)).float().sum())
    if processes.size > 1:  # gradients agree after DDP's reduction, losses need not
        bad = processes.all_reduce_max(bad.to(torch.int64).reshape(1)).reshape(()) > 0
    return bad.reshape(())
