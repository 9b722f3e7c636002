"""Split protocols: membership against direct restatements of the paper's procedures.

The restatements below follow the protocols literally: they shuffle DATA ROWS (CIFAR) or NAME
LISTS (segmentation) with the global generators, as the original scripts do, and the tests
compare with dmt's index-based functions.
"""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

from dmt.data.cifar import CIFAR10_FOLDER, TRAIN_FILES, load_cifar10
from dmt.data.splits import (
    CITYSCAPES_RATIOS,
    DMS_RATIOS,
    VOC_RATIOS,
    check_names,
    cifar_valtiny_split,
    dms_subsets,
    entry_name,
    labelled_count,
    per_class_labelled_split,
    protocol_names,
    read_index_file,
    read_split_file,
    sbd_split,
    segmentation_splits,
    write_split_file,
)
from dmt.errors import UserError


@pytest.fixture(autouse=True)
def _keep_global_rngs():
    """The restatements seed the global generators; leave them as other tests expect."""
    np_state, py_state = np.random.get_state(), random.getstate()
    yield
    np.random.set_state(np_state)
    random.setstate(py_state)


# ---------------------------------------------------------------- CIFAR-10 (classification)


def _row_ids(rows: np.ndarray) -> np.ndarray:
    """Image ids written by the ``cifar_root`` fixture, read from raw channel-planar rows."""
    return rows[:, 0].astype(np.int64) * 256 + rows[:, 1]


def _restated_valtiny(data: np.ndarray, targets: np.ndarray, val_size: int, seed: int):
    np.random.seed(seed)
    train, valtiny = [], []
    for c in range(10):
        total = data[targets == c]
        np.random.shuffle(total)  # shuffles the rows themselves
        train.append(total[:-val_size])
        valtiny.append(total[-val_size:])
    train_targets = np.repeat(np.arange(10), [len(t) for t in train])
    return np.concatenate(train), train_targets, np.concatenate(valtiny)


def _restated_labelled(data: np.ndarray, targets: np.ndarray, sizes, seed: int):
    np.random.seed(seed)
    labelled = {n: [] for n in sizes}
    unlabelled = {n: [] for n in sizes}
    for c in range(10):
        total = data[targets == c]
        np.random.shuffle(total)
        for n in sizes:  # one shuffle serves every size
            labelled[n].append(total[:n])
            unlabelled[n].append(total[n:])
    return {n: (np.concatenate(labelled[n]), np.concatenate(unlabelled[n])) for n in sizes}


def test_cifar_splits_match_row_shuffling_restatement_on_official_files(cifar_root):
    # Restatement input: the raw rows of data_batch_1..5, read the plain way (trusted files).
    rows, targets = [], []
    for name in TRAIN_FILES:
        with open(cifar_root / CIFAR10_FOLDER / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        rows.append(entry[b"data"])
        targets.extend(entry[b"labels"])
    rows, targets = np.vstack(rows), np.array(targets)
    train_rows, train_targets, valtiny_rows = _restated_valtiny(rows, targets, val_size=5, seed=1)

    labels = load_cifar10(cifar_root)[0].labels
    train_idx, valtiny_idx = cifar_valtiny_split(labels, per_class=5, seed=1)
    np.testing.assert_array_equal(train_idx, _row_ids(train_rows))
    np.testing.assert_array_equal(valtiny_idx, _row_ids(valtiny_rows))
    assert len(valtiny_idx) == 50 and len(train_idx) == 250
    assert sorted(np.concatenate([train_idx, valtiny_idx]).tolist()) == list(range(300))
    np.testing.assert_array_equal(np.bincount(labels[valtiny_idx]), [5] * 10)

    sizes = (4, 10, 20, 25)
    for seed in (1, 2, 3, 4, 5):
        expected = _restated_labelled(train_rows, train_targets, sizes, seed)
        for n in sizes:
            labelled, unlabelled = per_class_labelled_split(labels, train_idx, n, seed)
            np.testing.assert_array_equal(labelled, _row_ids(expected[n][0]))
            np.testing.assert_array_equal(unlabelled, _row_ids(expected[n][1]))


def test_cifar_protocol_at_full_scale():
    # 50,000 labels in random class order; the restatement shuffles (n, 2) "rows" of ids, the
    # multi-dimensional code path of np.random.shuffle that the original takes.
    labels = np.random.default_rng(7).permutation(np.repeat(np.arange(10), 5000))
    rows = np.stack([np.arange(50000), np.zeros(50000, dtype=np.int64)], axis=1)
    train_rows, train_targets, valtiny_rows = _restated_valtiny(rows, labels, val_size=20, seed=1)
    train_idx, valtiny_idx = cifar_valtiny_split(labels)
    np.testing.assert_array_equal(train_idx, train_rows[:, 0])
    np.testing.assert_array_equal(valtiny_idx, valtiny_rows[:, 0])
    assert len(valtiny_idx) == 200 and len(train_idx) == 49800

    sizes = (4, 25, 100, 400)
    expected = _restated_labelled(train_rows, train_targets, sizes, seed=3)
    previous: set[int] = set()
    for n in sizes:
        labelled, unlabelled = per_class_labelled_split(labels, train_idx, n, seed=3)
        np.testing.assert_array_equal(labelled, expected[n][0][:, 0])
        np.testing.assert_array_equal(unlabelled, expected[n][1][:, 0])
        assert len(labelled) == 10 * n and len(unlabelled) == 49800 - 10 * n
        np.testing.assert_array_equal(np.bincount(labels[labelled], minlength=10), [n] * 10)
        assert not set(labelled) & set(valtiny_idx)
        assert previous < set(labelled.tolist())  # nested: 4 ⊂ 25 ⊂ 100 ⊂ 400
        previous = set(labelled.tolist())


def test_labelled_split_depends_on_candidate_order_and_seed():
    labels = np.repeat(np.arange(3), 10)
    candidates = np.arange(30)
    a, _ = per_class_labelled_split(labels, candidates, 3, seed=1)
    b, _ = per_class_labelled_split(labels, candidates[::-1].copy(), 3, seed=1)
    c, _ = per_class_labelled_split(labels, candidates, 3, seed=2)
    assert a.tolist() != b.tolist() and a.tolist() != c.tolist()


def test_too_few_images_per_class_is_a_user_error():
    labels = np.repeat(np.arange(2), [30, 3])
    with pytest.raises(UserError, match="class 1 has 3"):
        cifar_valtiny_split(labels, per_class=3)
    with pytest.raises(UserError, match="class 1 has 3 candidate"):
        per_class_labelled_split(labels, np.arange(33), 4, seed=1)


def test_splits_leave_global_rng_state_untouched():
    np.random.seed(123)
    random.seed(456)
    labels = np.repeat(np.arange(10), 30)
    train_idx, _ = cifar_valtiny_split(labels, per_class=5)
    per_class_labelled_split(labels, train_idx, 4, seed=2)
    sets = segmentation_splits([f"n{i}" for i in range(500)], DMS_RATIOS)
    dms_subsets([{r: lab for r, (lab, _) in s.items()} for s in sets])
    after_np, after_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(456)
    assert after_np == np.random.random() and after_py == random.random()


# ---------------------------------------------------------------- segmentation


def _restated_segmentation(names, ratios, num_sets=3):
    random.seed(7777)
    lines = list(names)
    out = []
    for _ in range(num_sets):
        random.shuffle(lines)
        by_ratio = {}
        for r in ratios:
            k = int(len(lines) / r)
            if k % 8 == 1:
                k += 1
            by_ratio[r] = (list(lines[:k]), list(lines[k:]))
        out.append(by_ratio)
    return out


def test_labelled_counts_for_the_real_datasets():
    # VOC train_aug has 10,582 images, Cityscapes train 2,975; 529 % 8 == 1 becomes 530.
    assert {r: labelled_count(10582, r) for r in VOC_RATIOS} == {
        105.82: 100, 50: 211, 20: 530, 8: 1322, 4: 2645, 2: 5291,
    }
    assert {r: labelled_count(2975, r) for r in CITYSCAPES_RATIOS} == {
        29.75: 100, 20: 148, 8: 371, 4: 743, 2: 1487,
    }
    assert labelled_count(1058, 105.82) == 10  # int(9.998...) = 9, 9 % 8 == 1


@pytest.mark.parametrize("n, ratios", [(1058, VOC_RATIOS), (2975, CITYSCAPES_RATIOS)])
def test_segmentation_splits_match_restatement(n, ratios):
    names = [f"img_{i:05d}" for i in range(n)]
    ours = segmentation_splits(names, ratios)
    assert ours == _restated_segmentation(names, ratios)
    for by_ratio in ours:
        for r, (labelled, unlabelled) in by_ratio.items():
            assert len(labelled) == labelled_count(n, r)
            assert sorted(labelled + unlabelled) == names
        # Nested within a set: smaller labelled lists are prefixes of larger ones.
        ordered = sorted(by_ratio.values(), key=lambda split: len(split[0]))
        for small, big in zip(ordered, ordered[1:]):
            assert set(small[0]) < set(big[0])
    assert ours[0][ratios[0]][0] != ours[1][ratios[0]][0] != ours[2][ratios[0]][0]


def test_segmentation_membership_ignores_ratio_choice_and_order():
    names = [f"img_{i:05d}" for i in range(1058)]
    full = segmentation_splits(names, VOC_RATIOS)
    only_20 = segmentation_splits(names, (20,))
    reversed_ = segmentation_splits(names, tuple(reversed(VOC_RATIOS)))
    for k in range(3):
        assert only_20[k][20] == full[k][20]
        assert reversed_[k] == full[k]
    assert len(full[0][105.82][0]) == 10  # the +1 rule fired


def _restated_dms(labelled_sets, ratios=(8, 20, 50, 105.82)):
    random.seed(7777)
    out = []
    for labelled in labelled_sets:
        by_ratio = {}
        for r in ratios:
            lines = list(labelled[r])
            random.shuffle(lines)
            nc_len = math.ceil((1 - 0.6) / 2 * len(lines))
            common_len = len(lines) - 2 * nc_len
            by_ratio[r] = (lines[: nc_len + common_len], lines[nc_len:])
        out.append(by_ratio)
    return out


def test_dms_subsets_match_restatement_and_share_sixty_percent():
    names = [f"{2007 + i % 6}_{i:06d}" for i in range(10582)]
    sets = segmentation_splits(names, VOC_RATIOS)
    labelled_sets = [{r: lab for r, (lab, _) in s.items()} for s in sets]
    ours = dms_subsets(labelled_sets)
    assert ours == _restated_dms(labelled_sets)
    # 1/8 of VOC: N = 1322, n = ceil(264.4) = 265, shared = 792.
    left, right = ours[0][8]
    assert len(left) == len(right) == 1057
    assert len(set(left) & set(right)) == 792
    assert set(left) | set(right) == set(labelled_sets[0][8])
    for by_ratio in ours:
        for r, (left, right) in by_ratio.items():
            n_total = len(labelled_sets[0][r])
            shared = len(set(left) & set(right)) / n_total
            assert 0.55 < shared <= 0.6, (r, shared)
    assert ours[0][8] != ours[1][8]


def test_dms_requires_every_ratio():
    with pytest.raises(ValueError, match="ratio"):
        dms_subsets([{8: ["a"], 20: ["b"]}])


def test_sbd_split_keeps_train_aug_order():
    train_aug = ["e", "a", "d", "b", "c", "f"]
    labelled, unlabelled = sbd_split(train_aug, ["b", "e"])
    assert labelled == ["b", "e"]
    assert unlabelled == ["a", "d", "c", "f"]


def test_entry_name_reads_both_list_formats():
    assert entry_name("2007_000032") == "2007_000032"
    assert entry_name("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png") == "2007_000032"
    assert entry_name("  JPEGImages/2011_003276.JPG\t x.png ") == "2011_003276"
    assert entry_name("aachen/aachen_000000_000019") == "aachen/aachen_000000_000019"  # Cityscapes names pass


def test_sbd_split_compares_names_across_list_formats():
    def deeplab(n):
        return f"/JPEGImages/{n}.jpg /SegmentationClassAug/{n}.png"

    train_aug = [deeplab(n) for n in ["e", "a", "d", "b", "c", "f"]]
    labelled, unlabelled = sbd_split(train_aug, ["b", "e"])  # plain train.txt
    assert labelled == ["b", "e"] and unlabelled == ["a", "d", "c", "f"]
    assert sbd_split(["e", "a", "b"], [deeplab("b")]) == (["b"], ["e", "a"])


def test_protocol_names_make_membership_independent_of_list_order_and_format():
    names = [f"2008_{k:06d}" for k in range(50)]
    shuffled = names[::-1]
    deeplab = [f"/JPEGImages/{n}.jpg /SegmentationClassAug/{n}.png" for n in names[7:] + names[:7]]
    expected = segmentation_splits(names, VOC_RATIOS)
    assert protocol_names(shuffled) == protocol_names(deeplab) == names
    assert segmentation_splits(protocol_names(shuffled), VOC_RATIOS) == expected
    assert segmentation_splits(shuffled, VOC_RATIOS) != expected  # without sorting, order decides


# ---------------------------------------------------------------- split files


def test_split_file_round_trip(tmp_path):
    path = tmp_path / "labelled.txt"
    write_split_file(path, ["2007_000032", "2007_000039"])
    assert path.read_text() == "2007_000032\n2007_000039\n"
    assert read_split_file(path) == ["2007_000032", "2007_000039"]
    write_split_file(path, np.array([5, 0, 3]))
    np.testing.assert_array_equal(read_index_file(path, 6), [5, 0, 3])
    assert [p.name for p in tmp_path.iterdir()] == ["labelled.txt"]  # no temporary left behind


def test_read_split_file_tolerates_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"a\r\n\r\nb  \r\n")
    assert read_split_file(path) == ["a", "b"]


def test_split_file_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="missing.txt"):
        read_split_file(tmp_path / "missing.txt")
    path = tmp_path / "idx.txt"
    path.write_text("1\n7\n")
    with pytest.raises(UserError, match=r"idx.txt: entry 2 \('7'\)"):
        read_index_file(path, 5)
    path.write_text("1\nx\n")
    with pytest.raises(UserError, match="idx.txt: entry 2"):
        read_index_file(path, 5)
    with pytest.raises(ValueError):
        write_split_file(tmp_path / "bad.txt", ["ok", "two\nlines"])


def test_check_names_reports_source_and_first_unknown_entries():
    known = [f"img_{i}" for i in range(10)]
    check_names(["img_1", "img_2"], known, "labelled.txt")
    with pytest.raises(UserError) as info:
        check_names(["img_1", "cat", "dog"], known, "splits/labelled.txt")
    message = str(info.value)
    assert message.startswith("splits/labelled.txt: 2 entries are not in the dataset")
    assert "'cat', 'dog'" in message
    with pytest.raises(UserError, match="labelled.txt: entries listed more than once, e.g. 'img_1'"):
        check_names(["img_1", "img_2", "img_1"], known, "labelled.txt")
