"""The offline digits demo data: loading, fixed test set, labelled split of the pool."""

from __future__ import annotations

import numpy as np
import pytest

from dmt.data.splits import per_class_labelled_split
from dmt.demo.digits import DIGITS_LABELLED_PER_CLASS, digits_test_split, load_digits_data
from dmt.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return load_digits_data()


def test_digits_are_uint8_images_scaled_from_0_16(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert digits.images.shape == (1797, 8, 8, 1) and digits.images.dtype == np.uint8
    assert digits.labels.shape == (1797,) and digits.labels.dtype == np.int64
    assert digits.classes == [str(k) for k in range(10)]
    assert digits.images.min() == 0 and digits.images.max() == 255
    # 16 -> 255, 8 -> 127.5 -> 128 (round half to even), 1 -> 15.9 -> 16.
    expected = {0: 0, 1: 16, 8: 128, 16: 255}
    for value, scaled in expected.items():
        assert set(digits.images[..., 0][raw.images == value].tolist()) == {scaled}
    np.testing.assert_array_equal(digits.labels, raw.target)


def test_test_split_is_fixed_balanced_and_disjoint(digits):
    np.random.seed(1)
    pool, test = digits_test_split(digits.labels)
    np.random.seed(99)  # a run's seed must not change the held-out set
    pool_again, test_again = digits_test_split(digits.labels)
    np.testing.assert_array_equal(test, test_again)
    np.testing.assert_array_equal(pool, pool_again)
    assert len(test) == 500 and len(pool) == 1297
    np.testing.assert_array_equal(np.bincount(digits.labels[test]), [50] * 10)
    assert not set(pool.tolist()) & set(test.tolist())
    assert sorted(np.concatenate([pool, test]).tolist()) == list(range(1797))
    # A different split seed gives a different (but equally balanced) test set.
    _, other = digits_test_split(digits.labels, seed=1)
    assert set(other.tolist()) != set(test.tolist())
    with pytest.raises(UserError, match="test_per_class=200"):
        digits_test_split(digits.labels, test_per_class=200)


def test_labelled_split_of_the_pool(digits):
    pool, test = digits_test_split(digits.labels)
    labelled, unlabelled = per_class_labelled_split(digits.labels, pool, DIGITS_LABELLED_PER_CLASS, seed=1)
    assert len(labelled) == 40 and len(unlabelled) == 1297 - 40
    np.testing.assert_array_equal(np.bincount(digits.labels[labelled]), [4] * 10)
    assert set(labelled.tolist()) | set(unlabelled.tolist()) == set(pool.tolist())
    assert not set(labelled.tolist()) & set(test.tolist())
