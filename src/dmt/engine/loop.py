"""The thin training engine: backward, mixed precision, optimizer, schedule, EMA, checkpoints.

Method logic lives in a *step function* ``step_fn(batch, step) -> dict`` that runs the forward
pass and returns ``{"loss": tensor, **scalars}`` (timm's task / detectron2's ``run_step``
pattern). :func:`fit` owns everything else, so every method shares one loop. It reads top to
bottom as the parts of a step, each a method of :class:`_Stage`: the optimizer step, the log
point, the checkpoint, a requested stop, the end of an epoch.

Several processes (DDP) must take the same decisions at the same steps: where one of them
decides alone (a checkpoint is due by its clock, a signal reached it) they agree through
:mod:`dmt.engine.distributed`, and only at steps where they meet anyway (log points, epoch ends).

What a stage trains is a :class:`~dmt.engine.state.TrainState`; this module also offers it, with
``make_ema`` and ``make_sgd``, so that a stage runner imports its engine from one place.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from dmt.engine import signals
from dmt.engine.accel import autocast_dtype, to_channels_last
from dmt.engine.distributed import ONE, Processes
from dmt.engine.finite import NonFiniteLoss, Snapshot, count_skipped, nonfinite_step, steps_text, weights_finite
from dmt.engine.pending import Pending
from dmt.engine.progress import Display, Progress
from dmt.engine.schedule import learning_rate, set_learning_rate
from dmt.engine.state import EMA, TrainState, make_ema, make_sgd
from dmt.engine.tree import map_tensors

__all__ = ["EMA", "FitOptions", "NonFiniteLoss", "TrainState", "amp_settings", "fit", "make_ema", "make_sgd",
           "move_to"]

log = logging.getLogger("dmt")


def amp_settings(device: torch.device, enabled: bool | str) -> tuple[bool, torch.dtype]:
    """``(autocast on?, dtype)`` for the ``amp`` setting (``True``/``"auto"``/``False``) on ``device``.

    bfloat16 on CUDA where supported (no loss scaling needed), else float16; bfloat16 on CPUs with
    native bf16 (:func:`dmt.engine.accel.autocast_dtype`); float32 otherwise.
    """
    dtype = autocast_dtype(device, enabled)
    return (False, torch.float32) if dtype is None else (True, dtype)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device``."""
    return map_tensors(lambda t: t.to(device, non_blocking=True), batch)


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


def fit(
    step_fn: Callable[[Any, int], dict[str, Any]],
    state: TrainState,
    batches: Iterable[Any],
    opts: FitOptions,
    save: Callable[[TrainState], None],
    log_scalars: Callable[[int, dict[str, float]], None] | None = None,
    every_epoch: Callable[[int], None] | None = None,
    processes: Processes = ONE,
    display: Display | None = None,
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
        display: how progress shows (default: rank 0 of ``processes``, without the run's clock).
    """
    stage = _Stage(step_fn, state, opts, save, log_scalars, processes)
    state.model.train()
    display = display or Display(processes.shows_progress())
    with signals.deferred(), display(opts.description, opts.total_steps, state.step, opts.steps_per_epoch) as bar:
        for batch in batches:
            step = state.step
            if step >= opts.total_steps:
                break
            lr = learning_rate(opts.base_lr, step, opts.total_steps, opts.schedule, opts.poly_power)
            stage.train_step(batch, step, lr)
            logged = stage.log_if_due(step, lr, bar)
            epoch_end = state.step % opts.steps_per_epoch == 0
            saved = stage.save_if_due(step, epoch_end, logged)
            stage.stop_if_requested(step, epoch_end or logged, saved)
            if epoch_end and every_epoch is not None:
                stage.check(step)
                every_epoch(state.step // opts.steps_per_epoch)
                state.model.train()


class _Stage:
    """One :func:`fit` call's parts: each method is one thing the loop does after a step."""

    def __init__(self, step_fn: Callable[[Any, int], dict[str, Any]], state: TrainState, opts: FitOptions,
                 save: Callable[[TrainState], None],
                 log_scalars: Callable[[int, dict[str, float]], None] | None, processes: Processes) -> None:
        self.step_fn, self.state, self.opts, self.save_state, self.log_scalars = step_fn, state, opts, save, log_scalars
        self.processes = processes  # they agree on finite checks, checkpoint times and stops
        self.use_amp, self.amp_dtype = amp_settings(opts.device, opts.amp)
        if state.scaler is None:  # float16 needs loss scaling; bfloat16 and float32 do not
            state.scaler = torch.amp.GradScaler(opts.device.type, enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.pending = Pending()
        self.last_save = time.monotonic()

    def train_step(self, batch: Any, step: int, lr: float) -> None:
        """Forward under autocast, scaled backward, optimizer, EMA; undone on the device when bad
        and ``skip_nonfinite`` is set. Advances ``state.step`` and keeps the outputs pending."""
        state, opts = self.state, self.opts
        skip = opts.skip_nonfinite > 0
        batch = move_to(batch, opts.device)
        if opts.channels_last:
            batch = to_channels_last(batch)
        set_learning_rate(state.optimizer, lr)
        kept = Snapshot(state) if skip else None  # before the forward, which moves BN statistics
        with torch.autocast(opts.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            out = self.step_fn(batch, step)
        loss = out["loss"]
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        bad = self._nonfinite(loss) if skip else None
        state.scaler.step(state.optimizer)
        state.scaler.update()
        if state.ema is not None:
            state.ema.update_parameters(state.model)
        if kept is not None and bad is not None:
            kept.restore_where(bad, state)
        state.step = step + 1
        self.pending.add(out, step, bad)

    def _nonfinite(self, loss: torch.Tensor) -> torch.Tensor:
        """0-d bool on the device, the same on every process: the step is bad somewhere."""
        bad = nonfinite_step(loss, self.state.model)
        if self.processes.size > 1:  # gradients agree after DDP's reduction, losses need not
            bad = self.processes.all_reduce_max(bad.to(torch.int64).reshape(1)).reshape(()) > 0
        return bad.reshape(())

    def log_if_due(self, step: int, lr: float, bar: Progress) -> bool:
        """At a log point (every ``log_every`` steps and the last): check, log the means, show the
        loss on the progress bar; returns whether this was one (the processes meet there)."""
        if self.pending.count == self.opts.log_every or self.state.step == self.opts.total_steps:
            self.check(step)
            means = self.pending.means()
            means["lr"] = lr
            if self.log_scalars is not None:
                self.log_scalars(self.state.step, means)
            bar.advance(1, loss=means["loss"])
            return True
        bar.advance(1)
        return False

    def check(self, step: int) -> None:
        """Raise :class:`NonFiniteLoss` on every process if a step since the last check was bad
        (with ``skip_nonfinite``: count the skipped ones, raise past the allowance)."""
        taken = self.pending.take_nonfinite()
        if taken is None:
            return
        count, first = taken
        allowed, description = self.opts.skip_nonfinite, self.opts.description
        if allowed <= 0:
            if self.processes.any_process(bool(count)):
                raise NonFiniteLoss(f"{description}: non-finite loss {steps_text(first, step)}")
            return
        # skipping: every process took the same decision (see _nonfinite), rank 0's count stands for all
        n = int(self.processes.all_reduce_max(count))
        if n:
            count_skipped(self.state.extra, n, allowed, description, steps_text(first, step))

    def save_checked(self, step: int) -> None:
        """Check, then write a checkpoint, unless the weights themselves are no longer finite."""
        self.check(step)
        # a finite loss can still have taken the weights to inf (a huge learning rate): such a state
        # is no "last good checkpoint" (one device read, at checkpoint time only)
        if self.processes.any_process(not weights_finite(self.state.model)):
            raise NonFiniteLoss(f"{self.opts.description}: non-finite weights after step {step}")
        self.save_state(self.state)

    def save_if_due(self, step: int, epoch_end: bool, logged: bool) -> bool:
        """Save after each epoch (unless the last save is younger than ``checkpoint_min_seconds``),
        every ``checkpoint_seconds`` and at the end; returns whether it saved."""
        opts, last = self.opts, self.state.step == self.opts.total_steps
        age = time.monotonic() - self.last_save
        due = last or age > opts.checkpoint_seconds or (epoch_end and age >= opts.checkpoint_min_seconds)
        if self.processes.size > 1 and not last:
            # every process saves at the same steps (a save gathers their statistics): they
            # compare clocks only at epoch ends and log points, never inside a stretch of steps
            due = (epoch_end or logged) and self.processes.any_process(due)
        if due:
            self.save_checked(step)
            self.last_save = time.monotonic()
        return due

    def stop_if_requested(self, step: int, meeting: bool, saved: bool) -> None:
        """After a SIGTERM / SIGINT: save this step (unless just saved) and raise ``StopRequested``.

        ``meeting``: an epoch end or a log point, where several processes agree on a stop (so
        that every one of them saves); a stop at the last step is no stop: the stage is done.
        """
        stop = signals.requested()
        last = self.state.step == self.opts.total_steps
        if self.processes.size > 1:
            stop = (stop or signal.SIGTERM) if (meeting or last) and self.processes.any_process(stop is not None) else None
        if stop and not last:
            if not saved:
                self.save_checked(step)
            raise signals.StopRequested(stop, f"{self.opts.description}: checkpoint written at step "
                                              f"{self.state.step} of {self.opts.total_steps}")
