"""A stage's optimizer: torch's SGD or AdamW over the model's named parameter groups.

Foundation encoders are fine-tuned with a small learning rate while their new head learns with a
larger one (UniMatch-V2: AdamW, encoder 5e-6, head 40x that). A model that has such parts says so
with ``param_groups() -> {name: [parameters]}`` (the DPT models name ``encoder`` and ``head``);
each group then gets its own learning-rate multiplier (``lr_mult``) and weight decay. The loop sets
every group's rate each step as ``schedule(lr) * group["lr_mult"]``, and the multipliers, names
and decays are part of the optimizer's state dict, so a checkpoint resumes them exactly.

A model without ``param_groups`` is one group of all its trainable parameters, exactly the
optimizer dmt always built (same group keys, same state dict), so existing runs are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adamw")


def named_groups(model: nn.Module) -> dict[str, list[nn.Parameter]] | None:
    """The model's named parameter groups (trainable parameters only), or ``None`` if it has none.

    Raises:
        ValueError: the groups miss a trainable parameter or name one twice (a bug in the model).
    """
    describe = getattr(model, "param_groups", None)
    if not callable(describe):
        return None
    groups = {name: [p for p in params if p.requires_grad] for name, params in describe().items()}
    seen = [id(p) for params in groups.values() for p in params]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if len(seen) != len(set(seen)) or set(seen) != trainable:
        raise ValueError(f"{type(model).__name__}.param_groups() must name every trainable parameter once")
    return groups


def make_optimizer(
    model: nn.Module,
    kind: str,
    lr: float,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    betas: Sequence[float] = (0.9, 0.999),
    lr_mult: Mapping[str, float] | None = None,
    group_weight_decay: Mapping[str, float] | None = None,
) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` or ``AdamW`` over the model's parameter groups.

    Args:
        model: the network; its ``param_groups()``, when it has one, names the groups.
        kind: ``"sgd"`` (``momentum``, ``nesterov``; coupled weight decay) or ``"adamw"``
            (``betas``; decoupled weight decay).
        lr: the base learning rate (the schedule's; each group gets ``lr * lr_mult``).
        weight_decay: every group's weight decay unless ``group_weight_decay`` names it.
        lr_mult: learning-rate multiplier per group name (others: 1).
        group_weight_decay: weight decay per group name (others: ``weight_decay``).

    Raises:
        ValueError: an unknown ``kind``, or ``lr_mult`` / ``group_weight_decay`` naming a group the
            model does not have (the message lists the groups it has).
    """
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {kind!r}; known: {', '.join(OPTIMIZERS)}")
    lr_mult, group_weight_decay = dict(lr_mult or {}), dict(group_weight_decay or {})
    named = named_groups(model)
    names = list(named) if named is not None else []
    unknown = sorted((set(lr_mult) | set(group_weight_decay)) - set(names))
    if unknown:
        has = f"groups {', '.join(names)}" if names else "no named parameter groups (one group of all parameters)"
        raise ValueError(f"{type(model).__name__} has {has}, not {', '.join(unknown)}")
    if named is None:
        # the single group dmt has always built: its keys are what old checkpoints hold
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_mult": 1.0, "lr": lr}]
    else:
        groups = [{"params": params, "name": name, "lr_mult": float(lr_mult.get(name, 1.0)),
                   "lr": lr * float(lr_mult.get(name, 1.0)),
                   "weight_decay": float(group_weight_decay.get(name, weight_decay))}
                  for name, params in named.items() if params]
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(float(betas[0]), float(betas[1])), weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
