"""``dmt status RUN_DIR``: where a run stands, read without touching it.

Everything comes from files the run already writes: ``config.yaml`` (the plan), ``results.json``
(finished stages, their metrics and wall times), the interrupted stage's
``stages/<stage>/state.safetensors`` (its step, total steps and elapsed time, read from the
header only: no tensor is loaded) and ``log.txt`` (the command that started the run). The run
lock is never taken; whether a process holds it is read from ``/proc/locks`` where the system has
one. Nothing in the run directory is created or changed.

Estimates are those of the live progress display (:mod:`dmt.engine.progress`): the stage's mean
rate so far, and for each stage still to come the mean wall time of the finished stages of its
kind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dmt.engine.progress import expected_wall, format_duration, loop_eta, run_eta
from dmt.errors import UserError

STATE_FILE = "state.safetensors"  # as dmt.tasks.training.STATE_FILE (not imported: that pulls in torch)
_STARTED = re.compile(r"run directory (?P<out>.+?) \((?P<argv>.*)\)\s*$")


@dataclass
class StageStatus:
    """One stage of the plan: ``done``, ``running``/``interrupted`` (the current one) or ``todo``."""

    name: str
    kind: str
    state: str
    metric: str | None = None  # the headline metric's name (accuracy / val_accuracy / miou) for done stages
    value: float | None = None
    wall_s: float | None = None  # done: the stage's wall time; current: its elapsed time so far
    step: int | None = None
    total_steps: int | None = None
    left_s: float | None = None  # estimated seconds to the end of the stage


@dataclass
class RunStatus:
    """A run directory's state, as :func:`run_status` reads it."""

    path: str
    task: str | None
    method: str | None
    smoke: bool
    stages: list[StageStatus] = field(default_factory=list)
    running: bool | None = None  # None: cannot tell (no /proc/locks)
    last_activity_s: float | None = None  # seconds since the run last wrote its log or checkpoint
    stage_left_s: float | None = None
    run_left_s: float | None = None
    resume: str | None = None  # the command that resumes it; None when finished
    started_as: str | None = None  # the command line of its latest session, as log.txt records it

    @property
    def finished(self) -> bool:
        return bool(self.stages) and all(s.state == "done" for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "finished": self.finished}


def kind_of(name: str) -> str:
    """Stage kind from its name: ``baseline-a`` -> baseline, ``phase3`` -> phase, ``oracle`` -> oracle."""
    base = re.sub(r"-[ab]$", "", name)
    return "phase" if re.fullmatch(r"phase\d+", base) else base


def read_state_header(path: Path) -> dict[str, Any]:
    """``{"step", "extra"}`` of a training checkpoint from its header alone (no tensors read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tree = json.loads((f.metadata() or {}).get("state", "{}"))
    except Exception as exc:  # a checkpoint being replaced, or damaged: say so, do not fail
        raise UserError(f"{path}: cannot read its header ({exc})") from None
    extra = tree.get("extra") if isinstance(tree.get("extra"), dict) else {}
    return {"step": int(tree.get("step", 0)), "extra": extra}


def lock_held(lock_file: Path, proc_locks: Path = Path("/proc/locks")) -> bool | None:
    """Whether some process holds a lock on ``lock_file`` (``None``: this system does not say).

    Reads the kernel's lock table instead of trying the lock, so a run starting at this moment
    is never refused because ``dmt status`` held it.
    """
    if not lock_file.exists():
        return False
    try:
        table = proc_locks.read_text()
    except OSError:
        return None
    st = lock_file.stat()
    for line in table.splitlines():
        fields = line.split()
        ids = next((f for f in fields if f.count(":") == 2), None)  # MAJOR:MINOR:INODE (hex:hex:dec)
        if ids is None:
            continue
        major, minor, inode = ids.split(":")
        try:
            same_device = (int(major, 16), int(minor, 16)) == (os.major(st.st_dev), os.minor(st.st_dev))
        except ValueError:
            continue
        if inode.isdigit() and int(inode) == st.st_ino and same_device:
            return True
    return False


def start_command(log_file: Path) -> str | None:
    """The command line of the run's latest session, from ``log.txt`` (``dmt`` for the program)."""
    if not log_file.is_file():
        return None
    found = None
    with open(log_file, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _STARTED.search(line)
            if m:
                found = m.group("argv")
    if not found:
        return None
    try:
        argv = shlex.split(found)
    except ValueError:
        argv = found.split()
    if not argv:
        return None
    # the console script (.../bin/dmt) or `python -m dmt` (.../dmt/__main__.py); anything else
    # (a test runner, a script calling dmt's main()) cannot be re-run as it stands
    program = Path(argv[0])
    known = program.name in ("dmt", "__main__.py") or program.as_posix().endswith("dmt/cli/main.py")
    if not known or argv[1:2] not in (["run"], ["demo"]):
        return None
    return shlex.join(["dmt", *argv[1:]])


def _plan(run: Path, cfg: dict[str, Any], results: dict[str, Any]) -> list[str]:
    if results.get("plan"):
        return list(results["plan"])
    from dmt.config.loader import config_from_dict
    from dmt.tasks.plan import make_plan

    try:
        return [s.name for s in make_plan(config_from_dict(cfg))]
    except UserError as exc:
        raise UserError(f"{run / 'config.yaml'}: cannot rebuild the run's plan ({exc})") from None


def _headline(entry: dict[str, Any], task: str | None) -> tuple[str | None, float | None]:
    metrics = entry.get("metrics") or {}
    # a classification dataset without a test set scores on its val set
    for key in (("miou",) if task == "segmentation" else ("accuracy",)) + ("miou", "accuracy", "val_accuracy"):
        if isinstance(metrics.get(key), (int, float)):
            return key, float(metrics[key])
    return None, None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path}: not valid JSON (being rewritten? try again)") from None
    return data if isinstance(data, dict) else {}


def run_status(run_dir: str | Path, now: float | None = None) -> RunStatus:
    """Read a run directory's state (see the module doc); the directory is only read."""
    run = Path(run_dir)
    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{run}: not a dmt run directory (no config.yaml)")
    try:
        cfg = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{config_path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    results = _read_json(run / "results.json")
    task = results.get("task") or cfg.get("task")
    status = RunStatus(path=str(run), task=task, method=results.get("method") or cfg.get("method"),
                       smoke=bool(results.get("smoke", cfg.get("smoke", False))))
    done = {e["name"]: e for e in results.get("stages", []) if isinstance(e, dict) and "name" in e}
    finished = [(e.get("kind") or kind_of(n), float(e.get("wall_time_s") or 0.0)) for n, e in done.items()]
    status.running = lock_held(run / ".lock")
    current_found = False
    for name in _plan(run, cfg, results):
        kind = done.get(name, {}).get("kind") or kind_of(name)
        if name in done:
            metric, value = _headline(done[name], task)
            status.stages.append(StageStatus(name, kind, "done", metric, value, done[name].get("wall_time_s")))
            continue
        stage = StageStatus(name, kind, "todo")
        state_file = run / "stages" / name / STATE_FILE
        # the first unfinished stage, and any other with a checkpoint: members side by side
        # (train.members_in_parallel) run two stages at once
        if not current_found or state_file.is_file():
            stage.state = "running" if status.running else "interrupted"
            _fill_current(stage, state_file, finished)
            if not current_found:
                status.stage_left_s = stage.left_s
            current_found = True
        else:
            stage.left_s = expected_wall(kind, finished)
        status.stages.append(stage)
    current = next((s for s in status.stages if s.state in ("running", "interrupted")), None)
    if current is not None:
        later = [s.kind for s in status.stages if s.state == "todo"]
        total = (current.wall_s or 0.0) + current.left_s if current.left_s is not None else None
        status.run_left_s = run_eta(current.left_s, total, later, finished)
        # the recorded config resumes exactly (the run refuses any other); the logged command line
        # is shown beside it, but it was logged space-joined, so quoting may be lost
        status.resume = shlex.join(["dmt", "run", str(config_path), "--out", str(run)])
        status.started_as = start_command(run / "log.txt")
    status.last_activity_s = _last_activity(run, current, time.time() if now is None else now)
    return status


def _fill_current(stage: StageStatus, state_file: Path, finished: list[tuple[str, float]]) -> None:
    """Step, total, elapsed and time left of the stage that is running or was interrupted."""
    same_kind = expected_wall(stage.kind, finished) if any(k == stage.kind for k, _ in finished) else None
    if not state_file.is_file():  # not checkpointed yet: as long as a finished stage of its kind
        stage.left_s = same_kind if same_kind is not None else expected_wall(stage.kind, finished)
        return
    header = read_state_header(state_file)
    stage.step = header["step"]
    extra = header["extra"]
    stage.wall_s = float(extra["elapsed"]) if isinstance(extra.get("elapsed"), (int, float)) else None
    if isinstance(extra.get("total_steps"), int):
        stage.total_steps = extra["total_steps"]
    if stage.total_steps and stage.wall_s is not None:
        stage.left_s = loop_eta(stage.step, stage.total_steps, stage.wall_s)
    if stage.left_s is None and same_kind is not None and stage.wall_s is not None:
        stage.left_s = max(same_kind - stage.wall_s, 0.0)


def _last_activity(run: Path, current: StageStatus | None, now: float) -> float | None:
    paths = [run / "log.txt", run / "results.json"]
    if current is not None:
        paths.append(run / "stages" / current.name / STATE_FILE)
    times = [p.stat().st_mtime for p in paths if p.exists()]
    return max(now - max(times), 0.0) if times else None


def format_status(status: RunStatus) -> str:
    """The human-readable report ``dmt status`` prints."""
    what = ", ".join(str(v) for v in (status.task, status.method) if v) + (", smoke" if status.smoke else "")
    if status.finished:
        state = "finished"
    elif status.running:
        state = "running (a dmt process holds its lock)"
    elif status.running is None:
        state = "running or interrupted (this system does not show file locks)"
    else:
        state = "interrupted (no dmt process holds its lock)"
    lines = [f"run {status.path} ({what}): {state}"]
    if status.last_activity_s is not None:
        lines[0] += f"; last written {format_duration(status.last_activity_s)} ago"
    n_done = sum(s.state == "done" for s in status.stages)
    lines.append(f"stages: {n_done} of {len(status.stages)} finished")
    width = max((len(s.name) for s in status.stages), default=0)
    for s in status.stages:
        if s.state == "done":
            score = f"{s.metric} {s.value:.4f}" if s.value is not None else "no metric"
            detail = f"{score}, {format_duration(s.wall_s)}"
        elif s.state == "todo":
            detail = f"~{format_duration(s.left_s)}" if s.left_s is not None else ""
        else:
            at = (f"step {s.step}/{s.total_steps} ({100 * s.step / s.total_steps:.0f}%)" if s.total_steps
                  else f"step {s.step}" if s.step is not None else "not checkpointed yet")
            ran = f", {format_duration(s.wall_s)} so far" if s.wall_s is not None else ""
            detail = f"{at}{ran}, ~{format_duration(s.left_s)} left"
        lines.append(f"  {s.state:<11} {s.name:<{width}}  {detail}".rstrip())
    if not status.finished:
        lines.append(f"time left (estimate): stage ~{format_duration(status.stage_left_s)}, "
                     f"run ~{format_duration(status.run_left_s)}")
        if not status.running:
            lines.append(f"resume: {status.resume}")
            if status.started_as:
                lines.append(f"  (it was started as: {status.started_as})")
    return "\n".join(lines)
