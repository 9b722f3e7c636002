"""The DINOv2 presets end to end with tiny encoders: two different networks as members, their files,
`dmt eval`, `dmt predict`, `dmt status`, `dmt report`, and a killed AdamW stage resumed to the same bytes."""

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

from dmt.cli.main import main
from dmt.config import list_presets, load_config
from dmt.config.smoke import apply_smoke
from dmt.engine.checkpoint import load_checkpoint
from dmt.models import create_model
from dmt.tasks.plan import make_plan

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "backbones"))
from seg_fixtures import write_voc_tree  # noqa: E402
from test_vit import write_meta  # noqa: E402

TRAIN_AUG = [f"2007_{i:06d}" for i in range(12)]
TINY = ["model.name=dinov2_tiny_dpt", "mutual.name_b=dinov3_tiny_dpt", "data.num_workers=0", "phases.ratios=[1.0]"]
# the segmentation ones (the classification DINOv2 presets are tests/tasks/classification/test_timm_presets.py's)
FOUNDATION = sorted(n for n in list_presets() if "dinov2" in n and load_config(n).task == "segmentation")


@pytest.fixture
def voc(tmp_path):
    root = write_voc_tree(tmp_path / "voc", splits={"train_aug": TRAIN_AUG, "train": TRAIN_AUG[:4],
                                                    "val": ["2008_000001", "2008_000002"]}, size=(140, 180))
    split = tmp_path / "split"
    split.mkdir()
    line = "JPEGImages/{0}.jpg SegmentationClass/{0}.png\n"
    (split / "labeled.txt").write_text("".join(line.format(n) for n in TRAIN_AUG[:3]))
    (split / "unlabeled.txt").write_text("".join(line.format(n) for n in TRAIN_AUG[3:]))
    return root, split


def test_the_presets_state_the_recipe_and_their_members():
    assert len(FOUNDATION) == 2 * (5 + 4) + 1  # VOC and Cityscapes splits, two pairs each, and the folder one
    for name in FOUNDATION:
        c = load_config(name)
        assert c.model.name == "dinov2_vitb14_dpt" and c.model.init == "dinov2" and c.model.grad_checkpointing
        pair = ("dinov3_vitb16_dpt", "dinov3") if name.endswith("dinov3") else ("dinov2_vits14_dpt", "dinov2")
        assert (c.mutual.name_b, c.mutual.init_b) == pair and c.model.weights == "hub" == c.mutual.weights_b
        for section in (c.baseline, c.phases, c.oracle):
            assert section.optimizer == "adamw" and section.lr == 5e-6 and section.lr_mult == {"head": 40.0}
            assert section.weight_decay == 0.01 and section.schedule == "poly"
        crop = {"voc": [518, 518], "cityscapes": [798, 798], "folder": [518, 518]}[c.data.name]
        assert c.data.crop_size == crop and c.baseline.batch_size == 8
        assert c.phases.batch_labelled + c.phases.batch_pseudo == 8
        assert [s.name for s in make_plan(c)][-1] == "phase5-b"
        small = apply_smoke(c)
        assert small.data.crop_size[0] <= 100  # --smoke shrinks the crops (and images) by 8 or more


def test_two_different_members_run_every_stage_and_every_command(voc, tmp_path, capsys):
    root, split = voc
    torch.manual_seed(3)
    weights_b = write_meta(tmp_path / "dinov3_meta.pth", create_model("dinov3_tiny_dpt", 2).encoder, "dinov3")
    out = tmp_path / "run"
    args = ["run", "voc-classic-92-dinov2-dinov3", f"data.root={root}", f"data.split_dir={split}", *TINY,
            f"mutual.weights_b={weights_b}", "--smoke", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["baseline-a", "baseline-b", "phase1-a", "phase1-b"]
    log = (out / "log.txt").read_text()
    assert "config key 'model.weights'" in log and "random initialisation" in log  # A's file is missing
    for stage, name, encoder in (("baseline-a", "dinov2_tiny_dpt", "vit_small_patch14_dinov2"),
                                 ("phase1-a", "dinov2_tiny_dpt", "vit_small_patch14_dinov2"),
                                 ("baseline-b", "dinov3_tiny_dpt", "vit_small_patch16_dinov3"),
                                 ("phase1-b", "dinov3_tiny_dpt", "vit_small_patch16_dinov3")):
        meta = load_checkpoint(out / "stages" / stage / "model.safetensors")["meta"]
        assert meta["model"] == name and meta["architecture"]["encoder"] == encoder, stage
        assert meta["input_convention"]["std"] == [0.229, 0.224, 0.225]

    capsys.readouterr()
    model = out / "stages" / "phase1-b" / "model.safetensors"
    assert main(["eval", str(model), "--data", "voc", "--root", str(root), "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["miou"] == pytest.approx(results["stages"][3]["metrics"]["miou"], abs=1e-6)
    images = sorted(root.rglob("*.jpg"))[:2]
    assert main(["predict", str(model), *map(str, images), "--out", str(tmp_path / "pred"), "--window", "30", "30",
                 "--device", "cpu"]) == 0
    assert len(list((tmp_path / "pred").rglob("*.png"))) >= 2
    assert main(["status", str(out)]) == 0 and "phase1-b" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()


def test_a_missing_or_wrong_weights_file_is_refused_before_anything_is_written(voc, tmp_path, capsys):
    root, split = voc
    wrong = write_meta(tmp_path / "dinov2_meta.pth", create_model("dinov2_tiny_dpt", 2).encoder, "dinov2")
    out = tmp_path / "run"
    base = ["run", "voc-classic-92-dinov2-dinov3", f"data.root={root}", f"data.split_dir={split}", *TINY,
            f"model.weights={wrong}", "--out", str(out)]
    assert main([*base, f"mutual.weights_b={wrong}"]) == 2  # a DINOv2 file for the DINOv3 member
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'mutual.weights_b'" in err and str(wrong) in err
    assert main(base) == 2  # no file at all for B, outside --smoke
    assert "'mutual.weights_b'" in capsys.readouterr().err and not out.exists()


def test_a_killed_adamw_stage_resumes_to_the_same_files(voc, tmp_path):
    """SIGKILL in the middle of a stage with AdamW and two learning rates, then the same command."""
    root, split = voc
    args = ["voc-classic-92-dinov2", f"data.root={root}", f"data.split_dir={split}", "model.name=dinov2_tiny_dpt",
            "method=baseline", "data.num_workers=0", "data.crop_size=[40, 40]", "model.init=none",
            "baseline.epochs=12", "baseline.batch_size=2", "checkpoint_min_seconds=0", "data.check=none"]
    ref = tmp_path / "ref"
    assert main(["run", *args, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "dmt.cli.main", "run", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "stages" / "baseline" / "state.safetensors"
    try:
        while not state.exists() and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert state.exists() and not (out / "stages" / "baseline" / "model.safetensors").exists()
    groups = load_checkpoint(state)["optimizer"]["param_groups"]
    assert [(g["name"], g["lr_mult"]) for g in groups] == [("encoder", 1.0), ("head", 40.0)]
    assert main(["run", *args, "--out", str(out)]) == 0
    assert "baseline: resuming at step" in (out / "log.txt").read_text()
    model = Path("stages") / "baseline" / "model.safetensors"
    assert (out / model).read_bytes() == (ref / model).read_bytes()
