"""SIGTERM and SIGINT as a request to stop cleanly: checkpoint the current step, then exit.

Batch schedulers (SLURM, Kubernetes) send SIGTERM some time before they kill a preempted job;
Ctrl-C sends SIGINT. :func:`install` makes both *request* a stop. Inside a training loop
(:func:`deferred`) the request is only recorded: :func:`dmt.engine.loop.fit` sees it at the
next step boundary, writes a checkpoint of that step and raises :class:`StopRequested`.
Anywhere else the handler raises :class:`StopRequested` at once, as Ctrl-C raises
``KeyboardInterrupt``: finished stages and the last checkpoint are on disk, the rest is redone.

A second SIGINT while a stop is pending interrupts at once (``KeyboardInterrupt``).
DataLoader worker processes inherit the handler but are not the ones to stop: there it falls
back to the signal's default behaviour (the main process shuts its workers down itself).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Exit status of a run stopped by SIGTERM after writing its checkpoint: EX_TEMPFAIL of
# sysexits.h ("temporary failure, retry"), distinct from a crash (1), a user error (2), a
# Ctrl-C (130) and a process killed by a signal (128 + n).
EXIT_TERMINATED = 75
EXIT_INTERRUPTED = 130

_owner: int | None = None  # pid of the process that installed the handlers
_requested: int | None = None  # the signal of a pending stop request
_deferring = 0  # > 0 inside a training loop that checks for requests at step boundaries


class StopRequested(Exception):
    """A stop asked for by a signal; ``where`` says what was checkpointed, if anything."""

    def __init__(self, signum: int, where: str | None = None) -> None:
        self.signum, self.where = signum, where
        super().__init__(f"{signal.Signals(signum).name} received" + (f" ({where})" if where else ""))

    @property
    def exit_status(self) -> int:
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else EXIT_INTERRUPTED


def _handler(signum: int, frame: Any) -> None:
    global _requested
    if os.getpid() != _owner:  # a forked DataLoader worker: behave as if we had not been installed
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if _requested is not None and signum == signal.SIGINT:
        raise KeyboardInterrupt  # a second Ctrl-C: stop now, without waiting for the step to end
    _requested = signum
    if _deferring == 0:
        raise StopRequested(signum)


@contextmanager
def installed() -> Iterator[None]:
    """Handle SIGTERM and SIGINT as stop requests while the block runs (main thread only)."""
    global _owner, _requested
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    _owner, _requested = os.getpid(), None
    for s in previous:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _owner, _requested = None, None


def requested() -> int | None:
    """The signal of a pending stop request, or ``None``."""
    return _requested


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block a stop request is only recorded; the caller polls :func:`requested`."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
