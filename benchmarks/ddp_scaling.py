"""Scaling of the segmentation training step from one to N processes (torchrun, gloo on CPU).

The same global batch of DeepLab-v2 crops trains for a few steps on 1 process and on N processes
(each with its share of the batch, DDP + SyncBatchNorm, one thread per process), through dmt's
real engine and SegmentationStep. Prints one line per world size and, with --out, writes JSON.

    python benchmarks/ddp_scaling.py                   # DeepLab-v2/ResNet-101, 2 x 321x321, 1 vs 2
    python benchmarks/ddp_scaling.py --quick           # deeplabv2_tiny, for a check in seconds

Run it alone: two jobs on two cores slow each other far more than twice.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def worker(args: argparse.Namespace) -> None:
    """One process of the job: time ``args.steps`` training steps after ``args.warmup``."""
    from dmt.engine import distributed as dist
    from dmt.engine.batches import batch_slices
    from dmt.engine.loop import FitOptions, TrainState, fit, make_sgd
    from dmt.models import create_model
    from dmt.tasks.segmentation.steps import SegmentationStep
    from dmt.tasks.training import convert_sync_bn, training_module

    dist.init_from_env("cpu")
    world, rank = dist.world_size(), dist.rank()
    torch.set_num_threads(max(1, args.threads // world))
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = convert_sync_bn(create_model(args.model, 21), True, device)
    state = TrainState(model, make_sgd(model, 1e-3, 0.9, 5e-4))
    step_fn = SegmentationStep(training_module(model, device))
    g = torch.Generator().manual_seed(1)
    images = torch.randn(args.batch, 3, args.crop, args.crop, generator=g)
    masks = torch.randint(0, 21, (args.batch, args.crop, args.crop), generator=g)
    (lo, hi), = batch_slices([args.batch], world, rank)
    batch = {"image": images[lo:hi], "mask": masks[lo:hi]}
    times = []
    total = args.warmup + args.steps
    for s in range(total):
        opts = FitOptions(total_steps=s + 1, base_lr=1e-3, schedule="constant", log_every=1, amp=args.amp)
        dist.barrier()
        t0 = time.perf_counter()
        fit(step_fn, state, [batch], opts, save=lambda st: None)
        dist.barrier()
        if s >= args.warmup:
            times.append(time.perf_counter() - t0)
    if dist.is_main():
        Path(args.result).write_text(json.dumps({"world": world, "times": times}))
    dist.shutdown()


def launch(world: int, args: argparse.Namespace, result: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world}", __file__,
           "--worker", "--result", str(result), "--model", args.model, "--crop", str(args.crop),
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads), *(["--amp"] if args.amp else [])]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // world))}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model and crops")
    p.add_argument("--worlds", default="1,2", help="process counts to compare")
    p.add_argument("--model", default="deeplabv2_resnet101")
    p.add_argument("--crop", type=int, default=321)
    p.add_argument("--batch", type=int, default=2, help="global batch (crops per step)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores shared by the processes")
    p.add_argument("--amp", action="store_true", help="bf16 autocast where the CPU supports it")
    p.add_argument("--out", default=None, help="write the results as JSON")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.model, args.crop, args.steps = "deeplabv2_tiny", 65, 5
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for world in (int(w) for w in args.worlds.split(",")):
            r = launch(world, args, Path(tmp) / f"w{world}.json")
            rows.append({"world": world, "median_s": statistics.median(r["times"]), "min_s": min(r["times"])})
    base = rows[0]["median_s"]
    print(f"{args.model}, global batch {args.batch} x {args.crop}x{args.crop}, {args.threads} cores, "
          f"{'bf16' if args.amp else 'fp32'}")
    for row in rows:
        row["speedup"] = base / row["median_s"]
        print(f"  {row['world']} process(es): median {row['median_s']:.3f} s/step, min {row['min_s']:.3f} s, "
              f"speed-up x{row['speedup']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "crop": args.crop, "batch": args.batch,
                                              "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
