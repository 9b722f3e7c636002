"""One-shot GPU measurement of DeepLab-v2/ResNet-101 at the paper's shapes (issue 8).

    PYTHONPATH=src python benchmarks/gpu.py            # on the GPU machine, < 7 minutes
    PYTHONPATH=src python benchmarks/gpu.py --dry-run  # on a CPU: tiny shapes, checks the script

Measures, each configuration in its own try/except (a failure is recorded, the rest still runs):

* training: the DMT segmentation step (dynamic weights from the training forward, 7 pseudo + 1
  labelled crops of 321x321 = batch 8 as in the voc-*-dmt presets) through the real engine
  (``dmt.engine.loop.fit``: SGD, poly schedule, no per-step host sync), in images/s and peak
  memory, for fp32 (torch defaults: cuDNN may use TF32 for convolutions), bf16 autocast, bf16 +
  channels_last, bf16 + channels_last + torch.compile in mode reduce-overhead (CUDA graphs;
  `train.compile=reduce-overhead`) and in the default mode (skipped when time runs short);
* two members side by side on the one GPU (``train.members_in_parallel``, ``dmt run --nproc 2``):
  two processes each training the bf16 + channels_last step at once, their images/s summed;
  again under NVIDIA MPS when ``nvidia-cuda-mps-control`` exists;
* the best training configuration with and without a world-size-1 DistributedDataParallel wrapper;
* inference at 505x505 (batch 8, logits upsampled, softmax) for the same configurations;
* model FLOPs per image (``torch.utils.flop_counter.FlopCounterMode``; training = forward +
  backward) and the model FLOPs utilisation against the GPU's dense bf16 peak;
* the projected wall time of a whole VOC 1/106 DMT run (voc-106-dmt step counts) with the best
  configurations: 2 baselines, 5 phases x 2 models, a labelling pass over the unlabelled set per
  phase and model, a val evaluation per stage. Data loading is not included (it runs in
  parallel workers).

Prints a JSON summary and writes it to ``$OUT/gpu.json`` when ``OUT`` is set (after every
configuration, so a timeout still leaves the finished ones).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

from dmt.config.loader import load_config  # noqa: E402
from dmt.engine.accel import apply_channels_last, to_channels_last  # noqa: E402
from dmt.engine.loop import FitOptions, TrainState, fit, make_sgd  # noqa: E402
from dmt.models import create_model  # noqa: E402
from dmt.tasks.segmentation.inference import upsampled_logits  # noqa: E402
from dmt.tasks.segmentation.steps import SegmentationStep  # noqa: E402
from dmt.tasks.stats import StatTotals  # noqa: E402

# dense bf16 tensor-core peaks (no sparsity), FLOP/s
PEAKS = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
         "RTX 4090": 165e12, "L4": 121e12}
VOC_TRAIN_AUG, VOC_VAL = 10582, 1449  # images in train_aug and val
T0 = time.monotonic()


def gpu_peak(name: str) -> float | None:
    for key, peak in PEAKS.items():
        if key.lower() in name.lower():
            return peak
    return None


def elapsed() -> float:
    return time.monotonic() - T0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
        cuda = self.device.type == "cuda"
        self.crop = 65 if args.dry_run else 321
        self.eval_side = 97 if args.dry_run else 505
        self.batch = 2 if args.dry_run else 8  # (batch - 1) pseudo + 1 labelled
        self.eval_batch = 2 if args.dry_run else 8
        self.steps = 2 if args.dry_run else args.steps
        name = torch.cuda.get_device_name(self.device) if cuda else "cpu"
        self.out: dict = {"device": name, "torch": torch.__version__, "dry_run": args.dry_run,
                          "peak_bf16_flops": gpu_peak(name) if cuda else None,
                          "shapes": {"train": [self.batch, 3, self.crop, self.crop],
                                     "eval": [self.eval_batch, 3, self.eval_side, self.eval_side]},
                          "train": {}, "inference": {}, "errors": {}}
        if cuda:
            torch.backends.cudnn.benchmark = True

    # ---- helpers ----------------------------------------------------------------------------
    def save(self) -> None:
        self.out["elapsed_s"] = round(elapsed(), 1)
        text = json.dumps(self.out, indent=1)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
            (Path(os.environ["OUT"]) / "gpu.json").write_text(text)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else None

    def model(self) -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model("deeplabv2_resnet101", num_classes=21, init="none", aspp_legacy=False).to(self.device)

    def train_batch(self) -> dict:
        g = torch.Generator().manual_seed(0)
        s, n = self.crop, self.batch
        b = {"pseudo_image": torch.randn(n - 1, 3, s, s, generator=g), "image": torch.randn(1, 3, s, s, generator=g),
             "mask": torch.randint(0, 21, (1, s, s), generator=g),
             "pseudo_mask": torch.randint(0, 21, (n - 1, s, s), generator=g),
             "pseudo_confidence": torch.rand(n - 1, s, s, generator=g)}
        return {k: v.to(self.device) for k, v in b.items()}

    def attempt(self, section: str, name: str, fn) -> None:
        try:
            self.out[section][name] = fn()
        except Exception as exc:  # keep going: one failure must not cost the other numbers
            self.out["errors"][f"{section}/{name}"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            self.reset_memory()
            self.save()
            print(f"[{elapsed():6.1f}s] {section}/{name}: {self.out[section].get(name) or self.out['errors'].get(f'{section}/{name}')}",
                  flush=True)

    # ---- training ---------------------------------------------------------------------------
    def train(self, amp: bool, channels_last: bool, compile_: bool | str = False, ddp: bool = False) -> dict:
        model = self.model()
        if channels_last:
            apply_channels_last(model)
        state = TrainState(model, make_sgd(model, 1e-3, 0.9, 5e-4))
        forward = model
        if ddp:
            from torch.nn.parallel import DistributedDataParallel
            forward = DistributedDataParallel(model, device_ids=[self.device.index or 0] if self.device.type == "cuda"
                                              else None)
        if compile_:  # True: torch's default mode; a string: that mode (as train.compile)
            forward = torch.compile(forward) if compile_ is True else torch.compile(forward, mode=compile_)
        step = SegmentationStep(forward, weighting="dynamic", gamma1=5.0, gamma2=5.0, total_steps=10**6,
                                totals=StatTotals())
        batch = self.train_batch()
        if channels_last:
            batch = to_channels_last(batch)
        warmup = 1 if self.args.dry_run else (3 if not compile_ else 4)
        total = warmup + self.steps
        opts = FitOptions(total_steps=total, base_lr=1e-3, schedule="poly", steps_per_epoch=10**9,
                          checkpoint_seconds=1e12, log_every=total, device=self.device, amp=amp,
                          description="bench train")
        self.reset_memory()
        t_compile = time.perf_counter()
        fit(step, state, [batch] * warmup, FitOptions(**{**opts.__dict__, "total_steps": warmup, "log_every": warmup}),
            save=lambda s: None)
        self.sync()
        first = time.perf_counter() - t_compile
        state.step = 0
        t0 = time.perf_counter()
        fit(step, state, [batch] * self.steps,
            FitOptions(**{**opts.__dict__, "total_steps": self.steps, "log_every": self.steps}), save=lambda s: None)
        self.sync()
        dt = time.perf_counter() - t0
        return {"images_per_s": self.steps * self.batch / dt, "s_per_step": dt / self.steps,
                "peak_gib": self.peak_gib(), "warmup_s": first, "steps": self.steps}

    # ---- inference --------------------------------------------------------------------------
    def infer(self, amp: bool, channels_last: bool, compile_: bool = False) -> dict:
        model = self.model().eval()
        if channels_last:
            apply_channels_last(model)
        forward = torch.compile(model) if compile_ else model
        x = torch.randn(self.eval_batch, 3, self.eval_side, self.eval_side, device=self.device)
        if channels_last:
            x = to_channels_last(x)
        dtype = torch.bfloat16 if amp else torch.float32
        n = 2 if self.args.dry_run else self.args.steps

        @torch.no_grad()
        def run() -> None:
            with torch.autocast(self.device.type, dtype=dtype, enabled=amp):
                upsampled_logits(forward, x).float().softmax(1).max(1)
        self.reset_memory()
        for _ in range(1 if self.args.dry_run else 3):
            run()
        self.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            run()
        self.sync()
        dt = time.perf_counter() - t0
        return {"images_per_s": n * self.eval_batch / dt, "peak_gib": self.peak_gib()}

    # ---- FLOPs ------------------------------------------------------------------------------
    def flops(self) -> dict:
        from torch.utils.flop_counter import FlopCounterMode

        model = self.model()
        out = {}
        for name, side in (("forward_321", self.crop), ("forward_505", self.eval_side)):
            x = torch.randn(1, 3, side, side, device=self.device)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                upsampled_logits(model.eval(), x)
            out[name] = counter.get_total_flops()
        out["train_per_image"] = 3 * out["forward_321"]  # forward + backward (2x forward)
        return out

    # ---- the whole run --------------------------------------------------------------------------
    def projection(self) -> dict:
        cfg = load_config("voc-106-dmt")
        labelled = math.ceil(VOC_TRAIN_AUG / 106)  # 1/106 of train_aug: 100 images
        unlabelled = VOC_TRAIN_AUG - labelled
        base_steps = math.ceil(cfg.baseline.epochs * math.ceil(labelled / cfg.baseline.batch_size))
        phase_batch = cfg.phases.batch_pseudo + cfg.phases.batch_labelled
        phase_steps = math.ceil(cfg.phases.epochs * math.ceil(unlabelled / cfg.phases.batch_pseudo))
        n_phases = len(cfg.phases.ratios)
        train_images = 2 * base_steps * cfg.baseline.batch_size + 2 * n_phases * phase_steps * phase_batch
        label_images = 2 * n_phases * unlabelled
        eval_images = (2 + 2 * n_phases) * VOC_VAL
        ok_train = {k: v for k, v in self.out["train"].items() if v and "ddp" not in k}
        ok_infer = {k: v for k, v in self.out["inference"].items() if v}
        if not ok_train or not ok_infer:
            return {"error": "no training or inference figure to project from"}
        best_t = max(ok_train, key=lambda k: ok_train[k]["images_per_s"])
        best_i = max(ok_infer, key=lambda k: ok_infer[k]["images_per_s"])
        t_train = train_images / ok_train[best_t]["images_per_s"]
        t_label = label_images / ok_infer[best_i]["images_per_s"]
        t_eval = eval_images / ok_infer[best_i]["images_per_s"]
        return {"train_config": best_t, "inference_config": best_i,
                "baseline_steps_per_model": base_steps, "phase_steps_per_model": phase_steps,
                "train_images": train_images, "label_images": label_images, "eval_images": eval_images,
                "train_min": t_train / 60, "label_min": t_label / 60, "eval_min": t_eval / 60,
                "total_min": (t_train + t_label + t_eval) / 60,
                "note": "compute only: data loading in parallel workers, start-up and checkpoints excluded"}

    def mfu(self) -> dict:
        peak, f = self.out["peak_bf16_flops"], self.out.get("flops")
        if not peak or not f:
            return {}
        out = {}
        for k, v in self.out["train"].items():
            if v:
                out[f"train/{k}"] = v["images_per_s"] * f["train_per_image"] / peak
        for k, v in self.out["inference"].items():
            if v:
                out[f"inference/{k}"] = v["images_per_s"] * f["forward_505"] / peak
        return out


def side_by_side(args: argparse.Namespace, mps: bool) -> dict:
    """Two processes training the same step at once on one GPU (members side by side): summed images/s."""
    import subprocess

    if mps:
        subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True)
    try:
        cmd = [sys.executable, __file__, "--member-child", "--steps", str(args.steps), *(["--dry-run"] if args.dry_run else [])]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        members = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    finally:
        if mps:
            subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True)
    return {"images_per_s": sum(m["images_per_s"] for m in members), "members": members,
            "peak_gib_each": [m["peak_gib"] for m in members]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, 2 iterations: check the script")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (and inference batches) per config")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds; later optional configs are skipped")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    parser.add_argument("--member-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    b = Bench(args)
    if args.member_child:  # one of two members side by side: its own images/s, as JSON
        print(json.dumps(b.train(True, True)), flush=True)
        return 0
    print(f"device {b.out['device']}, torch {torch.__version__}", flush=True)
    configs = [("fp32", False, False), ("bf16", True, False), ("bf16+channels_last", True, True)]
    for name, amp, cl in configs:
        b.attempt("train", name, lambda: b.train(amp, cl))
    for name, amp, cl in configs:
        b.attempt("inference", name, lambda: b.infer(amp, cl))
    try:
        b.out["flops"] = b.flops()
    except Exception as exc:
        b.out["errors"]["flops"] = f"{type(exc).__name__}: {exc}"
    b.save()

    # DDP with one process: the cost of the wrapper (the distributed path's overhead)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    try:
        import torch.distributed as dist

        dist.init_process_group("nccl" if b.device.type == "cuda" else "gloo", rank=0, world_size=1)
        b.attempt("train", "bf16+channels_last+ddp1", lambda: b.train(True, True, ddp=True))
        b.attempt("train", "bf16+channels_last (again, beside ddp)", lambda: b.train(True, True))
        dist.destroy_process_group()
    except Exception as exc:
        b.out["errors"]["ddp"] = f"{type(exc).__name__}: {exc}"

    b.attempt("train", "two members side by side (2 processes, one GPU)", lambda: side_by_side(args, mps=False))
    if shutil.which("nvidia-cuda-mps-control") and b.device.type == "cuda":
        b.attempt("train", "two members side by side under MPS", lambda: side_by_side(args, mps=True))

    compile_ok = not args.no_compile and (not args.dry_run or os.environ.get("DMT_DRY_COMPILE"))
    # CUDA graphs (train.compile=reduce-overhead) first: the step is bound by the host issuing
    # kernels, which graph replay removes; then torch's default mode (fused kernels only)
    if compile_ok and elapsed() < args.budget * 0.4:
        b.attempt("train", "bf16+channels_last+compile(reduce-overhead)",
                  lambda: b.train(True, True, compile_="reduce-overhead"))
    else:
        b.out["errors"]["train/compile(reduce-overhead)"] = "skipped (time budget or --no-compile)"
    if compile_ok and elapsed() < args.budget * 0.55:
        b.attempt("train", "bf16+channels_last+compile", lambda: b.train(True, True, compile_=True))
    else:
        b.out["errors"]["train/compile"] = "skipped (time budget or --no-compile)"
    if compile_ok and elapsed() < args.budget * 0.75:
        b.attempt("inference", "bf16+channels_last+compile", lambda: b.infer(True, True, compile_=True))

    b.out["mfu"] = b.mfu()
    try:
        b.out["projection_voc_106_dmt"] = b.projection()
    except Exception as exc:
        b.out["errors"]["projection"] = f"{type(exc).__name__}: {exc}"
    bf16 = b.out["train"].get("bf16+channels_last") or b.out["train"].get("bf16") or {}
    b.out["memory_goal_6gb"] = {"peak_gib": bf16.get("peak_gib"),
                                "met": None if bf16.get("peak_gib") is None else bf16["peak_gib"] * 2**30 < 6e9}
    b.save()
    print(json.dumps(b.out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
