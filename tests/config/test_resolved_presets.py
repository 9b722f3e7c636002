"""Every shipped preset resolves to exactly the configuration recorded in ``resolved_presets.json``.

The snapshot was written before the presets were rewritten with ``base:`` inheritance, so this
test holds the rewrite (and any later reshuffling of the bases) to "nothing changed". When you
add a preset or change one on purpose, regenerate the snapshot and review its diff (a key newly
added to the schema needs no regeneration while every preset leaves it at its default)::

    .venv/bin/python tests/config/regen_resolved_presets.py
    git diff tests/config/resolved_presets.json
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dmt.config import config_diff, config_to_dict, list_presets, load_config
from dmt.config.schema import ExperimentConfig

SNAPSHOT = Path(__file__).with_name("resolved_presets.json")
RECORDED = json.loads(SNAPSHOT.read_text())


def test_the_snapshot_covers_exactly_the_shipped_presets():
    assert sorted(RECORDED) == sorted(list_presets()), (
        "presets were added or removed: run tests/config/regen_resolved_presets.py")


def _lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return "<absent>"
        tree = tree[part]
    return tree


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_preset_resolves_as_recorded(name):
    # round trip through JSON so tuples/lists and key order compare as they were recorded
    now = json.loads(json.dumps(config_to_dict(load_config(name))))
    defaults = json.loads(json.dumps(config_to_dict(ExperimentConfig())))
    # a config key added to the schema after the snapshot is fine at its default (as a run
    # directory accepts it); a preset that sets it, or any recorded value that moved, is not
    changed = [k for k in config_diff(RECORDED[name], now)
               if not (_lookup(RECORDED[name], k) == "<absent>" and _lookup(now, k) == _lookup(defaults, k))]
    assert not changed, f"{name}: {changed} differ from resolved_presets.json (regenerate if meant)"


def test_regen_script_writes_what_the_test_reads(tmp_path):
    spec = importlib.util.spec_from_file_location("regen", SNAPSHOT.with_name("regen_resolved_presets.py"))
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    fresh = json.loads(regen.to_json(regen.resolved_presets()))
    assert fresh["voc-8-dmt"]["data"]["labelled_split"] == "1/8"
    assert fresh["voc-8-dmt"] == json.loads(json.dumps(config_to_dict(load_config("voc-8-dmt"))))
