"""`dmt.run(...)`: the package called as a function, overrides as strings or keywords, configs as objects."""

from __future__ import annotations

import importlib

import pytest

import dmt
import dmt.run.runner
from dmt.config import load_config


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    def fake(cfg, out):
        seen.update(cfg=cfg, out=out)
        return {"stages": []}
    monkeypatch.setattr(dmt.run.runner, "run_experiment", fake)
    return seen


def test_dmt_run_is_callable_after_its_submodules_are_imported(captured, tmp_path):
    importlib.import_module("dmt.run.status")  # rebinds dmt.run to the package: still callable
    assert callable(dmt.run) and dmt.run is importlib.import_module("dmt.run")
    assert dmt.run("demo-digits", tmp_path, ["baseline.lr=0.2"], **{"baseline.epochs": 1, "phases.ratios": [0.5, 1.0],
                                                                  "oracle.enabled": False, "data.name": "digits"}) == {"stages": []}
    cfg = captured["cfg"]
    assert (cfg.baseline.epochs, cfg.baseline.lr, cfg.phases.ratios, cfg.oracle.enabled) == (1, 0.2, [0.5, 1.0], False)
    assert captured["out"] == tmp_path


def test_a_config_object_with_overrides_and_smoke(captured, tmp_path):
    cfg = load_config("demo-digits")
    dmt.run(cfg, tmp_path, **{"seed": 7})
    assert captured["cfg"].seed == 7 and cfg.seed != 7  # the caller's object is left alone
    dmt.run(cfg, tmp_path, smoke=True)
    assert captured["cfg"].smoke and not cfg.smoke
    with pytest.raises(dmt.UserError, match="unknown config key 'phases.gama'"):
        dmt.run("demo-digits", tmp_path, **{"phases.gama": 1})
