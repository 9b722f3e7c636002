"""``dmt bench --only predict_large``: ``dmt predict`` on 1, 12 and 36 megapixel images, peak memory and speed.

Two parts. Sizes: each size runs in a child process of its own (``dmt predict`` as a user calls it, on the CPU),
which reports its peak resident memory and the wall time of the prediction; the models are
DeepLab-v2 / ResNet-101 (21 classes, logits at 1/8) and the digit-scenes demo's tiny U-Net
(4 classes, a network at full resolution), both with random weights: memory and speed do not
depend on what the weights learnt. Images larger than ``--max-side`` (default 1024) are
predicted in windows, band by band; "whole" rows force one pass over the whole image.

Read scales (:func:`read_scale_rows`): a 6000 x 6000 image, a 21-class tiny DeepLab-v2 (the
``--smoke`` model) read at scale 0.125 (as every ``--smoke`` run reads) and at 1, by the model
file (PyTorch) and by its ``.onnx`` export (ONNX Runtime): the read-time resize is undone band by
band, so both paths stay bounded by a window at either scale.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmt.atomic import atomic_path, write_text
from dmt.bench.items import item
from dmt.errors import UserError

SIZES_MP = (1, 12, 36)
QUICK_SIZES_MP = (1, 4)

CHILD = textwrap.dedent("""
    import json, sys, time
    from dmt.bench.harness import peak_rss_bytes
    from dmt.cli.main import main
    model, image, out, side, *more = sys.argv[1:]
    t0 = time.perf_counter()
    code = main(["predict", model, image, "--out", out, "--device", "cpu", "--max-side", side, "--probs", *more])
    print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "peak_mib": peak_rss_bytes() / 2**20}))
""")


def _image(path: Path, megapixels: float, aspect: float = 4 / 3) -> Path:
    """A smooth RGB image of about ``megapixels`` (width / height = ``aspect``), PNG."""
    from PIL import Image

    width = int(math.sqrt(megapixels * 1e6 * aspect))
    height = int(megapixels * 1e6 / width)
    small = np.random.default_rng(0).integers(0, 256, (max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(small).resize((width, height), Image.BILINEAR).save(tmp)
    return path


def _model_file(path: Path, name: str) -> Path:
    from dmt.models import create_model
    from dmt.models.files import save_model

    classes, kwargs = (4, {}) if name == "tiny_unet" else (21, {})
    torch.manual_seed(0)
    save_model(path, create_model(name, classes, **kwargs).eval(), name=name, num_classes=classes, kwargs=kwargs)
    return path


def _run(model: Path, image: Path, out: Path, max_side: int, *more: str) -> dict[str, Any]:
    script = out.parent / "child.py"
    write_text(script, CHILD)
    done = subprocess.run([sys.executable, str(script), str(model), str(image), str(out), str(max_side), *more],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


@item("predict_large")
def predict_large(quick: bool, device: torch.device) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="dmt-bench-predict-") as tmp:
        tmp_path = Path(tmp)
        for name, short in (("deeplabv2_resnet101", "DeepLab-v2"), ("tiny_unet", "tiny U-Net")):
            model = _model_file(tmp_path / f"{name}.safetensors", name)
            for mp in QUICK_SIZES_MP if quick else SIZES_MP:
                image = _image(tmp_path / f"{mp}mp.png", mp)
                for max_side, how in ((1024, "windows"), *(((0, "whole"),) if mp == 1 else ())):
                    got = _run(model, image, tmp_path / f"out-{name}-{mp}-{max_side}", max_side)
                    rows.append({"variant": f"{short}, {mp} MP, {how}", "median_s": got["seconds"],
                                 "min_s": got["seconds"], "peak_mib": got["peak_mib"], "ratio": None,
                                 "megapixels_per_s": mp / got["seconds"]})
                image.unlink()
        rows += read_scale_rows(tmp_path, 1000 if quick else 6000)
    return {"what": "dmt predict on large images: wall time, peak memory of the process (windows of 1024, "
                    "band by band; 'whole' = one pass); a 21-class tiny DeepLab-v2 read at 1/8 and at 1, "
                    "PyTorch and ONNX Runtime", "rows": rows}


def read_scale_rows(tmp_path: Path, side: int = 6000) -> list[dict[str, Any]]:
    """``dmt predict`` of a ``side x side`` image with a 21-class ``deeplabv2_tiny`` read at 0.125 and 1,
    from the model file and from its ONNX export (skipped without the export extra), one child each."""
    from dmt.predict.exported import onnxruntime_module

    model = _model_file(tmp_path / "deeplabv2_tiny.safetensors", "deeplabv2_tiny")
    files = [(model, "PyTorch")]
    try:
        onnxruntime_module()
        from dmt.predict.export import export_model

        files.append((export_model(model, model.with_suffix(".onnx"), print_fn=lambda line: None).path, "ONNX"))
    except UserError:  # no export extra: the PyTorch rows only
        pass
    image = _image(tmp_path / "square.png", side * side / 1e6, aspect=1.0)
    rows = []
    for scale in ("0.125", "1"):
        for path, runtime in files:
            got = _run(path, image, tmp_path / f"out-{runtime}-{scale}", 1024, "--scale", scale)
            mp = side * side / 1e6
            rows.append({"variant": f"tiny DeepLab-v2 21 classes, {side} x {side}, read at {scale}, {runtime}",
                         "median_s": got["seconds"], "min_s": got["seconds"], "peak_mib": got["peak_mib"],
                         "ratio": None, "megapixels_per_s": mp / got["seconds"]})
    image.unlink()
    return rows
