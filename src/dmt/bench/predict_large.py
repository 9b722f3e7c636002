"""``dmt bench --only predict_large``: ``dmt predict`` on 1, 12 and 36 megapixel images, peak memory and speed.

Each size runs in a child process of its own (``dmt predict`` as a user calls it, on the CPU),
which reports its peak resident memory and the wall time of the prediction; the models are
DeepLab-v2 / ResNet-101 (21 classes, logits at 1/8) and the digit-scenes demo's tiny U-Net
(4 classes, a network at full resolution), both with random weights: memory and speed do not
depend on what the weights learnt. Images larger than ``--max-side`` (default 1024) are
predicted in windows, band by band; "whole" rows force one pass over the whole image.
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

from dmt.bench.items import item

SIZES_MP = (1, 12, 36)
QUICK_SIZES_MP = (1, 4)

CHILD = textwrap.dedent("""
    import json, sys, time
    from dmt.bench.harness import peak_rss_bytes
    from dmt.cli.main import main
    model, image, out, side = sys.argv[1:5]
    t0 = time.perf_counter()
    code = main(["predict", model, image, "--out", out, "--device", "cpu", "--max-side", side, "--probs"])
    print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "peak_mib": peak_rss_bytes() / 2**20}))
""")


def _image(path: Path, megapixels: float) -> Path:
    """A smooth RGB image of about ``megapixels`` (4:3), PNG."""
    from PIL import Image

    width = int(math.sqrt(megapixels * 1e6 * 4 / 3))
    height = int(megapixels * 1e6 / width)
    small = np.random.default_rng(0).integers(0, 256, (max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.BILINEAR).save(path)
    return path


def _model_file(path: Path, name: str) -> Path:
    from dmt.models import create_model
    from dmt.models.files import save_model

    classes, kwargs = (21, {}) if name == "deeplabv2_resnet101" else (4, {})
    torch.manual_seed(0)
    save_model(path, create_model(name, classes, **kwargs).eval(), name=name, num_classes=classes, kwargs=kwargs)
    return path


def _run(model: Path, image: Path, out: Path, max_side: int) -> dict[str, Any]:
    script = out.parent / "child.py"
    script.write_text(CHILD)
    done = subprocess.run([sys.executable, str(script), str(model), str(image), str(out), str(max_side)],
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
    return {"what": "dmt predict on large images: wall time, peak memory of the process (windows of 1024, "
                    "band by band; 'whole' = one pass)", "rows": rows}
