"""dmt.atomic: unique temporary names, fsync of the file and its folder, nothing left on failure."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dmt import atomic
from dmt.atomic import atomic_path, atomic_write, is_leftover, remove_leftovers, write_bytes, write_json, write_text


def test_two_writers_of_one_path_get_their_own_temporary_files(tmp_path: Path) -> None:
    dst = tmp_path / "results.json"
    with atomic_path(dst) as first, atomic_path(dst) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert is_leftover(first) and is_leftover(second)
        first.write_bytes(b"first")
        second.write_bytes(b"second")
        assert not dst.exists()  # nothing under the final name before a writer finishes
    # the inner block (second) committed first, then the outer one replaced it
    assert dst.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_the_file_and_its_folder_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[os.stat_result] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", recording_fsync)
    dst = tmp_path / "sub" / "model.safetensors"
    for write in (lambda: write_bytes(dst, b"x" * 100), lambda: write_text(dst, "y"),
                  lambda: write_json(dst, {"a": 1})):
        synced.clear()
        write()
        # first the data (the very file now under the final name), then the folder holding the rename
        assert [stat.S_ISREG(s.st_mode) for s in synced] == [True, False]
        assert synced[0].st_ino == dst.stat().st_ino and synced[0].st_size == dst.stat().st_size
        assert stat.S_ISDIR(synced[1].st_mode) and synced[1].st_ino == dst.parent.stat().st_ino


def test_the_data_is_fsynced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: events.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    write_bytes(tmp_path / "a.bin", b"data")
    assert events == ["fsync", "replace", "fsync"]


@pytest.mark.parametrize("form", ["atomic_write", "atomic_path"])
def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path: Path, form: str) -> None:
    dst = tmp_path / "config.yaml"
    dst.write_text("old: 1\n")

    with pytest.raises(KeyboardInterrupt):
        if form == "atomic_write":
            with atomic_write(dst, "w") as f:
                f.write("new: ")
                raise KeyboardInterrupt  # a Ctrl-C mid-write
        else:
            with atomic_path(dst) as tmp:
                tmp.write_text("new: ")
                raise KeyboardInterrupt
    assert dst.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_a_failed_rename_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("a folder that is not empty cannot be replaced by a file")
    with pytest.raises(OSError):
        write_text(tmp_path / "taken", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_atomic_path_keeps_the_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "results.png") as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".results.png.")
        tmp.write_bytes(b"png")
    with atomic_path(tmp_path / "LICENSE") as tmp:
        assert tmp.suffix == ".tmp"
        tmp.write_bytes(b"text")
    assert (tmp_path / "results.png").read_bytes() == b"png" and (tmp_path / "LICENSE").read_bytes() == b"text"


def test_new_files_get_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640  # not mkstemp's 0600


@pytest.mark.parametrize("name", ["n" * 250 + ".npz", "图" * 80 + ".png"])
def test_a_name_near_the_file_system_limit_still_gets_a_temporary_name(tmp_path: Path, name: str) -> None:
    dst = tmp_path / name  # 254 and 244 bytes: legal names, too long to be a temporary's whole
    with atomic_path(dst) as tmp:
        assert len(os.fsencode(tmp.name)) < 255 and is_leftover(tmp) and tmp.suffix == dst.suffix
        tmp.write_bytes(b"x")
    assert dst.read_bytes() == b"x"


def test_contents_are_written_as_given(tmp_path: Path) -> None:
    data = {"b": [1, 2.5], "a": "é"}
    write_json(tmp_path / "a.json", data)
    assert (tmp_path / "a.json").read_bytes() == (json.dumps(data, indent=2) + "\n").encode()
    write_json(tmp_path / "b.json", data, indent=None, sort_keys=True)
    assert (tmp_path / "b.json").read_text() == '{"a": "\\u00e9", "b": [1, 2.5]}\n'
    write_text(tmp_path / "c.txt", "é\n")  # utf-8, and no newline translation
    assert (tmp_path / "c.txt").read_bytes() == b"\xc3\xa9\n"
    with atomic_write(tmp_path / "d.csv", "w", newline="") as f:
        f.write("a,b\r\n")
    assert (tmp_path / "d.csv").read_bytes() == b"a,b\r\n"
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "e.txt", "a"):
            pass
    assert not (tmp_path / "e.txt").exists()


def test_remove_leftovers_removes_only_leftovers(tmp_path: Path) -> None:
    keep = ["results.json", ".lock", ".hidden.tmp", "a.tmp", ".results.json.tmp", ".results.json.tmp-123",
            ".x.0a1b2c3.tmp", ".x.0A1B2C3D.tmp", "x.0a1b2c3d.tmp"]
    leftovers = [".results.json.0a1b2c3d.tmp.json", ".LICENSE.deadbeef.tmp", ".a.b.c.png.01234567.tmp.png"]
    for name in keep + leftovers:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dir.0a1b2c3d.tmp").mkdir()  # a folder named like one is not a file we wrote
    deep = tmp_path / "stages" / "phase-1" / "labels"
    deep.mkdir(parents=True)
    (deep / ".img.npz.89abcdef.tmp.npz").write_text("x")
    (deep / "img.npz").write_text("x")

    assert [n for n in keep + leftovers if is_leftover(n)] == leftovers
    assert remove_leftovers(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + [".dir.0a1b2c3d.tmp", "stages"])
    assert sorted(p.name for p in deep.iterdir()) == [".img.npz.89abcdef.tmp.npz", "img.npz"]  # not recursive
    assert remove_leftovers(tmp_path, recursive=True) == 1
    assert sorted(p.name for p in deep.iterdir()) == ["img.npz"]
    assert remove_leftovers(tmp_path / "absent") == 0


def test_a_real_temporary_name_is_recognised_as_a_leftover(tmp_path: Path) -> None:
    names = []
    for dst in ("a.json", "b", "c.tar.gz", ".hidden.yaml"):
        with atomic_path(tmp_path / dst) as tmp:
            names.append(tmp.name)
            assert remove_leftovers(tmp_path) == 1  # what a kill now would leave is what gets cleared
            tmp.write_text("x")
    assert all(is_leftover(n) for n in names)
    assert remove_leftovers(tmp_path) == 0 and len(list(tmp_path.iterdir())) == 4


def test_a_reopened_run_directory_clears_what_killed_writers_left(tmp_path: Path) -> None:
    from dmt.config import load_config
    from dmt.run.rundir import RunDir

    cfg = load_config("demo-digits")
    first = RunDir(tmp_path)
    first.open(cfg)
    first.close()
    # killed writers of the run: top level, splits, a stage, a pseudo-label store (any depth)
    ours = [".results.json.0a1b2c3d.tmp.json", "splits/.val.txt.0a1b2c3d.tmp.txt",
            "stages/phase1-a/.model.safetensors.0a1b2c3d.tmp.safetensors",
            "stages/phase1-a/labels/.x%2Fy.npz.0a1b2c3d.tmp.npz"]
    # not the run's: TensorBoard's folder, a folder a user made (dmt predict may be writing there)
    others = ["tb/phase1-a/.e.0a1b2c3d.tmp", "preds/.a.png.0a1b2c3d.tmp.png", "stages/phase1-a/labels/a.npz"]
    for rel in ours + others:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"part")
    (tmp_path / "stages" / "phase1-a" / "labels" / "a.npz").unlink()  # only leftovers: no stage has started

    # a leftover is not a started stage: a run whose stages never started still takes a changed config
    changed = load_config("demo-digits", ["seed=7"])
    again = RunDir(tmp_path)
    again.open(changed)
    again.close()
    assert "seed: 7" in (tmp_path / "config.yaml").read_text()
    assert [rel for rel in ours + others[:2] if (tmp_path / rel).exists()] == others[:2]
