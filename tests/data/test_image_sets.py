"""Image sets beyond one in-memory array: label -1, memory-mapped images, pools of several sets, views."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dmt.data.arrays import UNLABELLED, ArrayDataset, ConcatSet, ImageSet, ImageSetDataset, IndexedSet


def _images(n: int, side: int = 3, start: int = 0) -> np.ndarray:
    return ((np.arange(n * side * side * 3).reshape(n, side, side, 3) + start) % 256).astype(np.uint8)


def test_label_minus_one_means_no_label_and_lower_values_are_refused():
    data = ArrayDataset(_images(3), np.array([0, UNLABELLED, 1], dtype=np.int64), ["a", "b"])
    assert isinstance(data, ImageSet) and data.labels.tolist() == [0, -1, 1]
    with pytest.raises(ValueError, match=r"or be -1"):
        ArrayDataset(_images(2), np.array([0, -2], dtype=np.int64), ["a", "b"])


def test_image_is_a_contiguous_writable_copy():
    data = ArrayDataset(_images(4).transpose(0, 2, 1, 3), np.zeros(4, np.int64), ["a"])  # not contiguous
    image = data.image(2)
    assert image.flags.c_contiguous and image.flags.writeable and image.dtype == np.uint8
    np.testing.assert_array_equal(image, _images(4)[2].transpose(1, 0, 2))
    image[:] = 0  # a copy: the set keeps its pixels
    assert data.image(2).any()


def _mapped(tmp_path, n: int = 5, side: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A file of ``n`` images stored as STL-10 stores them (C x W x H each, after a 16-byte header)
    and its ``N x H x W x C`` memory-mapped view; returns (view, the same pixels in memory)."""
    pixels = _images(n, side)
    path = tmp_path / "images.bin"
    path.write_bytes(b"header-16-bytes!" + np.ascontiguousarray(pixels.transpose(0, 3, 2, 1)).tobytes())
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=16, shape=(n, 3, side, side))
    return raw.transpose(0, 3, 2, 1), pixels


def test_memory_mapped_images_are_read_one_by_one_and_pickle_as_their_file(tmp_path):
    view, pixels = _mapped(tmp_path, n=64, side=8)
    data = ArrayDataset(view, np.full(64, UNLABELLED, np.int64), ["a", "b"])
    for i in (0, 17, 63):
        np.testing.assert_array_equal(data.image(i), pixels[i])
    sub = data.subset(np.array([5, 2]))
    assert not isinstance(sub.images, np.memmap) and sub.images.flags.c_contiguous
    np.testing.assert_array_equal(sub.images, pixels[[5, 2]])
    blob = pickle.dumps(data)
    assert len(blob) < len(pixels.tobytes()) / 4  # the file's name and place, not 12 KB of pixels
    again = pickle.loads(blob)
    np.testing.assert_array_equal(np.stack([again.image(i) for i in range(64)]), pixels)
    plain = ArrayDataset(pixels, np.zeros(64, np.int64), ["a"])
    assert len(pickle.dumps(plain)) > len(pixels.tobytes())  # in memory: the pixels themselves


def test_concat_set_pools_parts_in_order():
    labelled = ArrayDataset(_images(3), np.array([1, 0, 1], np.int64), ["a", "b"])
    extra = ArrayDataset(_images(4, start=100), np.full(4, UNLABELLED, np.int64), ["a", "b"])
    pool = ConcatSet([labelled, extra])
    assert isinstance(pool, ImageSet) and len(pool) == 7 and pool.classes == ["a", "b"]
    assert pool.labels.tolist() == [1, 0, 1, -1, -1, -1, -1]
    np.testing.assert_array_equal(pool.image(2), labelled.image(2))
    np.testing.assert_array_equal(pool.image(3), extra.image(0))
    np.testing.assert_array_equal(pool.image(6), extra.image(3))
    with pytest.raises(IndexError):
        pool.image(7)
    with pytest.raises(ValueError, match="same classes"):
        ConcatSet([labelled, ArrayDataset(_images(1), np.zeros(1, np.int64), ["a", "c"])])


def test_indexed_set_is_a_view_in_the_given_order():
    base = ArrayDataset(_images(5), np.array([0, 1, 0, 1, 0], np.int64), ["a", "b"])
    view = IndexedSet(base, np.array([4, 1]))
    assert len(view) == 2 and view.labels.tolist() == [0, 1] and view.classes == ["a", "b"]
    np.testing.assert_array_equal(view.image(1), base.image(1))
    with pytest.raises(ValueError, match="indices"):
        IndexedSet(base, np.array([5]))


def test_dataset_over_a_pool_gives_minus_one_for_images_without_a_label():
    pool = ConcatSet([ArrayDataset(_images(2), np.array([1, 0], np.int64), ["a", "b"]),
                      ArrayDataset(_images(2, start=7), np.full(2, UNLABELLED, np.int64), ["a", "b"])])
    images, targets, positions = next(iter(DataLoader(ImageSetDataset(pool, np.array([3, 0])), batch_size=2)))
    assert targets.tolist() == [-1, 1] and positions.tolist() == [0, 1]
    torch.testing.assert_close(images[0], torch.from_numpy(pool.image(3)).permute(2, 0, 1).float() / 255)
