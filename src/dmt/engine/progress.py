"""Progress display for long loops, with estimated time to the end of the stage and of the run.

On a terminal a loop shows a live bar; otherwise (CI, ``nohup``, a log file) it writes plain
lines, one about every 10 % of the work and at least every :data:`LINE_SECONDS`, so long runs
still show that they are alive and how long they have left.

Estimates, all approximate:

* the loop: its own rate so far (``elapsed / done * left``);
* the stage: the loop's estimate, or, where a finished stage of the same kind (baseline, phase,
  oracle) took longer than this one has so far, that stage's wall time minus this one's elapsed
  time (labelling and evaluation around the training loop are then counted too);
* the run: the stage's estimate plus, for each stage still to run, the mean wall time of the
  finished stages of its kind (of all finished stages if none of its kind finished; while the
  first stage runs, its own estimated length).

The run-level figures need a :class:`RunClock`, which a loop is handed with its :class:`Display`
(a stage's context makes both); without one a loop shows its own estimate only.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

log = logging.getLogger("dmt")

LINE_SECONDS = 60.0  # without a terminal: the longest silence between two progress lines


# ---- pure estimates -------------------------------------------------------------------------
def loop_eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left in a loop at its mean rate so far; ``None`` before the first unit is done."""
    if done <= 0 or elapsed < 0:
        return None
    return max(total - done, 0) * elapsed / done


def stage_eta(loop_left: float | None, stage_elapsed: float, expected_stage: float | None) -> float | None:
    """Seconds left in the stage: the loop's estimate, or a similar finished stage's length, whichever is longer."""
    from_similar = expected_stage - stage_elapsed if expected_stage is not None else None
    candidates = [v for v in (loop_left, from_similar) if v is not None]
    return max(max(candidates), 0.0) if candidates else None


def expected_wall(kind: str, finished: Sequence[tuple[str, float]]) -> float | None:
    """Mean wall time of the finished ``(kind, seconds)`` stages of ``kind`` (of all of them if none)."""
    same = [w for k, w in finished if k == kind]
    pool = same or [w for _, w in finished]
    return sum(pool) / len(pool) if pool else None


def run_eta(stage_left: float | None, stage_total: float | None, remaining_kinds: Sequence[str],
            finished: Sequence[tuple[str, float]]) -> float | None:
    """Seconds left in the run: this stage's estimate plus an estimate for each stage after it.

    Args:
        stage_left: seconds left in the current stage (``None``: unknown).
        stage_total: the current stage's estimated length, used for later stages when no stage
            has finished yet.
        remaining_kinds: kind of each stage after the current one.
        finished: ``(kind, wall seconds)`` of the finished stages.
    """
    if stage_left is None:
        return None
    total = stage_left
    for kind in remaining_kinds:
        guess = expected_wall(kind, finished)
        if guess is None:
            guess = stage_total
        if guess is None:
            return None
        total += guess
    return total


def format_duration(seconds: float | None) -> str:
    """``75 -> '1m15s'``, ``3720 -> '1h02m'``, ``None -> '?'``."""
    if seconds is None or seconds != seconds:
        return "?"
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


# ---- the run's clock ------------------------------------------------------------------------
@dataclass
class RunClock:
    """What a loop needs to estimate the rest of its stage and of the run.

    Attributes:
        stage_kind: kind of the current stage (``baseline``, ``phase``, ``oracle``).
        remaining_kinds: kinds of the stages after the current one.
        finished: ``(kind, wall seconds)`` of the stages already finished.
        stage_elapsed: seconds the current stage has run (over all sessions).
    """

    stage_kind: str
    remaining_kinds: list[str] = field(default_factory=list)
    finished: list[tuple[str, float]] = field(default_factory=list)
    stage_elapsed: Callable[[], float] = lambda: 0.0

    def estimates(self, loop_left: float | None) -> tuple[float | None, float | None]:
        """``(seconds left in the stage, seconds left in the run)`` given the loop's estimate."""
        elapsed = self.stage_elapsed()
        left = stage_eta(loop_left, elapsed, expected_wall(self.stage_kind, self.finished)
                         if any(k == self.stage_kind for k, _ in self.finished) else None)
        total = elapsed + left if left is not None else None
        return left, run_eta(left, total, self.remaining_kinds, self.finished)


@dataclass(frozen=True)
class Display:
    """How a process shows its loops' progress: whether at all, and the run's clock for the stage
    and run estimates. Handed down to every loop explicitly (a stage's context makes one); the
    default shows a loop's own estimate only.

    ``Display(enabled, clock)("eval val", total)`` is the :class:`Progress` of one loop.
    """

    enabled: bool = True
    clock: RunClock | None = None

    def __call__(self, description: str, total: int, start: int = 0, steps_per_epoch: int = 0) -> Progress:
        return Progress(description, total, start, self.enabled, steps_per_epoch, run=self.clock)


def eta_text(done: int, total: int, elapsed: float, clock: RunClock | None) -> str:
    """``'ETA 1m05s, stage ~2m10s, run ~14m00s'`` (the last two only with a clock)."""
    left = loop_eta(done, total, elapsed)
    text = f"ETA {format_duration(left)}"
    if clock is not None:
        stage_left, run_left = clock.estimates(left)
        text += f", stage ~{format_duration(stage_left)}, run ~{format_duration(run_left)}"
    return text


# ---- the display ----------------------------------------------------------------------------
class Progress:
    """``with Progress("phase1 train", total=1000, start=200) as p: p.advance(loss=0.3)``.

    Args:
        description: what the loop does (``"phase2-a train"``, ``"eval val"``).
        total: units of work (steps, batches).
        start: units already done (a resumed stage).
        enabled: whether this process shows progress; with several processes the caller asks its
            processes (:meth:`dmt.engine.distributed.Processes.shows_progress`: rank 0 alone).
        steps_per_epoch: when given, the current epoch is shown too.
        tty: draw a bar (default: whether stderr is a terminal).
        clock: the time source (tests pass a fake one).
        run: the run's clock, for the stage's and the run's estimates (None: the loop's own only).
    """

    def __init__(self, description: str, total: int, start: int = 0, enabled: bool = True,
                 steps_per_epoch: int = 0, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, run: RunClock | None = None) -> None:
        self.description, self.total, self.done, self.start = description, total, start, start
        self.steps_per_epoch = steps_per_epoch
        self._tty = sys.stderr.isatty() if tty is None else tty
        self.enabled = enabled and total > start
        self._now = clock
        self._run = run
        self._bar = None
        self._task = None
        self._t0 = clock()
        self._last_line = self._t0
        self._next_pct = 10 * (int(100 * start / max(total, 1)) // 10 + 1)
        self._info = ""

    def __enter__(self) -> "Progress":
        if self.enabled and self._tty:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                                     TextColumn("{task.fields[info]}"), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.done, info="",
                                            eta="")
        return self

    def _epoch_text(self) -> str:
        if self.steps_per_epoch <= 0:
            return ""
        epochs = -(-self.total // self.steps_per_epoch)
        return f"epoch {min(self.done // self.steps_per_epoch + 1, epochs)}/{epochs} "

    def _eta(self, now: float) -> str:
        # the rate of this session's work: a resumed loop's earlier steps took no time here
        return eta_text(self.done - self.start, self.total - self.start, now - self._t0, self._run)

    def advance(self, n: int = 1, **info: float) -> None:
        """Mark ``n`` more units done; keyword values are shown beside the bar."""
        self.done += n
        if info:
            self._info = " ".join(f"{k} {v:.4g}" for k, v in info.items())
        if not self.enabled:
            return
        now = self._now()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, info=self._epoch_text() + self._info,
                             eta=self._eta(now))
            return
        pct = 100 * self.done / max(self.total, 1)
        if pct >= self._next_pct or now - self._last_line >= LINE_SECONDS or self.done >= self.total:
            self._next_pct = 10 * (int(pct) // 10 + 1)
            self._last_line = now
            log.info("%s: %d/%d (%.0f%%, %s, %s) %s%s", self.description, self.done, self.total, pct,
                     format_duration(now - self._t0), self._eta(now), self._epoch_text(), self._info)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
