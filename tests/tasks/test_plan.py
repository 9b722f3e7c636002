"""Plans: which stages each method runs, and who teaches whom."""

import pytest

from dmt.config import load_config
from dmt.errors import UserError
from dmt.tasks.context import stage_seed, total_steps
from dmt.tasks.plan import make_plan


def test_classification_dmt_is_a_chain_of_ema_teachers():
    plan = make_plan(load_config("cifar10-4-dmt"))
    assert [s.name for s in plan] == ["baseline", "phase1", "phase2", "phase3", "phase4", "phase5"]
    assert [s.teacher for s in plan[1:]] == ["baseline", "phase1", "phase2", "phase3", "phase4"]
    assert [s.ratio for s in plan[1:]] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(s.init_from is None for s in plan)  # every student starts from scratch


def test_baseline_only_and_oracle():
    assert [s.name for s in make_plan(load_config("cifar10-4-baseline"))] == ["baseline"]
    plan = make_plan(load_config("cifar10-4-dmt", ["oracle.enabled=true", "phases.ratios=[0.5, 1.0]"]))
    assert [s.name for s in plan] == ["baseline", "phase1", "phase2", "oracle"]


def test_fine_tuning_phases_start_from_their_own_previous_model():
    plan = make_plan(load_config("cifar10-4-dmt", ["phases.from_scratch=false"]))
    assert [s.init_from for s in plan[1:3]] == ["baseline", "phase1"]


def test_bad_ratios_are_refused():
    with pytest.raises(UserError, match="phases.ratios"):
        make_plan(load_config("cifar10-4-dmt", ["phases.ratios=[0.6, 0.4]"]))


def test_stage_seeds_derive_from_run_seed():
    assert stage_seed(1, "phase1") == stage_seed(1, "phase1")
    assert len({stage_seed(1, n) for n in ("baseline", "phase1", "phase2")}) == 3
    assert stage_seed(1, "phase1") != stage_seed(2, "phase1")


def test_total_steps():
    c = load_config("cifar10-4-dmt")
    assert total_steps(c.baseline, 1) == 2120
    c.phases.max_steps = 5
    assert total_steps(c.phases, 19) == 5


def test_model_b_is_another_network_only_where_the_config_says_so():
    from dmt.tasks.plan import member_model

    same = load_config("voc-20-dmt")
    assert member_model(same, "b") == member_model(same, "a") == ("deeplabv2_resnet101", same.model.kwargs)
    other = load_config("voc-classic-92-dinov2-dinov3", ["mutual.kwargs_b={}"])
    assert member_model(other, "a")[0] == "dinov2_vitb14_dpt" and member_model(other, "b") == ("dinov3_vitb16_dpt", {})
    assert member_model(other, "")[0] == "dinov2_vitb14_dpt"  # the oracle is model A
    with pytest.raises(UserError, match="'mutual.name_b': unknown model 'dinov9'"):
        member_model(load_config("voc-20-dmt", ["mutual.name_b=dinov9"]), "b")
    with pytest.raises(UserError, match="'mutual.name_b': mutual.dms trains one network"):
        load_config("voc-20-dms", ["mutual.name_b=deeplabv2_tiny"])
