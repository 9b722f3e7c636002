"""Progress display for long loops: a rich bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

log = logging.getLogger("dmt")


class Progress:
    """``with Progress("phase1 train", total=1000, start=200) as p: p.advance(loss=0.3)``.

    On a terminal this shows a live bar; in logs (CI, ``nohup``) it writes one line about every
    10 % of the work or every 60 s, so long runs still show that they are alive.
    """

    def __init__(self, description: str, total: int, start: int = 0, enabled: bool = True) -> None:
        from dmt.engine.distributed import is_main

        self.description, self.total, self.done = description, total, start
        self.enabled = enabled and total > start and is_main()  # one bar per job: rank 0's
        self._bar = None
        self._task = None
        self._t0 = time.monotonic()
        self._last_line = self._t0
        self._next_pct = 10 * (int(100 * start / max(total, 1)) // 10 + 1)
        self._info = ""

    def __enter__(self) -> "Progress":
        if self.enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                     transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.done, info="")
        return self

    def advance(self, n: int = 1, **info: float) -> None:
        """Mark ``n`` more units done; keyword values are shown beside the bar."""
        self.done += n
        if info:
            self._info = " ".join(f"{k} {v:.4g}" for k, v in info.items())
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, info=self._info)
            return
        pct = 100 * self.done / max(self.total, 1)
        now = time.monotonic()
        if pct >= self._next_pct or now - self._last_line > 60 or self.done == self.total:
            self._next_pct = 10 * (int(pct) // 10 + 1)
            self._last_line = now
            log.info("%s: %d/%d (%.0f%%, %.0fs) %s", self.description, self.done, self.total, pct,
                     now - self._t0, self._info)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
