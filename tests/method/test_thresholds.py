"""Curriculum thresholds: exact against a brute-force sort, and hand-checked small cases."""

from __future__ import annotations

import math

import pytest
import torch

from dmt.method.thresholds import (
    ConfidenceHistogram,
    apply_class_thresholds,
    class_balanced_thresholds,
    confidence_histogram,
    keep_count,
    select_most_confident,
)

# ---------------------------------------------------------------- keep_count


@pytest.mark.parametrize(
    "ratio, n, expected",
    [
        (0.29, 100, 29),  # 0.29 * 100 == 28.999999999999996 in floating point
        (0.57, 100, 57),  # 0.57 * 100 == 56.99999999999999
        (0.2, 10, 2),
        (0.2, 9, 1),  # floor(1.8)
        (0.2, 4, 0),  # floor(0.8): global selection may keep nothing
        (1 / 3, 3, 1),  # 1/3 * 3 == 1.0 exactly is not guaranteed; snapping makes it so
        (0.1 + 0.2, 10, 3),  # 0.30000000000000004
        (1.0, 7, 7),
        (1, 7, 7),
        (0.5, 0, 0),
        (0.2, 6_231_359_488, 1_246_271_897),  # Cityscapes-sized pixel counts stay exact
    ],
)
def test_keep_count(ratio: float, n: int, expected: int) -> None:
    assert keep_count(ratio, n) == expected


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.0000001, float("nan"), float("inf"), True, "0.5"])
def test_keep_count_rejects_bad_ratio(ratio) -> None:
    with pytest.raises(ValueError):
        keep_count(ratio, 10)


def test_keep_count_rejects_negative_n() -> None:
    with pytest.raises(ValueError):
        keep_count(0.5, -1)


def test_keep_count_matches_decimal_arithmetic() -> None:
    # Every two-decimal ratio on every n up to 200: floor(p * n / 100) in integers.
    for p in range(1, 101):
        for n in range(0, 201):
            assert keep_count(p / 100, n) == p * n // 100, (p, n)


# ---------------------------------------------------------------- global selection


def test_select_most_confident_ties_hand_checked() -> None:
    conf = torch.tensor([0.5, 0.9, 0.5, 0.9, 0.1, 0.5, 0.7])
    # Ranking: 1 (0.9), 3 (0.9), 6 (0.7), 0 (0.5), 2 (0.5), 5 (0.5), 4 (0.1).
    assert select_most_confident(conf, 0.29).tolist() == [1, 3]  # floor(2.03) = 2
    assert select_most_confident(conf, 0.43).tolist() == [1, 3, 6]  # floor(3.01) = 3
    assert select_most_confident(conf, 4 / 7).tolist() == [0, 1, 3, 6]  # first 0.5 tie: index 0
    assert select_most_confident(conf, 5 / 7).tolist() == [0, 1, 2, 3, 6]
    assert select_most_confident(conf, 1.0).tolist() == list(range(7))
    assert select_most_confident(conf, 0.1).tolist() == []
    assert select_most_confident(conf, 0.5).dtype == torch.int64


def test_select_most_confident_all_equal_takes_lowest_indices() -> None:
    conf = torch.full((10,), 0.25, dtype=torch.float16)
    assert select_most_confident(conf, 0.3).tolist() == [0, 1, 2]


def test_select_most_confident_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        select_most_confident(torch.rand(2, 3), 0.5)
    with pytest.raises(ValueError):
        select_most_confident(torch.tensor([0.1, float("nan")]), 0.5)
    with pytest.raises(ValueError):
        select_most_confident(torch.tensor([1, 2]), 0.5)


# ---------------------------------------------------------------- class-balanced thresholds


def _brute_force(classes: list[torch.Tensor], confs: list[torch.Tensor], num_classes: int, ratio: float):
    """Thresholds and kept counts by sorting every pixel of each class, as the definition says."""
    cls = torch.cat([c.reshape(-1).long() for c in classes])
    conf = torch.cat([c.reshape(-1).float() for c in confs])
    thresholds, kept = [], []
    for c in range(num_classes):
        values = conf[cls == c]
        if values.numel() == 0:
            thresholds.append(math.inf)
            kept.append(0)
            continue
        k = max(1, keep_count(ratio, values.numel()))
        t = torch.sort(values, descending=True).values[k - 1].item()
        thresholds.append(t)
        kept.append(int((values >= t).sum()))
    return thresholds, kept


def _random_maps(seed: int, count: int, num_classes: int, absent: set[int]):
    g = torch.Generator().manual_seed(seed)
    present = torch.tensor([c for c in range(num_classes) if c not in absent])
    classes, confs = [], []
    for i in range(count):
        h, w = 17 + 3 * i, 23 + i  # images of different sizes, as at original resolution
        classes.append(present[torch.randint(len(present), (h, w), generator=g)].to(torch.uint8))
        # Coarse values (multiples of 1/64) plus fine float16 ones: many exact ties.
        coarse = torch.randint(0, 65, (h, w), generator=g).float() / 64
        fine = torch.rand(h, w, generator=g)
        use_coarse = torch.rand(h, w, generator=g) < 0.5
        confs.append(torch.where(use_coarse, coarse, fine).to(torch.float16))
    return classes, confs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ratio", [0.2, 0.4, 0.57, 0.8, 1.0, 0.001])
def test_class_balanced_thresholds_equal_brute_force(seed: int, ratio: float) -> None:
    num_classes = 6
    classes, confs = _random_maps(seed, count=4, num_classes=num_classes, absent={2, 5})
    hist = ConfidenceHistogram.empty(num_classes)
    for cls, conf in zip(classes, confs):
        hist.add(cls, conf)
    thresholds, kept, empty = hist.thresholds(ratio)

    expected_t, expected_kept = _brute_force(classes, confs, num_classes, ratio)
    assert thresholds.dtype == torch.float32 and kept.dtype == torch.int64
    assert thresholds.tolist() == expected_t  # exact equality, infinities included
    assert kept.tolist() == expected_kept
    assert empty == [2, 5]
    # The thresholds applied to the maps keep exactly the reported number of pixels per class.
    applied = torch.zeros(num_classes, dtype=torch.int64)
    for cls, conf in zip(classes, confs):
        labels = apply_class_thresholds(cls, conf, thresholds)
        applied += torch.bincount(labels[labels != 255].long(), minlength=num_classes)
    assert applied.tolist() == expected_kept


def test_class_balanced_thresholds_hand_computed() -> None:
    # Class 0: 0.9, 0.5, 0.5, 0.5, 0.25 (5 pixels); class 1: 0.75, 0.75, 0.125 (3); class 2: none.
    classes = torch.tensor([[0, 0, 0, 1], [0, 0, 1, 1]], dtype=torch.uint8)
    conf = torch.tensor([[0.5, 0.9, 0.5, 0.75], [0.25, 0.5, 0.125, 0.75]], dtype=torch.float16)
    hist = confidence_histogram(classes, conf, num_classes=3)
    assert hist.shape == (3, 65536) and hist.dtype == torch.int64
    assert hist.sum(1).tolist() == [5, 3, 0]

    # ratio 0.4: class 0 keeps k=2 -> 2nd largest is 0.5, ties keep 4; class 1 k=max(1,1)=1
    # -> 0.75, tie keeps 2.
    t, kept, empty = class_balanced_thresholds(hist, 0.4)
    assert t[:2].tolist() == [0.5, 0.75] and t[2].item() == math.inf
    assert kept.tolist() == [4, 2, 0]
    assert empty == [2]
    labels = apply_class_thresholds(classes, conf, t)
    assert labels.dtype == torch.uint8
    assert labels.tolist() == [[0, 0, 0, 1], [255, 0, 255, 1]]

    # ratio 0.2: class 0 k=1 -> 0.9 only (stored as float16 0.89990234375); class 1
    # k=max(1, floor(0.6))=1 -> 0.75, tie keeps 2.
    t, kept, _ = class_balanced_thresholds(hist, 0.2)
    assert t[:2].tolist() == [0.89990234375, 0.75]
    assert kept.tolist() == [1, 2, 0]

    # ratio 1.0 keeps everything: the threshold is each class's minimum.
    t, kept, _ = class_balanced_thresholds(hist, 1.0)
    assert t[:2].tolist() == [0.25, 0.125]
    assert kept.tolist() == [5, 3, 0]
    assert apply_class_thresholds(classes, conf, t, ignore_index=200).tolist() == classes.tolist()


def test_zero_and_negative_zero_confidence_rank_lowest() -> None:
    classes = torch.zeros(1, 3, dtype=torch.uint8)
    conf = torch.tensor([[-0.0, 0.0, 0.5]], dtype=torch.float16)
    hist = confidence_histogram(classes, conf, 1)
    assert hist[0, 0].item() == 2  # -0.0 counted as +0.0, not at bit pattern 0x8000
    t, kept, _ = class_balanced_thresholds(hist, 1.0)
    assert t.tolist() == [0.0] and kept.tolist() == [3]
    t, kept, _ = class_balanced_thresholds(hist, 0.34)
    assert t.tolist() == [0.5] and kept.tolist() == [1]


def test_histogram_rejects_bad_input() -> None:
    cls = torch.zeros(2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="float16"):
        confidence_histogram(cls, torch.rand(2, 2), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confidence_histogram(cls, torch.tensor([[0.1, 1.5], [0.2, 0.3]], dtype=torch.float16), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confidence_histogram(cls, torch.tensor([[0.1, float("nan")], [0.2, 0.3]], dtype=torch.float16), 2)
    with pytest.raises(ValueError, match="classes must lie"):
        confidence_histogram(cls + 2, torch.zeros(2, 2, dtype=torch.float16), 2)
    with pytest.raises(ValueError, match="shape"):
        confidence_histogram(cls, torch.zeros(2, 3, dtype=torch.float16), 2)
    with pytest.raises(ValueError, match="shape"):
        class_balanced_thresholds(torch.zeros(2, 100, dtype=torch.int64), 0.5)
    bad = torch.zeros(2, 65536, dtype=torch.int64)
    bad[0, 0x8000] = 1  # a negative float16 pattern cannot come from confidence_histogram
    with pytest.raises(ValueError, match="negative"):
        class_balanced_thresholds(bad, 0.5)


def test_apply_class_thresholds_rejects_bad_input() -> None:
    cls = torch.zeros(2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="float16"):
        apply_class_thresholds(cls, torch.rand(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="classes must lie"):
        apply_class_thresholds(cls + 3, torch.zeros(2, 2, dtype=torch.float16), torch.zeros(2))
