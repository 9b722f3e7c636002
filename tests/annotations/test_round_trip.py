"""The labelling loop's round trip: a class map drafted for a tool (``dmt suggest --drafts``) and imported
back (``dmt import``) is the same mask, up to the polygon rule: regions smaller than ``min_area`` pixels
are not drafted and come back as background. The images the drafts do not name come back unlabelled."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pycocotools")
pytest.importorskip("skimage")

from annotation_fixtures import read_mask, write_images  # noqa: E402

from dmt.annotations.draft_coco import CocoDraft  # noqa: E402
from dmt.annotations.draft_cvat import CvatDraft  # noqa: E402
from dmt.cli.main import main  # noqa: E402
from dmt.data.voc import voc_colormap  # noqa: E402

NAMES = ("background", "road", "car", "sign")


def class_map() -> tuple[np.ndarray, np.ndarray]:
    """A 12 x 16 map with a hole filled by another class, a background hole, an L and two specks;
    and what comes back with min_area 3 (the specks, of 2 and 1 pixels, become background)."""
    m = np.zeros((12, 16), np.uint8)
    m[6:12, :] = 1  # road
    m[7:10, 3:7] = 2  # a car inside the road: the road has a hole the car fills
    m[8, 12] = 0  # a background hole in the road
    m[0:4, 12:14] = 3
    m[3, 14:16] = 3  # an L-shaped sign
    m[1, 2:4] = 2  # a 2-pixel speck
    m[2, 8] = 3  # a 1-pixel speck
    back = m.copy()
    back[1, 2:4] = 0
    back[2, 8] = 0
    return m, back


@pytest.fixture
def photos(tmp_path):
    return write_images(tmp_path / "photos", ["a.png", "b.png"], size=(16, 12))  # b.png is never drafted


def check_folder(out, back):
    assert (out / "classes.txt").read_text().split() == list(NAMES)
    assert np.array_equal(read_mask(out / "masks" / "a.png"), back)
    assert not (out / "masks" / "b.png").exists()  # not drafted: unlabelled
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png"]


def test_coco_drafts_import_back_as_the_same_masks(tmp_path, photos):
    m, back = class_map()
    draft = CocoDraft(NAMES, min_area=3)
    assert draft.add("a.png", m) == 3  # the road (with holes: RLE), the car, the sign; the specks are dropped
    export = draft.write(tmp_path / "coco.json")
    out = tmp_path / "mine"
    assert main(["import", "coco", str(export), "--images", str(photos), "--out", str(out)]) == 0
    check_folder(out, back)


def test_cvat_drafts_import_back_as_the_same_masks(tmp_path, photos):
    m, back = class_map()
    draft = CvatDraft(tmp_path / "cvat", NAMES, voc_colormap(len(NAMES)), min_area=3)
    draft.add("a", m)
    export = draft.write()
    out = tmp_path / "mine"
    assert main(["import", "cvat", str(export), "--images", str(photos), "--out", str(out)]) == 0
    check_folder(out, back)
