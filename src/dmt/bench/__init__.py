"""``dmt bench``: side-by-side timings of our optimised paths against our plain configuration.

:mod:`dmt.bench.harness` times variants (each in processes of its own, or interleaved in this one;
median and min, peak memory). What is measured: :mod:`dmt.bench.items` (the registry, training
steps, inference, operator counts), :mod:`dmt.bench.data_items` (labelling, data pipeline,
thresholds, ``--smoke``), :mod:`dmt.bench.export_item` (the export and ONNX Runtime against
PyTorch), :mod:`dmt.bench.predict_large` (``dmt predict`` on large images),
:mod:`dmt.bench.preflight_item` (the ``--smoke`` pre-flight over a VOC-sized folder),
:mod:`dmt.bench.suggest_large` (``dmt suggest`` against ``dmt predict`` on a large image) and
:mod:`dmt.bench.stream_item` (a teacher labelling 100,000 streamed images) and
:mod:`dmt.bench.timm_items` (the pretrained classification presets' ViT-S/14 step). :func:`run_bench`
runs a selection, prints a table and returns the rows (the CLI writes them as JSON). Beside
``cli``: imports ``predict`` (the exporter), ``tasks`` (the steps and labelling it times) and
everything below.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import torch

from dmt.bench import (
    data_items,  # noqa: F401  (registers labelling, data, smoke, thresholds)
    export_item,  # noqa: F401  (registers the "export" item)
    predict_large,  # noqa: F401  (registers the "predict_large" item)
    preflight_item,  # noqa: F401  (registers the "smoke_preflight" item)
    stream_item,  # noqa: F401  (registers the "cls_label_stream" item)
    suggest_large,  # noqa: F401  (registers the "suggest_large" item)
    timm_items,  # noqa: F401  (registers the "vits14_cls_dmt_step" item)
)
from dmt.bench.items import ITEMS, quiet


def run_bench(quick: bool = False, only: list[str] | None = None, device: str = "cpu",
              print_fn: Any = print) -> dict[str, Any]:
    """Run the items named in ``only`` (all by default); returns ``{"env": ..., "items": {...}}``."""
    names = only or list(ITEMS)
    unknown = [n for n in names if n not in ITEMS]
    if unknown:
        raise ValueError(f"unknown bench item(s) {', '.join(unknown)}; known: {', '.join(ITEMS)}")
    dev = torch.device(device)
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev),
           "cpu": platform.processor() or platform.machine(), "quick": quick,
           "cpu_native_bf16": torch.backends.mkldnn.is_available() and _native_bf16(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    out: dict[str, Any] = {"env": env, "items": {}}
    print_fn(f"dmt bench: torch {env['torch']}, {env['threads']} threads, {dev}{' (quick)' if quick else ''}")
    for name in names:
        t0 = time.perf_counter()
        try:
            with quiet():
                result = ITEMS[name](quick, dev)
        except Exception as exc:  # one broken item must not hide the others
            result = {"what": name, "error": f"{type(exc).__name__}: {exc}", "rows": []}
        result["seconds"] = time.perf_counter() - t0
        out["items"][name] = result
        print_fn(format_item(name, result))
    return out


def _native_bf16() -> bool:
    from dmt.engine.accel import cpu_has_native_bf16
    return cpu_has_native_bf16()


def format_item(name: str, result: dict[str, Any]) -> str:
    """A few table lines for one item."""
    lines = [f"\n{name}: {result['what']}"]
    if "error" in result:
        return lines[0] + f"\n  FAILED: {result['error']}"
    if result["rows"] and "ops_total" in result["rows"][0]:  # counts, not times (step_ops)
        parts = [k for k in result["rows"][0] if k.startswith("ops_")]
        lines.append(f"  {'variant':<44} " + " ".join(f"{k[4:]:>9}" for k in parts))
        lines += [f"  {r['variant']:<44} " + " ".join(f"{r[k]:>9}" for k in parts) for r in result["rows"]]
        return "\n".join(lines)
    lines.append(f"  {'variant':<44} {'median':>9} {'min':>9} {'peak MiB':>9} {'vs plain':>9}  extra")
    for r in result["rows"]:
        extra = "  ".join(f"{k} {v:.3g}" for k, v in r.items()
                          if k in ("bytes_per_pixel", "images_per_s", "images_per_s_per_worker", "masks_per_s",
                                   "max_logit_difference",
                                   "megapixels_per_s", "process_peak_mib", "worker_peak_mib") and v is not None)
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        lines.append(f"  {r['variant']:<44} {r['median_s']:>8.3f}s {r['min_s']:>8.3f}s {r['peak_mib']:>9.1f} "
                     f"{ratio:>9}  {extra}")
    return "\n".join(lines)
