"""``train.skip_nonfinite``: a skipped step leaves everything it could have changed exactly as it was.

The state is compared tensor by tensor with :func:`torch.equal`: the model (weights, BatchNorm
statistics and its integer step counter), the EMA (its weights, buffers and ``n_averaged``), every
optimizer tensor (AdamW's 0-d ``step`` included) and the grad scaler. A skipped first step leaves
no optimizer state behind at all (none existed before it).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from dmt.engine.loop import FitOptions, TrainState, fit, make_ema
from dmt.engine.optim import make_optimizer


def _state(kind: str) -> tuple[TrainState, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    optimizer = make_optimizer(model, kind, 0.05, momentum=0.9, weight_decay=1e-3)
    return TrainState(model, optimizer, make_ema(model, 0.9)), torch.randn(8, 3, 6, 6)


def _run(state: TrainState, x: torch.Tensor, until: int, nan_at: int | None = None) -> None:
    def step_fn(batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        loss = state.model(batch + step).square().mean()
        return {"loss": loss * math.nan if step == nan_at else loss}

    opts = FitOptions(total_steps=until, base_lr=0.05, schedule="poly", skip_nonfinite=1)
    fit(step_fn, state, [x] * (until - state.step), opts, save=lambda s: None)


def _everything(state: TrainState) -> dict[str, object]:
    """Every piece of state a step may touch (deep copies), the optimizer's learning rates apart:
    they follow the schedule, which moves on with the step number by design."""
    optimizer = state.optimizer.state_dict()
    return copy.deepcopy({"model": state.model.state_dict(), "optimizer": optimizer["state"],
                          "ema": state.ema.state_dict(), "scaler": state.scaler.state_dict()})


def _assert_equal(a: object, b: object, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_equal(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, where


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
@pytest.mark.parametrize("good_steps", [0, 3])  # the first step (state is born) and a later one
def test_a_skipped_step_leaves_model_optimizer_ema_and_scaler_unchanged(kind, good_steps):
    state, x = _state(kind)
    _run(state, x, good_steps)
    if state.scaler is None:  # fit makes one (disabled without float16 autocast)
        state.scaler = torch.amp.GradScaler("cpu", enabled=False)
    before = _everything(state)
    if good_steps:  # what the fix is about: AdamW's 0-d step count, the EMA's and BN's counters
        zero_d = [v for s in before["optimizer"].values() for v in s.values()
                  if isinstance(v, torch.Tensor) and v.dim() == 0]
        assert (kind == "adamw") == bool(zero_d)
    _run(state, x, good_steps + 1, nan_at=good_steps)
    assert state.step == good_steps + 1 and state.extra["skipped_nonfinite"] == 1
    _assert_equal(before, _everything(state), "state")


def test_a_skipped_step_then_a_good_one_is_the_run_without_it():
    """After a skipped step AdamW's bias correction goes on from the right count."""
    state, x = _state("adamw")
    _run(state, x, 2)
    _run(state, x, 3, nan_at=2)
    reference, _ = _state("adamw")
    _run(reference, x, 2)
    for s in (state, reference):
        s.step = 3  # both take step 3 next, from the same state
        _run(s, x, 4)
    _assert_equal(_everything(reference), _everything(state), "state")
