"""Cityscapes reader on a tiny tree in the official layout: splits, labelId mapping, downsampling."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from seg_fixtures import CITY_IDS, CITY_TRAIN_IDS, city_mask, smooth_image, tree_hashes, write_cityscapes_tree

from dmt.data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, cityscapes_label_map, cityscapes_source
from dmt.data.segmentation import SegmentationDataset, collate_segmentation
from dmt.data.transforms import seg_train_transform
from dmt.errors import UserError


@pytest.fixture
def city(tmp_path: Path) -> Path:
    return write_cityscapes_tree(tmp_path / "cityscapes")


def test_label_ids_map_to_the_19_train_ids():
    table = cityscapes_label_map()
    assert table.shape == (256,) and table.dtype == np.uint8
    assert table[[7, 26, 0, 1, 33]].tolist() == [0, 13, 255, 255, 18]
    assert table[CITY_IDS].tolist() == CITY_TRAIN_IDS.tolist()
    valid = np.flatnonzero(table != 255)
    assert valid.tolist() == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert table[valid].tolist() == list(range(19))
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_PALETTE.shape == (19, 3)
    assert CITYSCAPES_CLASSES[13] == "car" and CITYSCAPES_PALETTE[0].tolist() == [128, 64, 128]


def test_splits_walk_the_folders_in_sorted_order(city: Path):
    source = cityscapes_source(city)
    names = [i.name for i in source.items("train")]
    assert names == ["aachen/aachen_000000_000019", "aachen/aachen_000001_000029", "bremen/bremen_000000_000019"]
    item = source.items("train")[2]
    assert item.image == city / "leftImg8bit/train/bremen/bremen_000000_000019_leftImg8bit.png"
    assert item.mask == city / "gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png"
    val = [i.name for i in source.items("val")]
    assert val == ["frankfurt/frankfurt_000000_000019", "frankfurt/frankfurt_000001_000029"]
    test_items = source.items("test")
    assert len(test_items) == 1 and test_items[0].mask is None


def test_reading_halves_the_size_and_maps_ids_with_nearest(city: Path):
    source = cityscapes_source(city)
    assert source.scale == 0.5
    sample = SegmentationDataset(source.items("train"), source)[2]  # bremen: fixture item k=0
    assert sample["image"].shape == (3, 16, 32) and sample["mask"].shape == (16, 32)
    assert sample["size"] == (16, 32)
    ids = city_mask(0, (32, 64))
    # 2x2-constant labelIds: nearest downsampling keeps exactly one id per block, then maps it.
    expected = torch.from_numpy(cityscapes_label_map()[ids[::2, ::2]]).long()
    assert torch.equal(sample["mask"], expected)
    assert set(sample["mask"].unique().tolist()) <= {0, 13, 255, 18, 1, 11, 4}
    # Antialiased bilinear: a smooth image shrinks to (about) its 2x2 block means.
    full = torch.from_numpy(smooth_image(100 + 0, (32, 64))).permute(2, 0, 1).float() / 255
    blocks = full.reshape(3, 16, 2, 32, 2).mean((2, 4))
    assert (sample["image"] - blocks).abs().mean() < 0.02


def test_scale_one_keeps_full_resolution(city: Path):
    source = cityscapes_source(city, scale=1.0)
    sample = SegmentationDataset(source.items("val"), source)[0]
    assert sample["image"].shape == (3, 32, 64)
    k = 3  # frankfurt_000000 is the fourth frame the fixture wrote
    assert torch.equal(sample["mask"], torch.from_numpy(cityscapes_label_map()[city_mask(k, (32, 64))]).long())


def test_names_resolve_to_their_split_folder(city: Path):
    source = cityscapes_source(city)
    items = source.items_from_names(["frankfurt/frankfurt_000001_000029", "aachen/aachen_000000_000019"])
    assert "leftImg8bit/val/frankfurt" in str(items[0].image) and "gtFine/train/aachen" in str(items[1].mask)
    with pytest.raises(UserError, match="should look like"):
        source.items_from_names(["aachen_000000_000019"])
    with pytest.raises(UserError, match="paris"):
        source.items_from_names(["paris/paris_000000_000019"])


def test_missing_files_and_layout_are_named(city: Path, tmp_path: Path):
    mask = city / "gtFine/train/aachen/aachen_000001_000029_gtFine_labelIds.png"
    mask.unlink()
    with pytest.raises(UserError, match=r"aachen_000001_000029_gtFine_labelIds\.png"):
        cityscapes_source(city).items("train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="leftImg8bit/ and gtFine/"):
        cityscapes_source(empty)
    with pytest.raises(UserError, match="data.scale"):
        cityscapes_source(city, scale=0)


def test_train_transform_crops_jointly_after_downsampling(city: Path):
    source = cityscapes_source(city)
    ds = SegmentationDataset(source.items("train"), source, seg_train_transform((8, 16), fill=source.mean))
    torch.manual_seed(0)
    batch = collate_segmentation([ds[i] for i in range(len(ds))])
    assert batch["image"].shape == (3, 3, 8, 16) and batch["mask"].shape == (3, 8, 16)
    assert set(batch["mask"].unique().tolist()) <= {0, 13, 255, 18, 1, 11, 4}


def test_reading_leaves_the_tree_byte_identical(city: Path):
    before = tree_hashes(city)
    source = cityscapes_source(city)
    for split in ("train", "val"):
        list(SegmentationDataset(source.items(split), source))
    ds = SegmentationDataset(source.items("test"), source, with_mask=False)
    list(pickle.loads(pickle.dumps(ds)))
    assert tree_hashes(city) == before
