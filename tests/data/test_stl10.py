"""STL-10 loading: the column-major binary layout, labels 1..10, the memory-mapped unlabelled set, sizes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dmt.data.arrays import ArrayDataset
from dmt.data.stl10 import (
    IMAGE_BYTES,
    STL10_FOLDER,
    STL10_URL,
    load_stl10,
    write_stl10_folder,
)
from dmt.errors import UserError

CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def _set(n: int, seed: int) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
    return ArrayDataset(images, (np.arange(n) % 10).astype(np.int64), list(CLASSES))


@pytest.fixture
def root(tmp_path) -> Path:
    unlabelled = np.random.default_rng(3).integers(0, 256, size=(7, 96, 96, 3), dtype=np.uint8)
    write_stl10_folder(tmp_path / STL10_FOLDER, _set(12, 1), _set(5, 2), unlabelled)
    return tmp_path


def test_round_trip_gives_the_three_sets_with_class_names(root):
    data = load_stl10(root)
    for got, want in ((data.train, _set(12, 1)), (data.test, _set(5, 2))):
        np.testing.assert_array_equal(got.images, want.images)
        np.testing.assert_array_equal(got.labels, want.labels)
        assert got.classes == CLASSES and got.images.flags.c_contiguous
    want = np.random.default_rng(3).integers(0, 256, size=(7, 96, 96, 3), dtype=np.uint8)
    np.testing.assert_array_equal(data.unlabelled, want)
    # labels are 1..10 in the file
    assert (root / STL10_FOLDER / "train_y.bin").read_bytes()[:3] == bytes([1, 2, 3])


def test_unlabelled_images_are_a_read_only_memory_map_of_the_file(root):
    arr = load_stl10(root / STL10_FOLDER).unlabelled  # data.root may be the folder itself
    assert isinstance(arr, np.memmap) and Path(arr.filename) == root / STL10_FOLDER / "unlabeled_X.bin"
    assert arr.shape == (7, 96, 96, 3) and arr.dtype == np.uint8
    assert not arr.flags.owndata and not arr.flags.writeable


def test_orientation_file_planes_are_column_major(tmp_path):
    # one image written byte by byte as the format says: per channel, column after column
    rows, cols = np.meshgrid(np.arange(96), np.arange(96), indexing="ij")
    image = np.stack([rows, cols + 100, (rows + cols) % 7], axis=-1).astype(np.uint8)  # HWC
    raw = bytearray()
    for channel in range(3):
        for col in range(96):
            raw += bytes(int(image[row, col, channel]) for row in range(96))
    folder = tmp_path / STL10_FOLDER
    write_stl10_folder(folder, _set(2, 1), _set(1, 2), image[None])
    assert (folder / "unlabeled_X.bin").read_bytes() == bytes(raw)  # the writer writes the format
    (folder / "test_X.bin").write_bytes(bytes(raw))  # the reader reads it, from bytes written by hand
    test = load_stl10(tmp_path).test
    assert test.images[0, 5, 9, 0] == 5 and test.images[0, 5, 9, 1] == 109
    np.testing.assert_array_equal(test.images[0], image)


@pytest.mark.parametrize("name, cut, expected", [
    ("unlabeled_X.bin", 1000, "expected N * 27,648 bytes (the official file: 100,000 * 27,648"),
    ("train_X.bin", IMAGE_BYTES, "expected 12 * 27,648 = 331,776 bytes"),
    ("test_y.bin", 1, "expected 4 * 27,648"),  # 4 labels now, for 5 images
])
def test_wrong_sizes_are_one_line_naming_file_and_download(root, name, cut, expected):
    path = root / STL10_FOLDER / name
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(UserError, match=re.escape(expected)) as info:
        load_stl10(root)
    message = str(info.value)
    assert "\n" not in message and STL10_URL in message
    assert str(root / STL10_FOLDER / ("test_X.bin" if name == "test_y.bin" else name)) in message


def test_labels_outside_1_to_10_are_refused(root):
    path = root / STL10_FOLDER / "train_y.bin"
    path.write_bytes(bytes([0]) + path.read_bytes()[1:])
    with pytest.raises(UserError, match=r"one label 1\.\.10 per image, got 0\.\.10"):
        load_stl10(root)


def test_class_names_file_must_name_ten_classes(root):
    (root / STL10_FOLDER / "class_names.txt").write_text("\n".join(CLASSES[:9]) + "\n")
    with pytest.raises(UserError, match="10 different classes.*got 9"):
        load_stl10(root)


def test_missing_folder_or_file_names_the_download(tmp_path, root):
    with pytest.raises(UserError) as info:
        load_stl10(tmp_path / "nowhere")
    assert STL10_URL in str(info.value) and STL10_FOLDER in str(info.value)
    (root / STL10_FOLDER / "unlabeled_X.bin").unlink()
    with pytest.raises(UserError, match="lacks unlabeled_X.bin"):
        load_stl10(root)
