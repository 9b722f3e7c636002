"""``phases.selection`` reaches the classification phases: each class keeps its own top ``ratio``.

A smoke run's baseline predicts one class, which cannot tell the rules apart; so the phase's teacher
probabilities (the runner's cache file) are fabricated: 12 images the teacher is sure are class 0,
6 it thinks are class 1 and 6 class 2, both unsure.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.run.runner import run_stages


def _teacher_probs() -> torch.Tensor:
    probs = torch.full((24, 10), 0.0)
    for i in range(24):
        c, conf = (0, 0.9 + i / 200) if i < 12 else (1 + i % 2, 0.3 + i / 200)
        probs[i] = (1 - conf) / 9
        probs[i, c] = conf
    return probs


@pytest.mark.parametrize("selection, kept", [("class_balanced", [6, 3, 3] + [0] * 7), ("global", [12] + [0] * 9)])
def test_a_smoke_run_keeps_what_its_selection_says(selection, kept, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dmt")
    cfg = apply_smoke(load_config("demo-digits", ["seed=1", "phases.ratios=[0.5]", "oracle.enabled=false",
                                                  f"phases.selection={selection}"]))
    assert cfg.data.limit == 24  # smoke: 24 unlabelled images
    (tmp_path / "stages" / "phase1").mkdir(parents=True)
    save_file({"probs": _teacher_probs()}, str(tmp_path / "stages" / "phase1" / "teacher_probs.safetensors"))
    run_stages(cfg, tmp_path)
    stages = json.loads((tmp_path / "results.json").read_text())["stages"]
    (phase,) = [s for s in stages if s["kind"] == "phase"]
    assert phase["metrics"]["predicted_per_class"] == [12, 6, 6] + [0] * 7
    # class_balanced: floor(0.5 * n_c) of each class; global: the 12 most confident, all of class 0
    assert phase["metrics"]["kept_per_class"] == kept
    assert sum(f"{selection} selection" in r.getMessage() for r in caplog.records) == 1
