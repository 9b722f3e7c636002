"""A two-process run killed mid-stage and re-run ends with the same results as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from launch import env, free_port  # noqa: E402

pytestmark = pytest.mark.slow

# the tiny digits run of tests/run/test_resume.py; global batches 64 and 16 + 48 split in two
TINY = ["baseline.epochs=20", "phases.ratios=[0.5, 1.0]", "phases.epochs=4", "phases.batch_pseudo=32",
        "oracle.epochs=1", "checkpoint_min_seconds=0", "eval.batch_size=256", "data.num_workers=0"]


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{free_port()}", "-m", "dmt", "demo", "--out", str(out), *TINY]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _results(path: Path) -> dict:
    data = json.loads((path / "results.json").read_text())
    for s in data["stages"]:
        s.pop("wall_time_s")  # the only field that depends on the clock
    return data


def test_kill_a_two_process_run_and_rerun_it(tmp_path):
    ref = tmp_path / "uninterrupted"
    done = subprocess.run(_command(ref), env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(_command(out), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "stages" / "phase2" / "state.safetensors"
    deadline = time.monotonic() + 300
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    # SIGKILL to torchrun and both workers at once, like a lost node
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    assert state.exists(), "the run ended before phase2 wrote a checkpoint"
    finished = [s["name"] for s in json.loads((out / "results.json").read_text())["stages"]]
    assert "phase2" not in finished and "phase1" in finished  # killed in the middle of phase2

    again = subprocess.run(_command(out), env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "phase2: resuming at step" in (out / "log.txt").read_text()
    assert _results(out) == _results(ref)
