"""Digit scenes: determinism, stroke/label consistency, disjoint pools, and the shared pipeline."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as tnf
from sklearn.datasets import load_digits

from dmt.data.segmentation import SegmentationDataset, collate_segmentation
from dmt.data.transforms import seg_eval_transform, seg_train_transform
from dmt.demo.digit_scenes import (
    digit_pool,
    digit_scenes_source,
    make_digit_scenes,
    plan_digit_scenes,
    render_digit_scenes,
)

TARGETS = load_digits().target


def test_same_seed_same_scenes_other_seed_other_scenes():
    a = make_digit_scenes(20, (32, 32), seed=7)
    b = make_digit_scenes(20, (32, 32), seed=7)
    c = make_digit_scenes(20, (32, 32), seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    images, masks = a
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    assert masks.shape == (20, 32, 32) and masks.dtype == np.uint8


def test_pools_are_disjoint_and_cover_the_digits():
    train, test = digit_pool("train"), digit_pool("test")
    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(TARGETS) == 1797
    assert set(TARGETS[test]) == set(range(10))  # every class is held out too
    assert np.isin(plan_digit_scenes(200, pool="test").source, test).all()
    assert np.isin(plan_digit_scenes(200, pool="train").source, train).all()


def test_mask_is_the_thresholded_scaled_digit_with_its_class_label():
    digits = (3, 5, 8)
    plan = plan_digit_scenes(30, (40, 40), digits=digits, digits_per_scene=(1, 1), seed=3)
    _, masks = render_digit_scenes(plan, stroke_threshold=0.5)
    glyphs = load_digits().images / 16.0
    for p in range(len(plan.scene)):
        s, t, l, side = plan.scene[p], plan.top[p], plan.left[p], plan.side[p]
        assert 16 <= side <= 24  # digit_scale (2, 3) on 8 px
        label = digits.index(TARGETS[plan.source[p]]) + 1
        assert plan.label[p] == label
        glyph = torch.tensor(glyphs[plan.source[p]], dtype=torch.float32)[None, None]
        scaled = tnf.interpolate(glyph, size=(int(side), int(side)), mode="bilinear", align_corners=False)[0, 0]
        expected = np.zeros((40, 40), np.uint8)
        expected[t : t + side, l : l + side][scaled.numpy() >= 0.5] = label
        assert np.array_equal(masks[s], expected)


def test_strokes_are_brighter_than_background_and_labels_in_range():
    images, masks = make_digit_scenes(50, (48, 48), digits=(0, 1, 2), seed=1)
    assert set(np.unique(masks)) <= {0, 1, 2, 3}
    luminance = images.astype(np.float32).mean(-1)
    for lum, mask in zip(luminance, masks):
        if (mask > 0).any():
            assert lum[mask > 0].mean() > lum[mask == 0].mean() + 60


def test_overlaps_let_the_later_digit_win():
    plan = plan_digit_scenes(100, (24, 24), digits_per_scene=(3, 3), seed=0)
    _, masks = render_digit_scenes(plan)
    glyphs = load_digits().images / 16.0
    last = np.r_[plan.scene[1:] != plan.scene[:-1], True]  # the last digit painted in its scene
    covered = 0
    for p in range(len(plan.scene)):
        s, t, l, side = plan.scene[p], plan.top[p], plan.left[p], plan.side[p]
        glyph = torch.tensor(glyphs[plan.source[p]], dtype=torch.float32)[None, None]
        stroke = tnf.interpolate(glyph, size=(int(side), int(side)), mode="bilinear")[0, 0].numpy() >= 0.5
        kept = masks[s, t : t + side, l : l + side][stroke] == plan.label[p]
        if last[p]:
            assert kept.all()  # nothing is painted after it
        else:
            covered += int((~kept).sum())
    assert covered > 100  # three 16-24 px digits on 24x24 overlap: earlier strokes were covered


def test_thousand_scenes_are_fast():
    make_digit_scenes(10)  # load scikit-learn's digits once
    start = time.perf_counter()
    make_digit_scenes(1000, (48, 48), seed=0)
    assert time.perf_counter() - start < 4.0  # about 0.3-0.9 s on 2 CPU cores; 2 s is the goal


def test_source_runs_through_the_same_dataset_pipeline():
    source = digit_scenes_source(num_train=12, num_val=5, size=(32, 32), digits=(0, 1, 2), seed=0)
    assert source.class_names == ("background", "0", "1", "2") and source.palette.shape == (4, 3)
    train, val = source.items("train"), source.items("val")
    assert [i.name for i in val] == [f"val/{i:05d}" for i in range(5)]
    assert source.items_from_names(["train/00003"])[0] is train[3]
    ds = SegmentationDataset(train, source, seg_train_transform((24, 24), fill=source.mean))
    torch.manual_seed(0)
    batch = collate_segmentation([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 24, 24) and batch["mask"].dtype == torch.int64
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 2, 3, 255}
    sample = SegmentationDataset(val, source, seg_eval_transform(None))[0]
    assert sample["size"] == (32, 32)
    assert torch.equal(sample["mask"], torch.from_numpy(val[0].mask).long())
    # Samples are copies: the in-memory scenes cannot be changed through them.
    sample["image"].zero_()
    assert val[0].image.any()
    clone = pickle.loads(pickle.dumps(ds))  # spawn-started DataLoader workers pickle the dataset
    assert np.array_equal(clone.items[0].image, train[0].image)


def test_val_scenes_do_not_depend_on_train_count():
    a = digit_scenes_source(num_train=5, num_val=3, size=(24, 24))
    b = digit_scenes_source(num_train=9, num_val=3, size=(24, 24))
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a.items("val"), b.items("val")))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="distinct"):
        make_digit_scenes(2, digits=(1, 1))
    with pytest.raises(ValueError, match="digits_per_scene"):
        make_digit_scenes(2, digits_per_scene=(3, 1))
