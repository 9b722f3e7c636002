"""Timing harness: repeats of several variants, median and min, peak memory.

:func:`measure_in_processes` runs each variant in a process of its own, as a user runs one
configuration, alternating the processes (A B C, A B C, ...) so that a slow spell of a shared
machine hits every variant alike: variants built side by side in one process slow each other
(allocator and cache state, threads), which made the plain DeepLab-v2 step 1.4x slower than
alone and overstated the gains. :func:`measure` interleaves variants within this process, for
cheap items. The ratio of each variant to the item's plain one is taken from medians. Peak memory
is CUDA's ``max_memory_allocated`` on a GPU and, on the CPU, the largest increase of the
resident set over its size before the call (sampled every millisecond by a thread), the best
available stand-in for "extra memory the call needed".
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
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


def peak_rss_bytes() -> int:
    """This process's own peak resident set: ``VmHWM`` of ``/proc/self/status`` (Linux; 0 elsewhere).

    Not ``resource.getrusage(...).ru_maxrss``: a process started by ``subprocess`` keeps its
    parent's high-water mark across the exec, so a small child of a big process reports the
    parent's size (measured: a 9 MB child of a 2 GB parent says 1.9 GB).
    """
    try:
        with open("/proc/self/status") as f:
            return int(next(line.split()[1] for line in f if line.startswith("VmHWM:"))) * 1024
    except (OSError, StopIteration, ValueError):
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


_CHILD = """
import json, sys, torch
from pathlib import Path
from dmt.bench.harness import Variant, timed_runs
module, function, name, quick, arg, runs, warmup = sys.argv[1:8]
torch.manual_seed(0)
builder = getattr(__import__(module, fromlist=[function]), function)
built = builder(quick == "True", Path(arg) if arg.startswith("/") else torch.device(arg))
variants = built[0] if isinstance(built, tuple) else built
variant = next(v for v in variants if v.name == name)
print(json.dumps(timed_runs(variant, int(runs), int(warmup), torch.device("cpu" if arg.startswith("/") else arg))))
"""


def timed_runs(variant: Variant, runs: int, warmup: int, device: torch.device) -> dict[str, Any]:
    """Prepare one variant, run it ``warmup`` times untimed, then ``runs`` timed times.

    Returns ``times_s``, ``peak_bytes`` (of the first timed run after the warm-up) and the
    variant's ``info``, as the child process of :func:`measure_in_processes` prints them.
    """
    if variant.prepare is not None:
        variant.prepare()
    for _ in range(warmup):
        variant.run()
    times, peak = [], 0
    for k in range(runs):
        t, p = _timed(variant.run, device)
        times.append(t)
        peak = p if k == 0 else peak
    return {"times_s": times, "peak_bytes": peak, "info": variant.info}


def measure_in_processes(builder: str, names: list[str], plain: str | None, repeats: int, arg: str,
                         quick: bool, rounds: int = 2, warmup: int = 1) -> list[dict[str, Any]]:
    """Time each variant in processes of its own, alternating variants, ``rounds`` processes each.

    Args:
        builder: ``"module:function"`` building the item's variants as ``function(quick, arg)``
            (a list, or a tuple whose first element is the list).
        names: the variants to measure, in report order; ``plain`` names the reference.
        repeats: timed runs per variant in all, split over its ``rounds`` processes.
        arg: the builder's second argument: a device (``"cpu"``) or a scratch folder path.

    Returns:
        Rows as :func:`measure`'s; ``peak_mib`` is the largest first-run peak of the processes.
    """
    module, function = builder.split(":")
    per_round = max(1, math.ceil(repeats / rounds))
    times: dict[str, list[float]] = {n: [] for n in names}
    peaks: dict[str, int] = {n: 0 for n in names}
    info: dict[str, dict] = {n: {} for n in names}
    for _ in range(rounds):
        for name in names:
            done = subprocess.run([sys.executable, "-c", _CHILD, module, function, name, str(quick), arg,
                                   str(per_round), str(warmup)], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{name}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
            got = json.loads(done.stdout.strip().splitlines()[-1])
            times[name] += got["times_s"]
            peaks[name] = max(peaks[name], got["peak_bytes"])
            info[name] = got["info"]
    plain_median = statistics.median(times[plain]) if plain else None
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"variant": name, "median_s": med, "min_s": min(times[name]), "times_s": times[name],
                     "peak_mib": peaks[name] / 2**20, "ratio": plain_median / med if plain_median else None,
                     "measured": "each variant in processes of its own", **info[name]})
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
