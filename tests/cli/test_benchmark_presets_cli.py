"""The field's benchmarks through ``dmt run --smoke`` on fabricated official files: STL-10 (its extra
images join the unlabelled pool) and the pretrained regime, ``cifar100-4-dinov2`` offline with an
empty hub cache (the suite's conftest), whose ViT trains as its tiny stand-in at ``data.image_size``.
CIFAR-100's and SVHN's WRN presets are in ``test_benchmark_smoke.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dmt.cli.main import main
from dmt.data.arrays import ArrayDataset
from dmt.data.cifar100 import CIFAR100_CLASSES, CIFAR100_FOLDER, write_cifar100_folder
from dmt.data.stl10 import STL10_FOLDER, write_stl10_folder
from dmt.models.files import load_model

STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def _images(n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def _ids(path: Path) -> list[int]:
    return [int(i) for i in path.read_text().split()]


def test_stl10_preset_smoke_run_draws_unlabelled_images_from_the_extra_file(tmp_path, capsys):
    rng = np.random.default_rng(4)
    train = ArrayDataset(_images(50, 96, rng), np.arange(50) % 10, STL10_CLASSES)  # 5 a class: 4 labelled, 1 not
    test = ArrayDataset(_images(12, 96, rng), np.arange(12) % 10, STL10_CLASSES)
    root = tmp_path / "stl"
    write_stl10_folder(root / STL10_FOLDER, train, test, _images(30, 96, rng))
    out = tmp_path / "run"
    # WRN-37-2 at 96 px would take a minute here; its own tests build it
    assert main(["run", "stl10-4-dmt", f"data.root={root}", "model.name=tiny_cnn", "phases.ratios=[0.5, 1.0]",
                 "--smoke", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["baseline", "phase1", "phase2"]
    assert "data stl10: 24 labelled, 24 unlabelled, 0 valtiny, no val, 12 test" in (out / "log.txt").read_text()
    # the protocol draws the labelled images from train_X.bin's 50; the unlabelled split is the
    # 10 left over, then unlabeled_X.bin's images (pool positions 50..): --smoke keeps 24 of them
    labelled, unlabelled = _ids(out / "splits" / "labelled.txt"), _ids(out / "splits" / "unlabelled.txt")
    assert max(labelled) < 50 and len(set(labelled)) == 24
    assert sorted(i for i in unlabelled if i < 50) == sorted(set(range(50)) - set(_full_labelled(root)))
    assert [i for i in unlabelled if i >= 50] == list(range(50, 64))
    model = out / "stages" / "phase2" / "model.safetensors"
    assert load_model(model)[1]["classes"] == STL10_CLASSES and load_model(model)[1]["image_size"] == 96
    capsys.readouterr()
    assert main(["eval", str(model), "--data", "stl10", "--root", str(root), "--device", "cpu"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["images"] == 12 and scored["accuracy"] == pytest.approx(results["stages"][2]["metrics"]["accuracy"])


def _full_labelled(root: Path) -> list[int]:
    """The labelled images the protocol draws from the whole fabricated set (before --smoke cuts it)."""
    from dmt.config import load_config
    from dmt.tasks.classification.data import load_source, protocol_split

    cfg = load_config("stl10-4-dmt", [f"data.root={root}"])
    labelled, _, _ = protocol_split(load_source(cfg.data).pool.labels, cfg.data)
    return labelled.tolist()


def test_cifar100_dinov2_preset_smoke_offline_trains_the_stand_in_at_the_image_size(tmp_path, capsys,
                                                                                     eval_read_sizes):
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.repeat(np.arange(100), 5))  # 4 labelled a class, 1 unlabelled
    root = tmp_path / "data"
    write_cifar100_folder(root / CIFAR100_FOLDER, _images(500, 32, rng), labels, _images(24, 32, rng),
                          rng.integers(0, 100, 24))
    out = tmp_path / "run"
    assert main(["run", "cifar100-4-dinov2", f"data.root={root}", "data.image_size=48", "phases.ratios=[1.0]",
                 "--smoke", "--out", str(out)]) == 0
    log = (out / "log.txt").read_text()
    assert "tiny stand-in" in log and "(random weights)" in log  # the hub file is not cached: never fetched
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["baseline", "phase1"]
    model = out / "stages" / "phase1" / "model.safetensors"
    _, meta = load_model(model)
    assert meta["image_size"] == 48 and meta["classes"] == CIFAR100_CLASSES  # CIFAR's 32 px read at 48
    assert meta["model"] == "timm/vit_small_patch14_dinov2.lvd142m" and meta["kwargs"]["embed_dim"] == 32
    capsys.readouterr()
    assert main(["eval", str(model), "--data", "cifar100", "--root", str(root), "--device", "cpu"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["images"] == 24 and scored["accuracy"] == pytest.approx(results["stages"][1]["metrics"]["accuracy"])
    assert eval_read_sizes == [48]  # as the model trained, not CIFAR's 32
