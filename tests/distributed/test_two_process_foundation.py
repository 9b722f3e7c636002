"""Two CPU processes (torchrun, gloo) run a DMT preset whose members are two different foundation networks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dmt.cli.main import main
from dmt.engine.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from launch import torchrun  # noqa: E402
from seg_fixtures import write_voc_tree  # noqa: E402

pytestmark = pytest.mark.slow

TRAIN_AUG = [f"2007_{i:06d}" for i in range(12)]


def test_dinov2_and_dinov3_members_under_torchrun(tmp_path):
    root = write_voc_tree(tmp_path / "voc", splits={"train_aug": TRAIN_AUG, "train": TRAIN_AUG[:4],
                                                    "val": ["2008_000001", "2008_000002", "2008_000003"]},
                          size=(140, 180))
    split = tmp_path / "split"
    split.mkdir()
    line = "JPEGImages/{0}.jpg SegmentationClass/{0}.png\n"
    (split / "labeled.txt").write_text("".join(line.format(n) for n in TRAIN_AUG[:4]))
    (split / "unlabeled.txt").write_text("".join(line.format(n) for n in TRAIN_AUG[4:]))
    args = ["run", "voc-classic-92-dinov2-dinov3", f"data.root={root}", f"data.split_dir={split}",
            "model.name=dinov2_tiny_dpt", "mutual.name_b=dinov3_tiny_dpt", "data.num_workers=0",
            "phases.ratios=[1.0]", "--smoke"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one)]) == 0
    proc = torchrun(["-m", "dmt", *args, "--out", str(two)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stages = [s["name"] for s in json.loads((two / "results.json").read_text())["stages"]]
    assert stages == [s["name"] for s in json.loads((one / "results.json").read_text())["stages"]]
    assert stages == ["baseline-a", "baseline-b", "phase1-a", "phase1-b"]
    for stage in stages:  # each member's own network, as one process writes it
        meta = load_checkpoint(two / "stages" / stage / "model.safetensors")["meta"]
        assert meta["model"] == ("dinov2_tiny_dpt" if stage.endswith("-a") else "dinov3_tiny_dpt")
    assert "2 processes" in (two / "log.txt").read_text()
