"""Which model files of a run directory are its last phase's members."""

import pytest

from dmt.errors import UserError
from dmt.suggest.members import last_stage_models


def touch(run, *stages):
    for s in stages:
        (run / "stages" / s).mkdir(parents=True)
        (run / "stages" / s / "model.safetensors").write_bytes(b"")


def test_the_last_phase_with_model_files(tmp_path):
    touch(tmp_path, "baseline-a", "baseline-b", "phase1-a", "phase1-b", "phase2-a", "phase10-a", "phase10-b", "oracle")
    (tmp_path / "stages" / "phase11-a").mkdir()  # started, no model file yet
    assert [p.parent.name for p in last_stage_models(tmp_path)] == ["phase10-a", "phase10-b"]


def test_baselines_when_no_phase_finished_and_one_model_runs(tmp_path):
    touch(tmp_path / "two", "baseline-a", "baseline-b")
    assert [p.parent.name for p in last_stage_models(tmp_path / "two")] == ["baseline-a", "baseline-b"]
    touch(tmp_path / "one", "baseline", "phase1", "phase2")
    assert [p.parent.name for p in last_stage_models(tmp_path / "one")] == ["phase2"]
    with pytest.raises(UserError, match="no stages/phase<k>/model.safetensors"):
        last_stage_models(tmp_path / "none")
