"""Non-finite losses, gradients and weights: how a step is found bad, undone, and counted.

A step is *bad* when its loss or one of its gradients is not finite (:func:`nonfinite_step`: a
0-d bool that stays on the device). Without ``train.skip_nonfinite`` a bad loss stops the stage
with :class:`NonFiniteLoss` at the next log point or checkpoint, so no checkpoint holds weights
trained on it. With ``train.skip_nonfinite = N`` a :class:`Snapshot` taken before the step undoes
it (the step leaves model, EMA and optimizer state exactly as they were), and
:func:`count_skipped` stops the stage only after more than N such steps.

Which processes agree on what is :mod:`dmt.engine.loop`'s business: everything here looks at
this process only.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn

from dmt.engine.state import EMA, TrainState

log = logging.getLogger("dmt")


class NonFiniteLoss(FloatingPointError):
    """A loss (or, when skipping, a gradient) was not finite; the message names the steps."""


def steps_text(first: int | None, last: int) -> str:
    """``"at step 3"`` or ``"between steps 2 and 5"``."""
    return f"at step {last}" if first == last else f"between steps {first} and {last}"


def weights_finite(model: nn.Module) -> bool:
    """Whether every floating weight and buffer of ``model`` is finite (one device read)."""
    tensors = [t.detach() for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    return not tensors or bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors)).float().sum()))


def nonfinite_step(loss: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """0-d bool on the device: this process's loss or one of its gradients is not finite."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    bad = ~torch.isfinite(loss.detach().float())
    if grads:
        bad = bad | ~torch.isfinite(torch.stack(torch._foreach_norm(grads)).float().sum())
    return bad


def count_skipped(extra: dict[str, Any], n: int, allowed: int, description: str, where: str) -> None:
    """Add ``n`` skipped steps to ``extra["skipped_nonfinite"]`` (kept in the checkpoint), warn in one line.

    Raises:
        NonFiniteLoss: the stage has now skipped more than ``allowed`` steps.
    """
    total = int(extra.get("skipped_nonfinite", 0)) + n
    extra["skipped_nonfinite"] = total
    log.warning("%s: skipped %d step(s) with a non-finite loss or gradient %s (%d of train.skip_nonfinite=%d "
                "used)", description, n, where, total, allowed)
    if total > allowed:
        raise NonFiniteLoss(f"{description}: non-finite loss {where}, after {total} "
                            f"skipped steps (more than train.skip_nonfinite={allowed})")


def _module_tensors(state: TrainState) -> list[torch.Tensor]:
    """Every tensor of the model and the EMA (the objects themselves, any dtype, 0-d included):
    weights, BatchNorm statistics and counters, the EMA's ``n_averaged``."""
    modules = [state.model] + ([state.ema] if state.ema is not None else [])
    return [t for m in modules for t in list(m.parameters()) + list(m.buffers())]


class Snapshot:
    """Everything one step may change, copied before it, to undo the step if it turns out bad.

    Tensors (model, EMA, every optimizer-state tensor, 0-d ones such as AdamW's ``step``
    included) are restored with ``torch.where`` on their device, so a good step reads nothing
    from the device: a few copies of the weights per step, paid only when
    ``train.skip_nonfinite`` is set. What lives on the host can only be undone by knowing the
    answer on the host, and is read then only: optimizer state born in this step (the first
    step's momentum buffers and Adam moments) or a non-tensor state value that changed (once per
    stage with torch's SGD and AdamW), and optimizer tensors kept on another device than the flag
    (AdamW keeps its step counts on the CPU beside CUDA weights: one read per step there).
    """

    def __init__(self, state: TrainState) -> None:
        self.tensors = _module_tensors(state)
        self.copies = [t.detach().clone() for t in self.tensors]
        # the optimizer's state, per parameter: tensors copied, other values deep-copied
        self.optimizer = {p: {k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                              for k, v in st.items()} for p, st in state.optimizer.state.items()}
        self.ema_started = state.ema.started if isinstance(state.ema, EMA) else True

    @torch.no_grad()
    def restore_where(self, bad: torch.Tensor, state: TrainState) -> None:
        """Where ``bad`` (0-d bool) is true, put back everything as it was before the step."""
        on_host: dict[torch.device, torch.Tensor] = {}

        def where(t: torch.Tensor, old: torch.Tensor) -> None:
            flag = bad if t.device == bad.device else on_host.setdefault(t.device, bad.to(t.device))
            t.copy_(torch.where(flag, old, t))

        for t, old in zip(self.tensors, self.copies):
            where(t, old)
        host_changed = False
        for p, st in state.optimizer.state.items():
            before = self.optimizer.get(p)
            if before is None or st.keys() != before.keys():
                host_changed = True
                continue
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and isinstance(before[k], torch.Tensor):
                    where(v, before[k])
                elif isinstance(v, torch.Tensor) or isinstance(before[k], torch.Tensor) or v != before[k]:
                    host_changed = True
        if host_changed and bool(bad):  # the host parts of the state: one device read, then put back
            self._restore_host(state)
        if not self.ema_started:  # its first update may have been undone: let it look again
            state.ema.forget_started()

    def _restore_host(self, state: TrainState) -> None:
        """Drop optimizer state born in the bad step; put back changed non-tensor values."""
        for p in list(state.optimizer.state):
            if p not in self.optimizer:
                del state.optimizer.state[p]
        for p, before in self.optimizer.items():
            st = state.optimizer.state[p]
            for k in [k for k in st if k not in before]:
                del st[k]
            for k, v in before.items():  # tensors in both places were restored in place already
                if not (isinstance(v, torch.Tensor) and isinstance(st.get(k), torch.Tensor)):
                    st[k] = v
