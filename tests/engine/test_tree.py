"""The one walk over nested batches: every tensor mapped, the structure kept, nothing else touched."""

from __future__ import annotations

import torch

from dmt.engine.accel import to_channels_last
from dmt.engine.loop import move_to
from dmt.engine.tree import map_tensors


def test_every_tensor_is_mapped_and_the_structure_kept():
    batch = {"image": torch.ones(2), "pair": (torch.zeros(1), [torch.tensor(3.0), "name"]), "n": 4, "none": None}
    out = map_tensors(lambda t: t + 1, batch)
    assert list(out) == ["image", "pair", "n", "none"]
    assert torch.equal(out["image"], torch.full((2,), 2.0))
    assert isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
    assert torch.equal(out["pair"][0], torch.ones(1)) and float(out["pair"][1][0]) == 4.0
    assert out["pair"][1][1] == "name" and out["n"] == 4 and out["none"] is None
    assert torch.equal(batch["image"], torch.ones(2))  # the input is left as it was


def test_moving_and_channels_last_are_walks_of_it():
    image, mask = torch.rand(2, 3, 4, 5), torch.zeros(2, 4, 5, dtype=torch.long)
    moved = move_to({"x": [image, mask]}, torch.device("cpu"))
    assert torch.equal(moved["x"][0], image) and torch.equal(moved["x"][1], mask)
    nhwc = to_channels_last((image, mask, torch.zeros(2, 1, 3, 3, dtype=torch.long)))
    assert nhwc[0].is_contiguous(memory_format=torch.channels_last) and not nhwc[0].is_contiguous()
    assert nhwc[1] is mask and nhwc[2].is_contiguous()  # masks and integer tensors untouched
