"""A registry of model factory functions (``@register`` / ``create_model`` / ``list_models``).

Factories are plain functions ``name(num_classes: int, **kwargs) -> nn.Module``; the
config names one by its registered name and passes keyword arguments through. The model
modules register themselves when :mod:`dmt.models` is imported (its ``__init__`` imports them
all), so this module imports none of them.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from dmt.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_TASKS: dict[str, str] = {}
_SMOKE: dict[str, str] = {}


def register(fn: Callable[..., nn.Module] | None = None, *, task: str = "classification", smoke: str | None = None):
    """Register a model factory under its function name.

    Args:
        fn: the factory; used bare (``@register``) or with arguments (``@register(task="segmentation")``).
        task: ``"classification"`` (logits ``N x C``) or ``"segmentation"`` (logits ``N x C x H x W``).
        smoke: a registered model of the same code at a tiny size that ``--smoke`` runs instead
            (a foundation encoder's 86 M+ parameters cannot do every stage in two minutes on a CPU).
    """

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if f.__name__ in _MODELS:
            raise ValueError(f"model {f.__name__!r} is registered twice")
        _MODELS[f.__name__] = f
        _TASKS[f.__name__] = task
        if smoke is not None:
            _SMOKE[f.__name__] = smoke
        return f

    return wrap(fn) if fn is not None else wrap


def smoke_standin(name: str) -> str:
    """The model ``--smoke`` trains for ``name``: its registered tiny stand-in, or itself."""
    return _SMOKE.get(name, name)


def list_models(task: str | None = None) -> list[str]:
    """Names of all registered models, optionally only those of one task."""
    return sorted(n for n in _MODELS if task is None or _TASKS[n] == task)


def model_task(name: str) -> str:
    """The task (classification or segmentation) a registered model solves."""
    if name not in _MODELS:
        raise UserError(f"config key 'model.name': unknown model {name!r}; known: {', '.join(list_models())}")
    return _TASKS[name]


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model by name."""
    if name not in _MODELS:
        raise UserError(f"config key 'model.name': unknown model {name!r}; known: {', '.join(list_models())}")
    params = inspect.signature(_MODELS[name]).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            accepted = ", ".join(p for p in params if p != "num_classes")
            raise UserError(f"config key 'model.kwargs': {name} does not take {', '.join(unknown)} "
                            f"(it takes: {accepted or 'nothing'})")
    return _MODELS[name](num_classes=num_classes, **kwargs)
