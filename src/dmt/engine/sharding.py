"""How the processes of a job share the work of a stage (one process: all of it).

* Training: a step's *global* batch is the config's batch size, the same on 1 or N processes;
  its streams (pseudo-labelled and labelled crops) are concatenated and split into N equal
  contiguous parts (:func:`dmt.engine.batches.batch_slices`).
* Labelling and evaluation: every process handles a contiguous block of the items
  (:func:`shard`) and the counts are summed, so every item is counted
  exactly once whatever N.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from dmt.engine.distributed import Processes
from dmt.engine.batches import batch_slices, mix_seed
from dmt.errors import UserError

T = TypeVar("T")


def shard(n: int, world: int, index: int) -> range:
    """The contiguous block of ``range(n)`` that process ``index`` of ``world`` handles.

    Blocks differ in length by at most one and cover every item exactly once, whatever ``n``:
    sharded labelling and evaluation count every image once, even when ``n`` does not divide.
    """
    base, extra = divmod(n, world)
    start = index * base + min(index, extra)
    return range(start, start + base + (1 if index < extra else 0))


def per_process_batch(global_batch: int, key: str, world: int) -> int:
    """The per-process share of a global batch size; refuses one that does not divide.

    Args:
        global_batch: the config's batch size (what one step sees over all processes).
        key: the config key, named in the error.
        world: the number of processes sharing each batch.
    """
    if global_batch % world:
        raise UserError(f"config key {key}: the global batch {global_batch} does not divide by the "
                        f"{world} processes; use a multiple of {world}")
    return global_batch // world


def shard_items(items: Sequence[T], processes: Processes, unit: int = 1) -> list[T]:
    """This process's contiguous block of ``items`` among ``processes`` (all of them for one process).

    Args:
        unit: shard whole groups of this many items (the evaluation batch size): every process
            then sees exactly the batches one process would, padding included, so predictions
            are bitwise those of a single process.
    """
    groups = shard(-(-len(items) // unit), processes.size, processes.rank)
    return list(items[groups.start * unit:groups.stop * unit])


def stream_slices(global_batches: list[int], keys: list[str], processes: Processes
                  ) -> list[tuple[int, int] | None]:
    """This process's slice of each stream's global batch among ``processes`` (see :func:`batch_slices`).

    Args:
        global_batches: the streams' batch sizes from the config, in the order they are
            concatenated.
        keys: the config keys of those sizes, named in the error.

    Raises:
        UserError: the global batch (their sum) does not divide by the number of processes.
    """
    per_process_batch(sum(global_batches), " + ".join(keys), processes.size)
    return batch_slices(global_batches, processes.size, processes.rank)


def process_seed(seed: int, processes: Processes) -> int:
    """A step's random draws (mixup) on this process: ``seed`` itself when there is one process."""
    return mix_seed(seed, processes.rank) if processes.size > 1 else seed


def zip_streams(*streams: Iterable[Any] | None) -> Iterator[tuple[Any, ...]]:
    """Zip the streams of one step; a ``None`` stream (this process reads none of it) gives ``None``."""
    live = [iter(s) for s in streams if s is not None]
    while True:
        try:
            values = [next(it) for it in live]
        except StopIteration:
            return
        out, k = [], 0
        for s in streams:
            if s is None:
                out.append(None)
            else:
                out.append(values[k])
                k += 1
        yield tuple(out)
