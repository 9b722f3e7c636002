"""The optimizer: named groups get their learning rates and decays, old runs keep their SGD, resumes are exact."""

from __future__ import annotations

import pytest
import torch

from dmt.engine.checkpoint import load_checkpoint, save_checkpoint
from dmt.engine.loop import FitOptions, TrainState, fit, make_ema, make_sgd
from dmt.engine.optim import make_optimizer
from dmt.engine.schedule import learning_rate
from dmt.models import create_model
from dmt.tasks.segmentation.steps import SegmentationStep


def _dpt(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("dinov2_tiny_dpt", num_classes=3)


def _batches(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(2, 3, 30, 30, generator=g), "mask": torch.randint(0, 3, (2, 30, 30), generator=g)}
            for _ in range(n)]


def _adamw(model: torch.nn.Module) -> torch.optim.Optimizer:
    return make_optimizer(model, "adamw", 5e-4, weight_decay=0.01, lr_mult={"head": 40.0},
                          group_weight_decay={"head": 0.0})


def test_named_groups_get_their_learning_rates_and_weight_decays_every_step():
    model = _dpt()
    state = TrainState(model, _adamw(model))
    assert isinstance(state.optimizer, torch.optim.AdamW)
    seen = []
    opts = FitOptions(total_steps=3, base_lr=5e-4, schedule="poly", checkpoint_seconds=1e9, log_every=3)

    def step(batch, i):
        seen.append({g["name"]: (g["lr"], g["weight_decay"]) for g in state.optimizer.param_groups})
        return SegmentationStep(model)(batch, i)

    fit(step, state, _batches(3), opts, save=lambda s: None)
    for i, groups in enumerate(seen):
        lr = learning_rate(5e-4, i, 3, "poly", 0.9)
        assert groups == {"encoder": (pytest.approx(lr), 0.01), "head": (pytest.approx(40 * lr), 0.0)}


def test_a_model_without_groups_keeps_the_sgd_dmt_always_built():
    torch.manual_seed(0)
    model = create_model("tiny_unet", num_classes=3)
    opt = make_sgd(model, 0.1, 0.9, 5e-4)
    (group,) = opt.state_dict()["param_groups"]
    assert isinstance(opt, torch.optim.SGD) and "name" not in group  # old checkpoints' group keys
    assert group["lr_mult"] == 1.0 and group["lr"] == 0.1 and group["weight_decay"] == 5e-4
    with pytest.raises(ValueError, match="no named parameter groups.*not head"):
        make_optimizer(model, "sgd", 0.1, lr_mult={"head": 10})
    with pytest.raises(ValueError, match="groups encoder, head, not decoder"):
        make_optimizer(_dpt(), "adamw", 0.1, group_weight_decay={"decoder": 0.0})


def _run(state: TrainState | None = None, start: int = 0, stop: int = 6) -> TrainState:
    """Steps ``start .. stop - 1`` of a 6-step poly schedule."""
    if state is None:
        model = _dpt()
        state = TrainState(model, _adamw(model), make_ema(model, 0.9))
    opts = FitOptions(total_steps=6, base_lr=5e-4, schedule="poly", checkpoint_seconds=1e9, log_every=1)
    fit(SegmentationStep(state.model), state, _batches(6)[start:stop], opts, save=lambda s: None)
    return state


def test_adamw_groups_survive_a_checkpoint_bit_exactly(tmp_path):
    straight = _run()

    first = _run(stop=3)  # three steps, then a checkpoint on disk, then a fresh process's objects
    save_checkpoint(tmp_path / "state.safetensors", first.state_dict())
    model = _dpt(seed=5)  # other random weights: everything must come from the file
    resumed = TrainState(model, _adamw(model), make_ema(model, 0.9))
    resumed.load_state_dict(load_checkpoint(tmp_path / "state.safetensors"))
    assert [g["lr_mult"] for g in resumed.optimizer.param_groups] == [1.0, 40.0]
    assert resumed.step == 3
    _run(resumed, start=3)

    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    exp = [s["exp_avg_sq"] for s in straight.optimizer.state.values()]
    assert all(torch.equal(a, s["exp_avg_sq"]) for a, s in zip(exp, resumed.optimizer.state.values()))
