"""``eval.select: val`` (the original protocol) on a tiny digit-scenes run: the kept model is the best
on val, it is what the next phase starts from and learns from, and the choice is flagged."""

import json
import re

import pytest
from safetensors.torch import load_file

from dmt.cli.main import main
from dmt.tasks.segmentation.runner import SELECTED_ON_VAL

TINY = ["data.num_scenes=40", "data.val_scenes=8", "data.labelled_split=1/4", "baseline.epochs=4",
        "baseline.batch_size=4", "phases.ratios=[1.0]", "phases.epochs=3", "phases.batch_pseudo=8",
        "phases.batch_labelled=2", "oracle.enabled=false", "eval.batch_size=8", "model.kwargs={width: 4}",
        "checkpoint_min_seconds=0"]


def _score_of_weights(evaluate):
    """The real evaluation, with mIoU replaced by a pseudo-random function of the model's weights:
    scores then vary from epoch to epoch (the tiny model's real ones barely do), and the same
    weights always get the same score, so the kept model is recognised by its score."""

    def scored(model, *args, **kwargs):
        out = evaluate(model, *args, **kwargs)
        weights = next(model.parameters()).detach().double()
        out["miou"] = float((weights.abs().sum() * 1e4) % 1.0)
        return out

    return scored


def test_select_val_keeps_the_best_model_on_val_and_says_so(tmp_path, monkeypatch):
    import dmt.tasks.segmentation.runner as seg

    monkeypatch.setattr(seg, "evaluate_segmentation", _score_of_weights(seg.evaluate_segmentation))
    out = tmp_path / "run"
    assert main(["run", "demo-digit-scenes", *TINY, "eval.select=val", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    log = (out / "log.txt").read_text()
    stages = {s["name"]: s for s in results["stages"]}
    assert list(stages) == ["baseline-a", "baseline-b", "phase1-a", "phase1-b"]
    assert stages["phase1-a"]["teacher"] == "baseline-b" and stages["phase1-a"]["init_from"] == "baseline-a"
    for name, stage in stages.items():
        scores = [float(s) for s in re.findall(rf"{name} epoch \d+: val mIoU ([0-9.]+)", log)]
        assert len(scores) == (4 if name.startswith("baseline") else 3)  # evaluated after every epoch
        m = stage["metrics"]
        # the kept model scores the best of the epochs (the last step ends an epoch here)
        assert m["miou"] == pytest.approx(max(scores), abs=1e-4)
        assert m["selected_on"] == "val" and m["warning"] == SELECTED_ON_VAL
        assert f"{name}: eval.select: val keeps the model that scores best on the evaluation set" in log
        if m["selected_epoch"] != "last":
            assert scores[m["selected_epoch"] - 1] == pytest.approx(m["miou"], abs=1e-4)
            # the stage's model (the next phase's start and teacher) is the best checkpoint's weights
            kept, best = (load_file(str(out / "stages" / name / f)) for f in ("model.safetensors", "best.safetensors"))
            assert kept.keys() == best.keys() and all((kept[k] == best[k]).all() for k in kept)
    # the run picked an earlier epoch somewhere, so the test saw best and last differ
    assert any(s["metrics"]["selected_epoch"] not in ("last", 4 if n.startswith("b") else 3)
               for n, s in stages.items())


def test_select_val_is_refused_for_classification(tmp_path, capsys):
    code = main(["run", "demo-digits", "eval.select=val", "--smoke", "--out", str(tmp_path / "c")])
    assert code == 2 and "eval.select" in capsys.readouterr().err
