"""The ``smoke_preflight`` bench item: what the ``--smoke`` pre-flight costs on a VOC-sized folder.

``dmt run --smoke`` and ``dmt check --smoke`` promise that a set-up which passes does not fail later
on a file, so their pre-flight reads the header of every listed image and decodes every mask
(:func:`dmt.run.preflight.check_mask_values`), one at a time, not only the few images the smoke
trains on. This item measures that on a fabricated ``data.name: folder`` tree the size of VOC's
``train_aug`` (10,582 images, 500x375 JPEGs, and as many 500x375 palette PNG masks of 21 classes,
1,449 of them listed in ``splits/val.txt``): seconds, masks per second and the peak resident set.

The tree holds :data:`DISTINCT` different masks (VOC-like: a few object regions over background,
255 on their borders) and one image, each written once and hard-linked under every other name
(copied where links are refused), so building it costs seconds and no disk; the pre-flight still
opens, decodes and checks every file by its own name (from the page cache: the tree was just written).
The run happens in a process of its own (:func:`~dmt.bench.harness.measure_in_processes`): its peak
is the increase of the resident set during the call, beside the process's whole peak (``VmHWM``,
torch's import included) and its size before the call.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmt.atomic import write_bytes, write_text
from dmt.bench.harness import Variant, measure_in_processes, peak_rss_bytes, rss_bytes
from dmt.bench.items import item

VOC_TRAIN_AUG = 10_582
VOC_VAL = 1_449
QUICK_COUNT = 2_000
DISTINCT = 32
SIZE = (375, 500)  # H x W, VOC's most common size
CLASSES = 21


def _png(mask: np.ndarray) -> bytes:
    from PIL import Image

    from dmt.data.voc import voc_colormap

    img = Image.fromarray(mask, mode="P")
    img.putpalette(voc_colormap(256).tobytes())
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def _voc_like_mask(seed: int) -> np.ndarray:
    """Background with two to four elliptic objects of random classes, 255 on their borders (as VOC)."""
    h, w = SIZE
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = np.zeros(SIZE, np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        cy, cx, ry, rx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, rng.uniform(30, 120), rng.uniform(30, 160)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        mask[inside <= 1.0] = int(rng.integers(1, CLASSES))
        mask[(inside > 0.9) & (inside <= 1.1)] = 255
    return mask


def _place(first: Path, path: Path) -> None:
    try:
        os.link(first, path)
    except OSError:  # a file system without hard links
        write_bytes(path, first.read_bytes())


def fabricate_folder(root: Path, count: int = VOC_TRAIN_AUG, val: int = VOC_VAL) -> Path:
    """A ``data.name: folder`` tree of ``count`` masked images (``val`` of them in ``splits/val.txt``)."""
    from PIL import Image

    h, w = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.stack([np.sin(xx / (17 + 5 * c)) * 90 + yy / 3 + 40 for c in range(3)], -1).clip(0, 255)
    buffer = io.BytesIO()
    Image.fromarray(photo.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    names = [f"img{i:06d}" for i in range(count)]
    for i, name in enumerate(names):
        image, mask = root / "images" / f"{name}.jpg", root / "masks" / f"{name}.png"
        if i == 0:
            write_bytes(image, buffer.getvalue())
        else:
            _place(root / "images" / f"{names[0]}.jpg", image)
        if i < DISTINCT:
            write_bytes(mask, _png(_voc_like_mask(i)))
        else:
            _place(root / "masks" / f"{names[i % DISTINCT]}.png", mask)
    write_text(root / "classes.txt", "\n".join(f"class{k}" for k in range(CLASSES)) + "\n")
    write_text(root / "splits" / "val.txt", "\n".join(names[:: max(1, count // max(1, val))][:val]) + "\n")
    return root


def smoke_preflight_config(root: Path) -> Any:
    """``dmt check voc-8-dmt data.name=folder data.root=ROOT data.labelled_split=all --smoke``'s config,
    without pretrained weights (the item times the data; weights files are a load each)."""
    from dmt.config import load_config
    from dmt.config.smoke import apply_smoke

    cfg = load_config("voc-8-dmt", ["data.name=folder", f"data.root={root}", "data.labelled_split=all",
                                    "model.init=none", "mutual.init_b=none"])
    return apply_smoke(cfg)


def preflight_variants(quick: bool, root: Path) -> list[Variant]:
    """The item's one variant, built in its measuring process: the smoke pre-flight of the tree at ``root``."""
    from dmt.run.preflight import preflight

    info: dict[str, Any] = {}

    def prepare() -> None:  # torch and dmt imported: what the process holds before the pre-flight
        info["rss_before_mib"] = rss_bytes() / 2**20

    def run() -> None:
        report = preflight(smoke_preflight_config(root))
        info.update(masks=report.masks, images=report.images, process_peak_mib=peak_rss_bytes() / 2**20)
    return [Variant("dmt --smoke pre-flight", run, info=info, prepare=prepare)]


def smoke_preflight_run(count: int, repeats: int = 2) -> dict[str, Any]:
    """Fabricate ``count`` masked images in a temporary folder, time their smoke pre-flight, remove them."""
    tmp = Path(tempfile.mkdtemp(prefix="dmt-bench-preflight-"))
    try:
        fabricate_folder(tmp / "folder", count, min(VOC_VAL, count // 4))
        rows = measure_in_processes("dmt.bench.preflight_item:preflight_variants", ["dmt --smoke pre-flight"], None,
                                    repeats, str(tmp / "folder"), False, rounds=1, warmup=0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for row in rows:
        row["masks_per_s"] = row["masks"] / row["median_s"]
    return {"what": f"the --smoke pre-flight of a {count}-mask folder (500x375 palette PNGs decoded, JPEG headers "
                    "read, one process; peak: the increase during the call)", "rows": rows}


@item("smoke_preflight")
def smoke_preflight(quick: bool, device: torch.device) -> dict[str, Any]:
    """The ``--smoke`` pre-flight over a VOC-sized folder (10,582 masks; ``--quick``: 2,000)."""
    return smoke_preflight_run(QUICK_COUNT if quick else VOC_TRAIN_AUG, repeats=1 if quick else 2)
