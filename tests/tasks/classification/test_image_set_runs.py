"""A classification run on a folder-shaped dataset (fixed split, unlabelled images without labels, a
val set and no test set) through every tool that reads it: results, status, report, eval, predict."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
from PIL import Image

import dmt
import dmt.tasks.classification.data as cls_data
from dmt.cli.main import main
from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.data.arrays import UNLABELLED, ArrayDataset
from dmt.report import load_run, write_report
from dmt.run.runner import run_stages
from dmt.run.status import format_status, run_status
from dmt.run.summary import format_table
from dmt.tasks.classification.data import ClassificationSource

CLASSES = ["cat", "dog", "owl"]


def _set(labels: list[int], seed: int) -> ArrayDataset:
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 8, 8, 1), dtype=np.uint8)
    return ArrayDataset(pixels, np.asarray(labels, dtype=np.int64), list(CLASSES))


def _folder_with_val(d) -> ClassificationSource:
    pool = _set([0, 0, 1, 1, 2, 2] + [UNLABELLED] * 10, seed=0)
    return ClassificationSource(pool, None, val=_set([2, 1, 0, 0, 1], seed=1), labelled=np.arange(6),
                                unlabelled=np.arange(6, 16))


def _folder_alone(d) -> ClassificationSource:
    source = _folder_with_val(d)
    source.val = None
    return source


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(cls_data._LOADERS, "folder_with_val", _folder_with_val)
    monkeypatch.setitem(cls_data._LOADERS, "folder_alone", _folder_alone)


def _run(name: str, out, *overrides: str) -> dict:
    cfg = apply_smoke(load_config("demo-digits", [f"data.name={name}", "oracle.enabled=false",
                                                  "phases.ratios=[0.5, 1.0]", *overrides]))
    return run_stages(cfg, out)


def test_run_without_test_set_scores_on_val_and_every_tool_reads_it(registered, tmp_path, capsys):
    out = tmp_path / "run"
    results = _run("folder_with_val", out)
    stages = {s["name"]: s["metrics"] for s in results["stages"]}
    assert list(stages) == ["baseline", "phase1", "phase2"]
    for m in stages.values():
        assert "accuracy" not in m and 0 <= m["val_accuracy"] <= 1
    for phase in ("phase1", "phase2"):  # no kept image has a true label: nothing to score them against
        assert "pseudo_accuracy" not in stages[phase] and stages[phase]["pseudo_scored"] == 0
    assert stages["phase1"]["pseudo_kept"] == 5 and stages["phase2"]["pseudo_kept"] == 10
    assert results["summary"]["metric"] == "val_accuracy" and results["summary"]["final"] is not None
    assert "val_accuracy" in format_table(results).splitlines()[0]
    status = run_status(out)
    assert [(s.metric, s.value) for s in status.stages] == [("val_accuracy", stages[n]["val_accuracy"])
                                                            for n in stages]
    assert "val_accuracy" in format_status(status)
    assert "val_accuracy" in write_report([out], tmp_path / "report.html").read_text()
    assert load_run(out).class_names == CLASSES  # from the model files (the dataset is not a built-in one)

    model_file = out / "stages" / "phase2" / "model.safetensors"
    assert main(["eval", str(model_file), "--data", "folder_with_val", "--device", "cpu"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["split"] == "val" and scored["images"] == 5
    assert scored["accuracy"] == pytest.approx(stages["phase2"]["val_accuracy"])

    model = dmt.load_model(model_file, device="cpu")  # the class names and size the run trained with
    assert model.class_names == tuple(CLASSES) and model.size == 8
    photo = np.random.default_rng(5).integers(0, 256, (30, 21, 3), dtype=np.uint8)  # any size, RGB
    assert model.predict(photo).label in CLASSES
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    assert main(["predict", str(model_file), str(folder), "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    with open(tmp_path / "pred" / "predictions.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["class_name"] == model.predict(photo).label and row["top_k"].split()[0].startswith(row["class_name"])


def test_run_without_test_or_val_set_warns_once_and_records_pseudo_statistics(registered, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="dmt"):
        results = _run("folder_alone", tmp_path / "run", "phases.ratios=[1.0]")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["folder_alone has no test or val set: stages record no accuracy, only the pseudo-label "
                        "statistics"]
    baseline, phase = (s["metrics"] for s in results["stages"])
    assert baseline == {"train_images": 6}
    assert phase["pseudo_kept"] == 10 and not any("accuracy" in k for k in phase)
    assert results["summary"]["baseline"] is None and results["summary"]["final"] is None
    assert "gap closed" not in format_table(results)
