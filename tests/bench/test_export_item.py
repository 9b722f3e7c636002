"""The ``export`` bench item's pieces on a tiny model (the item itself times DeepLab-v2 at 505 x 505: never a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from dmt.bench import ITEMS
from dmt.bench.export_item import export_variants

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from export_fixtures import needs_onnx  # noqa: E402


@needs_onnx
def test_export_variants_run_the_same_graph_in_both_runtimes(tmp_path):
    assert "export" in ITEMS
    variants, one_off = export_variants("tiny_fcn", 33, tmp_path)
    assert [v.name.split()[0] for v in variants] == ["pytorch", "onnxruntime"] and variants[0].plain
    for v in variants:
        v.run()
    assert [r["variant"].split(":")[0] for r in one_off] == ["export", "verify"]
    assert all(r["median_s"] > 0 for r in one_off) and one_off[1]["max_logit_difference"] < 1e-3
    assert (tmp_path / "model.onnx").is_file() and torch.get_num_threads() >= 1
