"""LabelMe JSON import: shapes drawn as LabelMe draws them, in file order, pixel for pixel."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from annotation_fixtures import H, W, assert_masks, read_mask
from PIL import Image

from dmt.annotations.labelme import read_labelme
from dmt.annotations.layout import write_segmentation_folder
from dmt.data.folder import folder_source
from dmt.errors import UserError


def shape(label, points, kind="polygon", **extra):
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind,
            "flags": {}, **extra}


def png_base64(mask: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def labelme_file(image_path, shapes, height=H, width=W) -> dict:
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": height, "imageWidth": width}


def files() -> dict[str, dict]:
    return {
        "a.json": labelme_file("..\\photos\\a.png", [  # LabelMe on Windows: a relative path, backslashes
            shape("tree", [[0, 0], [4, 0], [0, 4]]),  # triangle: pixel centres with x + y <= 4
            shape("car", [[1, 1], [3, 2]], "rectangle"),  # later: wins over the tree
            shape("__ignore__", [[7, 0], [7, 5]], "rectangle"),
            shape("car", [[5, 2], [7, 2]], "line"),  # no area: skipped
        ]),
        "sub/b.json": labelme_file("b.png", [
            shape("tree", [[2, 4], [3, 4]], "circle"),  # radius 1: the centre and its 4 neighbours
            shape("car", [[5, 4], [6, 5]], "mask", mask=png_base64(np.array([[1, 0], [1, 1]]))),
        ]),
        "c.json": labelme_file("c.jpg", [shape("car", [[1, 1]], "point")]),  # no area: unlabelled
    }


def write_files(tmp_path, content) -> str:
    folder = tmp_path / "labelme"
    for name, data in content.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(data))
    return str(folder)


def expected() -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:H, 0:W]
    a = np.where(x + y <= 4, 2, 0).astype(np.uint8)  # tree = class 2 (labels sorted: car, tree)
    a[1:3, 1:4] = 1
    a[:, 7] = 255
    b = np.zeros((H, W), dtype=np.uint8)
    b[4, 1:4] = 2
    b[3:6, 2] = 2
    b[4:6, 5] = 1
    b[5, 6] = 1
    return {"a": a, "b": b}


def test_shapes_later_wins_ignore_and_unannotated(tmp_path, images):
    read = read_labelme(write_files(tmp_path, files()), images)
    assert read.classes == ("background", "car", "tree")
    assert_masks(read, expected(), ["c", "d"])


def test_given_classes_fix_the_numbers_and_the_folder_loads(tmp_path, images):
    out = tmp_path / "data"
    write_segmentation_folder(read_labelme(write_files(tmp_path, files()), images, ["tree", "person", "car"]),
                              out, images)
    a = expected()["a"]
    renumbered = a.copy()
    renumbered[a == 1], renumbered[a == 2] = 3, 1  # car: class 3, tree: class 1
    np.testing.assert_array_equal(read_mask(out / "masks" / "a.png"), renumbered)
    assert folder_source(out).class_names == ("background", "tree", "person", "car")
    source = folder_source(out)
    assert sorted(source.list_split("train") + source.list_split("val")) == ["a", "b"]  # val: held out of them


def _outside(c):
    c["a.json"]["shapes"][1]["points"] = [[1, 1], [3, 8]]


def _missing(c):
    c["c.json"]["imagePath"] = "nowhere.png"


def _size(c):
    c["sub/b.json"]["imageWidth"] = 10


def _short_polygon(c):
    c["a.json"]["shapes"][0]["points"] = [[0, 0], [4, 0]]


@pytest.mark.parametrize("spoil, where, message", [
    (_outside, "a.json shape 1 ('car')", "vertex (3, 8) lies outside the 8x6 image"),
    (_missing, "c.json", "image 'nowhere.png' not found"),
    (_size, "b.json", "the export says 10x6 but image"),
    (_short_polygon, "a.json shape 0 ('tree')", "a polygon needs at least 3 points, got 2"),
])
def test_a_malformed_file_is_one_line_and_writes_nothing(tmp_path, images, spoil, where, message):
    content = files()
    spoil(content)
    folder = write_files(tmp_path, content)
    with pytest.raises(UserError) as caught:
        write_segmentation_folder(read_labelme(folder, images), tmp_path / "data", images)
    assert where in str(caught.value) and message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelme", "photos"]


def test_a_label_missing_from_the_given_classes_is_named(tmp_path, images):
    with pytest.raises(UserError, match=r"a.json shape 0 \('tree'\): label 'tree' is not among the given classes"):
        list(read_labelme(write_files(tmp_path, files()), images, ["car"]).items)
