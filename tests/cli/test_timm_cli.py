"""timm models from the command line: `dmt models --timm`, a `--smoke` run from hub weights, eval, export.

The hub file is fabricated into an offline cache (``hub_fixtures``); sockets are blocked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import timm
import torch

from dmt.cli.main import main
from dmt.engine.checkpoint import load_checkpoint
from dmt.predict.export import export_model

sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "backbones"))
sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from export_fixtures import needs_onnx, save_tiny  # noqa: E402
from hub_fixtures import cache_file  # noqa: E402

RESNET_REPO = "timm/test_resnet.r160_in1k"  # timm's default tag of test_resnet


def test_models_lists_timm_architectures_with_their_hub_tags(capsys):
    assert main(["models", "--timm", "resnet1*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines[:-1]}
    assert "hub: a1_in1k (default)" in by_name["timm/resnet18"] and "tv_in1k" in by_name["timm/resnet18"]
    assert sorted(by_name) == sorted(f"timm/{a}" for a in timm.list_models("resnet1*"))
    assert lines[-1].startswith(f"{len(by_name)} models, ")
    assert main(["models", "--timm", "no_such_model*"]) == 1
    assert main(["models"]) == 0 and "timm/<name>" in capsys.readouterr().out


def test_a_smoke_run_starts_every_student_from_the_hub_file(cifar_root, hub_cache, tmp_path, capsys):
    torch.manual_seed(1)
    source = timm.create_model("test_resnet", pretrained=False)
    cache_file(hub_cache, RESNET_REPO, source.state_dict())
    out = tmp_path / "run"
    args = ["run", "cifar10-4-dmt", f"data.root={cifar_root}", "data.valtiny_per_class=2",
            "model.name=timm/test_resnet", "model.weights=hub", "model.grad_checkpointing=true",
            "phases.ratios=[0.5, 1.0]", "--smoke", "--out", str(out)]
    assert main(args) == 0
    log = (out / "log.txt").read_text()
    assert "random initialisation" not in log and "stand-in" not in log
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["baseline", "phase1", "phase2"]
    meta = load_checkpoint(out / "stages" / "phase2" / "model.safetensors")["meta"]
    assert meta["model"] == "timm/test_resnet" and meta["kwargs"] == {}
    assert meta["architecture"]["hf_hub_id"] == RESNET_REPO and meta["input_convention"]["mean"] == [0.5] * 3

    model = out / "stages" / "phase2" / "model.safetensors"
    capsys.readouterr()
    assert main(["eval", str(model), "--data", "cifar10", "--root", str(cifar_root), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(results["stages"][2]["metrics"]["accuracy"])
    assert main(["export", str(model), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0


def test_smoke_without_the_hub_file_warns_and_a_vit_trains_as_its_stand_in(cifar_root, hub_cache, tmp_path):
    out = tmp_path / "run"
    args = ["run", "cifar10-4-baseline", f"data.root={cifar_root}", "data.valtiny_per_class=2",
            "model.name=timm/test_resnet", "model.weights=hub", "--smoke", "--out", str(out)]
    assert main(args) == 0
    log = (out / "log.txt").read_text()
    assert "config key 'model.weights': hub:" in log and "random initialisation (--smoke)" in log
    vit = tmp_path / "vit"
    assert main([*args[:-1], str(vit), "model.name=timm/vit_small_patch14_dinov2.lvd142m",
                 "model.kwargs={dynamic_img_size: true, dynamic_img_pad: true}"]) == 0
    meta = load_checkpoint(vit / "stages" / "baseline" / "model.safetensors")["meta"]
    assert meta["kwargs"] == {"dynamic_img_size": True, "dynamic_img_pad": True, "embed_dim": 32, "depth": 2,
                              "num_heads": 2}
    assert "tiny stand-in" in (vit / "log.txt").read_text()


@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=needs_onnx), "torchscript"])
@pytest.mark.parametrize("name, kwargs", [("timm/test_resnet", {}),
                                          ("timm/vit_small_patch14_dinov2.lvd142m",
                                           {"depth": 1, "embed_dim": 32, "num_heads": 2, "img_size": 28}),
                                          ("timm/vit_small_patch14_dinov2.lvd142m",
                                           {"depth": 1, "embed_dim": 32, "num_heads": 2, "dynamic_img_size": True})])
def test_timm_resnets_and_vits_export_verified(name, kwargs, fmt, tmp_path):
    model_file, _ = save_tiny(tmp_path / "model.safetensors", name, **kwargs)
    report = export_model(model_file, tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'pt'}", fmt, size=28,
                          print_fn=lambda line: None)
    assert report.checks and all(c.ok for c in report.checks)
