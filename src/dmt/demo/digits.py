"""The offline demo dataset: scikit-learn's bundled 8x8 handwritten digits.

``sklearn.datasets.load_digits`` reads a file shipped inside scikit-learn (1,797 images, 10
classes, pixel values 0..16), so the demo runs with no download. The images are rescaled to
``uint8`` 0..255 so they flow through the same :class:`~dmt.data.arrays.ImageSetDataset`
path as CIFAR-10. A fixed test set is held out; the demo's labelled/unlabelled split of the
remaining pool uses :func:`dmt.data.splits.per_class_labelled_split`.
"""

from __future__ import annotations

import numpy as np

from dmt.data.arrays import ArrayDataset
from dmt.errors import UserError

DIGITS_CLASSES: list[str] = [str(k) for k in range(10)]
DIGITS_TEST_PER_CLASS = 50  # 500 test images; the smallest class has 174 images
DIGITS_TEST_SEED = 0  # fixed, so every run and seed is scored on the same test images
DIGITS_LABELLED_PER_CLASS = 4  # 40 labels, the CIFAR-10 "4 per class" regime in miniature
_MAX_VALUE = 16  # load_digits pixel values are counts of set pixels in 4x4 blocks: 0..16


def load_digits_data() -> ArrayDataset:
    """Load the bundled digits as ``(1797, 8, 8, 1)`` ``uint8`` images in 0..255.

    Returns:
        An ``ArrayDataset`` with classes ``"0"`` .. ``"9"``; pixel ``x`` becomes
        ``round(x * 255 / 16)``.
    """
    from sklearn.datasets import load_digits  # deferred: scikit-learn is slow to import

    bunch = load_digits()
    scaled = np.rint(bunch.images * (255.0 / _MAX_VALUE))
    images = np.clip(scaled, 0, 255).astype(np.uint8)[..., np.newaxis]
    return ArrayDataset(images, bunch.target.astype(np.int64), list(DIGITS_CLASSES))


def digits_test_split(
    labels: np.ndarray, test_per_class: int = DIGITS_TEST_PER_CLASS, seed: int = DIGITS_TEST_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Split the digits into a training pool and a fixed, class-balanced test set.

    Uses a private generator, so the result depends only on ``labels``, ``test_per_class`` and
    ``seed`` (never on a run's seed or on global RNG state).

    Args:
        labels: Labels of all digits.
        test_per_class: Test images per class.
        seed: Seed of the private generator.

    Returns:
        ``(pool_idx, test_idx)``: disjoint, sorted ``int64`` positions covering every image.

    Raises:
        UserError: If a class has no more than ``test_per_class`` images.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in range(int(labels.max()) + 1):
        rows = np.flatnonzero(labels == c)
        if len(rows) <= test_per_class:
            raise UserError(
                f"digits test split: class {c} has {len(rows)} images; "
                f"cannot hold out test_per_class={test_per_class}"
            )
        test.append(rng.permutation(rows)[:test_per_class])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    pool_idx = np.setdiff1d(np.arange(len(labels), dtype=np.int64), test_idx)
    return pool_idx, test_idx
