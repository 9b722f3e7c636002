"""The pseudo-label store: round trips, atomic writes, resume, and refusing unsafe files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dmt.atomic import is_leftover
from dmt.data import labels as labels_module
from dmt.data.labels import PseudoLabelStore, histogram_of_store
from dmt.errors import UserError
from dmt.method.thresholds import confidence_histogram


def _maps(h: int, w: int, seed: int = 0, num_classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, num_classes, size=(h, w), dtype=np.uint8)
    confidence = rng.random((h, w)).astype(np.float16)
    return classes, confidence


def test_round_trip_preserves_dtypes_and_float16_bits(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path / "labels")
    classes, confidence = _maps(7, 11)
    confidence[0, :4] = [0.0, 1.0, np.float16(6e-8), np.float16(0.999)]  # subnormal, extremes
    store.write("img_000", classes, confidence)

    cls, conf = store.read("img_000")
    assert cls.dtype == np.uint8 and conf.dtype == np.float16
    assert cls.shape == conf.shape == (7, 11)
    np.testing.assert_array_equal(cls, classes)
    np.testing.assert_array_equal(conf.view(np.uint16), confidence.view(np.uint16))  # bit exact


def test_write_accepts_tensors(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    classes = torch.tensor([[0, 3], [2, 1]], dtype=torch.uint8)
    confidence = torch.tensor([[0.5, 0.25], [1.0, 0.125]], dtype=torch.float16)
    store.write("a", classes, confidence)
    cls, conf = store.read("a")
    assert cls.tolist() == [[0, 3], [2, 1]]
    assert conf.tolist() == [[0.5, 0.25], [1.0, 0.125]]


def test_file_format_is_plain_npz(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    classes, confidence = _maps(3, 4)
    store.write("x", classes, confidence)
    path = tmp_path / "x.npz"
    assert path.is_file()
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["classes.npy", "confidence.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())  # uncompressed


def test_names_with_slashes_and_percent(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    names = ["aachen/aachen_000000_000019", "bochum/b_1", "odd%2Fname", "odd/2Fname", "2007_000032"]
    for i, name in enumerate(names):
        store.write(name, *_maps(2, 3, seed=i))
    assert store.names() == sorted(names)
    # Every file sits directly in the store directory; no subdirectory was created.
    assert all(p.is_file() for p in tmp_path.iterdir())
    assert len(list(tmp_path.iterdir())) == len(names)
    for i, name in enumerate(names):
        assert name in store
        np.testing.assert_array_equal(store.read(name)[0], _maps(2, 3, seed=i)[0])
    assert "aachen/other" not in store and 3 not in store


@pytest.mark.parametrize("name", ["", "../evil", "a/../b", "/abs", "a//b", "a/", ".hidden", "a\\b", "a\nb"])
def test_unsafe_names_are_rejected(tmp_path: Path, name: str) -> None:
    store = PseudoLabelStore(tmp_path / "s")
    with pytest.raises(ValueError):
        store.write(name, *_maps(2, 2))
    assert list((tmp_path / "s").iterdir()) == []


def test_shape_and_dtype_validation(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    classes, confidence = _maps(4, 4)
    with pytest.raises(ValueError, match="uint8"):
        store.write("a", classes.astype(np.int64), confidence)
    with pytest.raises(ValueError, match="float16"):
        store.write("a", classes, confidence.astype(np.float32))
    with pytest.raises(ValueError, match="2-D"):
        store.write("a", classes, confidence[:3])
    with pytest.raises(ValueError, match="2-D"):
        store.write("a", classes[None], confidence[None])
    assert store.names() == []


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PseudoLabelStore(tmp_path)
    store.write("keep", *_maps(2, 2, seed=1))
    seen: list[list[str]] = []

    def crashing_savez(f, **arrays):
        f.write(b"PK partial")  # some bytes reach the temp file, then the writer dies
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise KeyboardInterrupt

    monkeypatch.setattr(labels_module.np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        store.write("keep", *_maps(2, 2, seed=2))
    with pytest.raises(KeyboardInterrupt):
        store.write("new", *_maps(2, 2))
    monkeypatch.undo()

    # While writing, the data went to a hidden temp file, never to the final name.
    assert len(seen[0]) == 2 and is_leftover(seen[0][0]) and seen[0][1] == "keep.npz"
    assert "new.npz" not in seen[1]
    # After the crash the temp files are gone and the old entry is intact.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]
    np.testing.assert_array_equal(store.read("keep")[0], _maps(2, 2, seed=1)[0])
    assert store.names() == ["keep"]


def test_leftover_temp_files_are_ignored_then_removed(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    store.write("a", *_maps(2, 2))
    (tmp_path / ".b.npz.0a1b2c3d.tmp.npz").write_bytes(b"half a file")  # a hard kill mid-write
    assert is_leftover(tmp_path / ".b.npz.0a1b2c3d.tmp.npz")
    assert store.names() == ["a"] and "b" not in store
    PseudoLabelStore(tmp_path)  # reopening the store on resume cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_resume_semantics(tmp_path: Path) -> None:
    all_names = [f"img{i}" for i in range(5)]
    store = PseudoLabelStore(tmp_path)
    for name in all_names[:3]:  # the first pass is interrupted after three images
        store.write(name, *_maps(2, 2))
    assert not store.is_complete() and store.complete_meta() is None

    resumed = PseudoLabelStore(tmp_path)
    assert resumed.missing(all_names) == ["img3", "img4"]
    for name in resumed.missing(all_names):
        resumed.write(name, *_maps(2, 2))
    assert resumed.missing(all_names) == []
    resumed.mark_complete({"phase": 2, "images": 5})
    assert resumed.is_complete()
    assert PseudoLabelStore(tmp_path).complete_meta() == {"phase": 2, "images": 5}
    assert json.loads((tmp_path / "complete.json").read_text()) == {"images": 5, "phase": 2}
    assert len(resumed) == 5  # complete.json is not an image


def test_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    path = tmp_path / "evil.npz"
    # A crafted file: 'classes' is an object array, which loading could only do by unpickling.
    np.savez(path, classes=np.array([{"x": 1}, None], dtype=object), confidence=np.zeros((1, 1), np.float16))
    assert "evil" in store
    with pytest.raises(UserError, match=r"evil\.npz.*allow_pickle=False"):
        store.read("evil")


@pytest.mark.parametrize("content", ["pickle", "garbage", "npy", "wrong_dtype", "missing_array"])
def test_corrupt_files_raise_user_error_naming_the_file(tmp_path: Path, content: str) -> None:
    store = PseudoLabelStore(tmp_path)
    path = tmp_path / "bad.npz"
    if content == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"classes": 1}))
    elif content == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif content == "npy":
        buf = io.BytesIO()
        np.save(buf, np.zeros((2, 2), np.uint8))
        path.write_bytes(buf.getvalue())
    elif content == "wrong_dtype":
        np.savez(path, classes=np.zeros((2, 2), np.int32), confidence=np.zeros((2, 2), np.float16))
    else:
        np.savez(path, classes=np.zeros((2, 2), np.uint8))
    with pytest.raises(UserError, match="bad.npz"):
        store.read("bad")


def test_read_missing_name_raises_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        PseudoLabelStore(tmp_path).read("nope")


def test_histogram_of_store_sums_images(tmp_path: Path) -> None:
    store = PseudoLabelStore(tmp_path)
    a_cls = np.array([[0, 1], [1, 2]], np.uint8)
    a_conf = np.array([[0.5, 0.5], [0.25, 1.0]], np.float16)
    b_cls = np.array([[1, 1, 1]], np.uint8)
    b_conf = np.array([[0.5, 0.75, 0.75]], np.float16)
    store.write("a", a_cls, a_conf)
    store.write("dir/b", b_cls, b_conf)
    hist = histogram_of_store(store, ["a", "dir/b"], num_classes=4)

    def bits(v: float) -> int:
        return int(np.array(v, np.float16).view(np.uint16))

    assert hist.shape == (4, 65536) and hist.dtype == torch.int64
    assert hist.sum().item() == 7
    assert hist[0, bits(0.5)].item() == 1
    assert hist[1, bits(0.5)].item() == 2  # one from each image
    assert hist[1, bits(0.25)].item() == 1 and hist[1, bits(0.75)].item() == 2
    assert hist[2, bits(1.0)].item() == 1
    assert hist[3].sum().item() == 0
    expected = confidence_histogram(torch.from_numpy(a_cls), torch.from_numpy(a_conf), 4)
    assert torch.equal(histogram_of_store(store, ["a"], 4), expected)

    with pytest.raises(UserError, match="a.npz"):  # class 2 does not exist with 2 classes
        histogram_of_store(store, ["a"], num_classes=2)
