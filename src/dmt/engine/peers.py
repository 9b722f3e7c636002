"""Which process of a job stopped: the one line a surviving process prints instead of a traceback.

When a process dies (killed, out of memory, a lost machine), the collectives of the others fail
with a connection error. :func:`lost_process` recognises those errors and names the processes of
this machine that have ended, by id and rank, from the table :mod:`dmt.engine.distributed`
gathers when the group forms (:attr:`~dmt.engine.distributed.Processes.peers`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

# A killed process's sockets close while it exits, a moment before the kernel marks it ended: the
# survivor's collective can fail first. So much time it waits for the process to show as ended.
SETTLE_SECONDS = 2.0

# what a collective says when the process at the other end is gone (gloo's TCP pairs, NCCL)
PEER_LOST = ("closed by peer", "reset by peer", "Broken pipe", "Connection refused", "communicator was aborted",
             "remote process exited")


def _gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has ended (a zombie waiting for its parent has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):  # no /proc (not Linux): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def lost_process(exc: BaseException, table: Sequence[tuple[str, int]], me: int) -> str | None:
    """The one line a surviving process prints when ``exc`` is a collective that lost its peer, else None.

    Args:
        table: ``(host, pid)`` of every rank of the job, in rank order (empty: no group, nothing to lose).
        me: this process's rank in the job.

    Processes of this machine that have ended are named by id and rank; a process on another
    machine is not visible from here, so the line then quotes the connection error.
    """
    text = str(exc)
    if not table or not any(s in text for s in PEER_LOST):
        return None
    host = socket.gethostname()
    local = [(r, pid) for r, (h, pid) in enumerate(table) if h == host and r != me]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        gone = [f"process {pid} (rank {r})" for r, pid in local if _gone(pid)]
        if gone or not local or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    what = " and ".join(gone) + " stopped" if gone else \
        f"a process of this job stopped ({text.strip().splitlines()[0][:200]})"
    return (f"{what}; this process (rank {me}) cannot go on without it. Re-run the same command to resume from "
            "the last checkpoint, or start torchrun with --max-restarts K to restart automatically")
