"""COCO JSON import: hand-drawn polygons and RLEs give the masks computed by hand, pixel for pixel."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from dmt.annotations.coco import read_coco, rle_length
from dmt.annotations.layout import write_segmentation_folder
from dmt.data.folder import folder_source
from dmt.errors import UserError

from annotation_fixtures import H, W, assert_masks, read_mask

mask_api = pytest.importorskip("pycocotools.mask")


def export() -> dict:
    """Two annotated images (a, b), one listed without annotations (c), sub/d.png not listed."""
    bird_rle = np.zeros((H, W), dtype=np.uint8, order="F")
    bird_rle[4:6, 0:4] = 1
    compressed = mask_api.encode(bird_rle)
    return {
        "images": [{"id": 1, "file_name": "a.png", "height": H, "width": W},
                   {"id": 2, "file_name": "b.png", "height": H, "width": W},
                   {"id": 3, "file_name": "c.jpg", "height": H, "width": W}],
        "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}, {"id": 2, "name": "bird"}],
        "annotations": [
            # small cat first, large dog after: the smaller wins whatever the order
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 1, 5, 1, 5, 3, 2, 3]]},
            {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": [[0, 0, 6, 0, 6, 4, 0, 4]]},
            # crowd: column x = 7 as an uncompressed RLE (column-major: 42 zeros, then 6 ones)
            {"id": 12, "image_id": 1, "category_id": 2, "iscrowd": 1, "segmentation": {"size": [H, W],
                                                                                        "counts": [42, 6]}},
            # same area (8 pixels), overlapping on x = 2..3: the later one (cat) wins
            {"id": 20, "image_id": 2, "category_id": 2, "iscrowd": 0,
             "segmentation": {"size": [H, W], "counts": compressed["counts"].decode("ascii")}},
            {"id": 21, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 4, 6, 4, 6, 6, 2, 6]]},
        ],
    }


def expected() -> dict[str, np.ndarray]:
    a = np.zeros((H, W), dtype=np.uint8)
    a[0:4, 0:6] = 3  # dog (category id 3 -> class 3)
    a[1:3, 2:5] = 1  # cat, inside the dog
    a[:, 7] = 255  # crowd
    b = np.zeros((H, W), dtype=np.uint8)
    b[4:6, 0:2] = 2  # bird
    b[4:6, 2:6] = 1  # cat over bird
    return {"a": a, "b": b}


def write_export(tmp_path, data) -> str:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_masks_overlaps_crowd_and_unannotated_images(tmp_path, images):
    read = read_coco(write_export(tmp_path, export()), images)
    assert read.classes == ("background", "cat", "bird", "dog")  # by category id
    got = assert_masks(read, expected(), ["c", "d"])
    assert list(got) == ["a", "b", "c", "d"]


def test_the_folder_written_loads_as_a_dataset_with_linked_images(tmp_path, images):
    out = tmp_path / "data"
    summary = write_segmentation_folder(read_coco(write_export(tmp_path, export()), images), out, images)
    assert (summary.labelled, summary.unlabelled) == (2, 2)
    for stem, mask in expected().items():
        np.testing.assert_array_equal(read_mask(out / "masks" / f"{stem}.png"), mask)
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a.png", "b.png"]
    assert (out / "classes.txt").read_text() == "background\ncat\nbird\ndog\n"
    assert os.stat(out / "images" / "d.png").st_ino == os.stat(images / "sub" / "d.png").st_ino  # hard link
    assert summary.placed == {"hard link": 4}
    source = folder_source(out)
    assert source.class_names == ("background", "cat", "bird", "dog")
    # the masked images: trained on, or (no splits/val.txt) one of them held out to evaluate on
    assert sorted(source.list_split("train") + source.list_split("val")) == ["a", "b"]
    assert source.list_split("unlabelled") == ["c", "d"]


def _missing_image(d):
    d["images"][1]["file_name"] = "gone.png"


def _outside(d):
    d["annotations"][1]["segmentation"] = [[0, 0, 6, 0, 6, 9.5, 0, 4]]


def _unknown_category(d):
    d["annotations"][1]["category_id"] = 99


def _rle_wrong_size(d):
    d["annotations"][2]["segmentation"] = {"size": [5, W], "counts": [34, 6]}


def _rle_short(d):
    d["annotations"][3]["segmentation"]["counts"] = mask_api.encode(np.zeros((4, W), np.uint8, order="F"))[
        "counts"].decode("ascii")


def _wrong_image_size(d):
    d["images"][0]["width"] = 9


@pytest.mark.parametrize("spoil, message", [
    (_missing_image, "image id 2: image 'gone.png' not found"),
    (_outside, "annotation id 11: vertex (6, 9.5) lies outside the 8x6 image"),
    (_unknown_category, "annotation id 11: unknown category_id 99"),
    (_rle_wrong_size, "annotation id 12: RLE of size 8x5"),
    (_rle_short, "annotation id 20: RLE of size 8x6 covering 32 pixels"),
    (_wrong_image_size, "image id 1: the export says 9x6 but image"),
])
def test_a_malformed_export_is_one_line_and_writes_nothing(tmp_path, images, spoil, message):
    data = export()
    spoil(data)
    path = write_export(tmp_path, data)
    with pytest.raises(UserError, match="instances.json") as caught:
        write_segmentation_folder(read_coco(path, images), tmp_path / "data", images)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instances.json", "photos"]


def test_rle_length_counts_every_run():
    for shape, fill in [((6, 8), [(1, 3, 2, 5)]), ((40, 30), [(0, 40, 0, 1), (3, 9, 10, 30)])]:
        m = np.zeros(shape, dtype=np.uint8, order="F")
        for y0, y1, x0, x1 in fill:
            m[y0:y1, x0:x1] = 1
        assert rle_length(mask_api.encode(m)["counts"]) == shape[0] * shape[1]
    assert rle_length(b"") == 0


def test_a_category_named_background_is_class_0(tmp_path, images):
    data = export()
    data["categories"][2]["name"] = "background"  # id 2: the crowd and the bird
    read = read_coco(write_export(tmp_path, data), images)
    assert read.classes == ("background", "cat", "dog")
    b = dict((p.stem, m) for p, m in read.items)["b"]
    assert b[4, 0] == 0 and b[4, 2] == 1
