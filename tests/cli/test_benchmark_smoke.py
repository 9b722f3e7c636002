"""`dmt run --smoke` of the CIFAR-100 and SVHN presets on fabricated official-format files, and `dmt eval`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from dmt.cli.main import main
from dmt.data.cifar100 import CIFAR100_CLASSES, CIFAR100_FOLDER, write_cifar100_folder
from dmt.data.svhn import write_svhn_mat
from dmt.models.files import load_model

STAGES = ["baseline", "phase1", "phase2", "phase3", "phase4", "phase5"]


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _images(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _check_run(out: Path, classes: list[str]) -> None:
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == STAGES and results["smoke"] is True
    assert all(0.0 <= s["metrics"]["accuracy"] <= 1.0 for s in results["stages"])
    assert "valtiny_accuracy" not in results["stages"][0]["metrics"]  # valtiny_per_class: 0
    assert (out / "splits" / "labelled.txt").is_file()
    assert load_model(out / "stages" / "phase5" / "model.safetensors")[1]["classes"] == classes


def test_cifar100_preset_smoke_run(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(100), 5))  # 4 labelled per class and some unlabelled
    root = tmp_path / "data"
    write_cifar100_folder(root / CIFAR100_FOLDER, _images(500, rng), labels, _images(30, rng), rng.integers(0, 100, 30))
    before = _digest(root)
    out = tmp_path / "run"
    # WRN-28-8 (23 M parameters) makes this a 33 s test on two CPU cores: the smoke run trains tiny_cnn
    # (the preset's network builds and runs in tests/models/test_wrn.py)
    assert main(["run", "cifar100-4-dmt", f"data.root={root}", "model.name=tiny_cnn", "--smoke",
                 "--out", str(out)]) == 0
    assert _digest(root) == before  # the dataset is read-only to us
    _check_run(out, CIFAR100_CLASSES)


@pytest.fixture
def svhn_root(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    root = tmp_path / "svhn"
    root.mkdir()
    for name, n in (("train", 50), ("test", 20), ("extra", 30)):
        write_svhn_mat(root / f"{name}_32x32.mat", _images(n, rng), np.arange(n) % 10)
    return root


def test_svhn_preset_smoke_run_and_eval(svhn_root, tmp_path, capsys):
    before = _digest(svhn_root)
    out = tmp_path / "run"
    assert main(["run", "svhn-4-dmt", f"data.root={svhn_root}", "--smoke", "--out", str(out)]) == 0
    assert _digest(svhn_root) == before
    _check_run(out, [str(d) for d in range(10)])
    assert "data svhn: 24 labelled, 24 unlabelled, 0 valtiny, no val, 20 test" in (out / "log.txt").read_text()
    capsys.readouterr()
    assert main(["eval", str(out / "stages" / "phase5" / "model.safetensors"), "--data", "svhn",
                 "--root", str(svhn_root), "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["images"] == 20 and 0.0 <= scores["accuracy"] <= 1.0
