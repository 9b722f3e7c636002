"""The ``smoke_preflight`` bench item's fabricated folder is what it says, and its variant checks every mask."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dmt.bench import ITEMS
from dmt.bench.preflight_item import DISTINCT, SIZE, fabricate_folder, preflight_variants, smoke_preflight


def test_fabricated_folder_has_voc_sized_masks_and_images(tmp_path):
    root = fabricate_folder(tmp_path / "f", count=DISTINCT + 4, val=3)
    masks, images = sorted((root / "masks").iterdir()), sorted((root / "images").iterdir())
    assert len(masks) == len(images) == DISTINCT + 4
    assert len((root / "splits" / "val.txt").read_text().split()) == 3
    with Image.open(masks[-1]) as m, Image.open(images[-1]) as i:
        assert m.mode == "P" and m.size == i.size == SIZE[::-1]
        values = np.unique(np.asarray(m))
    assert values[0] == 0 and values[-1] == 255 and ((values < 21) | (values == 255)).all() and len(values) >= 3
    # masks past the distinct ones are the same bytes under their own names
    assert masks[DISTINCT].read_bytes() == masks[0].read_bytes() != masks[1].read_bytes()


def test_the_variant_runs_the_smoke_preflight_over_every_mask(tmp_path):
    assert ITEMS["smoke_preflight"] is smoke_preflight
    root = fabricate_folder(tmp_path / "f", count=10, val=2)
    (variant,) = preflight_variants(False, root)
    variant.prepare()
    variant.run()
    assert variant.info["masks"] == variant.info["images"] == 10 and variant.info["rss_before_mib"] > 0
