"""glibc's malloc: batch-sized buffers always come from the kernel and go back to it when freed.

glibc serves a large block (128 KiB and more, at first) with ``mmap`` and unmaps it on ``free``,
but each time it frees such a block it raises its threshold to that block's size (up to 32 MiB).
From then on, batch-sized buffers (a 256 x 3 x 96 x 96 float32 batch is 27 MiB, and its
channels_last copy as much again) come from the heap, whose free space fragments between
smaller blocks and is not given back. A pass over many batches then grows the process by an
amount that depends on the timing: labelling 100,000 streamed 96x96 images on this project's
2-core EPYC peaked at 756 to 1,361 MiB in six processes. With the threshold fixed
(:func:`map_large_blocks`) the same pass peaked at 756 MiB in five processes of five (1,000
images: 751 MiB), and ran no slower (docs/performance.md). Values computed are unchanged; only
where memory comes from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
LARGE_BLOCK = 1 << 20  # blocks of 1 MiB and more are mapped: batches and activations, not small tensors


def map_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Fix glibc's ``mmap`` threshold at ``threshold`` bytes for this process and the processes it
    forks (DataLoader workers); returns whether it was set (False off glibc: nothing is changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):  # no C library found, or one without mallopt (musl)
        return False
