"""Execute a plan in a run directory: skip finished stages, resume the interrupted one.

``results.json`` is rewritten (atomically) after every stage, so it always describes exactly
the stages that finished; its schema is documented in ``docs/results.md``.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from dmt import __version__
from dmt.config.schema import ExperimentConfig
from dmt.engine import distributed as dist
from dmt.engine.loop import NonFiniteLoss
from dmt.errors import UserError
from dmt.run.preflight import preflight_all
from dmt.run.rundir import RunDir
from dmt.run.summary import plot_results, summarize
from dmt.tasks.context import StageContext, resolve_device, stage_seed
from dmt.tasks.plan import Stage, make_plan
from dmt.tasks.training import STATE_FILE

log = logging.getLogger("dmt")


def _task_runner(ctx: StageContext) -> Any:
    if ctx.cfg.task == "classification":
        from dmt.tasks.classification.runner import ClassificationRunner

        return ClassificationRunner(ctx)
    from dmt.tasks.segmentation.runner import SegmentationRunner

    return SegmentationRunner(ctx)


def _stage_entry(stage: Stage, seed: int, record: dict[str, Any], wall: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": stage.name, "kind": stage.kind}
    if stage.member:
        entry["model"] = stage.member
    if stage.kind == "phase":
        entry.update({"phase": stage.index, "ratio": stage.ratio, "teacher": stage.teacher,
                      "init_from": stage.init_from})
    entry["seed"] = seed
    entry.update(record)
    entry["wall_time_s"] = round(wall, 3)
    return entry


def _nonfinite_error(exc: NonFiniteLoss, state: Path) -> UserError:
    """One line for a stage stopped by a non-finite loss (every process raises it alike)."""
    kept = (f"the last good checkpoint {state} is kept" if state.exists()
            else "no checkpoint of this stage was written yet")
    err = UserError(f"{exc}; {kept}; lower the learning rate, or set train.skip_nonfinite=N to skip up to "
                    "N such steps, and re-run the same command")
    err.shared = True  # type: ignore[attr-defined]
    return err


def side_by_side(cfg: ExperimentConfig, plan: list[Stage], processes: int) -> int:
    """Into how many shares the processes split to run a phase's members at once (1: one after the other).

    ``train.members_in_parallel``: false never; auto when the plan has two members and the
    processes divide evenly between them; true the same, and a job that cannot is refused.
    """
    members = sorted({s.member for s in plan if s.member})
    setting = cfg.train.members_in_parallel
    if setting is False or len(members) < 2:
        return 1
    if processes >= len(members) and processes % len(members) == 0:
        return len(members)
    if setting is True:
        raise UserError(f"config key 'train.members_in_parallel': true needs a multiple of {len(members)} processes "
                        f"(one share per member), this job has {processes}; start it with --nproc "
                        f"{len(members) * max(1, processes // len(members))} or torchrun")
    return 1


def processes_per_member(cfg: ExperimentConfig, processes: int) -> int:
    """How many processes share each stage's batches: all of them, or a member's share side by side."""
    return processes // side_by_side(cfg, make_plan(cfg), processes)


def _steps(todo: list[Stage], parallel: bool) -> list[list[Stage]]:
    """The stages to run in order, the members of one phase (or the baselines) together when side by side."""
    steps: list[list[Stage]] = []
    for stage in todo:
        last = steps[-1][0] if steps else None
        if (parallel and last is not None and stage.member and last.member and (stage.kind, stage.index)
                == (last.kind, last.index) and stage.member not in {s.member for s in steps[-1]}):
            steps[-1].append(stage)
        else:
            steps.append([stage])
    return steps


def _share_runner(runner: Any, ctx: StageContext) -> Any:
    """The task runner for the stages this process's share runs: the data it loaded, ``ctx``'s processes."""
    share = copy.copy(runner)  # shallow: the loaded data are shared, not loaded twice
    share.ctx = ctx
    return share


def _run_step(step: list[Stage], todo: list[Stage], results: dict[str, Any], ctx: StageContext, runner: Any,
              run: RunDir, cfg: ExperimentConfig, share: tuple[int, Any] | None) -> list[dict[str, Any]]:
    """Run one stage on every process, or each member of ``step`` on its share; the entries, in plan order.

    ``share``: this process's share when the job is split (its index, and the task runner whose
    context carries the share's processes), else None.
    """
    if len(step) == 1:
        return [_run_stage(step[0], todo, results, ctx, runner, run, cfg)]
    assert share is not None, "members side by side need the job split into shares"
    mine, share_runner = share
    stage, on = step[mine], share_runner.ctx.processes
    with run.share_log(on.is_main):
        try:
            outcome: tuple[str, Any] = ("ok", _run_stage(stage, todo, results, share_runner.ctx, share_runner,
                                                         run, cfg))
        except UserError as exc:  # the other share must hear of it instead of waiting for this one
            outcome = ("error", str(exc))
    # each share's processes hold the same entry: take every share's first
    job = ctx.processes
    per_share = job.all_gather_objects(outcome)[:: job.size // len(step)]
    errors = [payload for kind, payload in per_share if kind == "error"]
    if errors:
        err = UserError(errors[0])
        err.shared = True  # type: ignore[attr-defined]  (every process raises it; printed once)
        raise err
    return [payload for _, payload in per_share]


def _run_stage(stage: Stage, todo: list[Stage], results: dict[str, Any], ctx: StageContext, runner: Any,
               run: RunDir, cfg: ExperimentConfig) -> dict[str, Any]:
    """Run one stage on ``ctx``'s processes (a share, or the job); returns its results.json entry."""
    seed = stage_seed(cfg.seed, stage.name)
    log.info("== %s (seed %d)", stage.name, seed)
    ctx.start_stage(todo[todo.index(stage):], results["stages"])
    try:
        record = runner.run_stage(stage, seed)
    except NonFiniteLoss as exc:
        raise _nonfinite_error(exc, run.stage_dir(stage.name) / STATE_FILE) from None
    # rank 0's wall time: every process then records exactly the same entry
    wall = ctx.processes.broadcast_object(ctx.stage_elapsed())
    return _stage_entry(stage, seed, record, wall)


def run_stages(cfg: ExperimentConfig, out: str | Path) -> dict[str, Any]:
    """Run (or resume) every stage of ``cfg`` in the run directory ``out``; returns results.

    Started by torchrun (or another launcher setting its environment), every process calls
    this; they join one process group for the length of the call and share each stage's work.
    """
    with dist.joined(cfg.device, share_gpus=cfg.train.members_in_parallel is not False) as job:
        return _run_plan(cfg, out, job)


def _run_plan(cfg: ExperimentConfig, out: str | Path, job: dist.Processes) -> dict[str, Any]:
    """:func:`run_stages` on the job's processes ``job``."""
    device = resolve_device(cfg.device, job)
    # data and weights files are checked before anything is written (rank 0 reads, all raise)
    found = preflight_all(cfg, job)
    run = RunDir(out, job)
    run.open(cfg)
    for record in found:  # the pre-flight's warnings, now that log.txt keeps them too
        log.handle(record)
    restarted = dist.restart_note()
    if restarted and job.is_main:  # said in log.txt, where the run's story is read
        log.warning("%s", restarted)
    if job.size > 1:
        log.info("%d processes (%s), global batches split between them", job.size,
                 "NCCL" if job.backend == "nccl" else "gloo")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed-size crops: let cuDNN pick its fastest kernels
    ctx = StageContext(cfg, run, device, job)
    try:
        plan = make_plan(cfg)
        results = run.load_results()
        results.update({"dmt_version": __version__, "task": cfg.task, "method": cfg.method, "seed": cfg.seed,
                        "smoke": cfg.smoke, "plan": [s.name for s in plan]})
        done = {s["name"] for s in results["stages"]}
        todo = [s for s in plan if s.name not in done]
        if not todo:
            log.info("all %d stages already finished in %s", len(plan), run.path)
        else:
            log.info("device %s; stages to run: %s", device, ", ".join(s.name for s in todo))
            runner = _task_runner(ctx)
            shares = side_by_side(cfg, plan, job.size)
            share = None
            if shares > 1:
                on = job.split(shares)
                share = (job.rank // on.size, _share_runner(runner, ctx.on(on)))
                log.info("members side by side: %d processes each", on.size)
            for step in _steps(todo, shares > 1):
                entries = _run_step(step, todo, results, ctx, runner, run, cfg, share)
                results["stages"] += entries
                results["summary"] = summarize(results["stages"], cfg.task)
                run.save_results(results)
                job.barrier()  # every process is done with the stages' files before they go
                if job.is_main:
                    for stage in step:
                        # the stage is recorded: its resumable state (and stored pseudo labels) are not needed
                        (run.stage_dir(stage.name) / STATE_FILE).unlink(missing_ok=True)
                        if not cfg.phases.keep_labels:
                            shutil.rmtree(run.stage_dir(stage.name) / "labels", ignore_errors=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        results["summary"] = summarize(results["stages"], cfg.task)
        run.save_results(results)
        if job.is_main:
            plot_results(results, run.path / "results.png")
            if cfg.task == "segmentation":  # skipped quietly while a file it needs is missing
                from dmt.tasks.segmentation.val_scenes import write_val_scenes

                write_val_scenes(run.path, results["stages"])
        job.barrier()
        return results
    finally:
        ctx.close()
        run.close()
