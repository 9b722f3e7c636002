"""The one place that knows about ``torch.distributed``.

Every other module asks this one for the rank, the world size, and sums over processes. One
process is simply world size 1: every function below then returns its input unchanged, so no
other file needs a branch for the single-process case.

Processes are started by ``torchrun`` (or ``accelerate launch``, ``srun`` + torchrun ...), which
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables. :func:`init_from_env`
joins the process group they describe: NCCL when each process has its own CUDA device, gloo on
the CPU. Collectives time out (``DMT_DIST_TIMEOUT`` seconds, default 30 min) so a rank that died
brings the job down instead of leaving the others waiting forever.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from dmt.engine.launch import launch_rank, launch_world_size, launched  # noqa: F401  (callers ask dist.launched())

log = logging.getLogger("dmt")
T = TypeVar("T")

_DEFAULT_TIMEOUT_S = 1800.0


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the job (1 without a launcher)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank, 0 .. world_size - 1 (0 without a launcher)."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the only process that writes run files."""
    return rank() == 0


def timeout_seconds() -> float:
    return float(os.environ.get("DMT_DIST_TIMEOUT", _DEFAULT_TIMEOUT_S))


def init_from_env(device: str = "auto") -> torch.device | None:
    """Join the process group described by the launcher's environment (no-op without one).

    Args:
        device: the config's ``device`` (``auto``, ``cpu``, ``cuda``): CUDA gives every process
            the GPU ``LOCAL_RANK`` and the NCCL backend; the CPU uses gloo.

    Returns:
        The device of this process, or ``None`` when no launcher started it (the caller then
        resolves the device as usual).
    """
    if not launched() or is_initialized():
        return None
    use_cuda = not device.startswith("cpu") and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        if local >= torch.cuda.device_count():
            from dmt.errors import UserError

            raise UserError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices are visible; "
                            "start at most one process per GPU (torchrun --nproc-per-node)")
        torch.cuda.set_device(local)
    backend = "nccl" if use_cuda else "gloo"
    timeout = datetime.timedelta(seconds=timeout_seconds())
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timeout}
    if use_cuda:
        kwargs["device_id"] = torch.device("cuda", local)
    dist.init_process_group(**kwargs)
    log.debug("rank %d of %d joined (%s)", rank(), world_size(), backend)
    return torch.device("cuda", local) if use_cuda else torch.device("cpu")


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    if is_initialized():
        dist.destroy_process_group()


def backend_is_nccl() -> bool:
    """Whether the job communicates with NCCL (one GPU per process)."""
    return is_initialized() and dist.get_backend() == "nccl"


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if backend_is_nccl() else torch.device("cpu")


def barrier() -> None:
    """Wait for every process (no-op for one)."""
    if world_size() > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all processes (a new tensor; input unchanged).

    Integer tensors stay exact (int64 sums); the result lies on the input's device.
    """
    if world_size() == 1:
        return tensor.clone()
    work = tensor.detach().to(_collective_device(), copy=True)
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
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
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over all processes (a new tensor)."""
    if world_size() == 1:
        return tensor.clone()
    work = tensor.detach().to(_collective_device(), copy=True)
    dist.all_reduce(work, op=dist.ReduceOp.MAX)
    return work.to(tensor.device)


def broadcast_tensors_(tensors: list[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values (no-op for one process)."""
    if world_size() == 1:
        return
    for t in tensors:
        if t.device == _collective_device():
            dist.broadcast(t, src=src)
        else:
            work = t.to(_collective_device())
            dist.broadcast(work, src=src)
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
    dist.broadcast_object_list(box, src=src, device=_collective_device() if backend_is_nccl() else None)
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
    dist.all_gather_object(out, obj)
    return out


def shard(n: int, world: int | None = None, index: int | None = None) -> range:
    """The contiguous block of ``range(n)`` that process ``index`` of ``world`` handles.

    Blocks differ in length by at most one and cover every item exactly once, whatever ``n``:
    sharded labelling and evaluation count every image once, even when ``n`` does not divide.
    """
    world = world_size() if world is None else world
    index = rank() if index is None else index
    base, extra = divmod(n, world)
    start = index * base + min(index, extra)
    return range(start, start + base + (1 if index < extra else 0))


def per_process_batch(global_batch: int, key: str, world: int | None = None) -> int:
    """The per-process share of a global batch size; refuses one that does not divide.

    Args:
        global_batch: the config's batch size (what one step sees over all processes).
        key: the config key, named in the error.
    """
    world = world_size() if world is None else world
    if global_batch % world:
        from dmt.errors import UserError

        raise UserError(f"config key {key}: the global batch {global_batch} does not divide by the "
                        f"{world} processes; use a multiple of {world}")
    return global_batch // world


__all__ = ["all_gather_objects", "all_reduce_max", "all_reduce_sum", "all_reduce_sum_autograd", "any_process", "barrier", "broadcast_object", "broadcast_tensors_",
           "init_from_env", "is_initialized", "is_main", "launch_rank", "launch_world_size", "launched", "on_main", "per_process_batch", "rank",
           "shard", "shutdown", "timeout_seconds", "world_size"]
