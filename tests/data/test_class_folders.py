"""Your own classification images: the folder layout (classes, order, nesting, hidden files), benchmark
mode, CSV list files equal to the folders they mirror, and the layout mistakes as one line each."""

from __future__ import annotations

import csv
import os
import pickle
import random
import shutil
import sys
from pathlib import Path

import pytest

from dmt.config.schema import DataConfig
from dmt.data.class_folders import DEFAULT_FOLDER_SIZE, find_classes, folder_image_size, load_imagefolder
from dmt.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
from class_tree_fixtures import LABELLED, TEST, UNLABELLED, VAL, put, tree  # noqa: E402


def folders(root: Path, **keys) -> DataConfig:
    return DataConfig(name="imagefolder", root=str(root), **keys)


def test_layout_classes_order_and_split(tmp_path):
    data = load_imagefolder(folders(tree(tmp_path)))
    assert data.classes == ["Dog", "bird", "cat"]  # sorted by code point, as torchvision: upper case first
    rel = [p.relative_to(tmp_path).as_posix() for p in data.train.paths]
    assert rel == ["labelled/Dog/d.jpeg", "labelled/Dog/e.png", "labelled/bird/c.png",
                   "labelled/cat/a.png", "labelled/cat/z.png", "labelled/cat/z/deep/b.JPG",  # a folder's
                   # own files before its subfolders', as torchvision's sorted(os.walk(...)) lists them
                   "unlabelled/a.png", "unlabelled/u.png", "unlabelled/x/w.png", "unlabelled/x/y/v.jpg"]
    assert data.train.labels.tolist() == [0, 0, 1, 2, 2, 2, -1, -1, -1, -1]
    assert data.labelled.tolist() == [0, 1, 2, 3, 4, 5] and data.unlabelled.tolist() == [6, 7, 8, 9]
    assert not data.benchmark
    assert [p.relative_to(tmp_path).as_posix() for p in data.val.paths] == ["val/Dog/v2.png", "val/cat/v1.png"]
    assert data.val.labels.tolist() == [0, 2] and data.test.labels.tolist() == [1, 2, 2]
    assert data.test.paths[1].name == "t0.png"
    assert data.train.size == DEFAULT_FOLDER_SIZE == 96 and data.train.image(9).shape == (96, 96, 3)
    assert data.train.max_pixels == DataConfig().max_pixels
    assert len(pickle.dumps(data.train)) < 4000  # paths only


def test_classes_and_labelled_images_match_torchvision(tmp_path):
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import find_classes as tv_find_classes

    root = tree(tmp_path, hidden=False)
    data = load_imagefolder(folders(root, image_size=8))
    assert find_classes(root / "labelled") == tv_find_classes(root / "labelled")[0] == data.classes
    samples = ImageFolder(str(root / "labelled")).samples  # scans only; decodes nothing
    labelled = [(str(data.train.paths[i]), int(data.train.labels[i])) for i in data.labelled]
    assert labelled == samples


def test_optional_sets_and_image_size(tmp_path):
    for rel in LABELLED + UNLABELLED + VAL:
        put(tmp_path / rel)
    data = load_imagefolder(folders(tmp_path, image_size=20))
    assert data.test is None and len(data.val) == 2 and not data.val_held_out
    assert data.train.image(0).shape == (20, 20, 3)
    assert folder_image_size(DataConfig(image_size=0)) == 96 and folder_image_size(DataConfig(image_size=7)) == 7


def test_without_val_or_test_a_share_of_each_class_is_held_out(tmp_path):
    """4 cat, 6 dog labelled images, no val/ or test/: round(0.2 * 4) = 1 cat and round(0.2 * 6) = 1
    dog (halves up; data.val_share 0.5: 2 and 3) held out as val, out of the training pool."""
    cats = [f"labelled/cat/{k}.png" for k in range(4)]
    dogs = [f"labelled/dog/{k}.png" for k in range(6)]
    for k, rel in enumerate(cats + dogs + ["unlabelled/u.png"]):
        put(tmp_path / rel, k)
    for share, per_class in ((0.2, [1, 1]), (0.5, [2, 3])):
        data = load_imagefolder(folders(tmp_path, val_share=share))
        assert data.val_held_out and data.test is None
        val = [p.relative_to(tmp_path).as_posix() for p in data.val.paths]
        labelled = [data.train.paths[i].relative_to(tmp_path).as_posix() for i in data.labelled]
        assert sorted(val + labelled) == sorted(cats + dogs) and not set(val) & set(labelled)  # every one used once
        assert data.val.labels.tolist() == [0] * per_class[0] + [1] * per_class[1]
        assert [p.parts[-2] for p in data.val.paths] == ["cat"] * per_class[0] + ["dog"] * per_class[1]
        assert data.train.labels[data.labelled].tolist() == [0] * (4 - per_class[0]) + [1] * (6 - per_class[1])
        # the same images whatever the global seeds and however often it is read
        random.seed(99)
        again = load_imagefolder(folders(tmp_path, val_share=share))
        assert again.val.paths == data.val.paths
    put(tmp_path / "labelled/bird/only.png")
    with pytest.raises(UserError, match=r"class 'bird' has 1 labelled image\(s\) in .*labelled.*val/ folder") as info:
        load_imagefolder(folders(tmp_path))
    assert "\n" not in str(info.value)
    put(tmp_path / "test/bird/t.png")  # a test set: nothing held out, a 1-image class is fine
    data = load_imagefolder(folders(tmp_path))
    assert data.val is None and not data.val_held_out and len(data.labelled) == 11


def test_benchmark_mode(tmp_path):
    for k, rel in enumerate(["train/b/1.png", "train/b/2.png", "train/a/x/3.png", "train/a/4.png", "test/a/5.png"]):
        put(tmp_path / rel, k)
    data = load_imagefolder(folders(tmp_path))
    assert data.benchmark and data.labelled is None and data.unlabelled is None
    assert data.classes == ["a", "b"] and data.train.labels.tolist() == [0, 0, 1, 1]
    assert [p.name for p in data.train.paths] == ["4.png", "3.png", "1.png", "2.png"]
    assert data.test.labels.tolist() == [0] and data.val is None
    shutil.rmtree(tmp_path / "test")  # no test set: valtiny is the held-out one, unless there is none
    assert load_imagefolder(folders(tmp_path)).val is None
    data = load_imagefolder(folders(tmp_path, valtiny_per_class=0))
    assert data.val_held_out and len(data.val) == 2 and len(data.train) == 2  # one of each class held out
    assert sorted(p.name for p in [*data.val.paths, *data.train.paths]) == ["1.png", "2.png", "3.png", "4.png"]


def test_a_symbolic_link_loop_is_walked_once(tmp_path):
    tree(tmp_path, hidden=False)
    os.symlink(tmp_path / "unlabelled", tmp_path / "unlabelled/x/loop")
    data = load_imagefolder(folders(tmp_path))
    assert len(data.unlabelled) == len(UNLABELLED)


def write_list(path: Path, rows: list[tuple[str, str]], header: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(["path", "label"])
        w.writerows(rows)
    return path


def rows_of(root: Path, rels: list[str], labelled: bool, absolute_every: int = 3) -> list[tuple[str, str]]:
    """CSV rows for the files ``rels`` under ``root``, paths relative to ``root``'s parent
    (where the lists are written) or, every few rows, absolute."""
    out = []
    for k, rel in enumerate(rels):
        path = root / rel if k % absolute_every == 0 else Path(root.name, rel)
        out.append((str(path), rel.split("/")[1] if labelled else ""))
    return out


def same(a, b) -> None:
    """Two image sets hold the same files (resolved), labels and classes, in the same order."""
    assert [p.resolve() for p in a.paths] == [p.resolve() for p in b.paths]
    assert a.labels.tolist() == b.labels.tolist() and a.classes == b.classes and a.size == b.size


def test_list_files_equal_the_folder_layout(tmp_path):
    root = tree(tmp_path / "data", hidden=False)
    train = rows_of(root, LABELLED, True) + rows_of(root, UNLABELLED, False)
    random.Random(0).shuffle(train)  # the rows' order does not matter
    keys = dict(train_csv=str(write_list(tmp_path / "train.csv", train)),
                val_csv=str(write_list(tmp_path / "val.csv", rows_of(root, VAL, True), header=False)),
                test_csv=str(write_list(tmp_path / "test.csv", rows_of(root, TEST, True))))
    listed = load_imagefolder(DataConfig(name="imagefolder", **keys))
    walked = load_imagefolder(folders(root))
    for part in ("train", "val", "test"):
        same(getattr(listed, part), getattr(walked, part))
    assert listed.labelled.tolist() == walked.labelled.tolist()
    assert listed.unlabelled.tolist() == walked.unlabelled.tolist() and listed.classes == walked.classes


def test_a_fully_labelled_list_is_benchmark_mode_as_train_folders_are(tmp_path):
    rels = ["train/b/1.png", "train/b/2.png", "train/a/x/3.png", "train/a/4.png"]
    for rel in rels:
        put(tmp_path / "data" / rel)
    rows = rows_of(tmp_path / "data", rels, True)[::-1]
    listed = load_imagefolder(DataConfig(name="imagefolder", train_csv=str(write_list(tmp_path / "l.csv", rows))))
    walked = load_imagefolder(folders(tmp_path / "data"))
    assert listed.benchmark and walked.benchmark
    same(listed.train, walked.train)


def test_a_list_and_folders_combine(tmp_path):
    """Each set from its list file if given, else from its folder: a training list with test/ under data.root."""
    root = tree(tmp_path / "data", hidden=False)
    train = write_list(tmp_path / "train.csv", rows_of(root, LABELLED, True) + rows_of(root, UNLABELLED, False))
    data = load_imagefolder(folders(root, train_csv=str(train)))
    same(data.test, load_imagefolder(folders(root)).test)
    assert data.val is not None and len(data.train) == len(LABELLED) + len(UNLABELLED)


def test_list_file_rows(tmp_path):
    """No header, spaces, a quoted comma, a bare path (unlabelled), blank lines, a BOM."""
    put(tmp_path / "a,b.png")
    put(tmp_path / "sub/c.png")
    put(tmp_path / "d.png")
    text = '\ufeff"a,b.png", cat \n\n sub/c.png\n./sub/../d.png,\n'
    (tmp_path / "l.csv").write_text(text, encoding="utf-8")
    val = write_list(tmp_path / "v.csv", [(str(put(tmp_path / "e.png")), "cat")])  # one labelled image: no hold-out
    data = load_imagefolder(DataConfig(name="imagefolder", train_csv=str(tmp_path / "l.csv"), val_csv=str(val)))
    assert data.classes == ["cat"] and [p.name for p in data.train.paths] == ["a,b.png", "d.png", "c.png"]
    assert data.train.labels.tolist() == [0, -1, -1]


@pytest.mark.parametrize("case", ["same path twice", "missing file", "three fields", "unknown val class",
                                  "unlabelled val row", "no label at all"])
def test_list_file_mistakes_name_the_line(tmp_path, case):
    for name in ("a.png", "b.png", "c.png"):
        put(tmp_path / name)
    train = [("a.png", "cat"), ("b.png", ""), ("c.png", "dog")]
    val = [("a.png", "cat")]
    line, named = {"same path twice": (5, "b.png"), "missing file": (5, "gone.png"), "three fields": (5, "x"),
                   "unknown val class": (2, "a.png"), "unlabelled val row": (2, "a.png"),
                   "no label at all": (None, "l.csv")}[case]
    if case == "same path twice":
        train += [("./b.png", "cat")]
    elif case == "missing file":
        train += [("gone.png", "")]
    elif case == "three fields":
        train += [("a.png", "cat", "x")]
    elif case == "unknown val class":
        val = [("a.png", "horse")]
    elif case == "unlabelled val row":
        val = [("a.png", "")]
    else:
        train = [("b.png", "")]
    d = DataConfig(name="imagefolder", train_csv=str(write_list(tmp_path / "l.csv", train)),
                   val_csv=str(write_list(tmp_path / "v.csv", val)))
    with pytest.raises(UserError) as info:
        load_imagefolder(d)
    msg = str(info.value)
    assert "\n" not in msg and Path(named).name in msg
    if line:
        assert f".csv line {line}:" in msg
    if case == "same path twice":
        assert "already listed on line 3" in msg


def mistake(root: Path, case: str) -> str:
    """Make ``case`` in the tree at ``root``; returns what the message must name."""
    if case == "empty class folder":
        (root / "labelled/horse/sub").mkdir(parents=True)
        return str(root / "labelled/horse")
    if case == "empty val class folder":
        (root / "val/bird").mkdir(parents=True)
        return str(root / "val/bird")
    if case == "unknown val class":
        put(root / "test/horse/h.png")
        return str(root / "test/horse")
    if case == "image outside a class folder":
        return str(put(root / "labelled/loose.png"))
    if case == "labelled and train":
        put(root / "train/cat/x.png")
        return str(root)
    if case == "no unlabelled folder":
        os.rename(root / "unlabelled", root / "elsewhere")
        return str(root)
    if case == "empty unlabelled folder":
        for rel in UNLABELLED:
            (root / rel).unlink()
        return str(root / "unlabelled")
    assert case == "no labelled folder"
    os.rename(root / "labelled", root / "elsewhere")
    return str(root)


@pytest.mark.parametrize("case", ["empty class folder", "empty val class folder", "unknown val class",
                                  "image outside a class folder", "labelled and train", "no unlabelled folder",
                                  "empty unlabelled folder", "no labelled folder"])
def test_layout_mistakes_are_one_line(tmp_path, case):
    root = tree(tmp_path, hidden=False)
    named = mistake(root, case)
    with pytest.raises(UserError) as info:
        load_imagefolder(folders(root))
    assert "\n" not in str(info.value) and named in str(info.value)


def test_root_is_required_and_must_be_a_folder(tmp_path):
    with pytest.raises(UserError, match="data.root"):
        load_imagefolder(DataConfig(name="imagefolder"))
    with pytest.raises(UserError, match="data.root.*is not a folder"):
        load_imagefolder(folders(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="data.train_csv.*not found"):
        load_imagefolder(DataConfig(name="imagefolder", train_csv=str(tmp_path / "none.csv")))
