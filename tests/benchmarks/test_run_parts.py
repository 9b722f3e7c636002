"""benchmarks/run_parts.py's pieces on the CPU: the whole-run projection against hand-computed
seconds, the voc-106-dmt step counts, and two parts of a member on a tiny fabricated VOC tree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from parts_plan import RunPlan, StagePlan, project, protocol_labelled, run_plan, stage_saves  # noqa: E402
from parts_report import table  # noqa: E402

# two stages: 10 steps of 8 crops (5 per epoch), then 20 steps of 8 (10 per epoch); 100 images
# labelled in the one phase, 50 evaluated per stage; checkpoints as the engine's defaults
PLAN = RunPlan((StagePlan(10, 8, 5), StagePlan(20, 8, 10)), label_images=100, eval_images=50)
RATES = {"train": 8.0, "label": 50.0, "eval": 25.0, "loader": 16.0, "state_write_s": 1.0, "model_write_s": 0.5}


def test_stage_saves_follow_the_engines_rules():
    assert stage_saves(10.0, 2, 300.0, 10.0) == 1  # epochs of 5 s: saved every 2nd epoch, the last is the end
    assert stage_saves(20.0, 2, 300.0, 10.0) == 2  # epochs of 10 s: each epoch's end
    assert stage_saves(1000.0, 1, 300.0, 10.0) == 4  # one long epoch: every 300 s, then the end
    assert stage_saves(780.0, 300, 300.0, 10.0) == 75  # voc baseline-like: 2.6 s epochs, a save every 4th


def test_projection_of_two_members_by_hand():
    side = project(PLAN, [RATES, RATES], side_by_side=True)
    # train 80/8 + 160/8 = 30 s; label 100/50 = 2 s; eval 2 x 50/25 = 4 s; checkpoints 1 + 2 saves
    # of 1 s and two model files of 0.5 s = 4 s: 40 s per member, the members at once
    member = side["per_member_min"][0]
    assert member["train_min"] == 0.5 and member["label_min"] == pytest.approx(0.03, abs=0.005)
    assert member["checkpoints"] == 3 and member["loader_wait_min"] == 0.0
    assert side["whole_run_min"] == pytest.approx(40 / 60, abs=0.005)
    assert side["step_only_min"] == 0.5 and side["missing"] == []
    one_after_other = project(PLAN, [RATES, RATES], side_by_side=False)
    assert one_after_other["whole_run_min"] == pytest.approx(80 / 60, abs=0.005)
    assert one_after_other["step_only_min"] == 1.0


def test_a_slower_loader_bounds_training():
    slow = {**RATES, "loader": 4.0}  # loading takes 20 s and 40 s: 30 s of waiting, stages of 20 and 40 s
    member = project(PLAN, [slow], side_by_side=True)["per_member_min"][0]
    assert member["loader_wait_min"] == 0.5 and member["checkpoints"] == 4
    missing = project(PLAN, [{"train": 8.0}], side_by_side=True)
    assert missing["missing"] == ["eval", "label", "loader", "model_write_s", "state_write_s"]
    assert missing["whole_run_min"] == 0.5


def test_voc_106_dmt_step_counts():
    assert protocol_labelled(10582, 106) == 99 and protocol_labelled(18, 2) == 10  # 9 % 8 == 1: one more
    plan = run_plan("voc-106-dmt", 99, 10582 - 99, 1449)
    assert plan.stages[0] == StagePlan(300 * 13, 8, 13)  # 300 epochs of ceil(99 / 8) steps
    assert plan.stages[1:] == (StagePlan(4 * 1498, 8, 1498),) * 5  # 4 epochs of ceil(10483 / 7), 7 + 1 crops
    assert plan.train_crops == 3900 * 8 + 5 * 5992 * 8


def test_member_parts_on_a_tiny_voc_tree(tmp_path):
    import torch

    from parts_common import fabricate_voc, shapes
    from parts_member import SegMember

    data = fabricate_voc(tmp_path / "voc", shapes(True))
    member = SegMember(argparse.Namespace(data=str(data), dry_run=True, rank=0, members=1), torch.device("cpu"))
    try:
        ckpt = member.checkpoint()
        loader = member.loader()  # without the label part: the store is filled with zero maps first
    finally:
        member.close()
    assert not member.tmp.exists()
    assert ckpt["state_write_s"] > 0 and ckpt["state_mib"] > 0
    assert loader["preset_workers"]["num_workers"] == 1 and loader["images_per_s"] > 0
    text = table({"device": "cpu", "dry_run": True, "seg_solo": {"checkpoint": [ckpt], "loader": [loader]}})
    assert "deeplab checkpoint" in text and "deeplab loader" in text
