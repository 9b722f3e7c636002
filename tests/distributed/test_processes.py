"""The processes a piece of work runs on are an explicit object: the job's and a share's side by side."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dmt.engine.distributed import ONE, Processes, joined
from dmt.engine.peers import lost_process
from dmt.engine.sharding import process_seed, shard_items, stream_slices
from dmt.errors import ProcessLost

sys.path.insert(0, str(Path(__file__).parent))
from launch import workers  # noqa: E402


def test_a_share_and_the_job_used_alternately_each_give_their_own_answers():
    job = Processes(rank=3, size=4, job_rank=3)  # the last of four processes ...
    share = Processes(rank=1, size=2, job_rank=3)  # ... the second of the second share
    items = list(range(8))
    for _ in range(2):  # alternately, twice: nothing is left behind by the previous call
        assert shard_items(items, job) == [6, 7]
        assert shard_items(items, share) == [4, 5, 6, 7]
        assert stream_slices([8], ["b"], job) == [(6, 8)]
        assert stream_slices([8], ["b"], share) == [(4, 8)]
        assert process_seed(5, job) != process_seed(5, share)
    assert (job.is_main, share.is_main, Processes(rank=0, size=2, job_rank=2).is_main) == (False, False, True)


def test_one_process_collectives_are_copies():
    t = torch.tensor([1.0, 2.0])
    assert ONE.size == 1 and ONE.is_main
    summed = ONE.all_reduce_sum(t)
    assert torch.equal(summed, t) and summed is not t
    assert ONE.all_reduce_sum_autograd(t) is t
    assert ONE.any_process(True) and not ONE.any_process(False)
    assert ONE.broadcast_object({"a": 1}) == {"a": 1} and ONE.all_gather_objects(7) == [7]
    assert ONE.on_main(lambda: 3) == 3
    assert process_seed(5, ONE) == 5


def test_joined_without_a_launcher_is_one_process_and_lets_errors_through(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with joined("cpu") as job:
        assert job is ONE
    with pytest.raises(RuntimeError, match="Connection reset by peer"):
        with joined("cpu"):  # one process has no peer to lose: the error is not reworded
            raise RuntimeError("Connection reset by peer")


def test_a_lost_peer_is_named_from_the_table_it_is_handed():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    table = [(host, 1), (host, gone.pid)]  # rank 1 has ended
    line = lost_process(RuntimeError("Connection closed by peer [127.0.0.1]:1234"), table, 0)
    assert line is not None and line.startswith(f"process {gone.pid} (rank 1) stopped; this process (rank 0)")
    assert lost_process(RuntimeError("shape mismatch"), table, 0) is None  # not a lost connection
    assert lost_process(RuntimeError("Connection closed by peer"), [], 0) is None  # no group, no peer
    assert issubclass(ProcessLost, Exception)


def test_a_peer_that_is_still_exiting_is_waited_for(monkeypatch):
    """A killed process's sockets close a moment before the kernel marks it ended: the survivor waits."""
    import dmt.engine.peers as peers

    host = socket.gethostname()
    ending = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])  # ends within the wait
    try:
        line = lost_process(RuntimeError("Connection reset by peer"), [(host, 1), (host, ending.pid)], 0)
        assert line is not None and line.startswith(f"process {ending.pid} (rank 1) stopped"), line
    finally:
        ending.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monkeypatch.setattr(peers, "SETTLE_SECONDS", 0.2)  # still running after the wait: the error is quoted
        line = lost_process(RuntimeError("Connection reset by peer"), [(host, 1), (host, alive.pid)], 0)
        assert line is not None and line.startswith("a process of this job stopped (Connection reset by peer)"), line
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.slow
def test_two_processes_split_into_shares_answer_for_the_share_or_the_job(tmp_path):
    proc = workers("shares", tmp_path, nproc=2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"shares-rank{rank}.json").read_text())
        assert seen["job"] == [rank, 2, rank == 0]
        assert seen["share"] == [0, 1, True]  # each process is a share of its own
        assert seen["job_sum"] == seen["job_sum_again"] == 3.0  # 1 + 2
        assert seen["share_sum"] == rank + 1.0  # its own value alone
        assert seen["job_ranks"] == [0, 1] and seen["share_ranks"] == [rank]
        assert seen["grad"] == [3.0, 3.0]  # backward sums the gradients over the processes
