"""Wall time of `dmt run PRESET --smoke` for every preset (or those named), on fabricated data.

    .venv/bin/python benchmarks/smoke_presets.py [PRESET ...]           # all presets: about 25 minutes
    .venv/bin/python benchmarks/smoke_presets.py --check [PRESET ...]   # the pre-flight part alone

The performance issue's target: every preset's --smoke finishes within 2 minutes on the project's
2-core CPU and still runs every stage. This builds, under a temporary folder, datasets in the
official on-disk layouts at their real image sizes:

* VOC 2012 + SegmentationClassAug: 320 images of 375x500 in train_aug (enough for 1/106 to label
  three, and for the DMS subsets), 40 of them in train.txt (the SBD setting), 8 in val;
* Cityscapes: 64 train frames of 2048x1024 (1/30 labels two) and 4 val frames;
* CIFAR-10 (``cifar-10-batches-py``): 50,000 train and 10,000 test random images, 5,000 per
  class, so every preset's per-class split and valtiny exist;
* UniMatch-format split folders (``labeled.txt`` / ``unlabeled.txt``) for the classic presets;
* a folder of your own (``data/folder.py`` layout): 12 masked images of 375x500 (4 listed in
  ``splits/val.txt``) and 16 without a mask;

only those the named presets read, then times each preset's whole --smoke run in a subprocess
(start-up included) with the real networks from random init (``model.init=none`` for the ResNet
presets; the DINOv2 presets' missing weight files are a warning under --smoke, and their encoders
train as their tiny stand-ins): nothing is downloaded. Run it alone: other jobs on the cores
distort it. Prints one line per preset and a summary; exit status 1 if any run failed.

``--check`` times ``dmt check PRESET --smoke`` instead: the header pre-flight over every file of
the full lists that a --smoke run now starts with (what it adds to the run), start-up included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))
from seg_fixtures import write_cityscapes_tree, write_folder_tree, write_voc_tree  # noqa: E402

from dmt.config.loader import list_presets, load_config  # noqa: E402
from dmt.data.cifar import CIFAR10_FOLDER, write_cifar_folder  # noqa: E402
from dmt.errors import UserError  # noqa: E402

DMT = [sys.executable, "-m", "dmt.cli.main"]  # this checkout's dmt (with PYTHONPATH=src), not an installed one
LIMIT_S = 120.0


def _split_folder(folder: Path, line: str, labelled: list[tuple], unlabelled: list[tuple]) -> Path:
    folder.mkdir()
    (folder / "labeled.txt").write_text("".join(line.format(*k) for k in labelled))
    (folder / "unlabeled.txt").write_text("".join(line.format(*k) for k in unlabelled))
    return folder


def fabricate(tmp: Path, kinds: set[str]) -> dict[str, list[str]]:
    """Writes the datasets of ``kinds`` (voc, cityscapes, cifar10, folder); returns the data overrides
    per kind."""
    out: dict[str, list[str]] = {}
    if kinds & {"voc", "folder"}:
        out.update(_fabricate_voc(tmp))
    if "cityscapes" in kinds:
        out.update(_fabricate_cityscapes(tmp))
    if "cifar10" in kinds:
        out.update(_fabricate_cifar(tmp))
    return out


def _fabricate_voc(tmp: Path) -> dict[str, list[str]]:
    names = [f"2007_{i:06d}" for i in range(328)]
    train_aug, val = names[:320], names[320:]
    write_voc_tree(tmp / "voc", splits={"train_aug": train_aug, "train": train_aug[:40], "val": val},
                   size=(375, 500))
    voc_split = _split_folder(tmp / "voc-split", "JPEGImages/{0}.jpg SegmentationClass/{0}.png\n",
                              [(n,) for n in train_aug[:8]], [(n,) for n in train_aug[8:]])
    # a folder of your own: the same photos' size, 8 masked (labelled), 16 without a mask, 4 for val
    rng = np.random.default_rng(0)
    masks = {f"img{i:02d}": rng.integers(0, 3, (375, 500)).astype(np.uint8) for i in range(12)}
    folder = write_folder_tree(tmp / "folder", masks, unlabelled=[f"u{i:02d}" for i in range(16)],
                               splits={"val": [f"img{i:02d}" for i in range(8, 12)]})
    return {"voc": [f"data.root={tmp / 'voc'}"], "folder": [f"data.root={folder}"],
            "voc-classic": [f"data.root={tmp / 'voc'}", f"data.split_dir={voc_split}"]}


def _fabricate_cityscapes(tmp: Path) -> dict[str, list[str]]:
    city = write_cityscapes_tree(tmp / "city", cities={"train": {"aachen": 64}, "val": {"frankfurt": 4}},
                                 size=(1024, 2048))
    frames = sorted(p.name[: -len("_leftImg8bit.png")] for p in (city / "leftImg8bit" / "train").rglob("*.png"))
    city_split = _split_folder(tmp / "city-split",
                               "leftImg8bit/train/{0}/{1}_leftImg8bit.png gtFine/train/{0}/{1}_gtFine_labelTrainIds.png\n",
                               [(f.split("_")[0], f) for f in frames[:4]], [(f.split("_")[0], f) for f in frames[4:]])
    return {"cityscapes": [f"data.root={city}"],
            "cityscapes-classic": [f"data.root={city}", f"data.split_dir={city_split}"]}


def _fabricate_cifar(tmp: Path) -> dict[str, list[str]]:
    rng = np.random.default_rng(0)
    train_labels = rng.permutation(np.repeat(np.arange(10), 5000))
    test_labels = rng.permutation(np.repeat(np.arange(10), 1000))
    write_cifar_folder(tmp / "cifar" / CIFAR10_FOLDER,
                       rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8), train_labels,
                       rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8), test_labels)
    return {"cifar10": [f"data.root={tmp / 'cifar'}"]}


def overrides_for(preset: str, data: dict[str, list[str]]) -> list[str]:
    """The data and initialisation overrides one preset needs on the fabricated data."""
    cfg = load_config(preset)
    kind = cfg.data.name + ("-classic" if "classic" in preset else "")
    out = list(data.get(kind, []))
    if cfg.task == "segmentation" and cfg.model.init in ("imagenet", "coco"):
        # torchvision's cache; the DINOv2 presets' missing files are a warning under --smoke
        out += ["model.init=none", "mutual.init_b=none"]
    return out


def main(presets: list[str], check: bool = False) -> int:
    presets = presets or list(list_presets())
    command = "check" if check else "run"
    failed, slow, times = [], [], {}
    with tempfile.TemporaryDirectory(prefix="dmt-smoke-presets-") as tmp:
        start = time.perf_counter()
        data = fabricate(Path(tmp), {load_config(p).data.name for p in presets})
        print(f"fabricated the datasets in {time.perf_counter() - start:.0f} s", flush=True)
        for preset in presets:
            start = time.perf_counter()
            out = [] if check else ["--out", str(Path(tmp) / "runs" / preset)]
            proc = subprocess.run([*DMT, command, preset, *overrides_for(preset, data), "--smoke", *out],
                                  capture_output=True, text=True)
            times[preset] = elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                failed.append(preset)
                status = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
            else:
                status = "ok" if elapsed <= LIMIT_S else f"ok, over {LIMIT_S:.0f} s"
                if check:
                    status = proc.stdout.strip().splitlines()[-1]
                if elapsed > LIMIT_S:
                    slow.append(preset)
            print(f"{preset:<28} {elapsed:6.1f} s  {status}", flush=True)
    ok = [t for p, t in times.items() if p not in failed]
    if ok:
        print(f"{len(times)} presets: {len(ok)} ran, {len(failed)} failed; {min(ok):.1f}-{max(ok):.1f} s, "
              f"{len(slow)} over {LIMIT_S:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Wall time of dmt run PRESET --smoke (or, with --check, "
                                     "of its pre-flight) for every preset or those named, on fabricated data.")
    parser.add_argument("presets", nargs="*", metavar="PRESET", help="presets to time (default: all)")
    parser.add_argument("--check", action="store_true", help="time `dmt check PRESET --smoke` instead")
    args = parser.parse_args()
    try:
        sys.exit(main(args.presets, check=args.check))
    except UserError as exc:  # a misspelt preset: one line, as dmt says it
        sys.exit(f"error: {exc}")
