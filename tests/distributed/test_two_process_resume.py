"""A two-process run killed mid-stage ends with the same results as an uninterrupted one: re-run by
hand after the whole job was killed, or restarted by torchrun (``--max-restarts``) after one worker
was; and a worker that loses its peer says so in one line."""

from __future__ import annotations

import json
import os
import re
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


def _command(out: Path, *torchrun_options: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{free_port()}", *torchrun_options, "-m", "dmt", "demo", "--out", str(out),
            *TINY]


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


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """``results.json`` of the uninterrupted two-process run."""
    ref = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run(_command(ref), env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return _results(ref)


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert path.exists(), f"the run ended before {path} was written"


def _worker_of_rank(torchrun_pid: int, rank: int) -> int:
    """The pid of the worker torchrun started with ``RANK=rank``."""
    for pid in _descendants(torchrun_pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and b"LOCAL_RANK" in b"".join(environ):
            return pid
    raise AssertionError(f"no worker of rank {rank} below {torchrun_pid}")


def test_kill_a_two_process_run_and_rerun_it(tmp_path, reference):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_command(out), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "stages" / "phase2" / "state.safetensors"
    _wait_for(state, proc)
    # SIGKILL to torchrun and both workers at once, like a lost node
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    finished = [s["name"] for s in json.loads((out / "results.json").read_text())["stages"]]
    assert "phase2" not in finished and "phase1" in finished  # killed in the middle of phase2

    again = subprocess.run(_command(out), env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "phase2: resuming at step" in (out / "log.txt").read_text()
    assert _results(out) == reference


def test_a_lost_worker_is_one_line_naming_it(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_command(out), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "stages" / "phase1" / "state.safetensors", proc)
    victim = _worker_of_rank(proc.pid, 1)
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert lines == [f"error: process {victim} (rank 1) stopped; this process (rank 0) cannot go on without it. "
                     "Re-run the same command to resume from the last checkpoint, or start torchrun with "
                     "--max-restarts K to restart automatically"], err[-3000:]
    assert not re.search(r'File ".*[/\\]dmt[/\\]', err), err[-3000:]  # no traceback through our code


def test_torchrun_restarts_a_job_whose_worker_was_killed(tmp_path, reference):
    out = tmp_path / "restarted"
    proc = subprocess.Popen(_command(out, "--max-restarts=1"), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(out / "stages" / "phase2" / "state.safetensors", proc)
    os.kill(_worker_of_rank(proc.pid, 1), signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    log = (out / "log.txt").read_text()
    assert "torchrun restarted the job after a process stopped (restart 1 of 1)" in log
    assert "phase2: resuming at step" in log
    assert _results(out) == reference
