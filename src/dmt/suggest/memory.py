"""A fixed ``malloc`` mmap threshold for ``dmt suggest``, whose passes predict one image several times.

glibc serves allocations above its mmap threshold from fresh mappings, returned to the system when
freed, and smaller ones from its heap; by default the threshold rises (up to 32 MiB) each time a
mapped block is freed, so the temporaries of a later pass over the same image (member B after A,
the contact sheet after the ranking) land on the heap, which fragments and keeps its pages.
Measured on a 3000 x 3000 image read at 1 (two 21-class ``deeplabv2_tiny`` members, 2026-12-07):
``dmt suggest`` peaked at 1,293 MiB against ``dmt predict``'s 1,232 MiB with the default policy,
and at 1,219 MiB with the threshold fixed at 4 MiB. Only where the C library has ``mallopt``
(glibc); elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD = 4 << 20  # bytes: larger blocks are always mapped, and unmapped when freed


def fix_mmap_threshold(threshold: int = THRESHOLD) -> bool:
    """Fix this process's mmap threshold at ``threshold`` bytes; whether the C library took it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
