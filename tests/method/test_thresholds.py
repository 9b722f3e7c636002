"""Curriculum thresholds: exact against a brute-force sort, and hand-checked small cases."""

from __future__ import annotations

import math

import pytest
import torch

from dmt.method.thresholds import (
    ConfidenceHistogram,
    apply_class_thresholds,
    apply_threshold_table,
    class_balanced_thresholds,
    confidence_histogram,
    histogram_keys,
    histogram_of_keys,
    keep_count,
    threshold_keys,
    threshold_table,
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


# ---------------------------------------------------------------- thresholds on float16 bit patterns

ALL_FLOAT16 = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.float16)
EDGE_THRESHOLDS = [0.0, -0.0, 1.0, 0.5, 0.3, 1e-8, 6e-8, 3e-8, -1e-8, -2.0, 0.99999, 1.0001, 65504.0, 65519.0,
                   65520.0, 7e4, math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("t", EDGE_THRESHOLDS)
def test_threshold_keys_agree_with_float_comparison_on_every_float16(t: float) -> None:
    """All 65536 patterns (incl. -0, subnormals, inf, NaN) against thresholds on and between values."""
    classes = (torch.arange(65536) % 2).to(torch.uint8)  # class 1's threshold is 0.25
    thresholds = torch.tensor([t, 0.25], dtype=torch.float32)
    expected = apply_class_thresholds(classes, ALL_FLOAT16, thresholds)
    got = apply_threshold_table(classes, ALL_FLOAT16, threshold_table(thresholds))
    assert torch.equal(got, expected)


def test_apply_threshold_table_hand_computed() -> None:
    classes = torch.tensor([[0, 1, 2], [1, 2, 0]], dtype=torch.uint8)
    confidence = torch.tensor([[0.5, 0.25, 1.0], [0.75, 0.0, -0.0]], dtype=torch.float16)
    thresholds = torch.tensor([0.5, 0.3, math.inf])  # class 2 never predicted: keeps nothing
    keys = threshold_keys(thresholds)
    assert keys.tolist() == [0x3800, 0x34CD, 0x7C00]  # 0.5, the float16 just above 0.3, +inf
    table = threshold_table(thresholds, ignore_index=254)
    assert table.shape == (3, 65536) and table[0, 0x3800] == 0 and table[0, 0x37FF] == 254
    kept = apply_threshold_table(classes, confidence, threshold_table(thresholds))
    assert kept.tolist() == [[0, 255, 255], [1, 255, 255]]
    assert kept.tolist() == apply_class_thresholds(classes, confidence, thresholds).tolist()


def test_apply_threshold_table_random_maps_equal_float_path() -> None:
    g = torch.Generator().manual_seed(3)
    classes = torch.randint(0, 21, (37, 53), dtype=torch.uint8, generator=g)
    confidence = torch.rand(37, 53, generator=g).half()
    hist = confidence_histogram(classes, confidence, 21)
    for ratio in (0.2, 0.6, 1.0):
        thresholds, _, _ = class_balanced_thresholds(hist, ratio)
        assert torch.equal(apply_threshold_table(classes, confidence, threshold_table(thresholds)),
                           apply_class_thresholds(classes, confidence, thresholds))


def test_apply_threshold_table_rejects_bad_input() -> None:
    table = threshold_table(torch.tensor([0.5, 0.5]))
    conf = torch.zeros(2, 2, dtype=torch.float16)
    with pytest.raises(ValueError, match="uint8"):
        apply_threshold_table(torch.zeros(2, 2, dtype=torch.int64), conf, table)
    with pytest.raises(ValueError, match="float16"):
        apply_threshold_table(torch.zeros(2, 2, dtype=torch.uint8), conf.float(), table)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        apply_threshold_table(torch.full((2, 2), 2, dtype=torch.uint8), conf, table)
    with pytest.raises(ValueError, match="table"):
        apply_threshold_table(torch.zeros(2, 2, dtype=torch.uint8), conf, table.long())
    with pytest.raises(ValueError, match="1-D float"):
        threshold_keys(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="256"):
        threshold_table(torch.zeros(257))


def test_histogram_keys_of_several_images_add_up() -> None:
    g = torch.Generator().manual_seed(4)
    maps = [(torch.randint(0, 5, (9, 11), dtype=torch.uint8, generator=g), torch.rand(9, 11, generator=g).half())
            for _ in range(3)]
    keys = [histogram_keys(c, p, 5) for c, p in maps]
    assert keys[0].dtype == torch.int32
    c0, p0 = maps[0]
    assert int(keys[0][0]) == int(c0[0, 0]) * 65536 + int(p0[0, 0:1].view(torch.int16)[0])
    expected = sum(confidence_histogram(c, p, 5) for c, p in maps)
    assert torch.equal(histogram_of_keys(keys, 5), expected)
