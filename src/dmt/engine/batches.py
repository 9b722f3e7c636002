"""Resumable, deterministic batch streams.

A training stage is a fixed number of steps. The images of step ``s`` and the random
augmentation of each of them are a pure function of (stage seed, stream, ``s``): the stream's
epoch ``e = s // steps_per_epoch`` is a permutation seeded by ``(seed, e)``, and every sample
is augmented under its own seed. Resuming at step ``s`` therefore sees exactly the batches an
uninterrupted run would have seen, whatever the number of workers.

With several processes (:mod:`dmt.engine.distributed`) the *global* batch of step ``s`` is the
same as with one, and each process reads its own contiguous slice ``[lo, hi)`` of it. An epoch's
last, incomplete batch is then filled up with that epoch's first items, so every process always
gets its full share (one process keeps today's short last batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dmt.errors import UserError, unwrap_worker_error

_MASK64 = (1 << 64) - 1


class _Loader(DataLoader):
    """A DataLoader whose workers' :class:`UserError` reaches the caller as the original line."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        it = super().__iter__()
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except UserError as exc:
                original = unwrap_worker_error(exc)
                if original is None:
                    raise
                # stop the workers now: the error's traceback keeps this iterator alive, and its
                # shutdown would otherwise wait for every worker's timeout when it is collected
                shutdown = getattr(it, "_shutdown_workers", None)
                if shutdown is not None:
                    shutdown()
                raise original from None
            yield batch


def mix_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (splitmix64 over the parts)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & _MASK64)) & _MASK64
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        x = z ^ (z >> 31)
    return x >> 1


def steps_per_epoch(num_items: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches in one pass over ``num_items`` (at least 1)."""
    if num_items <= 0:
        raise ValueError("cannot make batches from an empty set")
    n = num_items // batch_size if drop_last else math.ceil(num_items / batch_size)
    return max(n, 1)


class StepBatchSampler(Sampler):
    """Yields, for steps ``start .. stop - 1``, lists of ``(index, sample_seed)`` pairs.

    Args:
        num_items: size of the dataset.
        batch_size: items per batch (the last batch of an epoch may be smaller unless drop_last).
        seed: the stream's seed.
        start: first step to yield (resume point).
        stop: one past the last step.
        shuffle: new permutation every epoch; ``False`` keeps dataset order.
        drop_last: drop an epoch's incomplete last batch (if the set holds at least one batch).
        take: the slice ``(lo, hi)`` of every global batch this process reads (default: all).
        fill: complete an epoch's short last batch with the epoch's first items (cyclically),
            so that every slice is full; set when several processes share each batch.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int, stop: int,
                 shuffle: bool = True, drop_last: bool = False, take: tuple[int, int] | None = None,
                 fill: bool = False) -> None:
        self.n, self.bs, self.seed = num_items, batch_size, seed
        self.start, self.stop, self.shuffle = start, stop, shuffle
        self.drop_last = drop_last and num_items >= batch_size
        self.per_epoch = steps_per_epoch(num_items, batch_size, self.drop_last)
        self.take = take if take is not None else (0, batch_size)
        if not 0 <= self.take[0] <= self.take[1] <= batch_size:
            raise ValueError(f"slice {self.take} is not inside a batch of {batch_size}")
        self.fill = fill

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def _order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, order = -1, None
        for step in range(self.start, self.stop):
            e, pos = divmod(step, self.per_epoch)
            if e != epoch:
                epoch, order = e, self._order(e)
            idx = order[pos * self.bs:(pos + 1) * self.bs].tolist()
            if self.fill and len(idx) < self.bs:
                idx += [int(order[k % self.n]) for k in range(self.bs - len(idx))]
            lo, hi = self.take
            yield [(i, mix_seed(self.seed, e, i)) for i in idx[lo:hi]]


class SeededDataset(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is produced under its own RNG seed.

    torchvision's random transforms draw from torch's global CPU generator; seeding it per item
    keeps augmentation reproducible, and restoring its state afterwards leaves the caller's RNG
    untouched. (``torch.random.fork_rng`` + ``torch.manual_seed`` does the same but costs ~100x
    more, which matters for tiny images.)
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        saved = torch.get_rng_state()
        torch.default_generator.manual_seed(seed)
        try:
            return self.base[index]
        finally:
            torch.set_rng_state(saved)


def step_loader(dataset: Dataset, batch_size: int, seed: int, start: int, stop: int, *,
                shuffle: bool = True, drop_last: bool = False, num_workers: int = 0,
                collate_fn: Callable | None = None, pin_memory: bool = False,
                take: tuple[int, int] | None = None, fill: bool = False) -> DataLoader:
    """A DataLoader over steps ``start .. stop - 1`` of a deterministic stream (see module doc).

    ``take``: this process's slice of each global batch (see :class:`StepBatchSampler`);
    ``fill``: short batches are filled up, so every slice is full (for several processes).
    """
    sampler = StepBatchSampler(len(dataset), batch_size, seed, start, stop, shuffle, drop_last,  # type: ignore[arg-type]
                               take=take, fill=fill)
    # a private generator: DataLoader would otherwise draw its worker base seed from the global RNG
    return _Loader(SeededDataset(dataset), batch_sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_fn, pin_memory=pin_memory, generator=torch.Generator().manual_seed(seed),
                      persistent_workers=False, prefetch_factor=4 if num_workers > 0 else None)


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int = 0,
                collate_fn: Callable | None = None, pin_memory: bool = False) -> DataLoader:
    """Plain in-order batches for evaluation and labelling.

    ``pin_memory`` (for a CUDA device): batches in page-locked memory, so that the callers'
    ``non_blocking`` copies overlap the previous batch's compute instead of waiting for it.
    """
    return _Loader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                   collate_fn=collate_fn, pin_memory=pin_memory)


def batch_slices(sizes: list[int], world: int, index: int) -> list[tuple[int, int] | None]:
    """This process's slice of each stream when one step's global batch is several streams.

    A step concatenates streams (e.g. 7 pseudo-labelled + 1 labelled crops); the concatenated
    global batch is split into ``world`` equal contiguous parts, and process ``index`` reads
    the part of each stream that falls into its own. ``None`` marks a stream it reads nothing
    of (e.g. the single labelled crop lands on the last process only).

    Raises:
        ValueError: if the global batch does not divide by ``world``.
    """
    total = sum(sizes)
    if total % world:
        raise ValueError(f"global batch {total} does not divide by {world} processes")
    per = total // world
    lo, hi = index * per, (index + 1) * per
    out: list[tuple[int, int] | None] = []
    offset = 0
    for n in sizes:
        a, b = max(lo, offset), min(hi, offset + n)
        out.append((a - offset, b - offset) if b > a else None)
        offset += n
    return out
