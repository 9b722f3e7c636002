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
