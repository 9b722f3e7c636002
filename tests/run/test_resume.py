"""A run killed mid-stage and re-run ends with the same results.json as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dmt.cli.main import main

# A tiny digits run: every stage is a few dozen steps; a checkpoint after every epoch.
TINY = ["baseline.epochs=20", "phases.ratios=[0.5, 1.0]", "phases.epochs=4", "phases.batch_pseudo=32",
        "oracle.epochs=1", "checkpoint_min_seconds=0", "eval.batch_size=256"]


def _results(path: Path) -> dict:
    data = json.loads((path / "results.json").read_text())
    for s in data["stages"]:
        s.pop("wall_time_s")  # the only field that depends on the clock
    return data


def test_kill_and_rerun_gives_the_same_results(tmp_path):
    ref = tmp_path / "uninterrupted"
    assert main(["demo", "--out", str(ref), *TINY]) == 0

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dmt.cli.main", "demo", "--out", str(out), *TINY],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "stages" / "phase2" / "state.safetensors"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the run ended before phase2 wrote a checkpoint"
    done = [s["name"] for s in json.loads((out / "results.json").read_text())["stages"]]
    assert "phase2" not in done and "phase1" in done  # killed in the middle of phase2

    assert main(["demo", "--out", str(out), *TINY]) == 0
    assert "phase2: resuming at step" in (out / "log.txt").read_text()
    assert _results(out) == _results(ref)
