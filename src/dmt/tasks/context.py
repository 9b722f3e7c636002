"""What every stage runner is handed: config, the stage's folders, device, processes, scalar logging."""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from dmt.config.schema import ExperimentConfig, OptimConfig
from dmt.engine.distributed import ONE, Processes
from dmt.engine.accel import use_channels_last
from dmt.engine.batches import mix_seed
from dmt.engine.progress import Display, RunClock
from dmt.errors import UserError
from dmt.tasks.plan import Stage

log = logging.getLogger("dmt")


def stage_seed(run_seed: int, stage_name: str) -> int:
    """The seed of a stage: a fixed function of the run seed and the stage's name (31 bits)."""
    return mix_seed(run_seed, zlib.crc32(stage_name.encode())) & 0x7FFFFFFF


def resolve_device(name: str, processes: Processes = ONE) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU.

    Under a launcher (torchrun) with CUDA, every process of the job (``processes``) takes the
    GPU ``LOCAL_RANK``.
    """
    if processes.size > 1 and processes.cuda:
        return torch.device("cuda", torch.cuda.current_device())
    if processes.size > 1:
        if name.startswith("cuda"):
            raise UserError(f"config key 'device': {name!r}, but the processes were started on the CPU "
                            "(CUDA not available or the job joined with gloo)")
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"config key 'device': {name!r} is not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"config key 'device': {name!r} requested but CUDA is not available")
    return device


def total_steps(opt: OptimConfig, steps_per_epoch: int) -> int:
    """Steps of a stage: ``epochs`` passes of ``steps_per_epoch``, capped by ``max_steps``."""
    steps = max(int(math.ceil(opt.epochs * steps_per_epoch)), 1)
    return min(steps, opt.max_steps) if opt.max_steps > 0 else steps


class StageFolders(Protocol):
    """Where a stage's files go; the run directory (:class:`dmt.run.rundir.RunDir`) provides them.

    Tasks know these folders (and the run-level files they name) and nothing else of the run
    directory's layout.
    """

    def stage_dir(self, name: str) -> Path: ...  # created on first use (by rank 0)

    def splits_dir(self) -> Path: ...  # the split lists a run used

    def tb_dir(self, name: str) -> Path: ...  # a stage's TensorBoard run

    def run_file(self, name: str) -> Path: ...  # a file at the run directory's top, shared by its stages


@dataclass
class StageContext:
    """A stage's surroundings; ``scalars`` writes to TensorBoard and the log.

    ``processes`` are those the stage runs on: the whole job, or the share of it that trains
    one member while another share trains the other (:meth:`on`). Rank 0 of them writes the
    stage's files, scalars and pictures and shows progress.
    """

    cfg: ExperimentConfig
    run: StageFolders
    device: torch.device
    processes: Processes = ONE
    stage_started: float = 0.0  # time.monotonic() when this session started the current stage
    prior_elapsed: float = 0.0  # seconds the current stage ran in earlier sessions (from its checkpoint)
    run_clock: RunClock | None = None  # the current stage's place in the run, for progress estimates
    _writers: dict[str, Any] = field(default_factory=dict)

    def on(self, processes: Processes) -> StageContext:
        """This context for stages that run on ``processes`` (a share of the job): the same run,
        device and TensorBoard writers (one writer per folder), another set of processes."""
        return replace(self, processes=processes, _writers=self._writers)

    @property
    def channels_last(self) -> bool:
        """Whether models and inputs go NHWC (``train.channels_last``), in training and inference."""
        return use_channels_last(self.device, self.cfg.train.channels_last)

    def start_stage(self, todo: Sequence[Stage], finished: Sequence[dict[str, Any]]) -> None:
        """Called by the runner before each stage.

        Args:
            todo: this stage and the plan's stages after it that are not finished.
            finished: the ``results.json`` entries of the finished stages (their kinds and wall
                times are the progress bars' run-level estimates).
        """
        self.stage_started, self.prior_elapsed = time.monotonic(), 0.0
        self.run_clock = RunClock(todo[0].kind, [s.kind for s in todo[1:]],
                                  [(s.get("kind", ""), float(s.get("wall_time_s", 0.0))) for s in finished],
                                  self.stage_elapsed)

    @property
    def display(self) -> Display:
        """How the stage's loops show progress: rank 0 of its processes, with the run's clock."""
        return Display(self.processes.shows_progress(), self.run_clock)

    def stage_elapsed(self) -> float:
        """Wall time of the current stage over all sessions."""
        return self.prior_elapsed + time.monotonic() - self.stage_started

    def writer(self, stage: str) -> Any:
        if stage not in self._writers:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when training

            self._writers[stage] = SummaryWriter(str(self.run.tb_dir(stage)))
        return self._writers[stage]

    def scalars(self, stage: str, step: int, values: dict[str, float]) -> None:
        if not self.processes.is_main:  # rank 0's scalars stand for the job (one TensorBoard, one log)
            return
        w = self.writer(stage)
        for k, v in values.items():
            w.add_scalar(k, v, step)
        log.info("%s step %d: %s", stage, step, " ".join(f"{k} {v:.4g}" for k, v in values.items()))

    def stage_scores(self, stage: Stage, step: int, metrics: dict[str, Any], class_names: Sequence[str]) -> None:
        """A finished stage's scores in TensorBoard (rank 0): in the stage's own run at its last step,
        and in the ``per-phase`` run at x = phase (baseline 0, oracle one after the last phase), so
        per-class IoU can be followed from phase to phase."""
        if not self.processes.is_main:
            return
        suffix = f"-{stage.member}" if stage.member else ""
        x = stage.index if stage.kind == "phase" else 0 if stage.kind == "baseline" else len(self.cfg.phases.ratios) + 1
        own, across = self.writer(stage.name), self.writer("per-phase")
        for key in ("miou", "pixel_accuracy", "accuracy", "valtiny_accuracy", "pseudo_share"):
            if isinstance(metrics.get(key), (int, float)):
                own.add_scalar(f"val/{key}", metrics[key], step)
                across.add_scalar(f"{key}{suffix}", metrics[key], x)
        for name, iou in zip(class_names, metrics.get("per_class_iou") or []):
            if iou is not None:
                own.add_scalar(f"iou/{name}", iou, step)
                across.add_scalar(f"iou{suffix}/{name}", iou, x)
        own.flush()
        across.flush()

    def image(self, stage: str, tag: str, picture: Any, step: int, text: str = "") -> None:
        """An ``H x W x 3`` uint8 picture (and optional markdown) in the stage's TensorBoard run (rank 0)."""
        if not self.processes.is_main:
            return
        w = self.writer(stage)
        w.add_image(tag, picture, step, dataformats="HWC")
        if text:
            w.add_text(tag, text, step)
        w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
