"""SVHN loading: the official .mat layout (X rows/columns, label 10 = digit 0), the extra set, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from dmt.config import load_config
from dmt.data.svhn import SVHN_CLASSES, SVHN_URL, load_svhn, read_svhn_mat, write_svhn_mat
from dmt.errors import UserError


def _arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10


@pytest.fixture
def root(tmp_path) -> Path:
    for name, n, seed in (("train", 30, 1), ("test", 12, 2), ("extra", 20, 3)):
        write_svhn_mat(tmp_path / f"{name}_32x32.mat", *_arrays(n, seed))
    return tmp_path


def test_round_trip_maps_label_10_to_digit_0(root):
    train, test = load_svhn(root)
    images, labels = _arrays(30, 1)
    np.testing.assert_array_equal(train.images, images)
    np.testing.assert_array_equal(train.labels, labels)
    np.testing.assert_array_equal(test.images, _arrays(12, 2)[0])
    assert train.classes == test.classes == SVHN_CLASSES == [str(d) for d in range(10)]
    raw = loadmat(root / "train_32x32.mat")  # the file stores the digit 0 as 10, like the official one
    assert raw["X"].shape == (32, 32, 3, 30) and raw["y"].shape == (30, 1) and raw["y"][0, 0] == 10


def test_extra_is_appended_after_train_only_when_asked(root):
    train, _ = load_svhn(root, extra=True)
    np.testing.assert_array_equal(train.images, np.concatenate([_arrays(30, 1)[0], _arrays(20, 3)[0]]))
    np.testing.assert_array_equal(train.labels, np.concatenate([_arrays(30, 1)[1], _arrays(20, 3)[1]]))
    (root / "extra_32x32.mat").unlink()
    assert len(load_svhn(root)[0]) == 30  # without extra the file is never needed
    with pytest.raises(UserError, match="extra_32x32.mat.*data.svhn_extra: false"):
        load_svhn(root, extra=True)


def test_orientation_x_is_row_column_channel_image(tmp_path):
    # written without our writer: X[r, c, channel, n] as MATLAB indexes it
    x = np.zeros((32, 32, 3, 2), np.uint8)
    x[:, :, 0, 1] = np.arange(32)[:, None]  # red = row
    x[:, :, 1, 1] = 100 + np.arange(32)[None, :]  # green = column
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [3]], np.uint8)})
    images, labels = read_svhn_mat(tmp_path / "test_32x32.mat")
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [0, 3]
    assert images[1, 5, 9, 0] == 5 and images[1, 5, 9, 1] == 109 and images[0].sum() == 0


def test_missing_files_name_the_download(tmp_path, root):
    with pytest.raises(UserError) as info:
        load_svhn(tmp_path / "nowhere")
    assert SVHN_URL in str(info.value) and "train_32x32.mat" in str(info.value)
    (root / "test_32x32.mat").unlink()
    with pytest.raises(UserError, match="test_32x32.mat not found") as info:
        load_svhn(root)
    assert SVHN_URL in str(info.value)


@pytest.mark.parametrize("keep", [100, 5000, 21000])
def test_truncated_file_is_one_line(root, keep):
    path = root / "train_32x32.mat"
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(UserError, match="not a readable SVHN .mat file") as info:
        load_svhn(root)
    message = str(info.value)
    assert str(path) in message and SVHN_URL in message and "\n" not in message


@pytest.mark.parametrize("content, pattern", [
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [1]], np.uint8)}, r"1\.\.10"),
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[11], [1]], np.uint8)}, r"1\.\.10"),
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1.5], [1]])}, r"1\.\.10"),
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1]], np.uint8)}, "one label per image"),
    ({"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.array([[1], [2]], np.uint8)}, r"\(32, 32, 3, N\)"),
    ({"X": np.zeros((32, 32, 3, 2), np.float32), "y": np.array([[1], [2]], np.uint8)}, "uint8"),
    ({"images": np.zeros((32, 32, 3, 2), np.uint8)}, "'X' must be"),
])
def test_malformed_content_is_named(tmp_path, content, pattern):
    savemat(tmp_path / "train_32x32.mat", content)
    with pytest.raises(UserError, match=pattern) as info:
        read_svhn_mat(tmp_path / "train_32x32.mat")
    assert "train_32x32.mat" in str(info.value)


def test_svhn_extra_is_refused_for_other_datasets():
    with pytest.raises(UserError, match="data.svhn_extra.*only SVHN"):
        load_config("cifar10-4-dmt", ["data.svhn_extra=true"])
    assert load_config("svhn-4-dmt").data.svhn_extra is True
