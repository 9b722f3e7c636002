"""A key dmt no longer has (``train.cuda_graph``) loads with one warning line and is dropped.

It reaches dmt three ways: an override or a YAML file written for an older dmt, and the
``config.yaml`` of a run directory started by one (``dmt run ... --out OLD`` resumes it, ``dmt
status OLD`` reads it). None of them is refused: the key never changed what a run computes.
"""

from __future__ import annotations

import logging

import yaml

from dmt.config import load_config
from dmt.config.loader import config_from_dict, config_to_dict, drop_removed_keys
from dmt.config.schema import REMOVED_KEYS
from dmt.run.rundir import RunDir


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_an_override_naming_a_removed_key_warns_once_and_changes_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="dmt"):
        cfg = load_config("demo-digits", ["train.cuda_graph=true"])
    assert config_to_dict(cfg) == config_to_dict(load_config("demo-digits"))
    (line,) = _warnings(caplog)
    assert "'train.cuda_graph' was removed from dmt and is ignored" in line and "\n" not in line
    assert "no faster than eager" in line and "docs/performance.md" in line


def test_dropping_leaves_the_callers_dict_and_other_keys_alone():
    raw = {"train": {"cuda_graph": False, "skip_nonfinite": 3}, "seed": 7}
    assert drop_removed_keys(raw) == {"train": {"skip_nonfinite": 3}, "seed": 7}
    assert raw == {"train": {"cuda_graph": False, "skip_nonfinite": 3}, "seed": 7}
    assert drop_removed_keys({"train": None}) == {"train": None}  # a section that is not one: left to the loader
    assert set(REMOVED_KEYS) == {"train.cuda_graph"}


def test_an_old_run_directory_with_the_key_resumes_with_one_warning(tmp_path, caplog):
    cfg = load_config("demo-digits")
    run = RunDir(tmp_path)
    run.open(cfg)
    run.close()
    (run.stage_dir("baseline") / "state.safetensors").write_bytes(b"started")  # a stage has started
    recorded = yaml.safe_load(run.config_path.read_text())
    recorded["train"]["cuda_graph"] = True  # as an older dmt wrote it
    run.config_path.write_text(yaml.safe_dump(recorded, sort_keys=False))
    # what `dmt status` does with it
    assert config_to_dict(config_from_dict(recorded)) == config_to_dict(cfg)
    caplog.clear()
    again = RunDir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dmt"):
        try:
            again.open(cfg)  # refused before: "differing keys: train.cuda_graph"
        finally:
            again.close()
    (line,) = _warnings(caplog)
    assert str(run.config_path) in line and "'train.cuda_graph' was removed" in line
    assert "cuda_graph" not in run.config_path.read_text()  # the resumed run records today's keys
