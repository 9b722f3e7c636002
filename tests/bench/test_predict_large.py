"""The ``predict_large`` bench item's read-scale rows on a small image (the item itself runs 36 MP: never a test)."""

from __future__ import annotations

import sys
from pathlib import Path

from dmt.bench import ITEMS
from dmt.bench.predict_large import read_scale_rows

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from export_fixtures import HAS_ONNX  # noqa: E402


def test_read_scale_rows_measure_both_scales_and_both_runtimes(tmp_path):
    assert "predict_large" in ITEMS
    rows = read_scale_rows(tmp_path, side=160)
    runtimes = ["PyTorch", "ONNX"] if HAS_ONNX else ["PyTorch"]
    assert [r["variant"].rsplit(", ", 2)[1:] for r in rows] == [[f"read at {s}", rt] for s in ("0.125", "1")
                                                                  for rt in runtimes]
    assert all(r["peak_mib"] > 50 and r["median_s"] > 0 for r in rows)  # a whole Python process with torch
