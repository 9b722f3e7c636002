"""Issue 10, items 3, 5, 6 and 7 on whole runs: SIGTERM, NaN losses, read-only --out, corrected configs.

The runs are the tiny digits demo of tests/run/test_resume.py, cut shorter.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dmt.cli.main import main
from dmt.config import load_config
from dmt.engine.checkpoint import load_checkpoint
from dmt.engine.signals import EXIT_TERMINATED
from dmt.run.rundir import RunDir

TINY = ["baseline.epochs=10", "phases.ratios=[1.0]", "phases.epochs=4", "phases.batch_pseudo=32",
        "checkpoint_min_seconds=0", "eval.batch_size=256", "data.num_workers=0", "oracle.enabled=false"]


def _results(path: Path) -> dict:
    data = json.loads((path / "results.json").read_text())
    for s in data["stages"]:
        s.pop("wall_time_s")  # the only field that depends on the clock
    return data


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def test_sigterm_checkpoints_the_current_step_and_resumes_to_the_same_results(tmp_path):
    ref = tmp_path / "uninterrupted"
    assert main(["demo", "--out", str(ref), *TINY]) == 0

    out = tmp_path / "terminated"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dmt.cli.main", "demo", "--out", str(out), *TINY],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "stages" / "phase1" / "state.safetensors", proc)  # phase1's first epoch is saved
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_TERMINATED, err[-2000:]
    last = err.strip().splitlines()[-1]
    found = re.fullmatch(r"stopped by SIGTERM: phase1 train: checkpoint written at step (\d+) of (\d+); "
                         r"re-run the same command to resume", last)
    assert found, last
    step = int(found.group(1))
    assert load_checkpoint(out / "stages" / "phase1" / "state.safetensors")["step"] == step

    assert main(["demo", "--out", str(out), *TINY]) == 0
    assert f"phase1: resuming at step {step} of" in (out / "log.txt").read_text()
    assert _results(out) == _results(ref)
    for stage in ("baseline", "phase1"):  # identical runs, identical files (metadata order fixed)
        a = (ref / "stages" / stage / "model.safetensors").read_bytes()
        assert (out / "stages" / stage / "model.safetensors").read_bytes() == a


def test_nan_loss_is_one_line_naming_stage_and_step_and_keeps_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    # a learning rate that makes the loss overflow after a few steps, past the first epoch's checkpoint
    code = main(["demo", "--out", str(out), *TINY, "baseline.lr=1.0e+12", "baseline.mixup_alpha=0"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error")]
    state = out / "stages" / "baseline" / "state.safetensors"
    assert re.match(r"error: baseline train: non-finite (loss at step \d+|loss between steps \d+ and \d+|"
                    rf"weights after step \d+); the last good checkpoint {re.escape(str(state))} is kept; ", line), line
    saved = load_checkpoint(state)
    assert all(torch.isfinite(t).all() for t in saved["model"].values() if t.is_floating_point())


def test_read_only_out_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro" / "run"
    real_mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert main(["demo", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("error")]
    assert line == f"error: --out {out}: cannot write {out} (Read-only file system)"
    assert "Traceback" not in err


def test_a_run_dir_whose_first_stage_never_started_takes_the_corrected_config(tmp_path):
    first = load_config("demo-digits", ["phases.lr=0.5"])
    run = RunDir(tmp_path / "run")
    run.open(first)  # e.g. refused later by a check that came after config.yaml was written
    run.close()
    corrected = load_config("demo-digits", ["phases.lr=0.05"])
    again = RunDir(tmp_path / "run")
    again.open(corrected)
    again.close()
    assert "lr: 0.05" in (tmp_path / "run" / "config.yaml").read_text()


def test_invalid_value_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--out", str(out), *TINY, "phases.gamma1=-1"]) == 2
    err = capsys.readouterr().err
    assert "error: config key 'phases.gamma1': expected an exponent >= 0, got -1.0" in err
    assert not out.exists()


@pytest.mark.parametrize("override, key", [("eval.select=val", "eval.select"), ("eval.window=[0, 4]", "eval.window"),
                                           ("eval.stride=[2, 2]", "eval.stride")])
def test_keys_that_conflict_are_refused_before_anything_is_written(tmp_path, capsys, override, key):
    """Rules tying keys together (classification keeps its last model; a stride needs a window)."""
    out = tmp_path / "run"
    assert main(["demo", "--out", str(out), *TINY, override]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error")]
    assert line.startswith(f"error: config key '{key}': ")
    assert not out.exists()


@pytest.mark.slow
def test_sigterm_under_torchrun_stops_every_process_with_a_checkpoint(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "distributed"))
    from launch import env, free_port

    out = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{free_port()}", "-m", "dmt", "demo", "--out", str(out), *TINY]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = out / "stages" / "phase1" / "state.safetensors"
    _wait_for(state, proc, 240)
    assert state.exists()
    proc.send_signal(signal.SIGTERM)  # what SLURM sends the job step (torchrun passes it on)
    _, err = proc.communicate(timeout=120)  # no deadlock: both processes stop
    assert proc.returncode != 0
    assert "stopped by SIGTERM" in err, err[-3000:]
    step = load_checkpoint(state)["step"]
    done = subprocess.run(cmd[:4] + [f"--rdzv-endpoint=127.0.0.1:{free_port()}"] + cmd[5:], env=env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"phase1: resuming at step {step} of" in (out / "log.txt").read_text()


def _overflowing(load_model):
    """``load_model`` whose models answer with infinite logits (a teacher that overflows)."""
    def wrapped(*args, **kwargs):
        model, meta = load_model(*args, **kwargs)
        model.register_forward_hook(lambda mod, inp, out: out * float("inf"))
        return model, meta
    return wrapped


def test_a_teacher_with_overflowing_logits_is_one_line_naming_stage_and_teacher(tmp_path, capsys, monkeypatch):
    from dmt.tasks.classification import runner as classification

    monkeypatch.setattr(classification, "load_model", _overflowing(classification.load_model))
    code = main(["demo", "--out", str(tmp_path / "run"), *TINY, "baseline.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error")]
    assert line.startswith("error: phase1: the teacher (baseline) gives non-finite probabilities"), line


def test_a_segmentation_teacher_with_overflowing_logits_is_one_line(tmp_path, capsys, monkeypatch):
    from dmt.tasks.segmentation import runner as segmentation

    monkeypatch.setattr(segmentation, "load_model", _overflowing(segmentation.load_model))
    code = main(["run", "demo-digit-scenes", "--smoke", "--out", str(tmp_path / "run"), "phases.ratios=[1.0]",
                 "data.num_workers=0"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error")]
    assert re.match(r"error: phase1-[ab]: the teacher \(baseline-[ba]\) gives non-finite probabilities on \S+; ",
                    line), line
