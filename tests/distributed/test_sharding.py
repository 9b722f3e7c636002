"""How processes split batches, labelling and evaluation: pure functions, no processes."""

import pytest

from dmt.engine.batches import StepBatchSampler, batch_slices
from dmt.engine.sharding import per_process_batch, shard
from dmt.errors import UserError


@pytest.mark.parametrize("n", [0, 1, 2, 5, 7, 16, 101])
@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
def test_shards_cover_every_item_exactly_once(n, world):
    blocks = [shard(n, world, r) for r in range(world)]
    flat = [i for b in blocks for i in b]
    assert flat == list(range(n))  # contiguous, in rank order, nothing twice, nothing missing
    sizes = [len(b) for b in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_shard_items_in_whole_batches():
    from dmt.engine.distributed import Processes
    from dmt.engine.sharding import shard_items

    items = list(range(11))
    parts = [shard_items(items, Processes(rank=r, size=3, job_rank=r), unit=4) for r in range(3)]
    # batches of 4: [0-3], [4-7], [8-10]: one each, so every batch is one process's own
    assert parts == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]


def test_batch_slices_split_the_concatenated_streams():
    # 7 pseudo + 1 labelled crops on 2, 4 and 8 processes
    assert batch_slices([7, 1], 2, 0) == [(0, 4), None]
    assert batch_slices([7, 1], 2, 1) == [(4, 7), (0, 1)]
    assert batch_slices([7, 1], 4, 3) == [(6, 7), (0, 1)]
    assert batch_slices([7, 1], 8, 7) == [None, (0, 1)]
    assert batch_slices([56, 8], 2, 1) == [(32, 56), (0, 8)]
    with pytest.raises(ValueError, match="does not divide"):
        batch_slices([4, 1], 2, 0)


def test_per_process_batch_refuses_a_batch_that_does_not_divide():
    assert per_process_batch(8, "baseline.batch_size", world=4) == 2
    with pytest.raises(UserError, match="baseline.batch_size.*does not divide by the 3 processes"):
        per_process_batch(8, "baseline.batch_size", world=3)


def test_sampler_slices_add_up_to_the_single_process_batches():
    full = list(StepBatchSampler(10, 4, seed=3, start=0, stop=6))
    a = list(StepBatchSampler(10, 4, seed=3, start=0, stop=6, take=(0, 2), fill=True))
    b = list(StepBatchSampler(10, 4, seed=3, start=0, stop=6, take=(2, 4), fill=True))
    for step, (f, x, y) in enumerate(zip(full, a, b)):
        if len(f) == 4:  # full batches: the two halves are exactly the one-process batch
            assert x + y == f
        else:  # an epoch's short last batch is filled up with that epoch's first items
            assert (x + y)[: len(f)] == f and len(x) == len(y) == 2
            epoch_first = full[step - 2][0][0]
            assert (x + y)[len(f)][0] == epoch_first
    # resuming at a later step gives the same slices
    assert list(StepBatchSampler(10, 4, seed=3, start=4, stop=6, take=(2, 4), fill=True)) == b[4:]


@pytest.mark.parametrize("world", [2, 3, 4, 8])
def test_smoke_batches_divide_by_any_number_of_processes(world):
    from dmt.config import load_config
    from dmt.config.loader import list_presets
    from dmt.config.smoke import apply_smoke

    for name in list_presets():
        one, many = apply_smoke(load_config(name)), apply_smoke(load_config(name), world_size=world)
        for c in (many.baseline.batch_size, many.oracle.batch_size, many.phases.batch_pseudo + many.phases.batch_labelled):
            assert c % world == 0, name
        assert many.phases.batch_labelled == one.phases.batch_labelled  # the labelled part is kept
        assert many.baseline.batch_size - one.baseline.batch_size < world  # rounded up, no more
