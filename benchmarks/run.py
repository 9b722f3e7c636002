"""Side-by-side timings (run by `make bench`); speed targets live here, never in the tests.

1. Class-balanced thresholds over a labelling pass: dmt's exact histogram over stored float16
   confidences vs. an exact full sort vs. the original's approximation (sort a 1/16 subsample).
2. The dynamic-weight computation per segmentation batch (VOC-sized: 8 x 21 x 321 x 321).

Prints one line per measurement; `--json PATH` also writes them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dmt.method.thresholds import class_balanced_thresholds, confidence_histogram
from dmt.method.weights import dynamic_weights


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_thresholds(images: int, side: int, classes: int, ratio: float) -> dict:
    g = torch.Generator().manual_seed(0)
    maps = [(torch.randint(0, classes, (side, side), generator=g, dtype=torch.uint8),
             torch.rand(side, side, generator=g).half()) for _ in range(images)]

    def histogram():
        hist = sum(confidence_histogram(c, p, classes) for c, p in maps)
        return class_balanced_thresholds(hist, ratio)

    def full_sort():
        cls = torch.cat([c.flatten() for c, _ in maps]).long()
        conf = torch.cat([p.flatten() for _, p in maps]).float()
        out = []
        for k in range(classes):
            v = conf[cls == k].sort(descending=True).values
            out.append(v[max(1, int(ratio * len(v))) - 1])
        return out

    def subsample_sort():  # the original: every 16th pixel, then sort (approximate)
        cls = torch.cat([c.flatten()[::16] for c, _ in maps]).long()
        conf = torch.cat([p.flatten()[::16] for _, p in maps]).float()
        out = []
        for k in range(classes):
            v = np.sort(conf[cls == k].numpy())
            out.append(v[-int(len(v) * ratio) - 1] if len(v) * ratio >= 1 else 1e-5)
        return out

    exact, _, _ = histogram()
    sort = torch.stack(full_sort())
    assert torch.equal(exact, sort), "histogram thresholds must equal the full sort"
    return {"pixels": images * side * side, "histogram_s": timed(histogram), "full_sort_s": timed(full_sort),
            "subsample_sort_s": timed(subsample_sort)}


def bench_weights() -> dict:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 21, 321, 321, generator=g)
    target = torch.randint(0, 21, (8, 321, 321), generator=g)
    conf = torch.rand(8, 321, 321, generator=g)
    labelled = torch.tensor([False] * 7 + [True])
    return {"dynamic_weights_s": timed(lambda: dynamic_weights(logits, target, conf, labelled, 5.0, 5.0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = {"thresholds": bench_thresholds(args.images, args.side, 21, 0.2), "weights": bench_weights()}
    t = results["thresholds"]
    print(f"class-balanced thresholds over {t['pixels'] / 1e6:.1f} M pixels: exact histogram "
          f"{t['histogram_s']:.3f} s, exact full sort {t['full_sort_s']:.3f} s "
          f"({t['full_sort_s'] / t['histogram_s']:.1f}x slower), original 1/16-subsample sort (approximate) "
          f"{t['subsample_sort_s']:.3f} s")
    print(f"dynamic weights, 8 x 21 x 321 x 321 batch (CPU): {results['weights']['dynamic_weights_s'] * 1e3:.1f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
