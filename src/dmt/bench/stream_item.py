"""The ``cls_label_stream`` bench item: a teacher labels N streamed 96x96 images at bounded memory.

What a classification phase does before it trains (:meth:`ClassificationRunner._teacher_probabilities`):
the teacher's softmax over every unlabelled image, batch by batch, through the runner's own path
(:class:`~dmt.data.arrays.ImageSetDataset`, the evaluation transform, ``predict_probabilities``,
``data.num_workers`` DataLoader workers). The images are fabricated on the fly, so the item needs no
data set: :class:`StreamedImages` holds eight small JPEG files as bytes and decodes one per
``image(i)`` (with ``i`` written into its first pixel, so no two neighbours are the same image).
Each N runs in a process of its own; its peak resident set (``VmHWM``, the whole process from
start-up) and its workers' peaks show whether memory grows with N. It must not: only the ``N x C``
probabilities (4 MB at 100,000 images and 10 classes) do.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmt.bench.items import item

SIDE = 96
CLASSES = 10
BATCH = 256


class StreamedImages:
    """``n`` unlabelled ``SIDE x SIDE`` RGB images decoded from JPEG bytes on each ``image(i)`` (an image set)."""

    def __init__(self, n: int, side: int = SIDE, classes: int = CLASSES) -> None:
        from PIL import Image

        self.classes = [str(k) for k in range(classes)]
        self.labels = np.full(n, -1, dtype=np.int64)
        yy, xx = np.mgrid[0:side, 0:side]
        self.jpegs = []
        for k in range(8):  # smooth pictures compress like photos (about 2 KB each)
            pixels = np.stack([np.sin(xx / (6 + k + 3 * c)) * 100 + yy + 20 * c for c in range(3)], -1)
            buffer = io.BytesIO()
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
            self.jpegs.append(buffer.getvalue())

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> np.ndarray:
        from PIL import Image

        pixels = np.array(Image.open(io.BytesIO(self.jpegs[i % len(self.jpegs)])).convert("RGB"))
        pixels[0, 0] = (i % 256, (i // 256) % 256, (i // 65536) % 256)
        return pixels


def _status_kib(pid: int, key: str = "VmHWM") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(line.split()[1] for line in f if line.startswith(f"{key}:")))
    except (OSError, StopIteration, ValueError):
        return 0


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def stand_in_teacher(classes: int = CLASSES) -> torch.nn.Module:
    """A tiny teacher (random weights): one 8x8 stride-8 convolution to 16 channels, ReLU, global
    average pool, linear. The item measures the streaming, not a network: ``tiny_cnn`` (full-resolution
    convolutions) labelled 96x96 images at ~280/s here, which made 100,000 a ten-minute run."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 8, stride=8), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(16, classes)).eval()


def label_streamed(n: int, workers: int) -> dict[str, Any]:
    """Label ``n`` streamed images with :func:`stand_in_teacher`, as a phase does.

    Returns the seconds, images/s, this process's resident set before labelling and its peak
    (``VmHWM``: the whole process's, start-up included) and the largest peak of a DataLoader worker
    (sampled every 20 ms while they live), in MiB.
    """
    from dmt.data.arrays import ImageSetDataset
    from dmt.data.classification_transforms import classification_eval_transform
    from dmt.engine.heap import map_large_blocks
    from dmt.engine.progress import Display
    from dmt.tasks.classification.evaluate import predict_probabilities

    map_large_blocks()  # as the classification runner does when it starts
    teacher = stand_in_teacher()
    dataset = ImageSetDataset(StreamedImages(n), None, classification_eval_transform())
    worker_peak = [0]
    stop = threading.Event()

    def watch() -> None:  # a worker's VmHWM only grows: its last sample is (within 20 ms) its peak
        while not stop.is_set():
            for pid in _children():
                worker_peak[0] = max(worker_peak[0], _status_kib(pid))
            time.sleep(0.02)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    before = _status_kib(os.getpid(), "VmRSS")
    t0 = time.perf_counter()
    # the runner's defaults on a CPU: channels_last on (train.channels_last auto), float32 (no bf16 autocast
    # asked here: the stand-in's cost is not what is measured)
    probs = predict_probabilities(teacher, dataset, BATCH, torch.device("cpu"), num_workers=workers,
                                  channels_last=True, display=Display(enabled=False))
    seconds = time.perf_counter() - t0
    stop.set()
    watcher.join()
    assert probs.shape == (n, CLASSES) and bool(torch.isfinite(probs).all())
    return {"images": n, "workers": workers, "seconds": seconds, "images_per_s": n / seconds,
            "rss_before_mib": before / 1024, "peak_rss_mib": _status_kib(os.getpid()) / 1024,
            "worker_peak_rss_mib": worker_peak[0] / 1024,
            "threads": torch.get_num_threads()}


_CHILD = ("import json, sys, torch\n"
          "from dmt.bench.stream_item import label_streamed\n"
          "torch.set_num_threads(int(sys.argv[3]))\n"
          "print(json.dumps(label_streamed(int(sys.argv[1]), int(sys.argv[2]))))\n")


def run_in_process(n: int, workers: int, threads: int | None = None) -> dict[str, Any]:
    """:func:`label_streamed` in a fresh Python process (its peak is its own, not this process's)."""
    threads = threads or torch.get_num_threads()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(workers), str(threads)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


@item("cls_label_stream")
def cls_label_stream(quick: bool, device: torch.device) -> dict[str, Any]:
    """Labelling 1,000 and 100,000 (--quick: 10,000) streamed 96x96 JPEGs with 2 DataLoader workers, each N
    in processes of its own (alternating, two each; --quick: one): peak resident set and images/s."""
    sizes, rounds = ((1_000, 10_000), 1) if quick else ((1_000, 100_000), 2)
    got: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for _ in range(rounds):  # alternating, so a slow spell of a shared machine hits both sizes
        for n in sizes:
            got[n].append(run_in_process(n, workers=2))
    rows = []
    for n in sizes:
        seconds = sorted(g["seconds"] for g in got[n])
        rows.append({"variant": f"{n:,} images, 2 workers", "median_s": statistics.median(seconds),
                     "min_s": seconds[0], "times_s": seconds, "ratio": None,
                     "peak_mib": max(g["peak_rss_mib"] for g in got[n]),
                     "peaks_mib": [g["peak_rss_mib"] for g in got[n]],
                     "images_per_s": n / statistics.median(seconds),
                     "worker_peak_mib": max(g["worker_peak_rss_mib"] for g in got[n]),
                     "rss_before_mib": max(g["rss_before_mib"] for g in got[n])})
    return {"what": f"labelling streamed {SIDE}x{SIDE} JPEGs, 8x8-stride conv stand-in teacher, batch {BATCH}, "
                    "CPU; peak = the process's VmHWM, the largest of its processes", "rows": rows}
