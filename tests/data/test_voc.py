"""PASCAL VOC 2012 + SBD reader on tiny trees in the official layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from seg_fixtures import smooth_image, tree_hashes, voc_mask, write_voc_tree

from dmt.data.segmentation import SegmentationDataset, collate_segmentation
from dmt.data.transforms import seg_eval_transform, seg_train_transform
from dmt.data.voc import VOC_CLASSES, VOC_MEAN, voc_colormap, voc_source
from dmt.errors import UserError


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    return write_voc_tree(tmp_path / "data")


def test_palette_is_the_voc_devkit_colour_map():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert cmap[0].tolist() == [0, 0, 0]
    assert cmap[1].tolist() == [128, 0, 0]
    assert cmap[2].tolist() == [0, 128, 0]
    assert cmap[15].tolist() == [192, 128, 128]  # person
    assert cmap[20].tolist() == [0, 64, 128]  # tvmonitor
    assert cmap[255].tolist() == [224, 224, 192]  # the cream ignore border
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[15] == "person"


@pytest.mark.parametrize("below", ["", "VOC2012", "VOCdevkit/VOC2012"])
def test_root_may_be_the_voc2012_folder_or_above_it(tmp_path: Path, below: str):
    base = write_voc_tree(tmp_path, below=below)
    source = voc_source(tmp_path)
    assert source.root == base
    assert source.num_classes == 21 and source.palette.shape == (21, 3)
    assert [i.name for i in source.items("train")] == ["2007_000032", "2007_000039"]


def test_root_without_voc_is_a_clear_error(tmp_path: Path):
    with pytest.raises(UserError, match="JPEGImages"):
        voc_source(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        voc_source(tmp_path / "nope")


def test_split_items_follow_the_list_file_order(voc: Path):
    source = voc_source(voc)
    items = source.items("train_aug")
    assert [i.name for i in items] == ["2007_000032", "2007_000039", "2008_000002", "2011_003276"]
    assert items[2].image == voc / "JPEGImages" / "2008_000002.jpg"
    assert items[2].mask == voc / "SegmentationClassAug" / "2008_000002.png"


def test_trainaug_spelling_and_deeplab_style_lines_are_accepted(tmp_path: Path):
    base = write_voc_tree(tmp_path, train_aug_file="trainaug.txt")
    (base / "ImageSets/Segmentation/mine.txt").write_text(
        "/JPEGImages/2007_000039.jpg /SegmentationClassAug/2007_000039.png\n2008_000002\n\n"
    )
    source = voc_source(tmp_path)
    assert len(source.items("train_aug")) == 4
    assert [i.name for i in source.items_from_file("ImageSets/Segmentation/mine.txt")] == ["2007_000039", "2008_000002"]


def test_sample_holds_float_image_exact_palette_indices_and_metadata(voc: Path):
    source = voc_source(voc)
    ds = SegmentationDataset(source.items("train_aug"), source)
    sample = ds[1]  # item k=1: one pixel wider than k=0
    assert sample["name"] == "2007_000039" and sample["index"] == 1 and sample["size"] == (24, 33)
    image, mask = sample["image"], sample["mask"]
    assert image.dtype == torch.float32 and image.shape == (3, 24, 33)
    assert 0.0 <= image.min() and image.max() <= 1.0
    expected = torch.from_numpy(smooth_image(1, (24, 33))).permute(2, 0, 1).float() / 255
    assert (image - expected).abs().mean() < 0.03  # JPEG quality 95
    assert mask.dtype == torch.int64
    assert torch.equal(mask, torch.from_numpy(voc_mask(1, (24, 33))).long())  # palette indices, 255 kept
    assert (mask == 255).any() and (mask < 21).any()


def test_masks_are_palette_pngs_read_as_indices_not_colours(voc: Path):
    path = voc / "SegmentationClassAug" / "2007_000032.png"
    assert Image.open(path).mode == "P"
    ds = SegmentationDataset(voc_source(voc).items("train"), voc_source(voc))
    assert int(ds[0]["mask"].max()) == 255 and int(ds[0]["mask"][1:-1, 1:-1].min()) < 21


def test_unlabelled_use_reads_no_mask(voc: Path):
    source = voc_source(voc)
    sample = SegmentationDataset(source.items("train"), source, with_mask=False)[0]
    assert set(sample) == {"image", "name", "size", "index"}


def test_pseudo_targets_replace_the_mask_and_move_with_the_image(voc: Path):
    source = voc_source(voc)
    items = source.items("train_aug")
    sizes = {i.name: SegmentationDataset([i], source, with_mask=False)[0]["size"] for i in items}

    def targets(name: str) -> tuple[np.ndarray, np.ndarray]:
        h, w = sizes[name]
        classes = (np.arange(h * w).reshape(h, w) % 21).astype(np.uint8)
        classes[:, :3] = 255  # not kept by the thresholds
        return classes, (classes.astype(np.float16) / 32)

    for name in sizes:  # the ground-truth masks must not be read
        (voc / "SegmentationClassAug" / f"{name}.png").write_bytes(b"not a png")
    plain = SegmentationDataset(items, source, targets=targets)[0]
    assert torch.equal(plain["mask"], torch.from_numpy(targets(items[0].name)[0]).long())
    assert plain["confidence"].dtype == torch.float32
    ds = SegmentationDataset(items, source, seg_train_transform((20, 20), fill=source.mean), targets=targets)
    for seed in range(4):
        torch.manual_seed(seed)
        sample = ds[seed]
        mask, conf = sample["mask"], sample["confidence"]
        assert mask.shape == conf.shape == (20, 20) and mask.dtype == torch.int64
        kept = mask != 255
        expected = torch.from_numpy((mask[kept].numpy().astype(np.float16) / 32).astype(np.float32))
        assert torch.equal(conf[kept], expected)  # nearest for both: pairs stay together
    wrong = SegmentationDataset(items, source, targets=lambda n: (np.zeros((2, 2), np.uint8), np.zeros((2, 2))))
    with pytest.raises(ValueError, match="pseudo labels"):
        wrong[0]


def test_missing_list_image_and_mask_name_the_file(voc: Path, tmp_path: Path):
    source = voc_source(voc)
    (voc / "ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(UserError, match=r"val\.txt"):
        source.items("val")
    (voc / "JPEGImages/2007_000039.jpg").unlink()
    with pytest.raises(UserError, match=r"JPEGImages/2007_000039\.jpg"):
        source.items("train")
    (voc / "SegmentationClassAug/2008_000002.png").unlink()
    with pytest.raises(UserError, match=r"SegmentationClassAug/2008_000002\.png.*SBD"):
        source.items_from_names(["2008_000002"])
    with pytest.raises(UserError, match="unknown split 'test'"):
        source.items("test")


def test_missing_aug_folder_points_to_sbd(tmp_path: Path):
    base = write_voc_tree(tmp_path)
    for p in (base / "SegmentationClassAug").iterdir():
        p.unlink()
    (base / "SegmentationClassAug").rmdir()
    with pytest.raises(UserError, match=r"SegmentationClassAug.*https?://"):
        voc_source(tmp_path)


def test_out_of_range_mask_value_names_the_file(voc: Path):
    path = voc / "SegmentationClassAug" / "2007_000032.png"
    bad = np.array(Image.open(path))
    bad[5, 5] = 30
    Image.fromarray(bad).save(path)
    source = voc_source(voc)
    with pytest.raises(UserError, match=r"2007_000032\.png.*\[30\]"):
        SegmentationDataset(source.items("train"), source)[0]


def test_eval_pads_to_505_with_mean_colour_and_ignore(voc: Path):
    source = voc_source(voc)
    plain = SegmentationDataset(source.items("val"), source)
    padded = SegmentationDataset(source.items("val"), source, seg_eval_transform((505, 505), fill=source.mean))
    for raw, pad in zip(plain, padded):
        h, w = raw["size"]
        assert pad["image"].shape == (3, 505, 505) and pad["mask"].shape == (505, 505)
        assert pad["size"] == (h, w)
        assert torch.equal(pad["image"][:, :h, :w], raw["image"])  # the image stays top-left
        assert torch.equal(pad["mask"][:h, :w], raw["mask"])
        assert (pad["mask"][h:, :] == 255).all() and (pad["mask"][:, w:] == 255).all()
        fill = torch.tensor(VOC_MEAN).view(3, 1, 1)
        assert torch.allclose(pad["image"][:, h:, :], fill.expand(3, 505 - h, 505))
        assert torch.allclose(pad["image"][:, :, w:], fill.expand(3, 505, 505 - w))
    batch = collate_segmentation([padded[0], padded[1]])
    assert batch["image"].shape == (2, 3, 505, 505) and batch["mask"].shape == (2, 505, 505)
    assert batch["name"] == ["2007_000033", "2010_000005"] and batch["size"] == [(24, 32), (24, 33)]
    assert batch["index"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="different sizes"):
        collate_segmentation([plain[0], plain[1]])


def test_reading_leaves_the_tree_byte_identical_and_dataset_pickles(voc: Path):
    before = tree_hashes(voc)
    source = voc_source(voc)
    for split in source.split_names:
        ds = SegmentationDataset(source.items(split), source, seg_eval_transform((505, 505)))
        list(ds)
    clone = pickle.loads(pickle.dumps(ds))  # spawn-started DataLoader workers pickle the dataset
    assert torch.equal(clone[0]["mask"], ds[0]["mask"])
    assert tree_hashes(voc) == before


def test_scale_resizes_images_and_masks_on_reading(tmp_path: Path):
    base = write_voc_tree(tmp_path, size=(40, 64))
    name = voc_source(base).list_split("val")[0]
    full = SegmentationDataset(voc_source(base).items_from_names([name]), voc_source(base))[0]
    half_source = voc_source(base, scale=0.5)
    half = SegmentationDataset(half_source.items_from_names([name]), half_source)[0]
    h, w = full["size"]
    assert half["size"] == (h // 2, (w + 1) // 2) and half["image"].shape[1:] == half["mask"].shape == half["size"]
    assert set(half["mask"].unique().tolist()) <= set(full["mask"].unique().tolist())  # nearest: no new ids
    with pytest.raises(UserError, match="scale"):
        voc_source(base, scale=0.0)


def test_float16_confidence_through_the_transforms_equals_float32(voc: Path):
    """Stored float16 confidences are converted after the crop: the same values as converting first."""
    source = voc_source(voc)
    items = source.items("train_aug")
    rng = np.random.default_rng(0)
    maps = {}
    for it in items:
        h, w = SegmentationDataset([it], source, with_mask=False)[0]["size"]
        maps[it.name] = (rng.integers(0, 21, (h, w)).astype(np.uint8), rng.random((h, w)).astype(np.float16))
    tf = seg_train_transform((20, 20), scale_range=(0.5, 2.0), fill=source.mean)
    half = SegmentationDataset(items, source, tf, targets=lambda n: maps[n])
    full = SegmentationDataset(items, source, tf, targets=lambda n: (maps[n][0], maps[n][1].astype(np.float32)))
    for seed in range(6):
        torch.manual_seed(seed)
        a = half[seed % len(items)]
        torch.manual_seed(seed)
        b = full[seed % len(items)]
        assert a["confidence"].dtype == torch.float32
        for key in ("image", "mask", "confidence"):
            assert torch.equal(a[key], b[key]), key
