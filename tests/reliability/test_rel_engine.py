"""Issue 10, items 3, 5, 7 and 8 at the engine level: checkpoint writes, NaN losses, value checks."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import struct

import pytest
import torch
from torch import nn

from dmt.config import load_config
from dmt.config.validate import RULES, validate_config
from dmt.engine import checkpoint as ckpt
from dmt.engine.checkpoint import load_checkpoint, save_checkpoint
from dmt.engine.loop import FitOptions, NonFiniteLoss, TrainState, fit, make_ema, make_sgd
from dmt.errors import UserError


def _state() -> dict:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    return {"model": model.state_dict(), "step": 7, "extra": {"b": 1, "a": [1.5, None]}}


# ---- item 3: a full disk while writing a checkpoint ------------------------------------------------


def test_full_disk_keeps_the_previous_checkpoint_and_says_one_line(tmp_path, monkeypatch):
    path = tmp_path / "stages" / "phase1" / "state.safetensors"
    save_checkpoint(path, {"x": torch.ones(3), "step": 1})
    real_save = ckpt.save_file

    def full_disk(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)  # a part of the file is on disk ...
        with open(filename, "r+b") as f:
            f.truncate(10)
        raise OSError(errno.ENOSPC, "No space left on device", filename)  # ... when the disk is full

    monkeypatch.setattr(ckpt, "save_file", full_disk)
    with pytest.raises(UserError) as info:
        save_checkpoint(path, {"x": torch.zeros(3), "step": 2})
    message = str(info.value)
    assert "\n" not in message
    assert message == f"cannot write checkpoint {path}: No space left on device; the previous checkpoint is kept"
    monkeypatch.undo()
    old = load_checkpoint(path)
    assert old["step"] == 1 and torch.equal(old["x"], torch.ones(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.safetensors"]  # no temporary left


# ---- item 8: identical states give identical files -------------------------------------------------


def test_identical_states_give_identical_bytes(tmp_path):
    digests = set()
    for k in range(6):  # safetensors' metadata order changed from one write to the next
        path = tmp_path / f"m{k}.safetensors"
        save_checkpoint(path, _state())
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert load_checkpoint(path)["extra"] == {"b": 1, "a": [1.5, None]}  # still readable, same content


# ---- item 7: a non-finite loss ---------------------------------------------------------------------


def _toy(steps_bad: set[int], skip: int, total: int = 6):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = make_sgd(model, lr=0.1, momentum=0.9, weight_decay=1e-3)
    state = TrainState(model, opt, ema=make_ema(model, 0.9))
    g = torch.Generator().manual_seed(2)
    data = [torch.randn(8, 4, generator=g) for _ in range(total)]

    def step_fn(batch, step):
        loss = model(batch).pow(2).mean()
        if step in steps_bad:
            loss = loss * math.nan
        return {"loss": loss}

    saves = []
    opts = FitOptions(total_steps=total, base_lr=0.1, schedule="constant", log_every=2, skip_nonfinite=skip)
    return state, data, step_fn, opts, saves


def test_nan_loss_stops_naming_the_steps_and_saves_nothing_after_it():
    state, data, step_fn, opts, saves = _toy({3}, skip=0)
    opts.checkpoint_seconds, opts.checkpoint_min_seconds, opts.steps_per_epoch = 0.0, 0.0, 1
    with pytest.raises(NonFiniteLoss, match="train: non-finite loss at step 3$"):
        fit(step_fn, state, iter(data), opts, save=lambda s: saves.append(s.step))
    assert saves == [1, 2, 3]  # steps 0-2 are saved; step 3 (NaN) never reaches a checkpoint


def test_skipped_nonfinite_steps_leave_no_trace():
    """Skipping steps 2 and 4 gives exactly the run that never took them (same batches otherwise)."""
    state, data, step_fn, opts, _ = _toy({2, 4}, skip=2)
    fit(step_fn, state, iter(data), opts, save=lambda s: None)
    assert state.step == 6 and state.extra["skipped_nonfinite"] == 2

    ref, _, ref_fn, ref_opts, _ = _toy(set(), skip=0)
    kept = [b for i, b in enumerate(data) if i not in (2, 4)]
    ref_opts.total_steps = len(kept)
    fit(ref_fn, ref, iter(kept), ref_opts, save=lambda s: None)
    for (k, a), b in zip(state.model.state_dict().items(), ref.model.state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-6), k
    for a, b in zip(state.ema.state_dict().values(), ref.ema.state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-6)
    assert all(torch.isfinite(p).all() for p in state.model.parameters())


def test_more_nonfinite_steps_than_allowed_stop_the_stage():
    state, data, step_fn, opts, _ = _toy({1, 2}, skip=1)
    with pytest.raises(NonFiniteLoss, match="after 2 skipped steps \\(more than train.skip_nonfinite=1\\)"):
        fit(step_fn, state, iter(data), opts, save=lambda s: None)
    assert all(torch.isfinite(p).all() for p in state.model.parameters())


# ---- item 5: every numeric key is checked against its meaning --------------------------------------


@pytest.mark.parametrize("override, key", [
    ("phases.gamma1=-1", "phases.gamma1"), ("phases.gamma2=-0.5", "phases.gamma2"),
    ("phases.ratios=[0.2, 1.5]", "phases.ratios"), ("phases.ratios=[]", "phases.ratios"),
    ("phases.ratios=[0.6, 0.4]", "phases.ratios"), ("baseline.lr=0", "baseline.lr"),
    ("phases.lr=-0.1", "phases.lr"), ("baseline.batch_size=0", "baseline.batch_size"),
    ("phases.batch_pseudo=0", "phases.batch_pseudo"), ("data.crop_size=[0, 321]", "data.crop_size"),
    ("data.crop_size=[321]", "data.crop_size"), ("baseline.ema_decay=1", "baseline.ema_decay"),
    ("phases.ema_decay=-0.1", "phases.ema_decay"), ("baseline.momentum=1.0", "baseline.momentum"),
    ("eval.batch_size=0", "eval.batch_size"), ("data.scale_range=[1.5, 0.5]", "data.scale_range"),
    ("baseline.epochs=0", "baseline.epochs"), ("phases.online_threshold=1.5", "phases.online_threshold"),
    ("checkpoint_seconds=0", "checkpoint_seconds"), ("train.skip_nonfinite=-1", "train.skip_nonfinite"),
    ("baseline.lr=.nan", "baseline.lr"),
])
def test_invalid_values_are_refused_naming_the_key(override, key):
    with pytest.raises(UserError, match=f"config key '{key}': expected "):
        load_config("cifar10-4-dmt", [override])


def test_every_preset_passes_validation():
    from dmt.config.loader import list_presets

    for name in list_presets():
        validate_config(load_config(name))


def test_every_rule_names_a_schema_key():
    from dmt.config.loader import config_to_dict
    from dmt.config.schema import ExperimentConfig

    tree = config_to_dict(ExperimentConfig())
    for key, _, _ in RULES:
        node = tree
        for part in key.split("."):
            assert part in node, key
            node = node[part]
