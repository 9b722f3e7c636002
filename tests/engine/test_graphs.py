"""The graph-ready step (static buffers, learning rate as a device tensor) computes today's step.

Run eagerly on the CPU it must give the parameters, EMA and optimizer state of ``fit``'s plain
step after several steps, to the bit; the captured CUDA path is tested where a GPU exists.
"""

from __future__ import annotations

import pytest
import torch

from dmt.engine.graphs import StaticStep, set_learning_rate, sgd_step_with_tensor_lr, tensor_learning_rates
from dmt.engine.loop import FitOptions, TrainState, fit, make_ema, make_sgd
from dmt.engine.optim import make_optimizer
from dmt.models import create_model
from dmt.tasks.segmentation.steps import SegmentationStep
from dmt.tasks.stats import StatTotals


def _batches(n: int, side: int = 17, classes: int = 4) -> list[dict[str, torch.Tensor]]:
    out = []
    for k in range(n):
        g = torch.Generator().manual_seed(k)
        out.append({"pseudo_image": torch.rand(2, 3, side, side, generator=g),
                    "image": torch.rand(2, 3, side, side, generator=g),
                    "mask": torch.randint(0, classes, (2, side, side), generator=g),
                    "pseudo_mask": torch.randint(0, classes, (2, side, side), generator=g),
                    "pseudo_confidence": torch.rand(2, side, side, generator=g)})
    return out


def _state() -> tuple[TrainState, SegmentationStep]:
    torch.manual_seed(0)
    model = create_model("deeplabv2_tiny", 4)
    state = TrainState(model, make_sgd(model, 0.01, 0.9, 5e-4), make_ema(model, 0.99))
    step = SegmentationStep(model, weighting="dynamic", gamma1=5.0, gamma2=5.0, total_steps=6, totals=StatTotals())
    return state, step


def test_the_static_step_run_eagerly_is_todays_step():
    batches = _batches(6)
    plain, plain_step = _state()
    fit(plain_step, plain, batches, FitOptions(total_steps=6, base_lr=0.01, schedule="poly"), save=lambda s: None)

    static, static_step = _state()
    runner = StaticStep(static_step, static.model, static.optimizer, static.ema, torch.device("cpu"),
                        lambda: torch.autocast("cpu", enabled=False), capture=True)  # capture: CUDA only
    from dmt.engine.schedule import learning_rate

    static.model.train()
    for k, batch in enumerate(batches):
        runner(batch, k, learning_rate(0.01, k, 6, "poly"))
    for a, b in zip(plain.model.state_dict().values(), static.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(plain.ema.state_dict().values(), static.ema.state_dict().values()):
        assert torch.equal(a, b)
    momenta = [s["momentum_buffer"] for s in plain.optimizer.state.values()]
    assert all(torch.equal(a, s["momentum_buffer"]) for a, s in zip(momenta, static.optimizer.state.values()))
    assert isinstance(static.optimizer.param_groups[0]["lr"], torch.Tensor)


def test_learning_rate_tensors_follow_the_schedule_and_multipliers():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD([{"params": [model.weight], "lr_mult": 10.0, "lr": 1.0},
                           {"params": [model.bias], "lr_mult": 1.0, "lr": 0.1}], lr=0.1, momentum=0.9)
    tensor_learning_rates(opt, torch.device("cpu"))
    set_learning_rate(opt, 0.05)
    assert [float(g["lr"]) for g in opt.param_groups] == [pytest.approx(0.5), pytest.approx(0.05)]
    assert all(isinstance(g["lr"], torch.Tensor) and g["lr"].dim() == 0 for g in opt.param_groups)


def test_a_batch_of_another_shape_is_refused():
    state, step = _state()
    runner = StaticStep(step, state.model, state.optimizer, state.ema, torch.device("cpu"),
                        lambda: torch.autocast("cpu", enabled=False), capture=False)
    runner(_batches(1)[0], 0, 0.01)
    with pytest.raises(ValueError, match="a captured step replays fixed sizes"):
        runner(_batches(1, side=19)[0], 1, 0.01)


@pytest.fixture
def deterministic_cuda():
    """cuDNN and torch in their deterministic modes, so that two eager runs agree and a difference
    between the captured and the eager step is the capture's own (on an H200, 2026-12-04, without
    these the captured SGD and AdamW steps differed from the eager ones by up to 0.047 after 8
    steps, and so had an eager fallback by 0.008: nondeterministic kernels are the suspect)."""
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[0], saved[1]
    torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_captured_step_replays_the_eager_step_on_cuda(optimizer, deterministic_cuda):  # pragma: no cover
    batches = [{k: v.cuda() for k, v in b.items()} for b in _batches(8)]
    results = []
    for capture in (False, True):
        state, step = _state()
        if optimizer == "adamw":
            state.optimizer = make_optimizer(state.model, "adamw", 1e-3, weight_decay=0.01)
        state.model.cuda()
        state.ema.cuda()
        runner = StaticStep(step, state.model, state.optimizer, state.ema, torch.device("cuda"),
                            lambda: torch.autocast("cuda", enabled=False), capture=capture)
        state.model.train()
        for k, batch in enumerate(batches):
            runner(batch, k, 0.01 * (1 - k / 10))  # a schedule: the graph reads each step's rate
        torch.cuda.synchronize()
        assert (runner.graph is not None) == capture
        results.append([t.detach().cpu() for t in state.model.state_dict().values()])
    for a, b in zip(*results):
        # the captured SGD update multiplies, then adds (eager: one fused add): rounding apart
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fit_with_cuda_graph_asked_on_the_cpu_is_todays_fit_and_saves_plain_learning_rates():
    runs = []
    for graph in (False, True):
        state, step = _state()
        opts = FitOptions(total_steps=4, base_lr=0.01, schedule="poly", cuda_graph=graph)
        fit(step, state, _batches(4), opts, save=lambda s: None)
        runs.append(state)
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b)
    saved = runs[1].state_dict()["optimizer"]["param_groups"]
    assert all(type(g["lr"]) is float for g in saved)  # checkpoints keep numbers, as without the option
    assert saved == runs[0].state_dict()["optimizer"]["param_groups"]


def test_a_step_with_host_logic_stays_eager_with_one_warning(caplog):
    state, _ = _state()
    ramped = SegmentationStep(state.model, weighting="dynamic", gamma1=5.0, gamma2=5.0, ramp=True, total_steps=6,
                              totals=StatTotals())
    assert not ramped.graph_safe and SegmentationStep(state.model).graph_safe
    runner = StaticStep(ramped, state.model, state.optimizer, state.ema, torch.device("cuda"),
                        lambda: torch.autocast("cpu", enabled=False), capture=True)
    assert runner.capture is False
    assert "runs eagerly" in caplog.text


@pytest.mark.parametrize("momentum, weight_decay, nesterov, dampening, maximize",
                         [(0.9, 5e-4, False, 0.0, False), (0.9, 0.0, True, 0.0, False), (0.5, 1e-2, False, 0.1, True),
                          (0.0, 1e-3, False, 0.0, False)])
def test_the_graph_safe_sgd_update_is_torchs_sgd(momentum, weight_decay, nesterov, dampening, maximize):
    torch.manual_seed(0)
    params = [torch.randn(5, 3), torch.randn(7)]
    ours = [p.clone().requires_grad_() for p in params]
    theirs = [p.clone().requires_grad_() for p in params]
    kw = dict(momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, dampening=dampening, maximize=maximize)
    opt_ours, opt_theirs = torch.optim.SGD(ours, lr=0.1, **kw), torch.optim.SGD(theirs, lr=0.1, **kw)
    tensor_learning_rates(opt_ours, torch.device("cpu"))
    for k in range(5):
        grads = [torch.randn_like(p) for p in params]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        lr = 0.1 * (1 - k / 5)
        set_learning_rate(opt_ours, lr)
        set_learning_rate(opt_theirs, lr)
        if k == 0:
            opt_ours.step()  # the first step creates the momentum buffers (the eager warm-up's job)
        else:
            sgd_step_with_tensor_lr(opt_ours)
        opt_theirs.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    if momentum:
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(opt_ours.state[p]["momentum_buffer"], opt_theirs.state[q]["momentum_buffer"])
