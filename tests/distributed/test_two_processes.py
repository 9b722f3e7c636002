"""Two CPU processes (gloo, started by torchrun) compute what one process computes.

Each test starts real processes, as a user's ``torchrun --nproc-per-node 2 -m dmt ...`` would.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dmt.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from launch import torchrun, workers  # noqa: E402
from seg_fixtures import write_voc_tree  # noqa: E402

pytestmark = pytest.mark.slow

TRAIN_AUG = [f"2007_{i:06d}" for i in range(40)]
VAL = ["2008_000001", "2008_000002", "2008_000003"]  # 3 images: two processes cannot split them evenly
SMALL = ["model.name=deeplabv2_tiny", "data.crop_size=[33, 33]", "data.num_workers=0", "data.eval_pad=[40, 40]"]


def _check(proc) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    return write_voc_tree(root / "voc", splits={"train_aug": TRAIN_AUG, "train": TRAIN_AUG[:4], "val": VAL})


@pytest.fixture(scope="module")
def one_process_run(voc_root, tmp_path_factory):
    """A one-process --smoke VOC DMT run that keeps its pseudo labels."""
    out = tmp_path_factory.mktemp("one") / "run"
    args = ["run", "voc-20-dmt", f"data.root={voc_root}", *SMALL, "phases.keep_labels=true", "eval.batch_size=1",
            "--smoke", "--out", str(out)]
    assert main(args) == 0
    return out


def test_a_step_on_two_processes_equals_one_process_on_the_whole_batch(tmp_path):
    """DDP + SyncBatchNorm (and a model without BN) reproduce the one-process step.

    Plain BatchNorm does not: each process normalises with the statistics of its own half of the
    batch (and keeps its own running statistics), so the parameters after the step differ;
    that is why ``model.sync_bn`` is on for segmentation.
    """
    _check(workers("step", tmp_path, nproc=1))
    _check(workers("step", tmp_path, nproc=2))
    for norm in ("syncbn", "none"):
        one = load_file(str(tmp_path / f"{norm}-world1.safetensors"))
        two = load_file(str(tmp_path / f"{norm}-world2.safetensors"))
        assert one.keys() == two.keys()
        for k in one:
            torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6, msg=f"{norm}: {k}")
    one, two = (load_file(str(tmp_path / f"bn-world{w}.safetensors")) for w in (1, 2))
    assert any(not torch.allclose(one[k], two[k], rtol=1e-5, atol=1e-6) for k in one)
    for rank in (0, 1):  # the weight pass leaves SyncBatchNorm's running statistics alone
        assert (tmp_path / f"weight-pass-untouched-rank{rank}-world2").read_text() == "True"


def test_labelling_on_two_processes_writes_the_same_labels_and_thresholds(one_process_run, tmp_path):
    ref, two = tmp_path / "one", tmp_path / "two"
    ref.mkdir()
    two.mkdir()
    _check(workers("label", ref, str(one_process_run), nproc=1))
    _check(workers("label", two, str(one_process_run), nproc=2))
    assert json.loads((two / "info.json").read_text()) == json.loads((ref / "info.json").read_text())
    files = sorted(p.name for p in (ref / "stages/phase1-a/labels").glob("*.npz"))
    assert files and files == sorted(p.name for p in (two / "stages/phase1-a/labels").glob("*.npz"))
    for name in files:
        a, b = np.load(ref / "stages/phase1-a/labels" / name), np.load(two / "stages/phase1-a/labels" / name)
        assert np.array_equal(a["classes"], b["classes"]) and np.array_equal(a["confidence"], b["confidence"])
    # and the same as the labels the real run wrote
    run_info = json.loads((one_process_run / "stages/phase1-a/thresholds.json").read_text())
    assert run_info["thresholds"] == json.loads((two / "info.json").read_text())["thresholds"]


def test_dmt_eval_under_torchrun_gives_the_one_process_metrics(one_process_run, voc_root, capsys):
    model = str(one_process_run / "stages/phase5-a/model.safetensors")
    args = ["eval", model, "--data", "voc", "--root", str(voc_root), "eval_pad=[40, 40]", "--device", "cpu",
            "--batch-size", "1"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    proc = torchrun(["-m", "dmt", *args])
    _check(proc)
    two = json.loads(proc.stdout)  # rank 0 alone prints
    assert one["images"] == two["images"] == 3
    assert two == one


def _files(run: Path) -> set[str]:
    out = set()
    for p in run.rglob("*"):
        if p.is_file() and p.name != ".lock":
            rel = p.relative_to(run)
            # TensorBoard names its files after the host, the time and the process
            out.add(str(rel.parent) + "/<events>" if rel.parts[0] == "tb" else str(rel))
    return out


def test_two_process_voc_smoke_writes_what_one_process_writes(one_process_run, voc_root, tmp_path):
    out = tmp_path / "two"
    args = ["run", "voc-20-dmt", f"data.root={voc_root}", *SMALL, "phases.keep_labels=true", "eval.batch_size=1",
            "--smoke", "--out", str(out)]
    _check(torchrun(["-m", "dmt", *args]))
    one = json.loads((one_process_run / "results.json").read_text())
    two = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in two["stages"]] == [s["name"] for s in one["stages"]]
    assert _files(out) == _files(one_process_run)
    assert "2 processes" in (out / "log.txt").read_text()


def test_two_process_cifar_smoke_via_nproc(cifar_root, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    base = ["run", "cifar10-4-dmt", f"data.root={cifar_root}", "--smoke", "data.num_workers=0"]
    assert main([*base, "--out", str(one)]) == 0
    proc = __import__("subprocess").run([sys.executable, "-m", "dmt", *base, "--out", str(two), "--nproc", "2"],
                                        capture_output=True, text=True, timeout=600,
                                        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    _check(proc)
    r1, r2 = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert [s["name"] for s in r2["stages"]] == [s["name"] for s in r1["stages"]]
    assert _files(two) == _files(one)


def test_a_batch_that_does_not_divide_is_refused(cifar_root, tmp_path):
    # (not --smoke: it rounds its own small batches up to a multiple of the processes)
    proc = torchrun(["-m", "dmt", "run", "cifar10-4-dmt", f"data.root={cifar_root}", "data.num_workers=0",
                     "baseline.batch_size=3", "baseline.max_steps=1", "--out", str(tmp_path / "run")])
    assert proc.returncode != 0
    assert "baseline.batch_size: the global batch 3 does not divide by the 2 processes" in proc.stderr
    assert "Traceback" not in proc.stderr.split("error (rank")[0]


def test_a_locked_run_directory_is_refused_once_for_the_whole_job(cifar_root, tmp_path):
    from dmt.config import load_config
    from dmt.run.rundir import RunDir

    out = tmp_path / "run"
    holder = RunDir(out)
    holder.open(load_config("cifar10-4-dmt", [f"data.root={cifar_root}"]))
    try:
        proc = torchrun(["-m", "dmt", "run", "cifar10-4-dmt", f"data.root={cifar_root}", "--out", str(out)])
    finally:
        holder.close()
    assert proc.returncode != 0
    assert proc.stderr.count("another dmt process is running in this directory") == 1


def test_a_dead_rank_brings_the_job_down_instead_of_hanging(tmp_path):
    t0 = time.monotonic()
    proc = workers("dead_rank", tmp_path, nproc=2, DMT_DIST_TIMEOUT="5")
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 120
    assert not (tmp_path / "passed-barrier").exists()
