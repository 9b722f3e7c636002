"""Drafts of hand-made class maps: COCO polygons and RLE back through pycocotools, CVAT masks, Label Studio polygons."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pycocotools")
pytest.importorskip("skimage")

from pycocotools.coco import COCO  # noqa: E402

from dmt.annotations.draft_coco import CocoDraft, regions  # noqa: E402
from dmt.annotations.draft_cvat import CvatDraft, drop_small  # noqa: E402
from dmt.annotations.draft_labelstudio import LabelStudioDraft  # noqa: E402
from dmt.errors import UserError  # noqa: E402

NAMES = ("background", "ring", "core", "speck")


def hand_made() -> np.ndarray:
    """A ring of class 1 around a core of class 2 (a region with a hole), a ring of class 1 with a
    background hole, an L of class 3, a 2-pixel speck of class 3 and two class-2 pixels touching by a corner."""
    m = np.zeros((12, 16), np.uint8)
    m[1:6, 1:6] = 1
    m[2:5, 2:5] = 2  # the core fills the ring's hole
    m[1:6, 8:13] = 1
    m[3, 10] = 0  # a background hole
    m[7:11, 1:3] = 3
    m[10, 3:6] = 3  # an L
    m[8, 10:12] = 3  # a speck of 2 pixels
    m[8, 14] = m[9, 15] = 2  # corner-touching: two regions (4-connected)
    return m


def decode(coco_dict: dict, shape: tuple[int, int]) -> np.ndarray:
    """Every annotation painted with its category id over background, through pycocotools' annToMask."""
    coco = COCO()
    coco.dataset = coco_dict
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    out = np.zeros(shape, np.uint8)
    for ann in coco.dataset["annotations"]:
        out[coco.annToMask(ann) > 0] = ann["category_id"]
    return out


def test_coco_round_trip_is_exact_up_to_the_small_region_rule():
    m = hand_made()
    draft = CocoDraft(NAMES, min_area=3)
    assert draft.add("a.png", m) == 4  # the two rings, the core and the L; the speck and the corner pixels are too small
    expected = m.copy()
    expected[8, 10:12] = 0  # the 2-pixel speck is dropped
    expected[8, 14] = expected[9, 15] = 0  # so are the two single pixels
    data = json.loads(json.dumps(draft.to_dict()))  # as a file holds it
    assert np.array_equal(decode(data, m.shape), expected)
    kinds = {(a["category_id"], a["bbox"][0]): type(a["segmentation"]).__name__ for a in data["annotations"]}
    assert kinds[(1, 1)] == "dict" and kinds[(1, 8)] == "dict"  # the rings have holes: RLE
    assert kinds[(2, 2)] == "list" and kinds[(3, 1)] == "list"  # the core and the L: polygons
    assert [c["name"] for c in data["categories"]] == ["ring", "core", "speck"]  # no background
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert data["images"] == [{"id": 1, "file_name": "a.png", "width": 16, "height": 12}]
    ring = next(a for a in data["annotations"] if a["bbox"] == [1, 1, 5, 5])
    assert ring["area"] == 16 and ring["iscrowd"] == 0


def test_every_region_round_trips_with_no_minimum():
    m = hand_made()
    draft = CocoDraft(NAMES, min_area=1)
    draft.add("a.png", m)
    assert np.array_equal(decode(draft.to_dict(), m.shape), m)
    rng = np.random.default_rng(0)
    for _ in range(5):  # blocky random maps with specks: many shapes, corners and holes
        noisy = np.kron(rng.integers(0, 4, (4, 5)), np.ones((3, 3), np.int64)).astype(np.uint8)
        noisy[rng.random(noisy.shape) < 0.1] = 2
        draft = CocoDraft(NAMES, min_area=1)
        draft.add("b.png", noisy)
        assert np.array_equal(decode(draft.to_dict(), noisy.shape), noisy)


def test_a_square_polygon_passes_between_pixel_centres():
    m = np.zeros((5, 10), np.uint8)
    m[1:3, 2:4] = 1  # pixels x 2..3, y 1..2: centres at 2.5, 3.5 and 1.5, 2.5
    (r,) = list(regions(m, skip={0}, min_area=1))
    points = {(x, y) for x, y in zip(r.polygon[0::2], r.polygon[1::2])}
    # half a pixel beyond the outer centres, the corners cut through the midpoints
    assert points == {(2.5, 1.0), (3.5, 1.0), (4.0, 1.5), (4.0, 2.5), (3.5, 3.0), (2.5, 3.0), (2.0, 2.5), (2.0, 1.5)}
    assert r.bbox == [2, 1, 2, 2] and r.area == 4 and r.rle is None


def test_cvat_masks_paint_the_class_colours(tmp_path):
    palette = np.array([[9, 9, 9], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    draft = CvatDraft(tmp_path / "cvat", NAMES, palette, min_area=3)
    m = hand_made()
    draft.add("sub/a", m)
    folder = draft.write()
    lines = (folder / "labelmap.txt").read_text().splitlines()
    assert lines[1:] == ["background:0,0,0::", "ring:255,0,0::", "core:0,255,0::", "speck:0,0,255::"]
    assert (folder / "ImageSets" / "Segmentation" / "default.txt").read_text() == "sub/a\n"
    rgb = np.asarray(Image.open(folder / "SegmentationClass" / "sub" / "a.png"))
    colours = {tuple(int(v) for v in line.split(":")[1].split(",")): k for k, line in enumerate(lines[1:])}
    back = np.vectorize(lambda *c: colours[c])(rgb[..., 0], rgb[..., 1], rgb[..., 2])
    assert np.array_equal(back, drop_small(m, {0}, 3))
    assert back[8, 10] == 0 and back[7, 1] == 3  # the speck is background, the L stays


def test_cvat_refuses_two_classes_of_one_colour(tmp_path):
    palette = np.array([[0, 0, 0], [1, 2, 3], [1, 2, 3], [9, 9, 9]], np.uint8)
    with pytest.raises(UserError, match="'ring' and 'core' share the colour"):
        CvatDraft(tmp_path, NAMES, palette)


def test_label_studio_tasks_hold_polygons_in_percent(tmp_path):
    m = np.zeros((5, 10), np.uint8)
    m[1:3, 2:4] = 2
    draft = LabelStudioDraft(NAMES, model_version="dmt run1", min_area=1)
    assert draft.add("/data/local-files/?d=a.png", m, score=0.5) == 1
    tasks = json.loads(draft.write(tmp_path / "ls.json").read_text())
    (result,) = tasks[0]["predictions"][0]["result"]
    assert tasks[0]["data"] == {"image": "/data/local-files/?d=a.png"}
    assert tasks[0]["predictions"][0]["model_version"] == "dmt run1" and tasks[0]["predictions"][0]["score"] == 0.5
    assert result["type"] == "polygonlabels" and result["value"]["polygonlabels"] == ["core"]
    assert (result["original_width"], result["original_height"]) == (10, 5)
    assert [2.0 / 10 * 100, 1.5 / 5 * 100] in result["value"]["points"]  # (2.0, 1.5) pixels in percent
    assert len(result["value"]["points"]) == 8


def test_a_region_larger_than_the_traced_limit_is_exact_rle_with_an_approximate_outline(monkeypatch):
    import dmt.annotations.draft_coco as draft_coco
    from pycocotools import mask as mask_api

    m = np.zeros((20, 24), np.uint8)
    m[4:16, 6:18] = 1  # a 12 x 12 square: 144 pixels in its box
    monkeypatch.setattr(draft_coco, "TRACED_PIXELS", 16)  # traced on every 3rd pixel: ceil(sqrt(144 / 16))
    (r,) = list(regions(m, skip={0}, min_area=1))
    assert r.polygon is None and r.rle is not None and r.bbox == [6, 4, 12, 12] and r.area == 144
    rle = dict(r.rle, counts=r.rle["counts"].encode("ascii"))
    assert np.array_equal(mask_api.decode(rle), m)  # the RLE is exact
    xy = np.array(r.outline).reshape(-1, 2)
    # the outline, traced on a 3-pixel grid, stays within one grid step of the square's edges (6..18, 4..16)
    assert xy[:, 0].min() >= 6 - 3 and xy[:, 0].max() <= 18 + 3 and xy[:, 1].min() >= 4 - 3 and xy[:, 1].max() <= 16 + 3
    assert xy[:, 0].max() - xy[:, 0].min() >= 12 - 3 and xy[:, 1].max() - xy[:, 1].min() >= 12 - 3
