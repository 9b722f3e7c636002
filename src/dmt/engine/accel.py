"""Speed switches that leave the method's arithmetic alone: mixed precision, memory layout, compile.

Each switch has a plain setting (``False``) that every optimised one must match in tests, and an
``"auto"`` that picks the fastest safe choice for the device (see docs/performance.md for the
measurements behind each default):

* **AMP** (config ``amp``): bfloat16 autocast on CUDA (float16 with loss scaling where bf16 is
  missing) and on CPUs with native bf16 (AMX / AVX512-BF16), where oneDNN runs bf16
  convolutions several times faster than fp32. Elsewhere on CPU emulated bf16 is slower, so off.
* **channels_last** (config ``train.channels_last``): NHWC weights and inputs, the layout cuDNN's
  and oneDNN's fast convolution kernels use; same values, another stride order.
* **compile** (config ``train.compile``): :func:`torch.compile` of the training forward pass,
  in torch's default mode or a named one (``reduce-overhead``: CUDA graphs); off by default
  (first steps pay minutes of compilation, and the weight pass toggles BatchNorm flags, which
  recompiles once).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal, Union

import torch
from torch import nn

from dmt.engine.tree import map_tensors

log = logging.getLogger("dmt")

Switch = Union[bool, Literal["auto"]]


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN with AVX512-BF16 or AMX)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an old or unusual build: read the CPU flags
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, setting: Switch) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or ``None`` for full float32.

    ``True`` and ``"auto"`` mean the same: mixed precision where it is fast and needs no change to
    the method (bf16 keeps float32's range, so no loss scaling); ``False`` is plain float32.
    """
    if setting is False or setting is None:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def use_channels_last(device: torch.device, setting: Switch) -> bool:
    """Whether ``train.channels_last`` is on: ``"auto"`` means yes on CUDA and CPU (both faster)."""
    if setting == "auto":
        return device.type in ("cuda", "cpu")
    return bool(setting)


def inference_layout(model: nn.Module, enabled: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """Prepare ``model`` for inference in channels_last order when ``enabled``; returns the input mapper.

    The returned function puts each input batch in the model's layout (identity when disabled).
    The same switch as training (``train.channels_last``): oneDNN's and cuDNN's fast convolutions
    take NHWC, e.g. 4x on a 1x1 convolution of 3-channel 505x505 images on this project's CPU.
    """
    if not enabled:
        return lambda x: x
    apply_channels_last(model)
    return to_channels_last


def apply_channels_last(model: nn.Module) -> nn.Module:
    """Store the 4-D weights (convolutions) in channels_last order; returns the same module.

    Values are unchanged; checkpoints are written contiguous (:mod:`dmt.engine.checkpoint`), so
    files do not depend on this switch.
    """
    return model.to(memory_format=torch.channels_last)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 4 and t.is_floating_point():
        return t.contiguous(memory_format=torch.channels_last)
    return t


def to_channels_last(batch: Any) -> Any:
    """Every 4-D floating tensor of a (nested) batch in channels_last order (masks untouched)."""
    return map_tensors(_channels_last, batch)


def maybe_compile(module: nn.Module, enabled: bool | str) -> nn.Module:
    """``torch.compile(module)`` when ``enabled`` (and available), else ``module`` itself.

    ``enabled``: ``True`` (torch's default mode) or a :func:`torch.compile` mode name
    (``"reduce-overhead"``: CUDA graphs on CUDA; on the CPU torch compiles as in the default mode).
    The compiled wrapper shares parameters and buffers with ``module``; keep saving ``module``
    (the wrapper's state-dict keys carry an ``_orig_mod.`` prefix).
    """
    if not enabled:
        return module
    if not hasattr(torch, "compile"):
        log.warning("train.compile: this torch has no torch.compile; running uncompiled")
        return module
    if isinstance(enabled, str):
        return torch.compile(module, mode=enabled)
    return torch.compile(module)
