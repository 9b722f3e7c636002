"""What a stage trains and checkpoints: :class:`TrainState` (model, optimizer, EMA, loss scaler, step).

The EMA is torch's :class:`~torch.optim.swa_utils.AveragedModel` with the EMA rule, updated with
few operator calls and no device read (:class:`EMA`). :mod:`dmt.engine.loop` trains a
``TrainState`` and :mod:`dmt.engine.checkpoint` stores its ``state_dict()``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dmt.engine.optim import make_optimizer


class EMA(AveragedModel):
    """:class:`AveragedModel` with the EMA rule, updated without reading the device.

    torch's ``update_parameters`` tests ``n_averaged == 0`` and copies ``n_averaged`` to the
    device on every call: two host synchronisations per step on CUDA. This keeps the same
    arithmetic (copy on the first update, then ``lerp`` towards the model for floating tensors,
    ``p * decay + q * (1 - decay)`` for integer buffers) and the same state dict.

    It also issues few operator calls, which matters where the host is the bottleneck (a
    DeepLab-v2 step issues about 1,800; ``dmt bench --only step_ops``): the tensor lists are
    collected once, the floating tensors
    move in one ``_foreach_lerp_``, and ResNet-101's 104 BatchNorm ``num_batches_tracked``
    counters in one stacked computation and one ``_foreach_copy_`` instead of four kernels each.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = decay
        self._started: bool | None = None  # known after the first update or a load
        # (weak reference to the model, EMA floats, model floats, EMA integers, model integers,
        # whether the integers stack); a weak reference, not id(): a new model could reuse an id
        self._pairs: tuple[weakref.ref, list, list, list, list, bool] | None = None

    def _tensors(self, model: nn.Module) -> tuple[list, list, list, list, bool]:
        """(EMA floats, model floats, EMA integers, model integers, integers all 0-d of one dtype
        and device), collected once per model."""
        if self._pairs is None or self._pairs[0]() is not model:
            ema = list(self.module.parameters()) + list(self.module.buffers())
            cur = list(model.parameters()) + list(model.buffers())
            if len(ema) != len(cur):
                raise ValueError(f"EMA holds {len(ema)} tensors, the model {len(cur)}")
            pairs = list(zip(ema, cur))
            ints = [t for e, c in pairs if not e.is_floating_point() for t in (e, c)]
            stack = all(t.dim() == 0 for t in ints) and len({(t.dtype, t.device) for t in ints}) <= 1
            self._pairs = (weakref.ref(model), [e for e, _ in pairs if e.is_floating_point()],
                           [c for e, c in pairs if e.is_floating_point()],
                           [e for e, _ in pairs if not e.is_floating_point()],
                           [c for e, c in pairs if not e.is_floating_point()], stack)
        return self._pairs[1:]

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if self._started is None:
            self._started = bool(self.n_averaged.item() > 0)  # once per stage (n_averaged may be restored)
        ema_f, cur_f, ema_i, cur_i, stack = self._tensors(model)
        if not self._started:
            torch._foreach_copy_(ema_f + ema_i, cur_f + cur_i)
        else:
            if ema_f:
                torch._foreach_lerp_(ema_f, cur_f, 1 - self.decay)
            if ema_i:
                # integer buffers (BatchNorm counters, all 0-d) as torch's rule does it, tensor by
                # tensor: (e * decay + c * (1 - decay)) in the default float dtype, truncated back
                if stack:
                    new = torch.stack(ema_i) * self.decay + torch.stack(cur_i) * (1 - self.decay)
                    torch._foreach_copy_(ema_i, list(new.to(ema_i[0].dtype).unbind()))
                else:
                    for e, c in zip(ema_i, cur_i):
                        e.copy_(e * self.decay + c * (1 - self.decay))
        self._started = True
        self.n_averaged += 1

    @property
    def started(self) -> bool:
        """Whether an update has been made that the EMA knows of (``False`` also when not yet known)."""
        return bool(self._started)

    def forget_started(self) -> None:
        """Re-read ``n_averaged`` at the next update: it was set from outside (a load, an undone step)."""
        self._started = None

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self.forget_started()
        return super().load_state_dict(*args, **kwargs)


def make_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """EMA of weights *and* buffers (BN statistics), or ``None`` when ``decay`` is 0."""
    if decay <= 0:
        return None
    return EMA(model, decay)


def make_sgd(model: nn.Module, lr: float, momentum: float, weight_decay: float,
             nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD over the model's parameters (:func:`dmt.engine.optim.make_optimizer` with ``kind="sgd"``)."""
    return make_optimizer(model, "sgd", lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


@dataclass
class TrainState:
    """What a stage checkpoints to resume: model, optimizer, EMA, loss scaler and the step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    ema: AveragedModel | None = None
    scaler: torch.amp.GradScaler | None = None
    step: int = 0
    extra: dict = field(default_factory=dict)  # small JSON-able values a stage wants back

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None and self.scaler.is_enabled() else None,
            "step": self.step,
            "extra": self.extra,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.model.load_state_dict(d["model"])
        self.optimizer.load_state_dict(d["optimizer"])
        if self.ema is not None and d.get("ema") is not None:
            self.ema.load_state_dict(d["ema"])
        if self.scaler is not None and d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
        self.step = int(d["step"])
        self.extra = dict(d.get("extra") or {})
