"""Members side by side (issue 17): models A and B of a phase run at the same time, each on its share of
the processes, and each member's stages are those of a run one after the other with that many
processes per member: the same results.json (but wall times) and the same model tensors, to the bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dmt.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from launch import env, free_port, torchrun  # noqa: E402
from test_two_process_resume import _descendants  # noqa: E402

pytestmark = pytest.mark.slow

# the segmentation demo, tiny: two members, baselines, two phases and the oracle, a few steps each
TINY = ["data.num_scenes=40", "data.val_scenes=8", "data.scene_size=[24, 24]", "data.crop_size=[24, 24]",
        "data.labelled_split=1/4", "model.kwargs={width: 4}", "baseline.max_steps=6", "baseline.batch_size=4",
        "phases.ratios=[0.5, 1.0]", "phases.max_steps=6", "phases.batch_labelled=2", "phases.batch_pseudo=2",
        "oracle.max_steps=4", "oracle.batch_size=4", "eval.batch_size=8", "checkpoint_min_seconds=0"]


def _args(out: Path, parallel: str) -> list[str]:
    return ["run", "demo-digit-scenes", *TINY, f"train.members_in_parallel={parallel}", "--out", str(out)]


def _results(run: Path) -> dict:
    data = json.loads((run / "results.json").read_text())
    for s in data["stages"]:
        s.pop("wall_time_s")
    return data


def _member_entries(run: Path) -> list[dict]:
    return [s for s in _results(run)["stages"] if s.get("model")]


def _same_run(a: Path, b: Path) -> None:
    """The members' stages (not the oracle, which runs on every process of the job) are the same."""
    assert [s["name"] for s in _results(a)["stages"]] == [s["name"] for s in _results(b)["stages"]]
    assert _member_entries(a) == _member_entries(b)
    stages = sorted(p.parent.name for p in (a / "stages").glob("*-[ab]/model.safetensors"))
    assert len(stages) == 6 and stages == sorted(p.parent.name for p in (b / "stages").glob("*-[ab]/model.safetensors"))
    for stage in stages:
        x, y = (load_file(str(r / "stages" / stage / "model.safetensors")) for r in (a, b))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), stage


@pytest.fixture(scope="module")
def one_after_the_other(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sequential") / "run"
    assert main(_args(out, "false")) == 0
    return out


def test_two_processes_side_by_side_equal_one_process_one_after_the_other(one_after_the_other, tmp_path):
    out = tmp_path / "side"
    proc = torchrun(["-m", "dmt", *_args(out, "true")], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _same_run(out, one_after_the_other)
    log = (out / "log.txt").read_text()
    assert "members side by side: 1 processes each" in log
    assert "== baseline-a" in log and "== baseline-b" in log  # both shares wrote the run's log
    assert [s["name"] for s in _results(out)["stages"]] == _results(out)["plan"]  # plan order


def test_four_processes_two_by_two_equal_two_processes_one_after_the_other(tmp_path):
    two, four = tmp_path / "two", tmp_path / "four"
    proc = torchrun(["-m", "dmt", *_args(two, "false")], timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = torchrun(["-m", "dmt", *_args(four, "auto")], nproc=4, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "members side by side: 2 processes each" in (four / "log.txt").read_text()
    _same_run(four, two)


def test_three_processes_cannot_split_in_two(tmp_path):
    proc = torchrun(["-m", "dmt", *_args(tmp_path / "run", "true")], nproc=3, timeout=300)
    assert proc.returncode != 0
    assert "config key 'train.members_in_parallel': true needs a multiple of 2 processes" in proc.stderr


def test_kill_one_process_mid_phase_and_rerun(one_after_the_other, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{free_port()}", "-m", "dmt", *_args(out, "true")]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "stages" / "phase1-b" / "state.safetensors"
    deadline = time.monotonic() + 300
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert state.exists(), "the run ended before phase1-b wrote a checkpoint"
    victim = next(p for p in _descendants(proc.pid) if b"RANK=1" in Path(f"/proc/{p}/environ").read_bytes().split(b"\0"))
    os.kill(victim, signal.SIGKILL)
    proc.wait(timeout=300)
    assert proc.returncode != 0
    again = torchrun(["-m", "dmt", *_args(out, "true")], timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    _same_run(out, one_after_the_other)
