"""A registry of model factory functions (``@register`` / ``create_model`` / ``list_models``).

Factories are plain functions ``name(num_classes: int, **kwargs) -> nn.Module``; the config names one
by its registered name and passes keyword arguments through. A *family* is one factory for a whole
namespace of names, ``<prefix>/<arch>``: ``@register_family("timm")`` makes ``timm/resnet18``,
``timm/vit_small_patch14_dinov2.lvd142m`` ... call ``factory(num_classes, arch="resnet18", **kwargs)``
(timm's thousand-odd architectures are not listed one by one: ``dmt models --timm PATTERN`` asks timm).
The model modules register themselves when :mod:`dmt.models` is imported (its ``__init__`` imports
them all), so this module imports none of them.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from dmt.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_TASKS: dict[str, str] = {}
_SMOKE: dict[str, str] = {}
_FAMILIES: dict[str, tuple[Callable[..., nn.Module], str]] = {}  # prefix -> (factory taking arch, task)
# prefix -> (arch, kwargs) -> the (arch, kwargs) --smoke trains instead, or None for the model itself
_FAMILY_SMOKE: dict[str, Callable[[str, dict], tuple[str, dict] | None]] = {}


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


def register_family(prefix: str, *, task: str = "classification",
                    smoke: Callable[[str, dict], tuple[str, dict] | None] | None = None):
    """Register ``fn(num_classes, arch, **kwargs)`` for every model name ``<prefix>/<arch>``.

    Args:
        prefix: the namespace, without the slash (``"timm"``).
        task: the task of every model of the family.
        smoke: ``(arch, kwargs) -> (arch, kwargs)`` of the tiny stand-in ``--smoke`` trains, or
            ``None`` where the model trains as itself.
    """

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if prefix in _FAMILIES or "/" in prefix:
            raise ValueError(f"model family {prefix!r} is registered twice or has a slash")
        _FAMILIES[prefix] = (f, task)
        if smoke is not None:
            _FAMILY_SMOKE[prefix] = smoke
        return f

    return wrap


def _family(name: str) -> tuple[Callable[..., nn.Module], str, str] | None:
    """``(factory, task, arch)`` of a ``<prefix>/<arch>`` name of a registered family, else ``None``."""
    prefix, slash, arch = name.partition("/")
    if slash and arch and prefix in _FAMILIES:
        return (*_FAMILIES[prefix], arch)
    return None


def _unknown(name: str) -> UserError:
    families = [f"{p}/<name>" for p in sorted(_FAMILIES)]
    return UserError(f"config key 'model.name': unknown model {name!r}; known: {', '.join(list_models() + families)}")


def smoke_standin(name: str) -> str:
    """The model ``--smoke`` trains for ``name``: its registered tiny stand-in, or itself."""
    return _SMOKE.get(name, name)


def smoke_network(name: str, kwargs: dict) -> tuple[str, dict]:
    """``(name, factory arguments)`` of what ``--smoke`` trains for a model: a registered model's tiny
    stand-in (with its defaults), a family's (``timm/<vit>``: the same code, narrow and shallow), or
    the model itself. The stand-in starts from random weights."""
    if name in _MODELS:
        return (_SMOKE[name], {}) if name in _SMOKE else (name, dict(kwargs))
    family = _family(name)
    shrink = _FAMILY_SMOKE.get(name.partition("/")[0]) if family is not None else None
    small = shrink(family[2], dict(kwargs)) if shrink is not None else None
    return (f"{name.partition('/')[0]}/{small[0]}", small[1]) if small is not None else (name, dict(kwargs))


def list_models(task: str | None = None) -> list[str]:
    """Names of all registered models, optionally only those of one task (families: :func:`list_families`)."""
    return sorted(n for n in _MODELS if task is None or _TASKS[n] == task)


def list_families() -> dict[str, str]:
    """``prefix -> task`` of the registered families (``{"timm": "classification"}``)."""
    return {p: task for p, (_, task) in sorted(_FAMILIES.items())}


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model or a name in a registered family (the family's
    factory still says whether the architecture exists)."""
    return name in _MODELS or _family(name) is not None


def model_task(name: str) -> str:
    """The task (classification or segmentation) a registered model solves."""
    if name in _MODELS:
        return _TASKS[name]
    family = _family(name)
    if family is None:
        raise _unknown(name)
    return family[1]


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model (or a family's, ``timm/<arch>``) by name."""
    family = _family(name) if name not in _MODELS else None
    if family is not None:
        return family[0](num_classes=num_classes, arch=family[2], **kwargs)
    if name not in _MODELS:
        raise _unknown(name)
    params = inspect.signature(_MODELS[name]).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if "weights_path" in unknown:  # the config's model.weights, not one of model.kwargs
            raise UserError(f"config key 'model.weights': {name} has no pretrained weights to load "
                            "(timm/<name> models do); remove it")
        if unknown:
            accepted = ", ".join(p for p in params if p != "num_classes")
            raise UserError(f"config key 'model.kwargs': {name} does not take {', '.join(unknown)} "
                            f"(it takes: {accepted or 'nothing'})")
    return _MODELS[name](num_classes=num_classes, **kwargs)
