"""Checkpoints: exact round trip of nested training state, atomic, and never unpickled."""

import os
import pickle

import pytest
import torch

from dmt.engine.checkpoint import load_checkpoint, save_checkpoint
from dmt.errors import UserError


def _trained_optimizer():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_of_model_and_optimizer(tmp_path):
    model, opt = _trained_optimizer()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 7,
             "extra": {"elapsed": 1.5, "names": ["a", "b"], "pair": (1, 2), "none": None}}
    path = tmp_path / "s.safetensors"
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    assert back["step"] == 7 and back["extra"] == state["extra"]
    for k, v in model.state_dict().items():
        assert torch.equal(back["model"][k], v) and back["model"][k].dtype == v.dtype
    # optimizer state is keyed by parameter index (ints), which must survive
    assert set(back["optimizer"]["state"]) == set(opt.state_dict()["state"])
    model2, opt2 = _trained_optimizer()
    opt2.load_state_dict(back["optimizer"])
    for i, s in opt.state_dict()["state"].items():
        assert torch.equal(opt2.state_dict()["state"][i]["momentum_buffer"], s["momentum_buffer"])


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "s.safetensors"
    save_checkpoint(path, {"x": torch.ones(2)})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("dmt.atomic.os.replace", boom)  # the rename of dmt.atomic, which checkpoints write through
    # a file-system error is the user's one line (naming the file), not a traceback
    with pytest.raises(UserError, match=r"s\.safetensors: disk full; the previous checkpoint is kept"):
        save_checkpoint(path, {"x": torch.zeros(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]  # no temporary file left
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))  # the old one is intact


def test_pickles_are_never_loaded(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(UserError, match="evil.safetensors"):
        load_checkpoint(path)
    assert not marker.exists()


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(UserError, match="not a dmt checkpoint"):
        load_checkpoint(tmp_path / "plain.safetensors")


def test_unsupported_values_are_a_bug_not_silent(tmp_path):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "x.safetensors", {"fn": print})
