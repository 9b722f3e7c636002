"""Reduced offline demos: the same presets and pipeline as `make demo`, with fewer steps."""

import json

from dmt.cli.main import main
from dmt.config import load_config


def test_reduced_classification_demo(tmp_path, capsys):
    out = tmp_path / "cls"
    assert main(["demo", "--out", str(out), "baseline.epochs=5", "phases.epochs=1", "oracle.epochs=1"]) == 0
    printed = capsys.readouterr().out
    assert "gap closed" in printed or "oracle" in printed
    r = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in r["stages"]] == ["baseline", "phase1", "phase2", "phase3", "phase4", "phase5",
                                                "oracle"]
    assert r["summary"]["metric"] == "accuracy" and r["summary"]["oracle"] is not None
    assert (out / "results.png").stat().st_size > 0 and f"{out / 'results.png'}" in printed
    assert "val_scenes" not in printed and not (out / "val_scenes.png").exists()


def test_reduced_segmentation_demo(tmp_path, capsys):
    out = tmp_path / "seg"
    assert main(["demo", "--task", "seg", "--out", str(out), "data.num_scenes=48", "data.val_scenes=16",
                 "baseline.epochs=1", "phases.epochs=1", "oracle.epochs=1", "phases.ratios=[0.5, 1.0]"]) == 0
    r = json.loads((out / "results.json").read_text())
    names = [s["name"] for s in r["stages"]]
    assert names == ["baseline-a", "baseline-b", "phase1-a", "phase1-b", "phase2-a", "phase2-b", "oracle"]
    assert all(0 <= s["metrics"]["miou"] <= 1 for s in r["stages"])
    printed = capsys.readouterr().out
    assert "phase2-b" in printed
    summary = r["summary"]  # the share of the gap is printed against the better baseline too
    assert summary["best_baseline"][0] in ("baseline-a", "baseline-b") and "best_final" in summary
    best_gap = summary.get("best_gap_closed")  # nan when the 1-epoch oracle is no better than a baseline
    shown = best_gap is not None and best_gap == best_gap
    assert (f"better baseline ({summary['best_baseline'][0]}) " in printed) == shown
    assert f"{out / 'results.png'}" in printed and f"{out / 'val_scenes.png'}" in printed
    assert len(json.loads((out / "val_scenes.json").read_text())["names"]) == 6  # VAL_SAMPLES of 16 val scenes
    assert sorted(p.parent.name for p in out.glob("stages/*/val_predictions.npz")) == sorted(names)


def test_segmentation_demo_keeps_its_measured_settings():
    # docs/demos.md's figures (half the gap closed on seeds 1-3) were measured with these settings;
    # the baselines and the oracle train to their plateaus so that DMT's gain is not flattered
    cfg = load_config("demo-digit-scenes")
    assert (cfg.baseline.epochs, cfg.oracle.epochs) == (250, 30)
    assert (cfg.phases.epochs, cfg.phases.lr, cfg.phases.gamma1, cfg.phases.gamma2) == (7, 0.2, 0.5, 0.5)
    assert cfg.phases.ratios == [0.2, 0.4, 0.6, 0.8, 1.0] and not cfg.phases.from_scratch
