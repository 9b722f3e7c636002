"""CIFAR-100 loading: the official pickles' layout, fine labels and meta's names, safe unpickling, messages."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from dmt.data.cifar100 import (
    CIFAR100_CLASSES,
    CIFAR100_FOLDER,
    CIFAR100_URL,
    load_cifar100,
    write_cifar100_folder,
)
from dmt.errors import UserError


def _images(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random images carrying their own index in two pixels: ``id = image[0, 0, 0] * 256 + image[0, 1, 0]``."""
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 0, 1, 0] = np.arange(n) // 256, np.arange(n) % 256
    return images


@pytest.fixture
def arrays():
    rng = np.random.default_rng(7)
    train_labels = rng.integers(0, 100, 300)
    test_labels = rng.integers(0, 100, 40)
    return _images(300, rng), train_labels, _images(40, rng), test_labels


@pytest.fixture
def root(tmp_path, arrays) -> Path:
    write_cifar100_folder(tmp_path / "data" / CIFAR100_FOLDER, *arrays)
    return tmp_path / "data"


def test_round_trip_gives_fine_labels_in_file_order_and_meta_names(root, arrays):
    train, test = load_cifar100(root)
    for got, images, labels in ((train, arrays[0], arrays[1]), (test, arrays[2], arrays[3])):
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.labels, labels)
        assert got.labels.dtype == np.int64 and got.images.flags.c_contiguous
    assert train.classes == test.classes == CIFAR100_CLASSES
    assert len(CIFAR100_CLASSES) == 100 and CIFAR100_CLASSES[:2] == ["apple", "aquarium_fish"]
    assert CIFAR100_CLASSES[-1] == "worm"


def test_class_names_are_read_from_meta(tmp_path, arrays):
    names = [f"kind_{k:02d}" for k in range(100)]
    write_cifar100_folder(tmp_path / CIFAR100_FOLDER, *arrays, classes=names)
    train, _ = load_cifar100(tmp_path / CIFAR100_FOLDER)  # data.root may be the folder itself
    assert train.classes == names


def test_written_files_have_the_official_layout(root, arrays):
    folder = root / CIFAR100_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]
    raw = (folder / "train").read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2, like the official files
    entry = pickle.loads(raw, encoding="latin1")  # trusted: we just wrote it
    assert set(entry) == {b"filenames", b"batch_label", b"fine_labels", b"coarse_labels", b"data"}
    assert entry[b"data"].shape == (300, 3072) and entry[b"data"].dtype == np.uint8
    # channel-planar rows: 1024 red values, then green, then blue
    np.testing.assert_array_equal(entry[b"data"][:, 2048:].reshape(300, 32, 32), arrays[0][..., 2])
    assert entry[b"fine_labels"] == arrays[1].tolist() and all(type(v) is int for v in entry[b"fine_labels"])
    assert max(entry[b"coarse_labels"]) < 20
    meta = pickle.loads((folder / "meta").read_bytes(), encoding="latin1")
    assert set(meta) == {b"fine_label_names", b"coarse_label_names"} and meta[b"fine_label_names"][0] == b"apple"


def test_python2_style_str_keys_are_read(root, arrays):
    # the official files were written by Python 2: latin1 unpickling gives str keys and names
    folder = root / CIFAR100_FOLDER
    rows = np.ascontiguousarray(arrays[2].transpose(0, 3, 1, 2)).reshape(40, 3072)
    (folder / "test").write_bytes(pickle.dumps({"data": rows, "fine_labels": arrays[3].tolist(),
                                                "coarse_labels": [0] * 40}, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": list(CIFAR100_CLASSES)}, protocol=2))
    _, test = load_cifar100(root)
    np.testing.assert_array_equal(test.images, arrays[2])
    assert test.classes == CIFAR100_CLASSES


class _Exploit:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("target", ["train", "meta"])
def test_doctored_pickle_is_refused_and_nothing_runs(root, tmp_path, target):
    marker = tmp_path / "pwned"
    path = root / CIFAR100_FOLDER / target
    payload = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1],
               b"fine_label_names": list(CIFAR100_CLASSES), b"filenames": [_Exploit(os.system, f"touch {marker}")]}
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UserError, match="refused") as info:
        load_cifar100(root)
    message = str(info.value)
    assert str(path) in message and "'posix.system'" in message and "CIFAR-100" in message
    assert "\n" not in message and not marker.exists()


@pytest.mark.parametrize("change, pattern", [
    ({b"fine_labels": [100] * 300}, r"0\.\.99"),
    ({b"fine_labels": [0] * 299}, "300 images but 299 labels"),
    ({b"data": np.zeros((300, 1024), np.uint8)}, r"shape \(n, 3072\)"),
])
def test_malformed_train_file_names_it(root, change, pattern):
    path = root / CIFAR100_FOLDER / "train"
    entry = pickle.loads(path.read_bytes(), encoding="latin1")
    path.write_bytes(pickle.dumps({**entry, **change}, protocol=2))
    with pytest.raises(UserError, match=pattern) as info:
        load_cifar100(root)
    assert str(path) in str(info.value)


def test_missing_fine_labels_and_short_meta_are_named(root):
    folder = root / CIFAR100_FOLDER
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"a", b"b"]}, protocol=2))
    with pytest.raises(UserError, match="names 2 classes, expected 100"):
        load_cifar100(root)
    (folder / "meta").write_bytes(pickle.dumps({b"coarse_label_names": [b"a"]}, protocol=2))
    with pytest.raises(UserError, match="missing key.*fine_label_names"):
        load_cifar100(root)


def test_truncated_file_is_one_line(root):
    path = root / CIFAR100_FOLDER / "test"
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(UserError, match="not a readable CIFAR-100 file") as info:
        load_cifar100(root)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_folder_and_file_name_the_download(root, tmp_path):
    with pytest.raises(UserError) as info:
        load_cifar100(tmp_path / "nowhere")
    assert CIFAR100_URL in str(info.value) and CIFAR100_FOLDER in str(info.value)
    (root / CIFAR100_FOLDER / "meta").unlink()
    with pytest.raises(UserError, match="lacks meta") as info:
        load_cifar100(root)
    assert CIFAR100_URL in str(info.value)


def test_loading_never_writes_into_the_dataset(root):
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (root / CIFAR100_FOLDER).iterdir()}
    load_cifar100(root)
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in (root / CIFAR100_FOLDER).iterdir()} == before
