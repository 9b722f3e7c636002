"""Pretrained weight files: find them, read them safely, and say in one line why they do not fit.

Every body that starts from a file the user downloaded (the ResNet-101 ImageNet and COCO files,
the DINOv2 / DINOv3 encoders) goes through these helpers, so a missing, hostile, truncated or
mismatched file is refused the same way: a :class:`~dmt.errors.UserError` naming the file and the
first keys at fault, nothing executed, nothing loaded half-way.

* :func:`read_state_dict` reads a safetensors file (``safetensors.torch``) or a ``.pth`` state dict
  (``torch.load(weights_only=True)``: tensors only, never a pickle's code), whatever its suffix.
* :func:`key_problems` lists the missing, unexpected and other-shape keys of a state dict against
  a model's, as ``"label: first keys"`` entries.
* :func:`find_weights` resolves the file of an initialisation (a path, the default cache file, or
  ``hub``: the model's own published file, :mod:`dmt.models.backbones.hub`), or warns and returns
  ``None`` when the caller allows random initialisation (``--smoke``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from dmt.errors import UserError
from dmt.models.backbones.hub import HUB, HubFileMissing, HubSource, WeightsFileMissing, resolve_hub

_SAFETENSORS_HEADER_START = b"{"  # byte 8 of a safetensors file: its JSON header follows the 8-byte length


def read_torch_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """Read a ``.pth`` state dict with ``torch.load(weights_only=True)``: tensors only, no code.

    Args:
        path: the file.
        what: what the file should hold, for error messages.

    Raises:
        UserError: the file holds other Python objects (refused, nothing executed), cannot be
            read, or is not a mapping of names to tensors.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt or hostile files
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise UserError(
                f"{path}: refused to load {what}: the file holds Python objects, not only tensors "
                f"(it references {found.group(1)})"
            ) from None
        if "Weights only load failed" in str(e) or "WeightsUnpickler" in str(e):
            # never pass on torch's advice to retry with weights_only=False: that runs the file's code
            detail = str(e).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
            reason = detail[0].strip() if detail and "weights_only" not in detail[0] else "not plain tensors"
            raise UserError(f"{path}: cannot read {what}: the safe loader refused it ({reason}); "
                            "nothing in it was executed") from None
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: cannot read {what} as a PyTorch checkpoint ({first_line})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):  # some copies wrap it
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise UserError(f"{path}: expected {what} as a state dict (names -> tensors), got {type(obj).__name__}")
    return dict(obj)


def is_safetensors(path: str | Path) -> bool:
    """Whether a file starts like a safetensors file (8-byte header length, then its JSON)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == _SAFETENSORS_HEADER_START


def read_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """A state dict from a safetensors file or a ``.pth`` file, told apart by their first bytes.

    Neither reader runs code from the file. A truncated or corrupt file is one line naming it.

    Raises:
        UserError: the file cannot be read, is refused by the safe loader, or holds no state dict.
    """
    path = Path(path)
    try:
        safetensors = is_safetensors(path)
    except OSError as e:
        raise UserError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if not safetensors:
        return read_torch_state_dict(path, what)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: cannot read {what} as a safetensors file ({reason})") from None


def key_preview(keys: Sequence[str], n: int = 4) -> str:
    """The first ``n`` keys, and how many there are in all when more."""
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def key_problems(state: dict[str, Tensor], own: dict[str, Tensor], required: Iterable[str],
                 checked: Callable[[str], bool] = lambda k: True) -> list[str]:
    """What keeps ``state`` from filling the ``required`` tensors of a model whose state dict is ``own``.

    Args:
        state: the tensors a file provides, named as in ``own``.
        own: the model's state dict (names and shapes).
        required: the names that must be present with their shape.
        checked: which of ``state``'s names to check at all (others are ignored, e.g. a head).

    Returns:
        One ``"label: keys"`` entry per kind of problem (missing, unexpected, other shape); empty
        when the weights fit.
    """
    names = [k for k in state if checked(k)]
    missing = [k for k in required if k not in state]
    unexpected = [k for k in names if k not in own]
    reshaped = [k for k in names if k in own and state[k].shape != own[k].shape]
    return [f"{label}: {key_preview(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped)) if keys]


def find_weights(
    init: str, weights_path: str | Path | None, default: Path | None, how: str, strict: bool,
    hub: HubSource | None = None,
) -> Path | None:
    """The weights file to read, or ``None`` (after a warning) when it is absent and not required.

    Args:
        init: the initialisation's name, for messages (``imagenet``, ``dinov2``, ``pretrained``).
        weights_path: a file, ``"hub"`` (the model's published file: ``hub``), or ``None`` (``default``).
        default: the file to use when ``weights_path`` is ``None`` (a cache), if any.
        how: what the user should do when the file is missing (``"pass weights_path=FILE"`` ...).
        strict: a missing file is an error; otherwise a :class:`~dmt.models.backbones.hub.WeightsFileMissing`
            warning, and ``None``.
        hub: where the weights are published; ``None``: nowhere, so ``"hub"`` is as a missing file.

    Raises:
        UserError: the file is missing or ``hub`` has no source (``strict``), or the hub file
            cannot be had (see :func:`~dmt.models.backbones.hub.resolve_hub`).
    """
    if weights_path is not None and str(weights_path) == HUB and hub is not None:
        return resolve_hub(hub, f"{init} weights", strict)
    path = Path(weights_path).expanduser() if weights_path is not None else default
    if path is not None and str(weights_path) != HUB and path.is_file():
        return path
    where = ("have no hub source" if str(weights_path) == HUB else
             f"not found at {path}" if path is not None else "not given")
    message = f"model option weights_path: {init} weights {where}; {how}"
    if strict:
        raise UserError(message)
    # stacklevel 4: find_weights <- the model's builder <- the factory <- the code that asked for the model.
    warnings.warn((HubFileMissing if str(weights_path) == HUB else WeightsFileMissing)(message), stacklevel=4)
    return None
