"""`dmt import` end to end: a folder on success, one line and exit status 2 on a mistake, nothing written."""

from __future__ import annotations

import json
import sys

import pytest

from dmt.cli.main import main


def coco(tmp_path, file_name="a.png") -> str:
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": file_name, "height": 6, "width": 8}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]]}]}))
    return str(path)


def test_import_writes_the_folder_and_says_how_images_were_placed(tmp_path, images, capsys):
    pytest.importorskip("pycocotools")
    out = tmp_path / "data"
    assert main(["import", "coco", coco(tmp_path), "--images", str(images), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert said.out.strip() == f"{out}: 1 labelled, 3 unlabelled images, 2 classes"
    assert "images placed 4 by hard link" in said.err  # the log
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png", "c.jpg", "d.png"]


@pytest.mark.parametrize("case, fragment", [
    ("missing image", "coco.json image id 1: image 'gone.png' not found below --images"),
    ("out exists", "already exists and is not empty"),
    ("out inside images", "is inside --images"),
    ("classes with coco", "--classes applies to labelme only"),
])
def test_mistakes_are_one_line_exit_2_and_write_nothing(tmp_path, images, capsys, case, fragment):
    pytest.importorskip("pycocotools")
    out, extra = tmp_path / "data", []
    export = coco(tmp_path, "gone.png" if case == "missing image" else "a.png")
    if case == "out exists":
        (out / "old").mkdir(parents=True)
    if case == "out inside images":
        out = images / "data"
    if case == "classes with coco":
        extra = ["--classes", export]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["import", "coco", export, "--images", str(images), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_without_pycocotools_one_line_says_how_to_install_it(tmp_path, images, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import fails as if absent
    assert main(["import", "coco", coco(tmp_path), "--images", str(images), "--out", str(tmp_path / "d")]) == 2
    assert "pip install 'dmt[annotations]'" in capsys.readouterr().err
