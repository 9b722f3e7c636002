"""A run directory started by an older dmt resumes when only keys added since are new (at their defaults)."""

import pytest
import yaml

from dmt.config import load_config
from dmt.errors import UserError
from dmt.run.rundir import RunDir


def _open_with_old_config(tmp_path, cfg, drop):
    run = RunDir(tmp_path)
    run.open(cfg)
    run.close()
    # a stage has started (before any stage, a changed config simply replaces the old one)
    (run.stage_dir("baseline") / "state.safetensors").write_bytes(b"started")
    recorded = yaml.safe_load(run.config_path.read_text())
    for dotted in drop:
        *parents, leaf = dotted.split(".")
        node = recorded
        for p in parents:
            node = node[p]
        del node[leaf]
    run.config_path.write_text(yaml.safe_dump(recorded))
    again = RunDir(tmp_path)
    try:
        again.open(cfg)
    finally:
        again.close()


def test_keys_added_later_at_their_defaults_are_accepted(tmp_path):
    _open_with_old_config(tmp_path, load_config("cifar10-4-dmt"), ["model.sync_bn", "train"])


def test_a_key_added_later_but_set_is_refused(tmp_path):
    cfg = load_config("demo-digits", ["model.sync_bn=true"])
    with pytest.raises(UserError, match="model.sync_bn"):
        _open_with_old_config(tmp_path, cfg, ["model.sync_bn"])
