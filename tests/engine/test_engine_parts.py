"""Batches, BN helper, schedules and the fit loop."""

import math

import pytest
import torch
from torch.utils.data import Dataset

from dmt.engine.batches import StepBatchSampler, mix_seed, step_loader, steps_per_epoch
from dmt.engine.bn import batch_stats_without_update
from dmt.engine.loop import FitOptions, TrainState, amp_settings, fit, make_ema, make_sgd
from dmt.engine.schedule import learning_rate


class RandomItems(Dataset):
    """Item i = (i, a draw from torch's global RNG): shows which seed produced it."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.tensor(i), torch.rand(())


def _collect(loader):
    return [(ids.tolist(), noise.tolist()) for ids, noise in loader]


def test_stream_is_a_function_of_the_step():
    full = _collect(step_loader(RandomItems(), 4, seed=3, start=0, stop=9))
    resumed = _collect(step_loader(RandomItems(), 4, seed=3, start=5, stop=9))
    assert resumed == full[5:]
    # each epoch is a permutation: steps 0..2 cover all 10 items once
    assert sorted(sum((ids for ids, _ in full[:3]), [])) == list(range(10))
    assert full[:3] != full[3:6]  # a new order each epoch
    other = _collect(step_loader(RandomItems(), 4, seed=4, start=0, stop=9))
    assert other != full


def test_seeded_items_leave_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _collect(step_loader(RandomItems(), 4, seed=1, start=0, stop=3))
    assert torch.equal(torch.rand(3), expected)


def test_sampler_lengths_and_drop_last():
    s = StepBatchSampler(10, 4, seed=0, start=0, stop=6, drop_last=True)
    assert s.per_epoch == 2 and all(len(b) == 4 for b in s)
    assert steps_per_epoch(10, 4) == 3 and steps_per_epoch(3, 512) == 1
    with pytest.raises(ValueError):
        steps_per_epoch(0, 4)
    assert mix_seed(1, 2) != mix_seed(2, 1) and 0 <= mix_seed(5) < 2**63


def test_batch_stats_without_update():
    bn = torch.nn.BatchNorm2d(3).train()
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    x = torch.randn(4, 3, 2, 2) * 5 + 2
    with batch_stats_without_update(bn):
        y = bn(x)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k
    # it normalised with the batch statistics, exactly as a train-mode pass does
    ref = torch.nn.BatchNorm2d(3).train()
    assert torch.allclose(y, ref(x), atol=1e-6)
    assert bn.track_running_stats  # restored
    bn(x)
    assert not torch.equal(bn.running_mean, before["running_mean"])


def test_schedules():
    assert learning_rate(0.2, 0, 100, "cosine") == pytest.approx(0.2)
    assert learning_rate(0.2, 50, 100, "cosine") == pytest.approx(0.1)
    assert learning_rate(0.2, 100, 100, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(0.01, 50, 100, "poly", 0.9) == pytest.approx(0.01 * 0.5**0.9)
    assert learning_rate(0.3, 70, 100, "constant") == 0.3
    with pytest.raises(ValueError):
        learning_rate(0.1, 0, 10, "step")


def _toy():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    state = TrainState(model, make_sgd(model, 0.5, 0.9, 0.0), make_ema(model, 0.9))
    data = [(torch.randn(8, 2), torch.randint(0, 2, (8,))) for _ in range(6)]

    def step_fn(batch, step):
        x, y = batch
        return {"loss": torch.nn.functional.cross_entropy(model(x), y), "const": 1.0}

    return state, data, step_fn


def test_fit_resume_equals_uninterrupted():
    state, data, step_fn = _toy()
    opts = FitOptions(total_steps=6, base_lr=0.5, schedule="cosine", steps_per_epoch=2, checkpoint_min_seconds=0)
    saves, logged = [], []
    fit(step_fn, state, iter(data), opts, save=lambda s: saves.append(s.step),
        log_scalars=lambda step, v: logged.append((step, v)))
    assert saves == [2, 4, 6] and state.step == 6
    assert logged[-1][1]["const"] == 1.0 and logged[-1][1]["lr"] == pytest.approx(learning_rate(0.5, 5, 6, "cosine"))
    final = {k: v.clone() for k, v in state.model.state_dict().items()}
    ema_final = {k: v.clone() for k, v in state.ema.state_dict().items()}

    s2, data2, step_fn2 = _toy()
    snapshot = {}
    fit(step_fn2, s2, iter(data2[:3]), FitOptions(total_steps=6, base_lr=0.5, steps_per_epoch=2,
                                                 checkpoint_min_seconds=0), save=lambda s: None)
    # "kill" after 3 steps: save, rebuild everything, load, continue with the remaining batches
    snapshot = s2.state_dict()
    s3, _, step_fn3 = _toy()
    s3.load_state_dict(snapshot)
    fit(step_fn3, s3, iter(data2[3:]), opts, save=lambda s: None)
    for k, v in final.items():
        assert torch.allclose(s3.model.state_dict()[k], v, atol=1e-7), k
    for k, v in ema_final.items():
        assert torch.allclose(s3.ema.state_dict()[k].float(), v.float(), atol=1e-7), k


def test_fit_stops_on_nan():
    state, data, _ = _toy()
    with pytest.raises(FloatingPointError, match="train: non-finite loss between steps 0 and 1"):
        fit(lambda b, s: {"loss": torch.tensor(math.nan, requires_grad=True)}, state, iter(data),
            FitOptions(total_steps=2, base_lr=0.1), save=lambda s: None)


def test_amp_settings_per_device():
    from dmt.engine.accel import cpu_has_native_bf16

    assert amp_settings(torch.device("cpu"), False) == (False, torch.float32)
    cpu = (True, torch.bfloat16) if cpu_has_native_bf16() else (False, torch.float32)
    assert amp_settings(torch.device("cpu"), True) == cpu and amp_settings(torch.device("cpu"), "auto") == cpu
