"""Final model files: weights plus everything needed to rebuild and use the model.

A model file records the registered model name, its factory arguments, the number of classes,
the task, the input convention and, for models that describe themselves (``describe()``: a
foundation encoder's timm name, patch size and blocks), that description, so ``dmt eval`` and the
next phase rebuild exactly the network that was trained and feed it exactly the inputs it was
trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dmt.engine.checkpoint import load_checkpoint, save_checkpoint
from dmt.errors import UserError
from dmt.models import create_model, model_task
from dmt.models.conventions import InputConvention, apply_convention


def save_model(path: str | Path, model: nn.Module, *, name: str, num_classes: int, kwargs: dict,
               info: dict[str, Any] | None = None) -> None:
    """Write a model file (atomic, safetensors)."""
    convention = getattr(model, "input_convention", None)
    meta = {
        "model": name,
        "num_classes": num_classes,
        "kwargs": kwargs,
        "task": model_task(name),
        "input_convention": convention.to_dict() if convention is not None else None,
        **(info or {}),
    }
    describe = getattr(model, "describe", None)
    if callable(describe):
        meta["architecture"] = describe()
    save_checkpoint(path, {"kind": "model", "meta": meta, "weights": model.state_dict()})


def folder_instead_of_model(path: Path) -> str:
    """One line for a folder given where a model file was expected: the model files it holds."""
    found = sorted(path.glob("stages/*/model.safetensors"), key=lambda p: (p.stat().st_mtime, p.parent.name))
    if found:  # a run directory: the example is the newest model file of the method (not the oracle's)
        stages = ", ".join(p.parent.name for p in found)
        example = ([p for p in found if p.parent.name != "oracle"] or found)[-1]
        return (f"{path} is a run directory, not a model file; give one of its model files, e.g. {example} "
                f"(stages: {stages})")
    if (path / "model.safetensors").is_file():  # a stage's folder
        return f"{path} is a folder, not a model file; did you mean {path / 'model.safetensors'}?"
    return f"{path} is a folder, not a model file (a run's model files are RUN_DIR/stages/<stage>/model.safetensors)"


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a model file; returns ``(model in eval mode, meta)``.

    Raises:
        UserError: ``path`` is missing, a folder (a run directory: its model files are named), or
            not a dmt model file.
    """
    if Path(path).is_dir():
        raise UserError(folder_instead_of_model(Path(path)))
    state = load_checkpoint(path)
    if state.get("kind") != "model":
        raise UserError(f"{path}: not a dmt model file (a training state? use stages/<name>/model.safetensors)")
    meta = state["meta"]
    kwargs = dict(meta.get("kwargs") or {})
    # never re-read pretrained weights: the file holds the trained ones, and the input
    # convention they were trained with (which the pretrained initialisation had chosen)
    for key in ("init", "weights_path", "strict_weights"):
        kwargs.pop(key, None)
    model = create_model(meta["model"], meta["num_classes"], **kwargs)
    model.load_state_dict(state["weights"])
    if meta.get("input_convention") is not None:
        apply_convention(model, InputConvention.from_dict(meta["input_convention"]))
    return model.to(device).eval(), meta
