"""The pre-flight check of your own classification images: what ``dmt check`` reports, and each
mistake as one line naming the file, with the tree left byte-identical."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmt.cli.main import main
from dmt.config.schema import DataConfig, ExperimentConfig
from dmt.errors import UserError
from dmt.run.preflight import preflight, same_file

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from class_tree_fixtures import put, tree, tree_state  # noqa: E402


def config(root: Path | None, check: str = "headers", **keys) -> ExperimentConfig:
    return ExperimentConfig(data=DataConfig(name="imagefolder", root=root and str(root), check=check, **keys))


def test_summary_names_what_was_checked(tmp_path):
    root = tree(tmp_path / "data")
    before = tree_state(root)
    report = preflight(config(root))
    assert report.summary() == "ok: 6 labelled images in 3 classes, 4 unlabelled, 2 val, 3 test (headers read)"
    assert preflight(config(root, "full")).summary().endswith("3 test (decoded)")
    assert preflight(config(root, "none")).summary() == "data.check is none: nothing checked"
    assert tree_state(root) == before


def test_benchmark_mode_summary(tmp_path):
    for k, rel in enumerate(["train/a/1.png", "train/a/2.png", "train/b/3.png", "test/b/4.png"]):
        put(tmp_path / rel, k)
    assert preflight(config(tmp_path)).summary() == ("ok: 3 training images in 2 classes (benchmark mode), 1 test "
                                                     "(headers read)")


def test_dmt_check_prints_the_summary(tmp_path, capsys):
    root = tree(tmp_path / "data")
    yaml = tmp_path / "mine.yaml"
    yaml.write_text(f"task: classification\ndata:\n  name: imagefolder\n  root: {root}\n  image_size: 16\n")
    assert main(["check", str(yaml), "--full"]) == 0
    assert capsys.readouterr().out.strip() == ("ok: 6 labelled images in 3 classes, 4 unlabelled, 2 val, 3 test "
                                               "(decoded)")


def spoil(root: Path, case: str) -> tuple[str, str]:
    """Make the mistake ``case`` in the tree; returns (data.check that finds it, what the line names)."""
    if case == "unreadable image":
        bad = root / "unlabelled/x/w.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n but nothing after")
        return "headers", str(bad)
    if case == "truncated image":
        bad = root / "val/cat/v1.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 30, 3), np.uint8)).save(bad)
        bad.write_bytes(bad.read_bytes()[:1000])  # the header reads; the pixels do not
        return "full", str(bad)
    if case == "too large":
        bad = root / "labelled/bird/c.png"
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(bad)
        return "headers", str(bad)
    if case == "empty class folder":
        (root / "labelled/horse").mkdir()
        return "headers", str(root / "labelled/horse")
    if case == "val class missing from labelled":
        put(root / "val/horse/h.png")
        return "headers", str(root / "val/horse")
    if case == "copy in unlabelled":
        shutil.copyfile(root / "labelled/cat/a.png", root / "unlabelled/x/copy.png")
        return "headers", str(root / "unlabelled/x/copy.png")
    assert case == "link in unlabelled"
    os.symlink(root / "labelled/Dog/e.png", root / "unlabelled/e.png")
    return "headers", str(root / "labelled/Dog/e.png")


@pytest.mark.parametrize("case", ["unreadable image", "truncated image", "too large", "empty class folder",
                                  "val class missing from labelled", "copy in unlabelled", "link in unlabelled"])
def test_each_mistake_is_one_line_naming_the_file(tmp_path, case):
    root = tree(tmp_path / "data")
    check, named = spoil(root, case)
    before = tree_state(root)
    cfg = config(root, check, max_pixels=1000)
    with pytest.raises(UserError) as info:
        preflight(cfg)
    line = str(info.value)
    assert "\n" not in line and named in line
    if check == "headers":  # full finds it too
        with pytest.raises(UserError, match=named.replace(".", r"\.")):
            preflight(config(root, "full", max_pixels=1000))
    else:
        preflight(config(root, "headers", max_pixels=1000))  # only decoding finds it
    assert tree_state(root) == before


@pytest.mark.parametrize("case", ["unknown class", "missing file", "listed labelled and unlabelled",
                                  "same bytes labelled and unlabelled"])
def test_list_file_mistakes(tmp_path, case):
    images = tmp_path / "images"
    for k, name in enumerate(["a.png", "b.png", "c.png", "d.png"]):
        put(images / name, k)
    rows = ["images/a.png,cat", "images/b.png,dog", "images/c.png,", "images/d.png,"]
    val = ["images/a.png,cat"]
    if case == "unknown class":
        val = ["images/b.png,horse"]
        named = "val.csv line 1"
    elif case == "missing file":
        rows.append("images/gone.png,")
        named = "train.csv line 5"
    elif case == "listed labelled and unlabelled":
        rows.append("images/../images/a.png,")
        named = "train.csv line 5"
    else:
        shutil.copyfile(images / "b.png", images / "e.png")
        rows.append("images/e.png,")
        named = str(images / "e.png")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "val.csv").write_text("\n".join(val) + "\n")
    before = tree_state(tmp_path)
    cfg = config(None, train_csv=str(tmp_path / "train.csv"), val_csv=str(tmp_path / "val.csv"))
    with pytest.raises(UserError) as info:
        preflight(cfg)
    assert "\n" not in str(info.value) and named in str(info.value)
    assert tree_state(tmp_path) == before


def test_same_file_reads_only_files_of_a_shared_size(tmp_path, monkeypatch):
    a = put(tmp_path / "a.png", 1)
    b = put(tmp_path / "b.png", 2)
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    (tmp_path / "other.bin").write_bytes(b"y" * 5000)
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    assert same_file([a, tmp_path / "big.bin"], [b, tmp_path / "other.bin"]) is None
    assert sorted(opened) == ["big.bin", "other.bin"]  # a.png and b.png differ in size: never read
    assert same_file([a], [b, put(tmp_path / "c.png", 1)]) == (a, tmp_path / "c.png")
