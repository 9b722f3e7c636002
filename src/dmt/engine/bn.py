"""BatchNorm helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def batch_stats_without_update(model: nn.Module) -> Iterator[None]:
    """Forward with batch statistics (train-mode BN) without touching the running statistics.

    The dynamic weights of a mixup batch come from an extra forward pass on the un-mixed images.
    In train mode that pass would update BN's running mean/var a second time per step (as the
    original implementation does). With ``track_running_stats`` switched off, train-mode BN
    normalises with the batch statistics and leaves its buffers alone.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True
