"""The benchmark registry and the model items: DMT training steps, inference, operator counts.

Each item builds its variants (plain first) and measures them in one run. "plain" is our own
code in its reference configuration: float32, contiguous layout, no compilation, a host
synchronisation per step (finite-loss check and per-step ``float()`` of every scalar). The other
variants switch one optimisation on at a time, then all defaults together ("dmt"). The items of a
run's data side (labelling, data pipeline, thresholds, ``--smoke``) are in :mod:`dmt.bench.data_items`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dmt.bench.harness import Variant, measure_in_processes
from dmt.engine.accel import apply_channels_last, autocast_dtype, to_channels_last
from dmt.engine.loop import FitOptions, TrainState, fit, make_ema, make_sgd
from dmt.models import create_model

ItemFn = Callable[[bool, torch.device], dict[str, Any]]
ITEMS: dict[str, ItemFn] = {}


def item(name: str) -> Callable[[ItemFn], ItemFn]:
    def wrap(fn: ItemFn) -> ItemFn:
        ITEMS[name] = fn
        return fn
    return wrap


@contextlib.contextmanager
def quiet() -> Any:
    """Silence the engine's progress lines while an item runs."""
    logger = logging.getLogger("dmt")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---- training steps through the real engine ----------------------------------------------------
def _synced(step_fn: Callable) -> Callable:
    """The plain loop's behaviour: check the loss and read every scalar on every step."""
    def run(batch: Any, step: int) -> dict[str, Any]:
        out = step_fn(batch, step)
        if not torch.isfinite(out["loss"]):
            raise FloatingPointError("non-finite loss")
        for v in out.values():
            float(v.detach() if isinstance(v, torch.Tensor) else v)
        return out
    return run


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return make_sgd(model, 0.01, 0.9, 5e-4)


def _training(make_model: Callable[[], nn.Module], make_step: Callable[[nn.Module], Callable],
              device: torch.device, *, channels_last: bool, sync: bool,
              make_opt: Callable[[nn.Module], torch.optim.Optimizer] = _sgd,
              ema: bool = True) -> tuple[TrainState, Callable]:
    """A fresh model's training state (SGD + EMA, as in a phase, unless told) and its step function."""
    model = make_model().to(device)
    state = TrainState(model, make_opt(model), make_ema(model, 0.999) if ema else None)
    if channels_last:
        apply_channels_last(model)
        if state.ema is not None:
            apply_channels_last(state.ema.module)
    step_fn = make_step(model)
    return state, _synced(step_fn) if sync else step_fn


def _fit_options(name: str, steps: int, device: torch.device, *, amp: bool | str, channels_last: bool) -> FitOptions:
    """``fit`` options for ``steps`` steps with no checkpoint and one log at the end."""
    return FitOptions(total_steps=steps, base_lr=0.01, steps_per_epoch=10**9, checkpoint_seconds=1e12,
                      log_every=steps, device=device, amp=amp, channels_last=channels_last, description=name)


def fit_variant(name: str, make_model: Callable[[], nn.Module], make_step: Callable[[nn.Module], Callable],
                 batch: Any, device: torch.device, *, amp: bool, channels_last: bool, sync: bool,
                 steps: int = 1, plain: bool = False, **training: Any) -> Variant:
    """A variant that runs ``steps`` training steps of ``fit`` (SGD + EMA, as in a phase, unless
    ``training`` says otherwise: see :func:`_training`)."""
    built: dict[str, Any] = {}

    def prepare() -> None:
        state, step_fn = _training(make_model, make_step, device, channels_last=channels_last, sync=sync,
                                   **training)
        built.update(state=state, step_fn=step_fn)
    opts = _fit_options(name, steps, device, amp=amp, channels_last=channels_last)

    def run() -> None:
        built["state"].step = 0
        fit(built["step_fn"], built["state"], [batch] * steps, opts, save=lambda s: None)
    return Variant(name, run, plain=plain, prepare=prepare)


def _step_variants(quick: bool, device: torch.device, make_model, make_step, batch) -> list[Variant]:
    v = [fit_variant("plain", make_model, make_step, batch, device, amp=False, channels_last=False, sync=True,
                      plain=True)]
    if not quick:
        v.append(fit_variant("no host sync", make_model, make_step, batch, device, amp=False,
                              channels_last=False, sync=False))
        v.append(fit_variant("channels_last", make_model, make_step, batch, device, amp=False,
                              channels_last=True, sync=False))
        if autocast_dtype(device, "auto") is not None:
            v.append(fit_variant("amp", make_model, make_step, batch, device, amp=True, channels_last=False,
                                  sync=False))
    v.append(fit_variant("dmt (defaults)", make_model, make_step, batch, device, amp="auto", channels_last=True,
                          sync=False))
    return v


def _cls_case() -> tuple[Callable[[], nn.Module], Callable[[nn.Module], Callable], dict[str, torch.Tensor]]:
    """(model factory, step factory, batch) of the WRN-28-2 DMT step."""
    from dmt.tasks.classification.steps import DynamicMixupStep
    from dmt.tasks.stats import StatTotals

    g = torch.Generator().manual_seed(0)
    batch = {"pseudo_images": torch.randn(56, 3, 32, 32, generator=g),
             "pseudo_probs": torch.rand(56, 10, generator=g).softmax(1),
             "labelled_images": torch.randn(8, 3, 32, 32, generator=g),
             "labels": torch.randint(0, 10, (8,), generator=g)}

    def make_model() -> nn.Module:
        torch.manual_seed(0)
        return create_model("wrn_28_2", num_classes=10)

    def make_step(model: nn.Module) -> Callable:
        return DynamicMixupStep(model, gamma1=4.0, gamma2=4.0, ramp=True, total_steps=100, alpha=0.75, seed=0,
                                totals=StatTotals())
    return make_model, make_step, batch


def cls_dmt_step_variants(quick: bool, device: torch.device) -> list[Variant]:
    return _step_variants(quick, device, *_cls_case())


@item("cls_dmt_step")
def cls_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """WRN-28-2 DMT step: batch 64 (56 pseudo + 8 labelled), weight pass on un-mixed images + mixup."""
    return {"what": "WRN-28-2 DMT step, batch 64 (56 pseudo + 8 labelled), mixup + weight pass",
            "rows": _isolated("cls_dmt_step", cls_dmt_step_variants(quick, device), 2 if quick else 6, str(device),
                              quick)}


def _seg_batch(side: int, classes: int = 21) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"pseudo_image": torch.randn(1, 3, side, side, generator=g), "image": torch.randn(1, 3, side, side, generator=g),
            "mask": torch.randint(0, classes, (1, side, side), generator=g),
            "pseudo_mask": torch.randint(0, classes, (1, side, side), generator=g),
            "pseudo_confidence": torch.rand(1, side, side, generator=g)}


def _deeplab() -> nn.Module:
    torch.manual_seed(0)
    return create_model("deeplabv2_resnet101", num_classes=21, init="none")


def _seg_step(model: nn.Module) -> Callable:
    from dmt.tasks.segmentation.steps import SegmentationStep
    from dmt.tasks.stats import StatTotals

    return SegmentationStep(model, weighting="dynamic", gamma1=5.0, gamma2=5.0, ramp=False, total_steps=100,
                            totals=StatTotals())


def seg_dmt_step_variants(quick: bool, device: torch.device) -> list[Variant]:
    return _step_variants(quick, device, _deeplab, _seg_step, _seg_batch(161 if quick else 321))


@item("seg_dmt_step")
def seg_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """DeepLab-v2/ResNet-101 DMT step, 1 pseudo + 1 labelled crop (321x321; --quick: 161x161)."""
    side = 161 if quick else 321
    return {"what": f"DeepLab-v2/ResNet-101 DMT step, 2 x {side}x{side}",
            "rows": _isolated("seg_dmt_step", seg_dmt_step_variants(quick, device), 1 if quick else 4, str(device),
                              quick)}


def dinov2_model(checkpointing: bool, name: str = "dinov2_vitb14_dpt",
                 classes: int = 21) -> Callable[[], nn.Module]:
    """A factory of the DINOv2 DPT model (random weights), with or without activation checkpointing."""
    def make() -> nn.Module:
        torch.manual_seed(0)
        model = create_model(name, num_classes=classes)
        model.set_grad_checkpointing(checkpointing)
        return model
    return make


def dinov2_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The DINOv2 presets' optimizer: AdamW, encoder lr 5e-6, head 40x, weight decay 0.01."""
    from dmt.engine.optim import make_optimizer

    return make_optimizer(model, "adamw", 5e-6, weight_decay=0.01, lr_mult={"head": 40.0})


def dinov2_dmt_step_variants(quick: bool, device: torch.device, name: str = "dinov2_vitb14_dpt") -> list[Variant]:
    """plain (float32, a host sync per step), activation checkpointing, the defaults, and both."""
    side = 112 if quick else 224
    batch = _seg_batch(side)
    kw = {"make_opt": dinov2_optimizer, "ema": False}  # the presets' phases: AdamW, no EMA
    v = [fit_variant("plain", dinov2_model(False, name), _seg_step, batch, device, amp=False, channels_last=False,
                      sync=True, plain=True, **kw)]
    if not quick:
        v.append(fit_variant("grad checkpointing", dinov2_model(True, name), _seg_step, batch, device, amp=False,
                              channels_last=False, sync=False, **kw))
    v.append(fit_variant("dmt (defaults)", dinov2_model(False, name), _seg_step, batch, device, amp="auto",
                          channels_last=True, sync=False, **kw))
    v.append(fit_variant("dmt (defaults) + grad checkpointing", dinov2_model(True, name), _seg_step, batch, device,
                          amp="auto", channels_last=True, sync=False, **kw))
    return v


@item("dinov2_dmt_step")
def dinov2_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """DINOv2 ViT-B/14 + DPT DMT step, 1 pseudo + 1 labelled crop (224x224; --quick: 112x112), AdamW groups."""
    side = 112 if quick else 224
    return {"what": f"DINOv2 ViT-B/14 + DPT DMT step, 2 x {side}x{side}, AdamW (encoder / head x40)",
            "rows": _isolated("dinov2_dmt_step", dinov2_dmt_step_variants(quick, device), 1 if quick else 4,
                              str(device), quick)}


def seg_inference_variants(quick: bool, device: torch.device) -> list[Variant]:
    from dmt.tasks.segmentation.inference import upsampled_logits

    side = 321 if quick else 505
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device)

    def variant(name: str, amp: Any, cl: bool, plain: bool = False) -> Variant:
        built: dict[str, Any] = {}
        dtype = autocast_dtype(device, amp)

        def prepare() -> None:
            model = _deeplab().to(device).eval()
            if cl:
                apply_channels_last(model)
            built.update(model=model, x=to_channels_last(x) if cl else x)

        @torch.no_grad()
        def run() -> None:
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                upsampled_logits(built["model"], built["x"]).float().softmax(1)
        return Variant(name, run, plain=plain, prepare=prepare)
    return [variant("plain", False, False, True), variant("dmt (defaults)", "auto", True)]


@item("seg_inference")
def seg_inference(quick: bool, device: torch.device) -> dict[str, Any]:
    """DeepLab-v2/ResNet-101 inference on one 505x505 image (--quick: 321x321), logits upsampled."""
    return {"what": f"DeepLab-v2/ResNet-101 inference, 1 x {321 if quick else 505}x{321 if quick else 505}",
            "rows": _isolated("seg_inference", seg_inference_variants(quick, device), 2 if quick else 4, str(device),
                              quick)}


# ---- labelling ---------------------------------------------------------------------------------
def _isolated(item_name: str, variants: list[Variant], repeats: int, arg: str, quick: bool) -> list[dict]:
    """The item's variants timed each in processes of its own (see :func:`measure_in_processes`)."""
    plain = next((v.name for v in variants if v.plain), None)
    return measure_in_processes(f"dmt.bench.items:{item_name}_variants", [v.name for v in variants], plain, repeats,
                                arg, quick, rounds=1 if quick else 2)


@item("step_ops")
def step_ops(quick: bool, device: torch.device) -> dict[str, Any]:
    """Operator calls per DMT step by part (host work, what bounds a GPU step): plain vs defaults.

    Counted on the CPU (the same Python code issues the same calls on a GPU) at small inputs:
    counts do not depend on image size. See :mod:`dmt.bench.host_ops`.
    """
    from dmt.bench.host_ops import step_op_counts

    rows = []
    for label, (make_model, make_step, batch) in (("WRN-28-2", _cls_case()),
                                                  ("DeepLab-v2", (_deeplab, _seg_step, _seg_batch(33)))):
        for variant, amp, channels_last, sync in (("plain", False, False, True), ("dmt (defaults)", "auto", True, False)):
            cpu = torch.device("cpu")
            state, step_fn = _training(make_model, make_step, cpu, channels_last=channels_last, sync=sync)
            counts = step_op_counts(state, step_fn, batch, _fit_options(variant, 3, cpu, amp=amp,
                                                                        channels_last=channels_last))
            rows.append({"variant": f"{label} {variant}", **{f"ops_{k}": v for k, v in counts.items()}})
    return {"what": "operator calls per DMT step by part (the optimizer as on CUDA: foreach SGD)", "rows": rows}
