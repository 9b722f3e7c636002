"""The ``suggest_large`` bench item on a small image (the item itself runs 36 MP: never a test)."""

from __future__ import annotations

import pytest

from dmt.bench import ITEMS
from dmt.bench.suggest_large import suggest_rows


def test_suggest_rows_measure_predict_and_suggest_in_children(tmp_path):
    pytest.importorskip("pycocotools")
    pytest.importorskip("skimage")
    assert "suggest_large" in ITEMS
    rows = suggest_rows(tmp_path, side=96, scales=(0.125,), which=("dmt predict", "dmt suggest --drafts"))
    assert [r["variant"] for r in rows] == [f"{w}, 96 x 96, read at 0.125" for w in
                                            ("dmt predict", "dmt suggest --drafts")]
    assert all(r["peak_mib"] > 50 and r["median_s"] > 0 for r in rows)  # a whole Python process with torch
    assert (tmp_path / "scale-0.125" / "drafted" / "drafts" / "coco.json").is_file()
