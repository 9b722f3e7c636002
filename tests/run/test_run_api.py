"""`dmt.run_experiment(...)`: overrides as strings or keywords, configs as objects; `dmt run` takes the same path."""

from __future__ import annotations

import argparse

import pytest

import dmt
import dmt.run.api
import dmt.run.runner
from dmt.cli import run as cli_run
from dmt.config import load_config


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    def fake(cfg, out):
        seen.update(cfg=cfg, out=out)
        return {"stages": []}
    monkeypatch.setattr(dmt.run.api, "run_stages", fake)
    monkeypatch.setattr(dmt.run.runner, "run_stages", fake)
    return seen


def test_run_experiment_with_string_and_keyword_overrides(captured, tmp_path):
    assert dmt.run_experiment is dmt.run.api.run_experiment
    assert dmt.run_experiment("demo-digits", tmp_path, ["baseline.lr=0.2"],
                              **{"baseline.epochs": 1, "phases.ratios": [0.5, 1.0], "oracle.enabled": False,
                                 "data.name": "digits"}) == {"stages": []}
    cfg = captured["cfg"]
    assert (cfg.baseline.epochs, cfg.baseline.lr, cfg.phases.ratios, cfg.oracle.enabled) == (1, 0.2, [0.5, 1.0], False)
    assert captured["out"] == tmp_path


def test_a_config_object_with_overrides_and_smoke(captured, tmp_path):
    cfg = load_config("demo-digits")
    dmt.run_experiment(cfg, tmp_path, **{"seed": 7})
    assert captured["cfg"].seed == 7 and cfg.seed != 7  # the caller's object is left alone
    dmt.run_experiment(cfg, tmp_path, smoke=True)
    assert captured["cfg"].smoke and not cfg.smoke
    with pytest.raises(dmt.UserError, match="unknown config key 'phases.gama'"):
        dmt.run_experiment("demo-digits", tmp_path, **{"phases.gama": 1})


def test_the_command_runs_the_configuration_the_api_runs(captured, tmp_path, capsys):
    args = argparse.Namespace(config="demo-digit-scenes", overrides=["seed=3"], smoke=True, nproc=0,
                              out=str(tmp_path / "cli"))
    assert cli_run.main(args) == 0
    from_cli = captured["cfg"]
    dmt.run_experiment("demo-digit-scenes", tmp_path / "api", ["seed=3"], smoke=True)
    assert captured["cfg"] == from_cli and from_cli.smoke and from_cli.seed == 3


def test_dmt_run_is_the_package_only():
    """``dmt.run(...)`` was the package made callable (a module class swap); the function is ``dmt.run_experiment``."""
    import dmt.run

    assert not callable(dmt.run) and "run" not in dmt.__all__ and "run_experiment" in dmt.__all__
