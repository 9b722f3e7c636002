"""The one place that knows about ``torch.distributed``: the processes a piece of work runs on.

A :class:`Processes` names the processes some work runs on: its process group, this process's
rank in it, their number, and the collectives over them as methods. There is one for the whole
job (:func:`joined`, :func:`init_from_env`) and one for each share of it (:meth:`Processes.split`,
members trained side by side); the stage's context carries the one its work runs on, and every
caller uses the object it is handed, so no call depends on which group an earlier call chose.
One process is simply :data:`ONE` (world size 1): every collective then returns its input
unchanged, so no other file needs a branch for the single-process case.

Processes are started by ``torchrun`` (or ``accelerate launch``, ``srun`` + torchrun ...), which
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables. :func:`init_from_env`
joins the process group they describe: NCCL when each process has its own CUDA device, gloo on
the CPU. Collectives time out (``DMT_DIST_TIMEOUT`` seconds, default 30 min) so a rank that died
brings the job down instead of leaving the others waiting forever; when a collective fails
because a process stopped, :func:`joined` raises :class:`~dmt.errors.ProcessLost` naming it (the
processes' ids are gathered when the group forms, :mod:`dmt.engine.peers`) so the survivors
print one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.distributed._functional_collectives import all_reduce as _differentiable_all_reduce

from dmt.engine.launch import launch_rank, launch_world_size, launched  # noqa: F401  (re-exported)
from dmt.engine.peers import lost_process
from dmt.errors import ProcessLost, UserError

log = logging.getLogger("dmt")
T = TypeVar("T")

_DEFAULT_TIMEOUT_S = 1800.0


@dataclasses.dataclass(frozen=True)
class Processes:
    """The processes a piece of work runs on: the whole job, or one share of it.

    Attributes:
        rank: this process's rank among them, ``0 .. size - 1``.
        size: how many they are (1: this process alone; every collective is then a copy).
        group: their ``torch.distributed`` process group (``None``: the job's default group).
        job_rank: this process's rank in the whole job, whatever share it works in.
        backend: ``"nccl"`` or ``"gloo"`` (``""`` for one process).
        cuda: whether the job's processes compute on GPUs (NCCL, or gloo when they share GPUs).
        peers: ``(host, pid)`` of every rank of the job, in rank order (empty for one process).
    """

    rank: int = 0
    size: int = 1
    group: Any = None
    job_rank: int = 0
    backend: str = ""
    cuda: bool = False
    peers: tuple[tuple[str, int], ...] = ()

    def __deepcopy__(self, memo: dict) -> Processes:
        # immutable, and it names live process groups: a copied model (an EMA) keeps the same processes
        return self

    @property
    def is_main(self) -> bool:
        """Rank 0 of these processes: the one that writes their files."""
        return self.rank == 0

    def shows_progress(self, tty: bool | None = None) -> bool:
        """Whether this process draws progress: rank 0 of these processes, and on a terminal
        (``tty``, default: whether stderr is one) only the job's rank 0 (one bar per terminal;
        members trained side by side report in log lines)."""
        tty = sys.stderr.isatty() if tty is None else tty
        return self.is_main and (self.job_rank == 0 or not tty)

    def split(self, shares: int) -> Processes:
        """Cut these processes into ``shares`` equal, consecutive shares; returns this process's.

        Every process must call this alike (torch creates groups collectively). The shares' groups
        use NCCL when each process of a share has a device of its own, else gloo.
        """
        if self.size % shares:
            raise ValueError(f"{self.size} processes cannot be split into {shares} equal shares")
        per = self.size // shares
        mine, group = self.rank // per, None
        devices = self.all_gather_objects(torch.cuda.current_device() if self.cuda else None)
        for share in range(shares):
            ranks = list(range(share * per, (share + 1) * per))
            # NCCL where each process of the share has a GPU of its own; gloo otherwise (CPU, or
            # processes sharing a GPU, which one NCCL communicator cannot hold)
            distinct = self.cuda and len({devices[r] for r in ranks}) == len(ranks)
            made = dist.new_group(ranks, backend="nccl" if distinct else "gloo")
            if share == mine:
                group = made
        return Processes(rank=dist.get_rank(group), size=dist.get_world_size(group), group=group,
                         job_rank=self.job_rank, backend=dist.get_backend(group), cuda=self.cuda, peers=self.peers)

    # ---- collectives (each a copy of the input for one process) --------------------------------
    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def barrier(self) -> None:
        """Wait for every process (no-op for one)."""
        if self.size > 1:
            dist.barrier(group=self.group)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over the processes (a new tensor; input unchanged).

        Integer tensors stay exact (int64 sums); the result lies on the input's device.
        """
        return self._all_reduce(tensor, dist.ReduceOp.SUM)

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise maximum over the processes (a new tensor)."""
        return self._all_reduce(tensor, dist.ReduceOp.MAX)

    def _all_reduce(self, tensor: torch.Tensor, op: Any) -> torch.Tensor:
        if self.size == 1:
            return tensor.clone()
        work = tensor.detach().to(self._device(), copy=True)
        dist.all_reduce(work, op=op, group=self.group)
        return work.to(tensor.device)

    def all_reduce_sum_autograd(self, tensor: torch.Tensor) -> torch.Tensor:
        """:meth:`all_reduce_sum` that gradients flow through (backward sums the gradients too).

        For values every process's loss depends on, such as SyncBatchNorm's batch statistics.
        """
        if self.size == 1:
            return tensor
        # torch's differentiable all-reduce: its backward is the sum of the gradients over the
        # processes (torch.distributed.nn.functional.all_reduce, deprecated since, did the same)
        group = self.group if self.group is not None else dist.group.WORLD
        return _differentiable_all_reduce(tensor, "sum", group)

    def broadcast_tensors_(self, tensors: list[torch.Tensor], src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s values (no-op for one process)."""
        if self.size == 1:
            return
        for t in tensors:
            if t.device == self._device():
                dist.broadcast(t, group=self.group, group_src=src)
            else:
                work = t.to(self._device())
                dist.broadcast(work, group=self.group, group_src=src)
                t.copy_(work)

    def any_process(self, flag: bool) -> bool:
        """True when ``flag`` is true on at least one process (every process gets the same answer)."""
        if self.size == 1:
            return bool(flag)
        return bool(self.all_reduce_max(torch.tensor([1 if flag else 0], dtype=torch.int64)).item())

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every process (small picklable values made by our own code)."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, group=self.group, group_src=src,
                                   device=self._device() if self.backend == "nccl" else None)
        return box[0]

    def all_gather_objects(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (small values made by our own code)."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 alone and hand its result to every process.

        A :class:`~dmt.errors.UserError` raised by ``fn`` is raised on every process, so a mistake
        found by rank 0 (a locked run directory, a changed config) stops the whole job cleanly.
        """
        if self.size == 1:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except UserError as exc:
                error = str(exc)
        result, error = self.broadcast_object((result, error))
        if error is not None:
            exc = UserError(error)
            exc.shared = True  # type: ignore[attr-defined]  (every process raises it: printed once)
            raise exc
        return result


ONE = Processes()  # this process alone: no group, every collective a copy


def timeout_seconds() -> float:
    return float(os.environ.get("DMT_DIST_TIMEOUT", _DEFAULT_TIMEOUT_S))


def init_from_env(device: str = "auto", share_gpus: bool = False) -> Processes:
    """Join the process group described by the launcher's environment; the job's processes.

    Without a launcher this returns :data:`ONE` and joins nothing. The caller leaves the group
    with :func:`shutdown`; :func:`joined` does both around a block.

    Args:
        device: the config's ``device`` (``auto``, ``cpu``, ``cuda``): CUDA gives every process
            the GPU ``LOCAL_RANK`` and the NCCL backend; the CPU uses gloo.
        share_gpus: more processes than GPUs are allowed (members side by side: process
            ``LOCAL_RANK`` takes GPU ``LOCAL_RANK mod count``); the job then talks over gloo and
            each member's share over NCCL where its processes have GPUs of their own.
    """
    if not launched():
        return ONE
    use_cuda = not device.startswith("cpu") and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    shared = False  # several processes on one GPU
    if use_cuda:
        count = torch.cuda.device_count()
        if local >= count and not share_gpus:
            raise UserError(f"LOCAL_RANK {local} but only {count} CUDA devices are visible; start at most one "
                            "process per GPU (torchrun --nproc-per-node), or run members side by side "
                            "(train.members_in_parallel)")
        shared = launch_world_size() > count
        local %= count
        torch.cuda.set_device(local)
    backend = "nccl" if use_cuda and not shared else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(**_group_options(backend, local))
    job = Processes(rank=dist.get_rank(), size=dist.get_world_size(), job_rank=dist.get_rank(),
                    backend=dist.get_backend(), cuda=use_cuda)
    log.debug("rank %d of %d joined (%s)", job.rank, job.size, job.backend)
    # every process's (host, pid), for the line that names a process that stopped (peers.py)
    peers = job.all_gather_objects((socket.gethostname(), os.getpid()))
    return dataclasses.replace(job, peers=tuple(tuple(p) for p in peers))


def _group_options(backend: str, local: int) -> dict[str, Any]:
    """``init_process_group``'s arguments for this launch."""
    timeout = datetime.timedelta(seconds=timeout_seconds())
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timeout}
    if backend == "nccl":
        kwargs["device_id"] = torch.device("cuda", local)
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restart and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # torchrun (--max-restarts) keeps its store across restarts: the restarted processes would
        # find the addresses their predecessors published there and fail to connect (gloo), or
        # wait forever; a prefix of this attempt's own keeps each attempt's keys apart
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), launch_world_size(),
                              is_master=False, timeout=timeout)
        kwargs.update(store=dist.PrefixStore(f"dmt/attempt{restart}", store), rank=launch_rank(),
                      world_size=launch_world_size())
    return kwargs


def shutdown(job: Processes) -> None:
    """Leave the job's process group (no-op for one process)."""
    if job.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(device: str = "auto", share_gpus: bool = False) -> Iterator[Processes]:
    """The job's processes for the length of the block: join the launcher's group, leave it after.

    A collective that fails because another process stopped leaves the block as
    :class:`~dmt.errors.ProcessLost`, whose message names that process (one line to print).
    Arguments as for :func:`init_from_env`.
    """
    job = init_from_env(device, share_gpus)
    try:
        yield job
    except (UserError, OSError):  # the user's mistake, the file system's refusal: said as they are
        raise
    except Exception as exc:
        lost = lost_process(exc, job.peers, job.job_rank) if job.size > 1 else None
        if lost is None:
            raise
        raise ProcessLost(lost) from exc
    finally:
        shutdown(job)


def restart_note() -> str | None:
    """What to log when torchrun restarted the job (``--max-restarts``) after a process stopped, else None."""
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if not restarts:
        return None
    return (f"torchrun restarted the job after a process stopped (restart {restarts} of "
            f"{os.environ.get('TORCHELASTIC_MAX_RESTARTS', '?')}): every stage resumes from its last checkpoint")


__all__ = ["ONE", "Processes", "init_from_env", "joined", "launch_rank", "launch_world_size", "launched",
           "restart_note", "shutdown", "timeout_seconds"]
