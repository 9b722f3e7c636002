"""CIFAR-10 loading: round trip, official format, safe unpickling and validation messages."""

from __future__ import annotations

import builtins
import os
import pickle
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dmt.data.cifar import (
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_URL,
    load_cifar10,
    read_cifar_batch,
)
from dmt.errors import UserError


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_round_trip_returns_written_arrays_in_batch_order(cifar_root, tiny_cifar):
    train, test = load_cifar10(cifar_root)
    np.testing.assert_array_equal(train.images, tiny_cifar.train_images)
    np.testing.assert_array_equal(train.labels, tiny_cifar.train_labels)
    np.testing.assert_array_equal(test.images, tiny_cifar.test_images)
    np.testing.assert_array_equal(test.labels, tiny_cifar.test_labels)
    assert train.images.shape == (300, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert train.classes == CIFAR10_CLASSES and len(CIFAR10_CLASSES) == 10
    assert CIFAR10_CLASSES[0] == "airplane" and CIFAR10_CLASSES[9] == "truck"


def test_root_may_be_the_batches_folder_itself(cifar_root, tiny_cifar):
    train, _ = load_cifar10(cifar_root / CIFAR10_FOLDER)
    np.testing.assert_array_equal(train.labels, tiny_cifar.train_labels)


def test_loading_never_writes_into_the_dataset_folder(cifar_root):
    folder = cifar_root / CIFAR10_FOLDER
    before = _snapshot(folder)
    load_cifar10(cifar_root)
    assert _snapshot(folder) == before


def test_written_batches_have_the_official_layout(cifar_root, tiny_cifar):
    folder = cifar_root / CIFAR10_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]
    )
    raw = (folder / "data_batch_2").read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2, like the official files
    entry = pickle.loads(raw, encoding="latin1")  # trusted: we just wrote it
    assert set(entry) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert entry[b"batch_label"] == b"training batch 2 of 5"
    assert entry[b"data"].shape == (60, 3072) and entry[b"data"].dtype == np.uint8
    # Second batch = train images 60..119; rows are channel-planar (all red, then green, blue).
    red, blue = entry[b"data"][:, :1024], entry[b"data"][:, 2048:]
    np.testing.assert_array_equal(red.reshape(60, 32, 32), tiny_cifar.train_images[60:120, :, :, 0])
    np.testing.assert_array_equal(blue.reshape(60, 32, 32), tiny_cifar.train_images[60:120, :, :, 2])
    assert entry[b"labels"] == tiny_cifar.train_labels[60:120].tolist()
    assert all(type(v) is int for v in entry[b"labels"])


def _py2_str(text: bytes) -> bytes:
    """A Python 2 ``str`` as protocol-2 opcodes (SHORT_BINSTRING / BINSTRING)."""
    if len(text) < 256:
        return b"U" + bytes([len(text)]) + text
    return b"T" + struct.pack("<I", len(text)) + text


def _py2_int(value: int) -> bytes:
    return b"K" + bytes([value]) if value < 256 else b"M" + struct.pack("<H", value)


def _py2_batch_bytes(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled the way Python 2 with numpy 1.x wrote the official CIFAR-10 files."""
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R"
        + b"(K\x01" + _py2_int(data.shape[0]) + _py2_int(data.shape[1]) + b"\x86"
        + b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
        + b"(K\x03" + _py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89" + _py2_str(data.tobytes()) + b"tb"
    )
    labels_list = b"](" + b"".join(_py2_int(v) for v in labels) + b"e"
    names = b"](" + b"".join(_py2_str(f"img_{i}.png".encode()) for i in range(len(labels))) + b"e"
    return (
        b"\x80\x02}("
        + _py2_str(b"batch_label") + _py2_str(b"training batch 1 of 5")
        + _py2_str(b"data") + array
        + _py2_str(b"labels") + labels_list
        + _py2_str(b"filenames") + names
        + b"u."
    )


def test_reads_python2_numpy1_pickles_like_the_official_files(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_py2_batch_bytes(data, [3, 0, 9]))
    images, labels = read_cifar_batch(path)
    assert labels.tolist() == [3, 0, 9]
    np.testing.assert_array_equal(images, data.reshape(3, 3, 32, 32).transpose(0, 2, 3, 1))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_accepts_str_keys_label_arrays_and_newer_protocols(tmp_path, protocol):
    data = np.zeros((2, 3072), dtype=np.uint8)
    data[1, 1024] = 7  # green channel of pixel (0, 0) of image 1
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({"data": data, "labels": np.array([1, 2])}, protocol=protocol))
    images, labels = read_cifar_batch(path)
    assert labels.tolist() == [1, 2] and images[1, 0, 0, 1] == 7 and images.sum() == 7
    assert images.flags.writeable and images.flags.c_contiguous


class _Exploit:
    """Pickles as a call of ``func(*args)``: what a doctored batch would contain."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _exploits(marker: Path) -> dict[str, _Exploit]:
    return {
        "os.system": _Exploit(os.system, f"touch {marker}"),
        "builtins.eval": _Exploit(builtins.eval, f"__import__('pathlib').Path({str(marker)!r}).touch()"),
        "subprocess.call": _Exploit(subprocess.call, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "subprocess.call"])
@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
def test_doctored_batch_is_refused_and_nothing_runs(cifar_root, tmp_path, kind, protocol, nested):
    marker = tmp_path / "pwned"
    exploit = _exploits(marker)[kind]
    if nested:  # hidden inside an otherwise valid batch
        payload = {b"data": np.zeros((60, 3072), np.uint8), b"labels": [0] * 60, b"filenames": [exploit]}
    else:
        payload = exploit
    target = cifar_root / CIFAR10_FOLDER / "data_batch_1"
    target.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(UserError) as info:
        load_cifar10(cifar_root)
    message = str(info.value)
    assert str(target) in message and "refused" in message
    # The refused global is named as the pickle spells it: os.system is 'posix.system' on
    # Linux, and protocol 2 writes some names as their Python 2 equivalents.
    spelled = {
        ("os.system", 2): "posix.system",
        ("os.system", 5): "posix.system",
        ("builtins.eval", 2): "__builtin__.eval",
        ("builtins.eval", 5): "builtins.eval",
        ("subprocess.call", 2): "commands.call",
        ("subprocess.call", 5): "subprocess.call",
    }
    assert f"'{spelled[kind, protocol]}'" in message
    assert not marker.exists()


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    import codecs

    path = tmp_path / "data_batch_1"
    # A real allowed global, but with a decompression codec instead of latin1.
    assert codecs.encode.__module__ == "_codecs"  # so the pickle names _codecs.encode
    path.write_bytes(pickle.dumps(_Exploit(codecs.encode, b"x" * 10, "zlib_codec"), protocol=2))
    with pytest.raises(UserError, match="data_batch_1"):
        read_cifar_batch(path)


def _valid(n: int = 4) -> dict:
    data = np.zeros((n, 3072), np.uint8)
    return {b"data": data, b"labels": [0] * n, b"batch_label": b"x", b"filenames": []}


MALFORMED = {
    "wrong_row_length": (
        {**_valid(), b"data": np.zeros((4, 100), np.uint8)},
        r"shape \(n, 3072\).*\(4, 100\)",
    ),
    "one_dimensional": ({**_valid(), b"data": np.zeros(3072, np.uint8)}, r"shape \(n, 3072\).*\(3072,\)"),
    "float_data": ({**_valid(), b"data": np.zeros((4, 3072), np.float32)}, "uint8"),
    "data_not_array": ({**_valid(), b"data": [1, 2, 3]}, "'data' must be"),
    "label_count": ({**_valid(), b"labels": [0] * 3}, "4 images but 3 labels"),
    "label_range": ({**_valid(), b"labels": [0, 1, 2, 10]}, r"0\.\.9"),
    "negative_label": ({**_valid(), b"labels": [0, -1, 2, 3]}, r"0\.\.9"),
    "label_not_int": ({**_valid(), b"labels": [0, 1.5, 2, 3]}, "list of integers"),
    "missing_labels": ({b"data": np.zeros((4, 3072), np.uint8)}, "missing key.*labels"),
    "not_a_dict": ([1, 2, 3], "expected a pickled dict"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_batch_names_the_file(cifar_root, case):
    payload, pattern = MALFORMED[case]
    target = cifar_root / CIFAR10_FOLDER / "data_batch_4"
    target.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UserError, match=pattern) as info:
        load_cifar10(cifar_root)
    assert str(target) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"", b"not a pickle at all", None], ids=["empty", "garbage", "truncated"]
)
def test_unreadable_batch_names_the_file(cifar_root, content):
    target = cifar_root / CIFAR10_FOLDER / "test_batch"
    if content is None:
        content = target.read_bytes()[:500]
    target.write_bytes(content)
    with pytest.raises(UserError, match="not a readable CIFAR-10 batch") as info:
        load_cifar10(cifar_root)
    assert str(target) in str(info.value)


def test_missing_folder_says_where_to_download(tmp_path):
    with pytest.raises(UserError) as info:
        load_cifar10(tmp_path / "nowhere")
    message = str(info.value)
    assert CIFAR10_URL in message and "data.root" in message and CIFAR10_FOLDER in message


def test_missing_batch_file_is_named(cifar_root):
    (cifar_root / CIFAR10_FOLDER / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3") as info:
        load_cifar10(cifar_root)
    assert CIFAR10_URL in str(info.value)
