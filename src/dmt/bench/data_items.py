"""Benchmark items on a run's data side and the whole run: labelling, the data pipeline, thresholds, ``--smoke``.

``labelling`` compares our one-pass labelling (uint8 classes, float16 confidences, exact
thresholds from a histogram of the store) with the original implementation's two-pass scheme,
each variant in processes of its own; ``data`` times VOC-sized JPEG decoding and the training
transform; ``thresholds`` the exact histogram against sorts; ``smoke`` a whole ``dmt run
demo-digits --smoke`` in a subprocess. The training-step and inference items live in
:mod:`dmt.bench.items`, which also holds the registry these register in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.atomic import atomic_path, write_text
from dmt.bench.harness import Variant, measure, measure_in_processes
from dmt.bench.items import item


def _scene_dataset(n: int, side: int):
    from dmt.data.segmentation import SegItem, SegmentationDataset, SegSource
    from dmt.data.voc import VOC_CLASSES, VOC_MEAN

    rng = np.random.default_rng(0)
    items = [SegItem(f"img{i:03d}", rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for i in range(n)]
    source = SegSource(name="bench", class_names=VOC_CLASSES, split_names=(), list_split=lambda s: [],
                       make_item=lambda name: SegItem(name, np.zeros((1, 1, 3), np.uint8)), root=Path("."),
                       palette=None, mean=VOC_MEAN)
    return SegmentationDataset(items, source, None, with_mask=False)


def _original_labelling(model: nn.Module, dataset, batch_size: int, ratio: float, classes: int) -> dict:
    """The original implementation's scheme: pass 1 samples every 16th pixel's confidence for the
    thresholds (sorted per class), pass 2 runs the model again and keeps thresholded labels with
    float32 confidences in memory."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=lambda b: b)

    def images(batch: list) -> torch.Tensor:
        return torch.stack([s["image"] for s in batch])
    sample_c, sample_p = [], []
    with torch.no_grad():
        for batch in loader:
            p = model(images(batch)).softmax(1)
            conf, cls = p.max(1)
            sample_c.append(cls.flatten()[::16])
            sample_p.append(conf.flatten()[::16])
        cls_all, conf_all = torch.cat(sample_c).numpy(), torch.cat(sample_p).numpy()
        thresholds = []
        for k in range(classes):
            v = np.sort(conf_all[cls_all == k])
            thresholds.append(v[-int(len(v) * ratio) - 1] if len(v) * ratio >= 1 else 1e-5)
        t = torch.tensor(thresholds)
        stored = {}
        for batch in loader:
            p = model(images(batch)).softmax(1)
            conf, cls = p.max(1)
            cls = torch.where(conf >= t[cls], cls, torch.full_like(cls, 255))
            for s, c, q in zip(batch, cls, conf):
                stored[s["name"]] = (c.to(torch.uint8).numpy(), q.float().numpy())
    return stored


def labelling_variants(quick: bool, tmp: Path) -> tuple[list[Variant], dict[str, float], int]:
    """The labelling item's variants (also built alone in a subprocess to measure peak memory)."""
    from dmt.data.labels import PseudoLabelStore, histogram_of_store
    from dmt.method.thresholds import class_balanced_thresholds
    from dmt.tasks.segmentation.labelling import label_images

    n, side, classes, ratio = (16 if quick else 64), 505, 21, 0.2
    dataset = _scene_dataset(n, side)
    torch.manual_seed(0)
    model = nn.Conv2d(3, classes, 1).eval()
    bytes_per_pixel: dict[str, float] = {}
    info: dict[str, dict] = {"plain": {}, "dmt": {}, "dmt-amp": {}}  # what each variant reports

    def plain() -> None:
        stored = _original_labelling(model, dataset, 8, ratio, classes)
        bytes_per_pixel["plain"] = sum(c.nbytes + q.nbytes for c, q in stored.values()) / (n * side * side)
        info["plain"]["bytes_per_pixel"] = bytes_per_pixel["plain"]

    def ours(key: str, amp: bool | str) -> Callable[[], None]:
        def run() -> None:
            d = tmp / "store"
            shutil.rmtree(d, ignore_errors=True)
            store = PseudoLabelStore(d)
            names = []
            # train.channels_last auto (on) as in a run on the CPU; amp False (float32, like plain)
            # or "auto" (a run's default: bf16 autocast on CPUs with native bf16)
            for name, cls, conf in label_images(model, dataset, 8, torch.device("cpu"), amp, 0, "label",
                                                channels_last=True):
                store.write(name, cls, conf)
                names.append(name)
            class_balanced_thresholds(histogram_of_store(store, names, classes), ratio)
            bytes_per_pixel[key] = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / (n * side * side)
            info[key]["bytes_per_pixel"] = bytes_per_pixel[key]
        return run
    return [Variant("plain", plain, plain=True, info=info["plain"]), Variant("dmt", ours("dmt", False), info=info["dmt"]),
            Variant("dmt-amp", ours("dmt-amp", "auto"), info=info["dmt-amp"])], bytes_per_pixel, n


@item("labelling")
def labelling(quick: bool, device: torch.device) -> dict[str, Any]:
    """Class-balanced labelling of 64 images of 505x505 (--quick: 16) with a 1x1-conv stand-in network.

    Each variant runs in processes of its own (times and the peak of its first run there).
    """
    tmp = Path(tempfile.mkdtemp(prefix="dmt-bench-labels-"))
    n = 16 if quick else 64
    try:
        rows = measure_in_processes("dmt.bench.data_items:labelling_variants", ["plain", "dmt", "dmt-amp"], "plain",
                                    2 if quick else 4, str(tmp), quick, rounds=1 if quick else 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows[0]["variant"] = "plain (original two-pass, float32)"
    rows[1]["variant"] = "dmt, float32"
    rows[2]["variant"] = "dmt defaults (amp auto)"
    return {"what": f"labelling {n} images of 505x505, 1x1-conv stand-in, CPU", "rows": rows}


@item("data")
def data_pipeline(quick: bool, device: torch.device) -> dict[str, Any]:
    """Reading + training transform of VOC-sized JPEGs (500x375) in one process: images/s per worker."""
    from PIL import Image

    from dmt.data.segmentation import SegmentationDataset
    from dmt.data.transforms import seg_train_transform
    from dmt.data.voc import VOC_MEAN, voc_source

    n = 16 if quick else 48
    tmp = Path(tempfile.mkdtemp(prefix="dmt-bench-voc-"))
    try:
        base = tmp / "VOC2012"
        for sub in ("JPEGImages", "SegmentationClassAug", "ImageSets/Segmentation"):
            (base / sub).mkdir(parents=True)
        rng = np.random.default_rng(0)
        names = [f"2007_{i:06d}" for i in range(n)]
        yy, xx = np.mgrid[0:375, 0:500]
        for i, name in enumerate(names):  # smooth images compress like photos, unlike noise
            img = np.stack([(np.sin(xx / (20 + i + 7 * c)) * 100 + yy / 3 + rng.integers(0, 30, (375, 500)))
                            for c in range(3)], -1).clip(0, 255).astype(np.uint8)
            with atomic_path(base / "JPEGImages" / f"{name}.jpg") as path:  # the suffix chooses the format
                Image.fromarray(img).save(path, quality=90)
            with atomic_path(base / "SegmentationClassAug" / f"{name}.png") as path:
                Image.fromarray(((xx // 50 + yy // 50) % 21).astype(np.uint8)).save(path)
        write_text(base / "ImageSets/Segmentation/train_aug.txt", "\n".join(names) + "\n")
        source = voc_source(tmp)
        dataset = SegmentationDataset([source.make_item(nm) for nm in names], source,
                                      seg_train_transform((321, 321), (0.5, 1.5), VOC_MEAN))

        def run() -> None:
            for i in range(len(dataset)):
                dataset[i]
        rows = measure([Variant("dmt", run)], 2 if quick else 3, torch.device("cpu"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for row in rows:
        row["images_per_s_per_worker"] = n / row["median_s"]
    return {"what": f"VOC-sized JPEG decode + crop transform, {n} images, one worker", "rows": rows}


_HWM = ("import atexit, sys\n"
        "from dmt.bench.harness import peak_rss_bytes\n"
        "atexit.register(lambda: print('bench-peak-kib', peak_rss_bytes() // 1024, file=sys.stderr))\n"
        "from dmt.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n")


def _run_child(args: list[str]) -> tuple[float, int]:
    """Run ``dmt ARGS`` in a fresh process; returns (seconds, its main process's peak RSS in bytes).

    The peak is the child's own ``VmHWM`` (``ru_maxrss`` of a child forked from this big process
    would report this process's size).
    """
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _HWM, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dmt {' '.join(args)} failed: {proc.stderr[-2000:]}")
    peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("bench-peak-kib")]
    return elapsed, int(peak[-1]) * 1024 if peak else 0


@item("smoke")
def smoke(quick: bool, device: torch.device) -> dict[str, Any]:
    """A whole ``dmt run demo-digits --smoke`` in a subprocess (every stage, a few steps each)."""
    rows = []
    configs = [("plain", ["amp=false", "train.channels_last=false"]), ("dmt (defaults)", [])]
    runs: dict[str, list[tuple[float, int]]] = {n: [] for n, _ in configs}
    for _ in range(1 if quick else 2):
        for name, overrides in configs:
            tmp = tempfile.mkdtemp(prefix="dmt-bench-smoke-")
            try:
                runs[name].append(_run_child(["run", "demo-digits", "--smoke", "--out", str(Path(tmp) / "run"),
                                              *overrides]))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    plain_med = float(np.median([t for t, _ in runs["plain"]]))
    for name, _ in configs:
        times = [t for t, _ in runs[name]]
        med = float(np.median(times))
        rows.append({"variant": name, "median_s": med, "min_s": min(times), "times_s": times,
                     "peak_mib": max(m for _, m in runs[name]) / 2**20, "peak_is": "main process peak RSS (VmHWM)",
                     "ratio": plain_med / med})
    return {"what": "dmt run demo-digits --smoke (subprocess, start-up included)", "rows": rows}


@item("thresholds")
def thresholds(quick: bool, device: torch.device) -> dict[str, Any]:
    """Class-balanced thresholds over stored maps: exact histogram vs exact sort vs the original's 1/16 sort."""
    from dmt.method.thresholds import class_balanced_thresholds, confidence_histogram

    images, side, classes, ratio = (16, 256, 21, 0.2) if quick else (64, 512, 21, 0.2)
    g = torch.Generator().manual_seed(0)
    maps = [(torch.randint(0, classes, (side, side), generator=g, dtype=torch.uint8),
             torch.rand(side, side, generator=g).half()) for _ in range(images)]

    def histogram() -> Any:
        hist = sum(confidence_histogram(c, p, classes) for c, p in maps)
        return class_balanced_thresholds(hist, ratio)

    def full_sort() -> Any:
        cls = torch.cat([c.flatten() for c, _ in maps]).long()
        conf = torch.cat([p.flatten() for _, p in maps]).float()
        return [conf[cls == k].sort(descending=True).values[max(1, int(ratio * int((cls == k).sum()))) - 1]
                for k in range(classes)]

    def subsample_sort() -> Any:
        cls = torch.cat([c.flatten()[::16] for c, _ in maps]).long().numpy()
        conf = torch.cat([p.flatten()[::16] for _, p in maps]).float().numpy()
        out = []
        for k in range(classes):
            v = np.sort(conf[cls == k])
            out.append(v[-int(len(v) * ratio) - 1] if len(v) * ratio >= 1 else 1e-5)
        return out
    exact = histogram()[0]
    assert torch.equal(exact, torch.stack(full_sort())), "histogram thresholds must equal the full sort"
    rows = measure([Variant("plain (original 1/16 subsample sort, approximate)", subsample_sort, plain=True),
                    Variant("exact full sort", full_sort), Variant("dmt (exact histogram)", histogram)],
                   3, torch.device("cpu"))
    return {"what": f"class-balanced thresholds over {images} x {side}x{side} stored maps", "rows": rows}
