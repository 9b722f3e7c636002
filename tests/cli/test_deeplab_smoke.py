"""`dmt run voc-8-dmt data.name=folder --smoke` as the docs give it: DeepLab-v2/ResNet-101 trains as its
tiny stand-in (small model files), and each missing weights file is warned about once, not per stage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dmt.cli.main import main
from dmt.models.files import load_model

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import write_folder_tree  # noqa: E402


def test_own_folder_smoke_of_the_resnet101_preset_is_small_and_warns_once(tmp_path, hub_cache, capsys):
    masks = {}
    for k in range(8):
        m = np.zeros((20, 24), np.uint8)
        m[:, 12:] = 1 + k % 2
        masks[f"im{k}"] = m
    root = write_folder_tree(tmp_path / "mine", masks, unlabelled=["u0", "u1"], splits={"val": ["im0", "im1"]})
    out = tmp_path / "run"
    args = ["run", "voc-8-dmt", "data.name=folder", f"data.root={root}", "data.labelled_split=all",
            "data.crop_size=[17, 17]", "phases.ratios=[1.0]", "--smoke", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    weights = [line for line in err.splitlines() if "from random weights" in line and "config key" in line]
    assert len(weights) == 2  # model.weights (COCO) and mutual.weights_b (ImageNet hub), once each
    assert "'model.weights'" in weights[0] and "resnet101COCO-41f33a49.pth" in weights[0]
    assert "'mutual.weights_b'" in weights[1] and "resnet101-63fe2227.pth" in weights[1]
    assert err.count("trains as deeplabv2_tiny") == 2  # once per model, at its baseline
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["baseline-a", "baseline-b", "phase1-a", "phase1-b"]
    files = sorted(out.glob("stages/*/model.safetensors"))
    assert len(files) == 4 and all(f.stat().st_size < 5_000_000 for f in files)  # ResNet-101's are 171 MB
    model, meta = load_model(files[-1])
    assert meta["model"] == "deeplabv2_tiny" and sum(p.numel() for p in model.parameters()) < 1_000_000
