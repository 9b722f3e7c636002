"""Every speed switch gives the plain path's results: no-sync loop, EMA, channels_last, bf16.

Tolerances: float32 paths are bit-identical (the no-sync loop, the EMA) or within 1e-5
(channels_last: other convolution kernels, other summation order); bf16 autocast is checked
against float32 on the weights' change after five steps (within 20 % of its norm; measured
at most 13 % here, where gamma = 4-5 weights p ** gamma amplify bf16's 3 significant digits).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dmt.engine.accel import (
    apply_channels_last,
    autocast_dtype,
    cpu_has_native_bf16,
    maybe_compile,
    to_channels_last,
    use_channels_last,
)
from dmt.engine.loop import FitOptions, TrainState, fit, make_ema, make_sgd
from dmt.engine.schedule import learning_rate
from dmt.method.weights import agreement_stats, student_view
from dmt.tasks.classification.steps import DynamicMixupStep
from dmt.tasks.segmentation.steps import SegmentationStep
from dmt.tasks.stats import StatTotals


class ConvBN(nn.Module):
    """A conv net with BatchNorm: classification (``seg=False``) or per-pixel logits."""

    def __init__(self, classes: int = 3, seg: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(8, classes, 1)
        self.seg = seg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(x))
        return out if self.seg else out.mean((2, 3))


def _cls_batches(n: int = 5) -> list[dict]:
    g = torch.Generator().manual_seed(3)
    return [{"pseudo_images": torch.randn(6, 3, 8, 8, generator=g),
             "pseudo_probs": torch.softmax(2 * torch.randn(6, 3, generator=g), 1),
             "labelled_images": torch.randn(2, 3, 8, 8, generator=g), "labels": torch.randint(0, 3, (2,), generator=g)}
            for _ in range(n)]


def _seg_batches(n: int = 4) -> list[dict]:
    g = torch.Generator().manual_seed(4)
    return [{"pseudo_image": torch.randn(2, 3, 12, 12, generator=g), "image": torch.randn(1, 3, 12, 12, generator=g),
             "mask": torch.randint(0, 3, (1, 12, 12), generator=g),
             "pseudo_mask": torch.randint(0, 3, (2, 12, 12), generator=g),
             "pseudo_confidence": torch.rand(2, 12, 12, generator=g)} for _ in range(n)]


def _train(kind: str, *, amp=False, channels_last=False, log_every=2, steps=5):
    model = ConvBN(seg=kind == "seg")
    state = TrainState(model, make_sgd(model, 0.1, 0.9, 5e-4), make_ema(model, 0.9))
    if channels_last:
        apply_channels_last(model)
        apply_channels_last(state.ema.module)
    totals = StatTotals()
    if kind == "seg":
        step_fn, data = SegmentationStep(model, gamma1=5.0, gamma2=5.0, total_steps=steps, totals=totals), _seg_batches(steps)
    else:
        step_fn = DynamicMixupStep(model, gamma1=4.0, gamma2=4.0, ramp=True, total_steps=steps, alpha=0.75, seed=1,
                                   totals=totals)
        data = _cls_batches(steps)
    logged = []
    fit(step_fn, state, data, FitOptions(total_steps=steps, base_lr=0.1, log_every=log_every, amp=amp,
                                         channels_last=channels_last),
        save=lambda s: None, log_scalars=lambda step, v: logged.append((step, v)))
    return state, logged, totals


def _reference_fit(step_fn, state, batches, opts, log_scalars):
    """The loop as it was: finite check and float() of every scalar on every step, torch's EMA."""
    model, optimizer = state.model, state.optimizer
    model.train()
    sums, count = {}, 0
    for batch in batches:
        step = state.step
        lr = learning_rate(opts.base_lr, step, opts.total_steps, opts.schedule, opts.poly_power)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        out = step_fn(batch, step)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.ema.update_parameters(model)
        state.step = step + 1
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
        count += 1
        if count == opts.log_every or state.step == opts.total_steps:
            means = {k: v / count for k, v in sums.items()}
            means["lr"] = lr
            log_scalars(state.step, means)
            sums, count = {}, 0


def _old_agreement_stats(view, target, conf, labelled, w):
    pseudo = ~labelled.view(-1, *([1] * (target.dim() - 1))).expand_as(target) & (target != 255)
    n = int(pseudo.sum())
    disagree = pseudo & (view.prediction != target)
    wins = disagree & (view.confidence > conf.float())
    return {"disagree": float(disagree.sum()) / n, "student_wins": float(wins.sum()) / n,
            "mean_weight": float(w.float()[pseudo].mean()), "pseudo_targets": n}


@pytest.mark.parametrize("kind", ["cls", "seg"])
def test_no_sync_loop_equals_the_per_step_loop(kind):
    state, logged, _ = _train(kind)
    # the same training with the old loop and torch's own AveragedModel EMA
    model = ConvBN(seg=kind == "seg")
    ref = TrainState(model, make_sgd(model, 0.1, 0.9, 5e-4),
                     AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True))
    if kind == "seg":
        step_fn, data = SegmentationStep(model, gamma1=5.0, gamma2=5.0, total_steps=5, totals=StatTotals()), _seg_batches(5)
    else:
        step_fn = DynamicMixupStep(model, gamma1=4.0, gamma2=4.0, ramp=True, total_steps=5, alpha=0.75, seed=1,
                                   totals=StatTotals())
        data = _cls_batches(5)
    ref_logged = []
    _reference_fit(step_fn, ref, data, FitOptions(total_steps=5, base_lr=0.1, log_every=2),
                   lambda step, v: ref_logged.append((step, v)))
    for (k, v), (k2, v2) in zip(state.model.state_dict().items(), ref.model.state_dict().items()):
        assert torch.equal(v, v2), k
    for (k, v), (k2, v2) in zip(state.ema.state_dict().items(), ref.ema.state_dict().items()):
        assert torch.equal(v, v2), k
    assert [s for s, _ in logged] == [s for s, _ in ref_logged] == [2, 4, 5]
    for (_, a), (_, b) in zip(logged, ref_logged):
        assert a.keys() == b.keys()
        for key in a:  # the loss and the loop's own scalars are bit-identical; the step's shares
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-12), key  # moved to float64


def test_agreement_stats_on_the_device_match_the_host_formulas():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(4, 5, 6, 6, generator=g), torch.randint(0, 5, (4, 6, 6), generator=g)
    target[0, :2] = 255
    conf, w = torch.rand(4, 6, 6, generator=g), torch.rand(4, 6, 6, generator=g)
    labelled = torch.tensor([False, False, True, False])
    view = student_view(logits, target)
    new = agreement_stats(view, target, conf, labelled, w)
    old = _old_agreement_stats(view, target, conf, labelled, w)
    assert all(isinstance(v, torch.Tensor) for v in new.values())
    assert int(new["pseudo_targets"]) == old["pseudo_targets"]
    for k in ("disagree", "student_wins"):
        assert float(new[k]) == old[k]
    assert float(new["mean_weight"]) == pytest.approx(old["mean_weight"], rel=1e-6)
    none = agreement_stats(view, target, conf, torch.ones(4, dtype=torch.bool), w)
    assert [float(v) for v in none.values()] == [0.0, 0.0, 0.0, 0.0]


def test_stat_totals_accumulate_tensors_and_save_plain_numbers():
    t = StatTotals()
    t.add({"disagree": torch.tensor(0.25, dtype=torch.float64)}, torch.tensor(4))
    t.add({"disagree": 0.5}, 2)
    state = t.state_dict()
    assert state == {"sums": {"disagree": 2.0}, "count": 6}
    assert all(isinstance(v, float) for v in state["sums"].values()) and isinstance(state["count"], int)
    assert StatTotals(state).means() == {"disagree": pytest.approx(1 / 3)}
    # the live sums stay tensors on their device (a step never waits to read them)
    t.add({"disagree": torch.tensor(1.0, dtype=torch.float64)}, torch.tensor(2))
    assert isinstance(t.sums["disagree"], torch.Tensor) and isinstance(t.count, torch.Tensor)
    assert t.state_dict() == {"sums": {"disagree": 4.0}, "count": 8}


def test_nonfinite_loss_is_caught_at_log_time_and_before_a_checkpoint():
    model = nn.Linear(2, 2)
    state = TrainState(model, make_sgd(model, 0.1, 0.9, 0.0))
    x = torch.randn(4, 2)

    def step_fn(batch, step):
        loss = model(x).sum() * (math.nan if step == 2 else 1.0)
        return {"loss": loss}
    saves = []
    with pytest.raises(FloatingPointError, match=r"t: non-finite loss between steps 2 and 3"):
        fit(step_fn, state, [None] * 8, FitOptions(total_steps=8, base_lr=0.1, log_every=4, steps_per_epoch=2,
                                                     checkpoint_min_seconds=0, description="t"),
            save=lambda s: saves.append(s.step))
    assert saves == [2]  # the checkpoint after step 3 (trained on NaN) was never written


class ConvBNCounter(ConvBN):
    """ConvBN with an integer buffer that is not 0-d (the EMA's tensor-by-tensor integer path)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("counts", torch.tensor([5, 70, 900]))


@pytest.mark.parametrize("net", [ConvBN, ConvBNCounter])
def test_ema_without_host_reads_equals_torch_averaged_model_across_a_reload(net):
    torch.manual_seed(0)
    model = net()
    ours, ref = make_ema(model, 0.9), AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for i in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * (i + 1))
            for _ in range(i * 7):  # two BN counters (one stacked update) that move by 0, 7, 14, ...
                model.train()(torch.randn(2, 3, 8, 8))  # moves BN buffers, num_batches_tracked included
            if isinstance(model, ConvBNCounter):
                model.counts.mul_(3)
        ours.update_parameters(model)
        ref.update_parameters(model)
        if i == 2:  # a resume: a fresh EMA loaded from the state dict
            reloaded = make_ema(net(), 0.9)
            reloaded.load_state_dict(ours.state_dict())
            ours = reloaded
    for (k, v), (_, v2) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(v, v2), k


@pytest.mark.parametrize("kind", ["cls", "seg"])
def test_channels_last_equals_contiguous_in_float32(kind):
    plain, logged, totals = _train(kind)
    nhwc, logged_cl, totals_cl = _train(kind, channels_last=True)
    assert nhwc.model.head.weight.is_contiguous(memory_format=torch.channels_last)
    for (k, v), (_, v2) in zip(plain.model.state_dict().items(), nhwc.model.state_dict().items()):
        assert torch.allclose(v.float(), v2.float(), atol=1e-5, rtol=1e-5), k
    assert logged[-1][1]["loss"] == pytest.approx(logged_cl[-1][1]["loss"], rel=1e-5)
    assert totals.means() == pytest.approx(totals_cl.means(), rel=1e-5, abs=1e-6)


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16: amp stays float32")
@pytest.mark.parametrize("kind", ["cls", "seg"])
def test_bf16_autocast_stays_close_to_float32(kind):
    start = {k: v.clone() for k, v in ConvBN(seg=kind == "seg").state_dict().items()}
    fp32, _, _ = _train(kind)
    bf16, _, _ = _train(kind, amp=True, channels_last=True)
    for k, v in fp32.model.named_parameters():
        if k in ("body.0.bias", "body.3.bias"):  # conv biases feeding BatchNorm: true gradient 0, noise only
            continue
        change = (v - start[k]).norm()
        assert (bf16.model.get_parameter(k) - v).norm() <= 0.2 * change + 1e-6, k


def test_switch_resolution_and_helpers():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, False) is None
    assert use_channels_last(cpu, "auto") and not use_channels_last(cpu, False) and use_channels_last(cpu, True)
    batch = {"image": torch.randn(2, 3, 4, 4), "mask": torch.zeros(2, 4, 4, dtype=torch.long), "n": [torch.ones(3)]}
    out = to_channels_last(batch)
    assert out["image"].is_contiguous(memory_format=torch.channels_last) and torch.equal(out["image"], batch["image"])
    assert out["mask"] is batch["mask"] and out["n"][0] is batch["n"][0]
    m = nn.Conv2d(3, 3, 1)
    assert maybe_compile(m, False) is m


def test_accelerate_wires_layout_and_compile_into_a_stage():
    from dmt.config.schema import TrainRuntimeConfig
    from dmt.tasks.training import accelerate

    model = ConvBN()
    state = TrainState(model, make_sgd(model, 0.1, 0.9, 0.0), make_ema(model, 0.9))
    step = SegmentationStep(model)
    assert accelerate(state, step, TrainRuntimeConfig(channels_last="auto", compile=False), torch.device("cpu"))
    assert model.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert state.ema.module.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert step.model is model
    assert not accelerate(state, step, TrainRuntimeConfig(channels_last=False), torch.device("cpu"))


@pytest.mark.parametrize("setting, kwargs", [(True, {}), ("reduce-overhead", {"mode": "reduce-overhead"}),
                                             ("max-autotune", {"mode": "max-autotune"})])
def test_train_compile_reaches_torch_compile_with_its_mode(setting, kwargs, monkeypatch):
    """``train.compile`` true or a mode name: the step's forward module is compiled in that mode
    (torch.compile is replaced by a recorder: compiling takes minutes on this CPU)."""
    from dmt.config.loader import load_config
    from dmt.tasks.training import accelerate

    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append((module, kw)) or ("compiled", module))
    runtime = load_config(None, [f"train.compile={str(setting).lower()}", "train.channels_last=false"]).train
    assert runtime.compile == setting
    model = ConvBN()
    state = TrainState(model, make_sgd(model, 0.1, 0.9, 0.0), make_ema(model, 0.9))
    step = SegmentationStep(model)
    accelerate(state, step, runtime, torch.device("cpu"))
    assert calls == [(model, kwargs)] and step.model == ("compiled", model)
    assert state.model is model  # checkpoints keep saving the uncompiled module


def test_train_compile_refuses_an_unknown_mode():
    from dmt.config.loader import load_config
    from dmt.errors import UserError

    with pytest.raises(UserError, match=r"config key 'train.compile': expected bool or 'default' \| 'reduce-overhead'"):
        load_config(None, ["train.compile=fast"])


def test_ema_follows_the_model_it_is_given_each_time():
    """The EMA collects its tensor lists once per model: given another model object, it averages
    that one (as torch's AveragedModel does), not the tensors of the first."""
    import copy

    first = ConvBN()
    ours, ref = make_ema(first, 0.5), AveragedModel(first, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    second = copy.deepcopy(first)
    with torch.no_grad():
        for p in second.parameters():
            p.add_(1.0)
    for model in (first, first, second, second):
        ours.update_parameters(model)
        ref.update_parameters(model)
    for (k, v), (_, v2) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(v, v2), k
    assert not torch.equal(ours.module.head.weight, first.head.weight)


def test_ema_update_issues_a_fixed_number_of_operators_whatever_the_depth():
    """Host work per step (what bounds a GPU step): the EMA update's operator calls do not grow
    with the number of layers (the old update issued four per BatchNorm counter plus a detach per
    tensor: about 1,050 for ResNet-101)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for depth in (2, 12):
        model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))])
        ema = make_ema(model, 0.9)
        ema.update_parameters(model)  # the first update copies
        Count.calls = 0
        with Count():
            ema.update_parameters(model)
        counts.append(Count.calls)
    assert counts[0] == counts[1] <= 12, counts
