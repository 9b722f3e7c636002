"""Classification imports (Label Studio JSON, path,label CSV) as the imagefolder layouts, read back by dmt."""

from __future__ import annotations

import json
import os

import pytest

from dmt.annotations.classes import read_label_csv, write_classification
from dmt.annotations.labelstudio import read_labelstudio
from dmt.config.schema import DataConfig
from dmt.data.class_folders import load_imagefolder
from dmt.errors import UserError

from annotation_fixtures import write_images


def choice(*labels, cancelled=False) -> dict:
    return {"was_cancelled": cancelled, "ground_truth": False,
            "result": [{"type": "choices", "from_name": "choice", "to_name": "image",
                        "value": {"choices": list(labels)}}]}


def tasks() -> list[dict]:
    return [
        {"id": 1, "data": {"image": "/data/upload/1/5a1b2c3d-a.png"}, "annotations": [choice("cat")]},
        # the last annotation not cancelled counts
        {"id": 2, "data": {"image": "/data/local-files/?d=photos%2Fsub%2Fd.png"},
         "annotations": [choice("cat"), choice("dog"), choice("bird", cancelled=True)]},
        {"id": 3, "data": {"img": "http://host/files/c.jpg"}, "annotations": []},  # unlabelled
    ]


def write_tasks(tmp_path, content) -> str:
    path = tmp_path / "project-1.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_label_studio_labels_and_the_class_folders(tmp_path, images):
    export = read_labelstudio(write_tasks(tmp_path, tasks()), images)
    assert [(rel, label) for rel, _, label in export.items] == [
        ("a.png", "cat"), ("b.png", None), ("c.jpg", None), ("sub/d.png", "dog")]
    out = tmp_path / "data"
    summary = write_classification(export, out, images)
    assert (summary.labelled, summary.unlabelled, summary.placed) == (2, 2, {"hard link": 4})
    assert os.stat(out / "labelled" / "dog" / "sub" / "d.png").st_ino == os.stat(images / "sub" / "d.png").st_ino
    # one labelled image per class leaves none to hold out for evaluation: the user adds a val/ folder
    with pytest.raises(UserError, match="class 'cat' has 1 labelled image"):
        load_imagefolder(DataConfig(name="imagefolder", root=str(out)))
    write_images(out / "val", ["cat/v.png", "dog/w.png"])
    data = load_imagefolder(DataConfig(name="imagefolder", root=str(out)))
    assert data.classes == ["cat", "dog"]
    assert [p.name for p in data.train.paths] == ["a.png", "d.png", "b.png", "c.jpg"]
    assert list(data.train.labels) == [0, 1, -1, -1]


def test_a_csv_export_as_a_list_file(tmp_path, images):
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\na.png,cat\nsub/d.png,dog\nc.jpg,\n")
    out = tmp_path / "data"
    write_classification(read_label_csv(csv, images), out, images, layout="list")
    write_images(tmp_path / "held", ["v.png", "w.png"])
    (tmp_path / "val.csv").write_text(f"path,label\n{tmp_path / 'held' / 'v.png'},cat\n{tmp_path / 'held' / 'w.png'},dog\n")
    data = load_imagefolder(DataConfig(name="imagefolder", train_csv=str(out / "train.csv"),
                                       val_csv=str(tmp_path / "val.csv")))
    assert data.classes == ["cat", "dog"]
    assert sorted((p.name, int(y)) for p, y in zip(data.train.paths, data.train.labels)) == [
        ("a.png", 0), ("b.png", -1), ("c.jpg", -1), ("d.png", 1)]
    assert not (out / "labelled").exists()


@pytest.mark.parametrize("content, message", [
    ([{"id": 7, "data": {"image": "/data/upload/1/zz.png"}, "annotations": []}], "task id 7: image"),
    ([{"id": 8, "data": {"image": "a.png"}, "annotations": [choice("cat", "dog")]}], "task id 8: 2 choices"),
    ([{"id": 9, "data": {"image": "a.png"}, "annotations": [choice("../up")]}], "label '../up' cannot be a class"),
    ({"not": "a list"}, "not a Label Studio JSON export"),
])
def test_a_malformed_export_is_one_line_and_writes_nothing(tmp_path, images, content, message):
    path = write_tasks(tmp_path, content)
    with pytest.raises(UserError, match="project-1.json|cannot be a class") as caught:
        write_classification(read_labelstudio(path, images), tmp_path / "data", images)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "project-1.json"]


def test_folders_need_an_unlabelled_image(tmp_path, images):
    csv = tmp_path / "labels.csv"
    csv.write_text("a.png,cat\nb.png,cat\nc.jpg,dog\nd.png,dog\n")
    with pytest.raises(UserError, match="needs unlabelled images"):
        write_classification(read_label_csv(csv, images), tmp_path / "data", images)
    assert not (tmp_path / "data").exists()
