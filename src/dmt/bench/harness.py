"""Timing harness: interleaved repeats of several variants, median and min, peak memory.

Variants of one item run in turn within each repeat (A B C, A B C, ...), so a slow spell of a
shared machine hits every variant alike; the ratio of each variant to the item's plain one is
taken from medians. Peak memory is CUDA's ``max_memory_allocated`` on a GPU and, on the CPU, the
largest increase of this process's resident set over its size before the call (sampled every
millisecond by a thread), the best available stand-in for "extra memory the call needed".
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class PeakRSS:
    """``with PeakRSS() as p: ...`` then ``p.increase``: peak RSS during the block minus RSS before."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval, self.increase, self._stop = interval, 0, threading.Event()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.peak = max(self.peak, rss_bytes())
        self._stop.set()
        self._thread.join()
        self.increase = max(0, self.peak - self.start)


@dataclass
class Variant:
    """One way to do an item's work: ``run()`` does it once (``setup`` ran before the repeats)."""

    name: str
    run: Callable[[], Any]
    plain: bool = False  # the reference the ratios are taken against
    info: dict = field(default_factory=dict)  # extra numbers to report (e.g. bytes per pixel)
    prepare: Callable[[], Any] | None = None  # builds what run() needs (models), untimed, once


def measure(variants: list[Variant], repeats: int, device: torch.device, warmup: int = 1) -> list[dict[str, Any]]:
    """Time every variant ``repeats`` times, interleaved, after ``warmup`` untimed runs each.

    Returns one row per variant: ``median_s``, ``min_s``, ``times_s``, ``peak_mib`` (the largest
    over its runs) and ``ratio`` (plain median / this median; ``None`` without a plain variant).
    """
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    peaks: dict[str, int] = {v.name: 0 for v in variants}
    for v in variants:
        if v.prepare is not None:
            v.prepare()
    for _ in range(warmup):
        for v in variants:
            v.run()
    for _ in range(repeats):
        for v in variants:
            t, peak = _timed(v.run, device)
            times[v.name].append(t)
            peaks[v.name] = max(peaks[v.name], peak)
    plain = next((v for v in variants if v.plain), None)
    plain_median = statistics.median(times[plain.name]) if plain is not None else None
    rows = []
    for v in variants:
        med = statistics.median(times[v.name])
        rows.append({"variant": v.name, "median_s": med, "min_s": min(times[v.name]), "times_s": times[v.name],
                     "peak_mib": peaks[v.name] / 2**20, "ratio": plain_median / med if plain_median else None,
                     **v.info})
    return rows


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, int]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated(device) - base
    with PeakRSS() as p:
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
    return elapsed, p.increase
