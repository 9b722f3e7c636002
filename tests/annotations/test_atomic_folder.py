"""dmt.atomic.atomic_folder: the folder appears whole under its name, or not at all."""

from __future__ import annotations

import pytest

from dmt.atomic import atomic_folder, write_text


def test_the_folder_appears_only_at_the_end(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as tmp:
        write_text(tmp / "x.txt", "x")
        assert not out.exists() and tmp.parent == tmp_path and tmp.name.startswith(".out.")
    assert (out / "x.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_error_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "out") as tmp:
        write_text(tmp / "x.txt", "x")
        raise RuntimeError("half way")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_with_files_is_not_replaced(tmp_path):
    write_text(tmp_path / "out" / "keep.txt", "mine")
    with pytest.raises(OSError), atomic_folder(tmp_path / "out") as tmp:
        write_text(tmp / "x.txt", "x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
