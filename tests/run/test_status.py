"""`dmt status` on fabricated run directories: stages, step, time left, resume command, read-only."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest
import torch

from dmt.cli.main import main
from dmt.config import dump_config, load_config
from dmt.engine.checkpoint import save_checkpoint
from dmt.run.status import lock_held, run_status, start_command

TINY = ["phases.ratios=[0.5, 1.0]"]  # plan: baseline, phase1, phase2, oracle


def _run_dir(tmp_path: Path, done: list[tuple[str, str, float, float]], state: dict | None = None,
             current: str = "phase2") -> Path:
    run = tmp_path / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(load_config("demo-digits", TINY)))
    if done:
        stages = [{"name": n, "kind": k, "metrics": {"accuracy": acc}, "wall_time_s": wall} for n, k, acc, wall in done]
        (run / "results.json").write_text(json.dumps({"task": "classification", "method": "dmt", "smoke": False,
                                                      "plan": ["baseline", "phase1", "phase2", "oracle"],
                                                      "stages": stages}))
    if state is not None:
        save_checkpoint(run / "stages" / current / "state.safetensors",
                        {"model": {"w": torch.ones(3)}, "step": state["step"], "extra": state["extra"]})
    (run / "log.txt").write_text("2024-01-01 00:00:00 INFO run directory runs/x "
                                 "(/venv/bin/dmt demo --out runs/x baseline.epochs=20)\n")
    (run / ".lock").write_text("")
    return run


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_an_interrupted_run_step_time_left_and_resume(tmp_path, capsys):
    run = _run_dir(tmp_path, [("baseline", "baseline", 0.5, 30.0), ("phase1", "phase", 0.75, 90.0)],
                   state={"step": 38, "extra": {"elapsed": 19.0, "total_steps": 152}})
    before = _snapshot(run)
    status = run_status(run)
    assert [(s.name, s.state) for s in status.stages] == [
        ("baseline", "done"), ("phase1", "done"), ("phase2", "interrupted"), ("oracle", "todo")]
    assert (status.stages[1].metric, status.stages[1].value) == ("accuracy", 0.75)
    phase2 = status.stages[2]
    assert (phase2.step, phase2.total_steps, phase2.wall_s) == (38, 152, 19.0)
    # 19 s for 38 steps: 0.5 s a step, 114 steps left; by the finished phase (90 s) 71 s: the rate wins
    assert phase2.left_s == pytest.approx(57.0)
    # no oracle has finished: the mean of all finished stages, (30 + 90) / 2
    assert status.stages[3].left_s == pytest.approx(60.0)
    assert status.stage_left_s == pytest.approx(57.0) and status.run_left_s == pytest.approx(117.0)
    assert status.running is False or status.running is None
    assert status.resume == f"dmt run {run / 'config.yaml'} --out {run}"
    assert status.started_as == "dmt demo --out runs/x baseline.epochs=20"
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out
    assert "phase2    step 38/152 (25%), 19s so far, ~57s left" in out
    assert "accuracy 0.7500" in out and "run ~1m57s" in out and f"resume: dmt run {run}" in out
    assert _snapshot(run) == before  # nothing written, nothing touched


def test_a_run_before_its_first_checkpoint_and_a_finished_run(tmp_path, capsys):
    run = _run_dir(tmp_path, [])
    status = run_status(run)  # no results.json yet: the plan comes from config.yaml
    assert [s.name for s in status.stages] == ["baseline", "phase1", "phase2", "oracle"]
    assert status.stages[0].state in ("interrupted", "running") and status.stages[0].step is None
    assert status.run_left_s is None  # nothing finished, nothing checkpointed: no estimate
    done = [("baseline", "baseline", 0.5, 1.0), ("phase1", "phase", 0.6, 2.0), ("phase2", "phase", 0.7, 2.0),
            ("oracle", "oracle", 0.9, 1.0)]
    finished = _run_dir(tmp_path / "b", done)
    assert run_status(finished).finished and run_status(finished).resume is None
    assert main(["status", str(finished)]) == 0
    assert ": finished" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "nothing")]) == 2
    assert "not a dmt run directory" in capsys.readouterr().err


def test_the_lock_is_read_from_the_kernel_not_taken(tmp_path):
    lock = tmp_path / ".lock"
    lock.write_text("")
    if lock_held(lock) is None:
        pytest.skip("this system has no /proc/locks")
    assert lock_held(lock) is False
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `dmt run` holds it
        assert lock_held(lock) is True
        fcntl.flock(f, fcntl.LOCK_UN)
    assert lock_held(lock) is False


def test_start_command_only_for_dmt_command_lines(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("t INFO run directory a (/x/bin/dmt run voc-8-dmt --out a)\n"
                   "t INFO run directory a (/x/dmt/__main__.py run voc-8-dmt --out a --smoke)\n")
    assert start_command(log) == "dmt run voc-8-dmt --out a --smoke"  # the latest session
    log.write_text("t INFO run directory a (/x/bin/pytest -q tests)\n")
    assert start_command(log) is None


def test_members_side_by_side_show_both_stages_of_the_phase(tmp_path):
    """Two members train at once (train.members_in_parallel): both have a checkpoint, both are shown."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(load_config("demo-digit-scenes", TINY)))
    stages = [{"name": n, "kind": "baseline", "metrics": {"miou": 0.5}, "wall_time_s": 10.0}
              for n in ("baseline-a", "baseline-b")]
    (run / "results.json").write_text(json.dumps({"task": "segmentation", "method": "dmt", "stages": stages}))
    for name, step in (("phase1-a", 4), ("phase1-b", 6)):
        save_checkpoint(run / "stages" / name / "state.safetensors",
                        {"model": {"w": torch.ones(3)}, "step": step, "extra": {"elapsed": 2.0, "total_steps": 10}})
    states = [(s.name, s.state, s.step) for s in run_status(run).stages]
    assert states[:4] == [("baseline-a", "done", None), ("baseline-b", "done", None),
                          ("phase1-a", "interrupted", 4), ("phase1-b", "interrupted", 6)]
    assert [s for _, s, _ in states[4:]] == ["todo"] * (len(states) - 4)
