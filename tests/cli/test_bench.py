"""`dmt bench`: the harness's arithmetic and a quick end-to-end run of one cheap item."""

from __future__ import annotations

import json
import time

import pytest
import torch

from dmt.bench.harness import PeakRSS, Variant, measure
from dmt.cli.main import main


def test_measure_interleaves_and_takes_ratios_to_plain():
    order = []
    rows = measure([Variant("plain", lambda: (order.append("p"), time.sleep(0.02)), plain=True),
                    Variant("fast", lambda: order.append("f"))], repeats=3, device=torch.device("cpu"), warmup=1)
    assert order == ["p", "f"] * 4  # warm-up, then interleaved repeats
    plain, fast = rows
    assert plain["ratio"] == 1.0 and fast["ratio"] > 5 and len(fast["times_s"]) == 3
    assert fast["min_s"] <= fast["median_s"]


def test_peak_rss_sees_an_allocation():
    with PeakRSS() as p:
        block = bytearray(64 * 2**20)
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page
        time.sleep(0.05)
    assert p.increase >= 48 * 2**20


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--only", "thresholds", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["items"]["thresholds"]["rows"]
    assert [r["variant"].split(" ")[0] for r in rows] == ["plain", "exact", "dmt"]
    assert all(r["median_s"] > 0 for r in rows) and rows[0]["ratio"] == 1.0
    assert "thresholds" in capsys.readouterr().out


def test_bench_refuses_unknown_items():
    with pytest.raises(SystemExit):
        main(["bench", "--only", "nothing"])


def test_labelling_variants_store_three_bytes_per_pixel(tmp_path):
    """The labelling item's float32 and defaults (amp auto) variants write uint8 classes + float16
    confidences: 3 bytes per pixel on disk (the plain variant keeps 5 in memory)."""
    from dmt.bench.data_items import labelling_variants

    torch.manual_seed(0)
    variants, bytes_per_pixel, n = labelling_variants(True, tmp_path)
    assert [v.name for v in variants] == ["plain", "dmt", "dmt-amp"] and variants[0].plain and n == 16
    for v in variants[1:]:
        v.run()
    # 3 bytes of payload per pixel; each file's container header adds about 0.1 % at 505x505
    assert 2.9 < bytes_per_pixel["dmt"] < 3.01 and 2.9 < bytes_per_pixel["dmt-amp"] < 3.01


def test_step_op_counts_charge_each_part_and_only_the_model_grows_with_depth():
    """Host work per step: the optimizer (foreach, as on CUDA) and the EMA issue a fixed number of
    operator calls whatever the depth; forward and backward grow with the layers."""
    from torch import nn

    from dmt.bench import format_item
    from dmt.bench.host_ops import PARTS, step_op_counts
    from dmt.engine.loop import FitOptions, TrainState, make_ema, make_sgd
    from dmt.tasks.segmentation.steps import SegmentationStep

    def counts(depth: int) -> dict[str, int]:
        torch.manual_seed(0)
        layers = [m for _ in range(depth) for m in (nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())]
        model = nn.Sequential(*layers, nn.Conv2d(3, 4, 1))
        state = TrainState(model, make_sgd(model, 0.1, 0.9, 1e-4), make_ema(model, 0.9))
        g = torch.Generator().manual_seed(0)
        batch = {"image": torch.randn(2, 3, 8, 8, generator=g), "mask": torch.randint(0, 4, (2, 8, 8), generator=g),
                 "pseudo_image": torch.randn(2, 3, 8, 8, generator=g),
                 "pseudo_mask": torch.randint(0, 4, (2, 8, 8), generator=g),
                 "pseudo_confidence": torch.rand(2, 8, 8, generator=g)}
        opts = FitOptions(total_steps=1, base_lr=0.1, steps_per_epoch=10**9, checkpoint_seconds=1e12)
        out = step_op_counts(state, SegmentationStep(model, weighting="dynamic"), batch, opts)
        assert state.step == 3 and "step" not in vars(state.optimizer)  # trained; the optimizer is unpatched
        return out

    shallow, deep = counts(1), counts(4)
    for c in (shallow, deep):
        assert set(c) == {*PARTS, "total"} and c["total"] == sum(c[p] for p in PARTS)
        assert all(c[p] > 0 for p in PARTS)
    assert shallow["optimizer"] == deep["optimizer"] and shallow["ema"] == deep["ema"] <= 12
    assert deep["forward"] > shallow["forward"] and deep["backward"] > shallow["backward"]
    table = format_item("step_ops", {"what": "ops", "rows": [{"variant": "x", **{f"ops_{k}": v for k, v in deep.items()}}]})
    assert "optimizer" in table and str(deep["total"]) in table


def test_each_variant_is_measured_in_processes_of_its_own(tmp_path, monkeypatch):
    """Variants built side by side in one process slow each other: every one gets its own processes."""
    import os

    from dmt.bench.harness import measure_in_processes

    (tmp_path / "fake_items.py").write_text(
        "import os, time\n"
        "from dmt.bench.harness import Variant\n"
        "def fake_variants(quick, device):\n"
        "    return [Variant('plain', lambda: time.sleep(0.02), plain=True, info={'pid': os.getpid()}),\n"
        "            Variant('fast', lambda: time.sleep(0.01), info={'pid': os.getpid()})]\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    rows = measure_in_processes("fake_items:fake_variants", ["plain", "fast"], "plain", 4, "cpu", False, rounds=2)
    assert [r["variant"] for r in rows] == ["plain", "fast"] and all(len(r["times_s"]) == 4 for r in rows)
    pids = {r["pid"] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids  # not this process, not one process for both
    assert rows[0]["ratio"] == 1.0 and 1.3 < rows[1]["ratio"] < 3.0


def test_dinov2_step_item_runs_plain_against_the_defaults():
    """The DINOv2 DMT step item (here with the tiny encoder): plain first, AdamW over encoder and head,
    activation checkpointing where the variant says so."""
    from dmt.bench.items import ITEMS, dinov2_dmt_step_variants

    assert "dinov2_dmt_step" in ITEMS
    variants = dinov2_dmt_step_variants(False, torch.device("cpu"), name="dinov2_tiny_dpt")
    assert [v.name for v in variants] == ["plain", "grad checkpointing", "dmt (defaults)",
                                          "dmt (defaults) + grad checkpointing"] and variants[0].plain
    for v in variants:
        v.prepare()
        v.run()
    assert len(dinov2_dmt_step_variants(True, torch.device("cpu"), name="dinov2_tiny_dpt")) == 3
