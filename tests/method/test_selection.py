"""Curriculum selection of whole images: the global ranking and the class-balanced one, hand-checked."""

from __future__ import annotations

import pytest
import torch

from dmt.method.curriculum import DEFAULT_RATIOS
from dmt.method.selection import (
    SELECTIONS,
    select_class_balanced,
    select_most_confident,
    select_pseudo_labels,
)
from dmt.method.thresholds import keep_count


def _probs(rows: list[tuple[int, float]], num_classes: int) -> torch.Tensor:
    """Teacher probabilities: row i puts ``conf`` on its class and splits the rest evenly."""
    out = torch.empty(len(rows), num_classes, dtype=torch.float64)
    for i, (c, conf) in enumerate(rows):
        out[i] = (1 - conf) / (num_classes - 1)
        out[i, c] = conf
    return out


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


# ---------------------------------------------------------------- class-balanced selection

# Three classes of four images each; the teacher is sure of class 0, less of 1, unsure of 2.
# index:      0          1          2          3          4          5
STARVED = [(2, 0.45), (0, 0.94), (1, 0.70), (0, 0.98), (2, 0.50), (1, 0.80),
           (2, 0.40), (0, 0.92), (1, 0.65), (0, 0.96), (1, 0.75), (2, 0.42)]
#           6          7          8          9          10         11


def test_global_ranking_starves_the_unsure_class_and_the_balanced_one_does_not() -> None:
    probs = _probs(STARVED, 3)
    # global, ratio 0.5 keeps 6: the four of class 0 (0.98 0.96 0.94 0.92), then 0.80 and 0.75 of class 1
    glob = select_pseudo_labels(probs, 0.5, "global")
    assert glob.tolist() == [1, 3, 5, 7, 9, 10]
    assert torch.bincount(probs[glob].argmax(1), minlength=3).tolist() == [4, 2, 0]
    # balanced: two of each class, its most confident: 0 -> 3, 9; 1 -> 5, 10; 2 -> 4 (0.50), 0 (0.45)
    bal = select_class_balanced(probs, 0.5)
    assert bal.tolist() == [0, 3, 4, 5, 9, 10]
    assert torch.bincount(probs[bal].argmax(1), minlength=3).tolist() == [2, 2, 2]
    assert select_pseudo_labels(probs, 0.5, "class_balanced").tolist() == bal.tolist()
    # ratio 0.25: global keeps floor(3) = 3 of class 0; balanced one per class
    assert select_most_confident(probs.max(1).values, 0.25).tolist() == [1, 3, 9]
    assert select_class_balanced(probs, 0.25).tolist() == [3, 4, 5]
    # three of each: class 0 adds 1 (0.94), class 1 adds 2 (0.70), class 2 adds 11 (0.42)
    assert select_class_balanced(probs, 0.75).tolist() == [0, 1, 2, 3, 4, 5, 9, 10, 11]
    assert select_class_balanced(probs, 1.0).tolist() == list(range(12))
    assert select_class_balanced(probs, 0.5).dtype == torch.int64


def test_ties_within_a_class_and_between_classes() -> None:
    probs = torch.tensor([
        [0.3, 0.7],  # 0: class 1, 0.7
        [0.6, 0.4],  # 1: class 0, 0.6
        [0.7, 0.3],  # 2: class 0, 0.7
        [0.6, 0.4],  # 3: class 0, 0.6 (tied with 1 and 6)
        [0.5, 0.5],  # 4: a tie between the classes: the first maximum, class 0
        [0.3, 0.7],  # 5: class 1, 0.7 (tied with 0)
        [0.6, 0.4],  # 6: class 0, 0.6
        [0.2, 0.8],  # 7: class 1, 0.8
    ])
    # class 0 (5 images) ranks 2, 1, 3, 6, 4; class 1 (3 images) ranks 7, 0, 5
    assert select_class_balanced(probs, 0.4).tolist() == [1, 2, 7]  # 2 + floor(1.2); with 4 in class 1: [2, 7]
    assert select_class_balanced(probs, 0.6).tolist() == [1, 2, 3, 7]  # 3 + floor(1.8)
    assert select_class_balanced(probs, 0.7).tolist() == [0, 1, 2, 3, 7]  # floor(3.5) + floor(2.1)
    assert select_class_balanced(probs, 0.8).tolist() == [0, 1, 2, 3, 6, 7]  # 4 + floor(2.4)
    # all equal: the lowest indices, as the global rule
    assert select_class_balanced(torch.full((10, 4), 0.25), 0.3).tolist() == [0, 1, 2]
    assert select_class_balanced(probs.half(), 0.4).tolist() == [1, 2, 7]  # any float dtype


def test_empty_classes_and_a_class_with_one_image() -> None:
    # five classes: 1 and 3 never predicted; class 4 holds one image, the most confident of all
    probs = _probs([(0, 0.6), (2, 0.7), (0, 0.8), (4, 0.99), (2, 0.5), (0, 0.7), (2, 0.9)], 5)
    # class 0: 2 (0.8), 5 (0.7), 0 (0.6); class 2: 6 (0.9), 1 (0.7), 4 (0.5); class 4: 3
    assert select_class_balanced(probs, 0.5).tolist() == [2, 6]  # floor(1.5) each; floor(0.5) = 0 of class 4
    assert select_most_confident(probs.max(1).values, 0.5).tolist() == [2, 3, 6]  # the global rule keeps it
    assert select_class_balanced(probs, 0.7).tolist() == [1, 2, 5, 6]  # floor(2.1) of 0 and 2, floor(0.7) of 4
    assert select_class_balanced(probs, 1.0).tolist() == list(range(7))  # ratio 1 keeps the single image too
    assert select_class_balanced(torch.zeros(0, 3), 0.5).tolist() == []
    assert select_class_balanced(torch.zeros(0, 3), 0.5).dtype == torch.int64


def _shuffled_identical_classes(num_classes: int, values: list[float], seed: int) -> torch.Tensor:
    """Every class holds the same (distinct) confidences; the images in a random order."""
    rows = [(c, v) for c in range(num_classes) for v in values]
    perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    return _probs([rows[i] for i in perm], num_classes)


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_the_global_selection_when_confidence_does_not_differ_by_class(seed: int) -> None:
    # 4 classes x 10 images with the same 10 confidences: every ratio * 10 of the curriculum is an
    # integer, the global cut falls between two groups of tied values, and the two rules coincide
    probs = _shuffled_identical_classes(4, [0.95 - 0.05 * i for i in range(10)], seed)
    for ratio in [*DEFAULT_RATIOS, 0.1, 0.3, 0.5]:
        bal = select_class_balanced(probs, ratio)
        assert bal.tolist() == select_most_confident(probs.max(1).values, ratio).tolist(), ratio
        assert len(bal) == 4 * keep_count(ratio, 10)


def test_rounding_is_where_the_two_can_differ() -> None:
    # 3 classes x 4 images, ratio 0.6: each class keeps floor(2.4) = 2, the global rule floor(7.2) = 7.
    # They cannot coincide: the global one adds the lowest-index image of the third-highest value.
    probs = _shuffled_identical_classes(3, [0.9, 0.8, 0.7, 0.6], seed=0)
    bal, glob = select_class_balanced(probs, 0.6), select_most_confident(probs.max(1).values, 0.6)
    assert len(bal) == 6 and len(glob) == 7
    extra = sorted(set(glob.tolist()) - set(bal.tolist()))
    third = [i for i in range(12) if abs(float(probs[i].max()) - 0.7) < 1e-9]
    assert set(bal.tolist()) < set(glob.tolist()) and extra == [min(third)]


def _brute_force(probs: torch.Tensor, ratio: float) -> list[int]:
    """The definition, image by image in plain Python."""
    rows = probs.tolist()
    by_class: dict[int, list[tuple[float, int]]] = {}
    for i, row in enumerate(rows):
        c = row.index(max(row))  # the first maximum
        by_class.setdefault(c, []).append((row[c], i))
    kept: list[int] = []
    for items in by_class.values():
        items.sort(key=lambda t: (-t[0], t[1]))
        kept += [i for _, i in items[: keep_count(ratio, len(items))]]
    return sorted(kept)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_definition_on_random_probabilities_with_ties(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randint(0, 4, (300, 7), generator=g).float()  # coarse: many tied confidences and classes
    probs = torch.softmax(logits * (1 + torch.arange(7) / 7), 1)  # class-dependent confidence
    for ratio in (0.2, 0.33, 0.5, 0.9, 1.0):
        assert select_class_balanced(probs, ratio).tolist() == _brute_force(probs, ratio), ratio


def test_bad_input_is_refused() -> None:
    for bad in (torch.rand(5), torch.tensor([[1, 2]]), torch.tensor([[0.5, float("nan")]])):
        with pytest.raises(ValueError):
            select_class_balanced(bad, 0.5)
    for ratio in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError):
            select_class_balanced(torch.zeros(0, 3), ratio)
    with pytest.raises(ValueError, match="selection must be one of"):
        select_pseudo_labels(torch.rand(4, 2), 0.5, "per_image")
    with pytest.raises(ValueError):
        select_pseudo_labels(torch.rand(4), 0.5, "global")
    assert sorted(SELECTIONS) == ["class_balanced", "global"]
