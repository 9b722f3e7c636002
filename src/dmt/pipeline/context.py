"""What every stage runner is handed: config, run directory, device, scalar logging."""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch

from dmt.config.schema import ExperimentConfig, OptimConfig
from dmt.engine import distributed as dist
from dmt.engine.batches import mix_seed
from dmt.engine.progress import RunClock, set_run_clock
from dmt.errors import UserError
from dmt.pipeline.rundir import RunDir

log = logging.getLogger("dmt")


def stage_seed(run_seed: int, stage_name: str) -> int:
    """The seed of a stage: a fixed function of the run seed and the stage's name (31 bits)."""
    return mix_seed(run_seed, zlib.crc32(stage_name.encode())) & 0x7FFFFFFF


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU.

    Under a launcher (torchrun) with CUDA, every process takes the GPU ``LOCAL_RANK``.
    """
    if dist.world_size() > 1 and dist.backend_is_nccl():
        return torch.device("cuda", torch.cuda.current_device())
    if dist.world_size() > 1:
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


@dataclass
class StageContext:
    """A stage's surroundings; ``scalars`` writes to TensorBoard and the log."""

    cfg: ExperimentConfig
    run: RunDir
    device: torch.device
    stage_started: float = 0.0  # time.monotonic() when this session started the current stage
    prior_elapsed: float = 0.0  # seconds the current stage ran in earlier sessions (from its checkpoint)
    _writers: dict[str, Any] = field(default_factory=dict)

    def start_stage(self) -> None:
        """Called by the runner before each stage (the first of the plan not yet in results.json)."""
        self.stage_started, self.prior_elapsed = time.monotonic(), 0.0
        if dist.is_main():  # only rank 0 shows progress
            set_run_clock(self._run_clock())

    def _run_clock(self) -> RunClock | None:
        """The estimates' inputs: finished stages' kinds and wall times, and the stages still to run."""
        from dmt.pipeline.plan import make_plan

        try:
            plan = make_plan(self.cfg)
            recorded = json.loads(self.run.results_path.read_text()).get("stages", []) \
                if self.run.results_path.exists() else []
        except (UserError, ValueError, OSError):
            return None  # progress without run-level estimates; the runner reports the real problem
        done = {s.get("name") for s in recorded}
        todo = [s for s in plan if s.name not in done]
        if not todo:
            return None
        finished = [(s.get("kind", ""), float(s.get("wall_time_s", 0.0))) for s in recorded]
        return RunClock(todo[0].kind, [s.kind for s in todo[1:]], finished, self.stage_elapsed)

    def stage_elapsed(self) -> float:
        """Wall time of the current stage over all sessions."""
        return self.prior_elapsed + time.monotonic() - self.stage_started

    def writer(self, stage: str) -> Any:
        if stage not in self._writers:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when training

            self._writers[stage] = SummaryWriter(str(self.run.tb_dir(stage)))
        return self._writers[stage]

    def scalars(self, stage: str, step: int, values: dict[str, float]) -> None:
        if not dist.is_main():  # rank 0's scalars stand for the job (one TensorBoard, one log)
            return
        w = self.writer(stage)
        for k, v in values.items():
            w.add_scalar(k, v, step)
        log.info("%s step %d: %s", stage, step, " ".join(f"{k} {v:.4g}" for k, v in values.items()))

    def close(self) -> None:
        set_run_clock(None)
        for w in self._writers.values():
            w.close()
        self._writers.clear()
