"""Resumable training of one stage: load the last state, run the engine, save as it goes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from dmt.config.schema import OptimConfig, TrainRuntimeConfig
from dmt.errors import UserError
from dmt.engine.distributed import ONE, Processes
from dmt.engine.accel import apply_channels_last, maybe_compile, use_channels_last
from dmt.engine.checkpoint import load_checkpoint, save_checkpoint
from dmt.engine.loop import FitOptions, TrainState, fit
from dmt.engine.optim import make_optimizer, named_groups
from dmt.engine.sync_bn import convert_sync_batchnorm
from dmt.tasks.context import StageContext
from dmt.tasks.stats import StatTotals

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

    With several processes every one of them restores the same file (rank 0 decides whether it
    exists), and only rank 0 writes it; the phase statistics of every process are gathered into
    it, so each process resumes its own running sums.
    """
    path = ctx.run.stage_dir(stage_name) / STATE_FILE
    if ctx.processes.broadcast_object(path.exists()):
        state.load_state_dict(load_checkpoint(path, ctx.device))
        if totals is not None:
            restored = StatTotals(_own_totals(state.extra, ctx.processes))
            totals.sums, totals.count = restored.sums, restored.count
        log.info("%s: resuming at step %d of %d", stage_name, state.step, total)
    ctx.prior_elapsed = float(state.extra.get("elapsed", 0.0))

    def save(s: TrainState) -> None:
        # a collective: every process calls save() at the same steps (see engine.loop.fit)
        sync_from_main(s, ctx.processes)
        gathered = ctx.processes.all_gather_objects(totals.state_dict()) if totals is not None else None
        if not ctx.processes.is_main:
            return
        s.extra["elapsed"] = ctx.stage_elapsed()
        s.extra["total_steps"] = total  # for `dmt status` (progress of an interrupted stage)
        if gathered is not None:
            s.extra["totals"] = gathered[0]
            s.extra["totals_per_rank"] = gathered
        save_checkpoint(path, s.state_dict())

    if state.step < total:
        opts = FitOptions(
            total_steps=total, base_lr=opt.lr, schedule=opt.schedule, poly_power=opt.poly_power,
            steps_per_epoch=steps_per_epoch, checkpoint_seconds=ctx.cfg.checkpoint_seconds,
            checkpoint_min_seconds=ctx.cfg.checkpoint_min_seconds, log_every=max(1, min(50, total // 20)),
            description=description, device=ctx.device, amp=ctx.cfg.amp,
            channels_last=accelerate(state, step_fn, ctx.cfg.train, ctx.device, ctx.processes),
            skip_nonfinite=ctx.cfg.train.skip_nonfinite,
        )
        fit(step_fn, state, make_batches(state.step), opts, save,
            log_scalars=lambda step, values: ctx.scalars(stage_name, step, values), every_epoch=every_epoch,
            processes=ctx.processes, display=ctx.display)


def stage_optimizer(model: nn.Module, opt: OptimConfig, section: str) -> torch.optim.Optimizer:
    """The optimizer a stage's config section (``baseline``, ``phases``, ``oracle``) asks for.

    Raises:
        UserError: ``<section>.lr_mult`` or ``group_weight_decay`` names a group the model lacks.
    """
    try:
        return make_optimizer(model, opt.optimizer, opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay,
                              nesterov=opt.nesterov, betas=opt.betas, lr_mult=opt.lr_mult,
                              group_weight_decay=opt.group_weight_decay)
    except ValueError as exc:
        groups = set(named_groups(model) or ())
        key = "lr_mult" if set(opt.lr_mult) - groups else "group_weight_decay"
        raise UserError(f"config key '{section}.{key}': {exc}") from None


def accelerate(state: TrainState, step_fn: Any, runtime: TrainRuntimeConfig, device,
               processes: Processes = ONE) -> bool:
    """Apply ``train.channels_last``, DDP (several processes) and ``train.compile`` to the step's model.

    Returns whether inputs go channels_last.

    The model (and its EMA) change layout in place, so the step, the optimizer and checkpoints
    keep their references; compilation wraps only the step's forward module (``step_fn.model``),
    so state dicts keep their keys.
    """
    channels_last = use_channels_last(device, runtime.channels_last)
    if channels_last:
        apply_channels_last(state.model)
        if state.ema is not None:
            apply_channels_last(state.ema.module)
    # DDP after the layout change: its gradient buckets follow the parameters' final strides,
    # so the first step after a resume reduces exactly like every other step
    if hasattr(step_fn, "model") and step_fn.model is state.model:
        step_fn.model = training_module(state.model, device, processes)
    if runtime.compile and hasattr(step_fn, "model"):
        step_fn.model = maybe_compile(step_fn.model, runtime.compile)
    return channels_last


def sync_from_main(state: TrainState, processes: Processes) -> None:
    """Give every process rank 0's BatchNorm statistics and EMA (no-op for one process).

    DDP keeps parameters identical, but per-process BatchNorm statistics, and an EMA of them,
    drift apart. Syncing wherever rank 0 checkpoints (and before evaluating) makes every
    process continue from exactly what the checkpoint holds, so a resumed run is the
    uninterrupted one.
    """
    if processes.size == 1:
        return
    tensors = [b for b in state.model.buffers() if b.is_floating_point()]
    if state.ema is not None:
        tensors += [t for t in state.ema.state_dict().values() if t.is_floating_point()]
    with torch.no_grad():
        processes.broadcast_tensors_(tensors)


def _own_totals(extra: dict, processes: Processes) -> dict | None:
    """This process's phase statistics from a checkpoint (all of them on rank 0 if the world changed)."""
    per_rank = extra.get("totals_per_rank")
    if not per_rank:
        return extra.get("totals")
    if len(per_rank) == processes.size:
        return per_rank[processes.rank]
    if not processes.is_main:  # resumed on another number of processes: rank 0 carries the sums
        return None
    return StatTotals.summed(per_rank).state_dict()


def reduce_totals(totals: StatTotals, processes: Processes) -> StatTotals:
    """The phase statistics summed over ``processes`` (the same object for one process)."""
    if processes.size == 1:
        return totals
    # rank order: the same sums on every process
    return StatTotals.summed(processes.all_gather_objects(totals.state_dict()))


def training_module(model: nn.Module, device, processes: Processes) -> nn.Module:
    """What a step calls for its forward passes: ``model`` itself, or a DDP wrapper of it.

    With several processes the model is wrapped in DistributedDataParallel (gradients averaged
    over processes in backward); the optimizer, EMA and checkpoints keep using ``model``, whose
    parameters the wrapper shares.
    """
    if processes.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # models with parameters no forward pass uses (the original's 2-branch ASPP) must say so
    unused = any(getattr(m, "has_dead_parameters", False) for m in model.modules())
    device_ids = [device.index] if device.type == "cuda" else None
    # the processes of a share (members trained side by side), or of the whole job
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=unused,
                                   process_group=processes.group)


def convert_sync_bn(model: nn.Module, enabled: bool, device: torch.device, processes: Processes) -> nn.Module:
    """BatchNorm -> SyncBatchNorm when ``enabled`` and several processes share each batch.

    SyncBatchNorm normalises with the statistics of the whole global batch, so a step on N
    processes computes what one process computes on the concatenated batch. Parameters and
    buffers are carried over, so call it before building the optimizer.
    """
    if not enabled or processes.size == 1:
        return model
    return convert_sync_batchnorm(model, device, processes)
