"""Wall time of `dmt run PRESET --smoke` for the common-benchmark presets, on fabricated data.

    .venv/bin/python benchmarks/smoke_classic.py [PRESET ...]

Builds (under a temporary folder) a 48-image VOC tree at 375x500 with a UniMatch-format split
folder and a 20-image Cityscapes tree at 2048x1024 with a 1/16-style split folder, then times each
preset's whole --smoke run in a subprocess (start-up included) with the real ResNet-101
(random init: no weights are downloaded). Run it alone: other jobs on the cores distort it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))
from seg_fixtures import write_cityscapes_tree, write_voc_tree  # noqa: E402

DMT = str(Path(sys.executable).with_name("dmt"))


def fabricate(tmp: Path) -> dict[str, list[str]]:
    """The datasets and split folders; returns each preset's data overrides."""
    names = [f"2007_{i:06d}" for i in range(48)]
    write_voc_tree(tmp / "voc", splits={"train_aug": names[:40], "train": names[:12], "val": names[40:]},
                   size=(375, 500))
    voc_split = tmp / "split-92"
    voc_split.mkdir()
    line = "JPEGImages/{0}.jpg SegmentationClass/{0}.png\n"
    (voc_split / "labeled.txt").write_text("".join(line.format(n) for n in names[:8]))
    (voc_split / "unlabeled.txt").write_text("".join(line.format(n) for n in names[8:40]))
    city = write_cityscapes_tree(tmp / "city", cities={"train": {"aachen": 16}, "val": {"frankfurt": 4}},
                                 size=(1024, 2048))
    train = sorted(p.name[: -len("_leftImg8bit.png")] for p in (city / "leftImg8bit" / "train").rglob("*.png"))
    city_split = tmp / "split-1_16"
    city_split.mkdir()
    line = "leftImg8bit/train/{0}/{1}_leftImg8bit.png gtFine/train/{0}/{1}_gtFine_labelTrainIds.png\n"
    (city_split / "labeled.txt").write_text("".join(line.format(n.split("_")[0], n) for n in train[:2]))
    (city_split / "unlabeled.txt").write_text("".join(line.format(n.split("_")[0], n) for n in train[2:]))
    voc = [f"data.root={tmp / 'voc'}", f"data.split_dir={voc_split}"]
    cs = [f"data.root={city}", f"data.split_dir={city_split}"]
    return {**{f"voc-classic-{n}-dmt": voc for n in (92, 183, 366, 732, 1464)},
            **{f"cityscapes-classic-{n}-dmt": cs for n in (16, 8, 4, 2)}}


def main(presets: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="dmt-smoke-classic-") as tmp:
        runs = fabricate(Path(tmp))
        for preset in presets or ["voc-classic-92-dmt", "cityscapes-classic-16-dmt"]:
            start = time.perf_counter()
            proc = subprocess.run([DMT, "run", preset, *runs[preset], "model.init=none", "mutual.init_b=none",
                                   "--smoke", "--out", str(Path(tmp) / f"run-{preset}")],
                                  capture_output=True, text=True)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
            print(f"{preset:<28} {time.perf_counter() - start:6.1f} s  {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
