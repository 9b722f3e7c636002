"""The run summary: the gap closed by the mean of the models and by the better of two."""

from __future__ import annotations

import pytest


def _stage(name: str, kind: str, miou: float, phase: int = 0) -> dict:
    return {"name": name, "kind": kind, "model": name.rsplit("-", 1)[-1] if "-" in name else "",
            "phase": phase, "metrics": {"miou": miou}}


def test_summary_gap_against_the_better_baseline_and_the_better_final_model():
    from dmt.run.summary import format_table, summarize

    stages = [_stage("baseline-a", "baseline", 0.60), _stage("baseline-b", "baseline", 0.70),
              _stage("phase1-a", "phase", 0.74, 1), _stage("phase1-b", "phase", 0.72, 1),
              _stage("oracle", "oracle", 0.80)]
    s = summarize(stages, "segmentation")
    # mean: 0.65 -> 0.73 of 0.80: 0.08 / 0.15; better: 0.70 -> 0.74 of 0.80: 0.04 / 0.10
    assert s["gap_closed"] == pytest.approx(0.08 / 0.15)
    assert s["best_baseline"] == ("baseline-b", 0.70) and s["best_final"] == ("phase1-a", 0.74)
    assert s["best_gap_closed"] == pytest.approx(0.4)
    table = format_table({"task": "segmentation", "stages": stages, "summary": s})
    assert "mean of the models: baseline 0.6500 -> final 0.7300" in table
    assert "better baseline (baseline-b) 0.7000 -> better final (phase1-a) 0.7400: +0.0400, 40.0% of the gap" in table


def test_summary_of_one_model_has_no_better_of_two():
    from dmt.run.summary import format_table, summarize

    stages = [_stage("baseline", "baseline", 0.6), _stage("phase1", "phase", 0.7, 1), _stage("oracle", "oracle", 0.8)]
    s = summarize(stages, "segmentation")
    assert "best_gap_closed" not in s and s["gap_closed"] == pytest.approx(0.5)
    table = format_table({"task": "segmentation", "stages": stages, "summary": s})
    assert "better baseline" not in table and "mean of the models" not in table
