"""``dmt bench --only suggest_large``: the peak memory of ``dmt suggest`` on a large image against ``dmt predict``'s.

A run directory is made on the spot: a folder dataset whose one unlabelled image is ``side x side``
(6000 by default), and a last phase of two members, 21-class ``deeplabv2_tiny`` networks with
random weights (memory does not depend on what they learnt), read at the run's ``data.scale``
(0.125, as every ``--smoke`` run reads, and 1). Each command runs in a child process of its own
on the CPU, as a user calls it, and reports its peak resident memory and wall time:
``dmt predict`` of member A's model file (which takes the run's scale and windows), ``dmt suggest``
(ranking, then the contact sheet: each member predicted again) and ``dmt suggest --drafts coco
cvat labelstudio`` (the regions of the drafted map too).
"""

from __future__ import annotations

import json
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

CHILD = textwrap.dedent("""
    import json, sys, time
    from dmt.bench.harness import peak_rss_bytes
    from dmt.cli.main import main
    t0 = time.perf_counter()
    code = main(sys.argv[1:])
    print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "peak_mib": peak_rss_bytes() / 2**20}))
""")
CLASSES = 21


def large_image(path: Path, side: int) -> Path:
    """A smooth random ``side x side`` RGB PNG."""
    from PIL import Image

    small = np.random.default_rng(0).integers(0, 256, (max(side // 64, 2), max(side // 64, 2), 3), dtype=np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(small).resize((side, side), Image.BILINEAR).save(tmp)
    return path


def make_run(folder: Path, side: int, scale: float) -> Path:
    """A folder dataset with one unlabelled ``side x side`` image and a run on it whose phase1 has two members."""
    from dmt.config.loader import dump_config, load_config
    from dmt.models import create_model
    from dmt.models.files import save_model

    root, run = folder / "data", folder / "run"
    large_image(root / "images" / "large.png", side)
    write_text(root / "classes.txt", "".join(f"class{c}\n" for c in range(CLASSES)))
    cfg = load_config(None, ["task=segmentation", "data.name=folder", f"data.root={root}", f"data.scale={scale}",
                             "model.name=deeplabv2_tiny", "model.init=none"])
    write_text(run / "config.yaml", dump_config(cfg))
    write_text(run / "splits" / "unlabelled.txt", "large\n")
    for seed, member in enumerate("ab"):
        torch.manual_seed(seed)
        network = create_model("deeplabv2_tiny", CLASSES).eval()
        save_model(run / "stages" / f"phase1-{member}" / "model.safetensors", network, name="deeplabv2_tiny",
                   num_classes=CLASSES, kwargs={})
    return run


def run_child(folder: Path, args: list[str]) -> dict[str, Any]:
    """``dmt ARGS`` in a child process: its exit code, wall time and peak resident memory (MiB)."""
    script = folder / "child.py"
    write_text(script, CHILD)
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


COMMANDS = ("dmt predict", "dmt suggest", "dmt suggest --drafts")


def suggest_rows(folder: Path, side: int, scales: tuple[float, ...] = (0.125, 1.0),
                 which: tuple[str, ...] = COMMANDS) -> list[dict[str, Any]]:
    """The commands ``which`` (of :data:`COMMANDS`) on one ``side x side`` image at each read scale."""
    rows = []
    for scale in scales:
        here = folder / f"scale-{scale}"
        run = make_run(here, side, scale)
        image, model = here / "data" / "images" / "large.png", run / "stages" / "phase1-a" / "model.safetensors"
        commands = {
            "dmt predict": ["predict", str(model), str(image), "--out", str(here / "predicted"), "--device", "cpu"],
            "dmt suggest": ["suggest", str(run), "--count", "1", "--out", str(here / "suggested"), "--device", "cpu"],
            "dmt suggest --drafts": ["suggest", str(run), "--count", "1", "--out", str(here / "drafted"),
                                     "--device", "cpu", "--drafts", "coco", "cvat", "labelstudio"],
        }
        for what in which:
            args = commands[what]
            got = run_child(here, args)
            if got["code"] != 0:
                raise RuntimeError(f"{what} exited {got['code']}")
            rows.append({"variant": f"{what}, {side} x {side}, read at {scale}", "median_s": got["seconds"],
                         "min_s": got["seconds"], "peak_mib": got["peak_mib"], "ratio": None,
                         "megapixels_per_s": side * side / 1e6 / got["seconds"]})
    return rows


@item("suggest_large")
def suggest_large(quick: bool, device: torch.device) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dmt-bench-suggest-") as tmp:
        rows = suggest_rows(Path(tmp), 1000 if quick else 6000, (0.125,) if quick else (0.125, 1.0))
    return {"what": "peak memory of dmt suggest (two 21-class tiny DeepLab-v2 members) against dmt predict of one "
                    "member on the same image, each in a child process on the CPU", "rows": rows}
