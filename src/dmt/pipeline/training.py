"""Resumable training of one stage: load the last state, run the engine, save as it goes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from dmt.config.schema import OptimConfig
from dmt.engine.checkpoint import load_checkpoint, save_checkpoint
from dmt.engine.loop import FitOptions, TrainState, fit
from dmt.pipeline.context import StageContext
from dmt.pipeline.steps import StatTotals

log = logging.getLogger("dmt")

STATE_FILE = "state.safetensors"


def train_stage(
    ctx: StageContext,
    stage_name: str,
    state: TrainState,
    make_batches: Callable[[int], Iterable[Any]],
    step_fn: Callable[[Any, int], dict[str, Any]],
    *,
    total: int,
    steps_per_epoch: int,
    opt: OptimConfig,
    totals: StatTotals | None = None,
    description: str = "train",
    every_epoch: Callable[[int], None] | None = None,
) -> None:
    """Train ``state`` to ``total`` steps, resuming from the stage's last checkpoint if any.

    Args:
        make_batches: ``start_step -> iterable`` of the batches of steps ``start .. total - 1``.
        totals: phase statistics to carry across a resume (restored in place).
        every_epoch: called with the epoch number after each epoch's checkpoint (model selection).

    The stage's wall time so far (this session plus, after a resume, the sessions before) is
    stored with every checkpoint; see :meth:`StageContext.stage_elapsed`.
    """
    path = ctx.run.stage_dir(stage_name) / STATE_FILE
    if path.exists():
        state.load_state_dict(load_checkpoint(path, ctx.device))
        if totals is not None:
            restored = StatTotals(state.extra.get("totals"))
            totals.sums, totals.count = restored.sums, restored.count
        log.info("%s: resuming at step %d of %d", stage_name, state.step, total)
    ctx.prior_elapsed = float(state.extra.get("elapsed", 0.0))

    def save(s: TrainState) -> None:
        s.extra["elapsed"] = ctx.stage_elapsed()
        if totals is not None:
            s.extra["totals"] = totals.state_dict()
        save_checkpoint(path, s.state_dict())

    if state.step < total:
        opts = FitOptions(
            total_steps=total, base_lr=opt.lr, schedule=opt.schedule, poly_power=opt.poly_power,
            steps_per_epoch=steps_per_epoch, checkpoint_seconds=ctx.cfg.checkpoint_seconds,
            checkpoint_min_seconds=ctx.cfg.checkpoint_min_seconds, log_every=max(1, min(50, total // 20)),
            description=description, device=ctx.device, amp=ctx.cfg.amp,
        )
        fit(step_fn, state, make_batches(state.step), opts, save,
            log_scalars=lambda step, values: ctx.scalars(stage_name, step, values), every_epoch=every_epoch)
