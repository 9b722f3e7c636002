"""The one place that knows about ``torch.distributed``.

Every other module asks this one for the rank, the world size, and sums over processes. One
process is simply world size 1: every function below then returns its input unchanged, so no
other file needs a branch for the single-process case.

Processes are started by ``torchrun`` (or ``accelerate launch``, ``srun`` + torchrun ...), which
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables. :func:`init_from_env`
joins the process group they describe: NCCL when each process has its own CUDA device, gloo on
the CPU. Collectives time out (``DMT_DIST_TIMEOUT`` seconds, default 30 min) so a rank that died
brings the job down instead of leaving the others waiting forever; when a collective fails
because a process stopped, :func:`lost_process` names it (the processes' ids are gathered when
the group forms, :mod:`dmt.engine.peers`) so the survivors print one line instead of a traceback.

Independent stages (the members of a phase) may run at the same time on shares of the
processes (:func:`split`): inside :func:`within`, every function here (rank, world size,
collectives) speaks for the current share's process group, not the whole job.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from dmt.engine.launch import launch_rank, launch_world_size, launched  # noqa: F401  (callers ask dist.launched())

log = logging.getLogger("dmt")
T = TypeVar("T")

_DEFAULT_TIMEOUT_S = 1800.0
_peers: list[tuple[str, int]] = []  # (host, pid) of every rank, in rank order, once the group is formed
_group: Any = None  # the process group the functions below speak for (None: the whole job)
_uses_cuda = False  # whether the processes compute on GPUs (set when the group forms)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the job, or in the current share of it (1 without a launcher)."""
    return dist.get_world_size(_group) if is_initialized() else 1


def rank() -> int:
    """This process's rank in the job (or the current share), 0 .. world_size - 1 (0 without a launcher)."""
    return dist.get_rank(_group) if is_initialized() else 0


def is_main() -> bool:
    """Rank 0 of the job (or of the current share): the process that writes its files."""
    return rank() == 0


def job_rank() -> int:
    """This process's rank in the whole job, whatever share it works in."""
    return dist.get_rank() if is_initialized() else 0


def split(shares: int) -> tuple[int, Any]:
    """Cut the job's processes into ``shares`` equal, consecutive shares; returns ``(my share, its group)``.

    Every process must call this alike (torch creates groups collectively). The shares' groups
    use the job's backend when each process of a share has a device of its own (NCCL), else gloo.
    """
    size = world_size()
    if size % shares:
        raise ValueError(f"{size} processes cannot be split into {shares} equal shares")
    per = size // shares
    mine, group = job_rank() // per, None
    devices = all_gather_objects(torch.cuda.current_device() if _uses_cuda else None)
    for share in range(shares):
        ranks = list(range(share * per, (share + 1) * per))
        # NCCL where each process of the share has a GPU of its own; gloo otherwise (CPU, or
        # processes sharing a GPU, which one NCCL communicator cannot hold)
        distinct = _uses_cuda and len({devices[r] for r in ranks}) == len(ranks)
        made = dist.new_group(ranks, backend="nccl" if distinct else "gloo")
        if share == mine:
            group = made
    return mine, group


@contextlib.contextmanager
def within(group: Any) -> Iterator[None]:
    """Inside the block, rank, world size and collectives are those of ``group`` (a share of the job)."""
    global _group
    outer, _group = _group, group
    try:
        yield
    finally:
        _group = outer


def uses_cuda() -> bool:
    """Whether the job's processes compute on GPUs (over NCCL, or gloo when they share GPUs)."""
    return _uses_cuda


def current_group() -> Any:
    """The process group of the current share (None: the whole job), for DDP and SyncBatchNorm."""
    return _group


def timeout_seconds() -> float:
    return float(os.environ.get("DMT_DIST_TIMEOUT", _DEFAULT_TIMEOUT_S))


def init_from_env(device: str = "auto", share_gpus: bool = False) -> torch.device | None:
    """Join the process group described by the launcher's environment (no-op without one).

    Args:
        device: the config's ``device`` (``auto``, ``cpu``, ``cuda``): CUDA gives every process
            the GPU ``LOCAL_RANK`` and the NCCL backend; the CPU uses gloo.
        share_gpus: more processes than GPUs are allowed (members side by side: process
            ``LOCAL_RANK`` takes GPU ``LOCAL_RANK mod count``); the job then talks over gloo and
            each member's share over NCCL where its processes have GPUs of their own.

    Returns:
        The device of this process, or ``None`` when no launcher started it (the caller then
        resolves the device as usual).
    """
    global _uses_cuda
    if not launched() or is_initialized():
        return None
    use_cuda = not device.startswith("cpu") and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    shared = False  # several processes on one GPU
    if use_cuda:
        count = torch.cuda.device_count()
        if local >= count and not share_gpus:
            from dmt.errors import UserError

            raise UserError(f"LOCAL_RANK {local} but only {count} CUDA devices are visible; start at most one "
                            "process per GPU (torchrun --nproc-per-node), or run members side by side "
                            "(train.members_in_parallel)")
        shared = launch_world_size() > count
        local %= count
        torch.cuda.set_device(local)
    backend = "nccl" if use_cuda and not shared else "gloo"
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
    dist.init_process_group(**kwargs)
    log.debug("rank %d of %d joined (%s)", rank(), world_size(), backend)
    _peers[:] = all_gather_objects((socket.gethostname(), os.getpid()))
    _uses_cuda = use_cuda
    return torch.device("cuda", local) if use_cuda else torch.device("cpu")


def restart_note() -> str | None:
    """What to log when torchrun restarted the job (``--max-restarts``) after a process stopped, else None."""
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if not restarts:
        return None
    return (f"torchrun restarted the job after a process stopped (restart {restarts} of "
            f"{os.environ.get('TORCHELASTIC_MAX_RESTARTS', '?')}): every stage resumes from its last checkpoint")


def peers() -> list[tuple[str, int]]:
    """``(host, pid)`` of every rank, in rank order, gathered when the group formed (empty for one process)."""
    return list(_peers)


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    if is_initialized():
        dist.destroy_process_group()


def backend_is_nccl() -> bool:
    """Whether the job (or the current share) communicates with NCCL (one GPU per process)."""
    return is_initialized() and dist.get_backend(_group) == "nccl"


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if backend_is_nccl() else torch.device("cpu")


def barrier() -> None:
    """Wait for every process (no-op for one)."""
    if world_size() > 1:
        dist.barrier(group=_group)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all processes (a new tensor; input unchanged).

    Integer tensors stay exact (int64 sums); the result lies on the input's device.
    """
    if world_size() == 1:
        return tensor.clone()
    work = tensor.detach().to(_collective_device(), copy=True)
    dist.all_reduce(work, op=dist.ReduceOp.SUM, group=_group)
    return work.to(tensor.device)


def all_reduce_sum_autograd(tensor: torch.Tensor) -> torch.Tensor:
    """:func:`all_reduce_sum` that gradients flow through (backward sums the gradients too).

    For values every process's loss depends on, such as SyncBatchNorm's batch statistics.
    """
    if world_size() == 1:
        return tensor
    return _AllReduceSum.apply(tensor)


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the gradient of a sum of every process's input is the summed gradient."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=_group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=_group)
        return grad


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over all processes (a new tensor)."""
    if world_size() == 1:
        return tensor.clone()
    work = tensor.detach().to(_collective_device(), copy=True)
    dist.all_reduce(work, op=dist.ReduceOp.MAX, group=_group)
    return work.to(tensor.device)


def broadcast_tensors_(tensors: list[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values (no-op for one process)."""
    if world_size() == 1:
        return
    for t in tensors:
        if t.device == _collective_device():
            dist.broadcast(t, group=_group, group_src=src)
        else:
            work = t.to(_collective_device())
            dist.broadcast(work, group=_group, group_src=src)
            t.copy_(work)


def any_process(flag: bool) -> bool:
    """True when ``flag`` is true on at least one process (every process gets the same answer)."""
    if world_size() == 1:
        return bool(flag)
    return bool(all_reduce_max(torch.tensor([1 if flag else 0], dtype=torch.int64)).item())


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every process (small picklable values made by our own code)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, group=_group, group_src=src,
                               device=_collective_device() if backend_is_nccl() else None)
    return box[0]


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 alone and hand its result to every process.

    A :class:`~dmt.errors.UserError` raised by ``fn`` is raised on every process, so a mistake
    found by rank 0 (a locked run directory, a changed config) stops the whole job cleanly.
    """
    from dmt.errors import UserError

    if world_size() == 1:
        return fn()
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except UserError as exc:
            error = str(exc)
    result, error = broadcast_object((result, error))
    if error is not None:
        exc = UserError(error)
        exc.shared = True  # every process raises it: the command line prints it once
        raise exc
    return result


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (small values made by our own code)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj, group=_group)
    return out


__all__ = ["all_gather_objects", "all_reduce_max", "all_reduce_sum", "all_reduce_sum_autograd", "any_process",
           "barrier", "broadcast_object", "broadcast_tensors_", "current_group", "init_from_env", "is_initialized",
           "is_main", "job_rank", "launch_rank", "launch_world_size", "launched", "on_main", "peers", "rank",
           "shutdown", "split", "timeout_seconds", "uses_cuda", "within", "world_size"]
