"""The benchmark items: each builds its variants (plain first) and measures them in one run.

"plain" is our own code in its reference configuration: float32, contiguous layout, no
compilation, a host synchronisation per step (finite-loss check and per-step ``float()`` of every
scalar), and for labelling the original implementation's scheme (two inference passes, thresholds
from a 1/16 pixel subsample, float32 confidences kept in memory). The other variants switch one
optimisation on at a time, then all defaults together ("dmt").
"""

from __future__ import annotations

import contextlib
import logging
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

from dmt.bench.harness import Variant, measure, measure_in_processes
from dmt.engine.accel import apply_channels_last, autocast_dtype, to_channels_last
from dmt.engine.loop import FitOptions, TrainState, fit, make_ema, make_sgd
from dmt.models import create_model

ItemFn = Callable[[bool, torch.device], dict[str, Any]]
ITEMS: dict[str, ItemFn] = {}


def item(name: str) -> Callable[[ItemFn], ItemFn]:
    def wrap(fn: ItemFn) -> ItemFn:
        ITEMS[name] = fn
        return fn
    return wrap


@contextlib.contextmanager
def quiet() -> Any:
    """Silence the engine's progress lines while an item runs."""
    logger = logging.getLogger("dmt")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---- training steps through the real engine ----------------------------------------------------
def _synced(step_fn: Callable) -> Callable:
    """The plain loop's behaviour: check the loss and read every scalar on every step."""
    def run(batch: Any, step: int) -> dict[str, Any]:
        out = step_fn(batch, step)
        if not torch.isfinite(out["loss"]):
            raise FloatingPointError("non-finite loss")
        for v in out.values():
            float(v.detach() if isinstance(v, torch.Tensor) else v)
        return out
    return run


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return make_sgd(model, 0.01, 0.9, 5e-4)


def _training(make_model: Callable[[], nn.Module], make_step: Callable[[nn.Module], Callable],
              device: torch.device, *, channels_last: bool, sync: bool,
              make_opt: Callable[[nn.Module], torch.optim.Optimizer] = _sgd,
              ema: bool = True) -> tuple[TrainState, Callable]:
    """A fresh model's training state (SGD + EMA, as in a phase, unless told) and its step function."""
    model = make_model().to(device)
    state = TrainState(model, make_opt(model), make_ema(model, 0.999) if ema else None)
    if channels_last:
        apply_channels_last(model)
        if state.ema is not None:
            apply_channels_last(state.ema.module)
    step_fn = make_step(model)
    return state, _synced(step_fn) if sync else step_fn


def _fit_options(name: str, steps: int, device: torch.device, *, amp: bool | str, channels_last: bool) -> FitOptions:
    """``fit`` options for ``steps`` steps with no checkpoint and one log at the end."""
    return FitOptions(total_steps=steps, base_lr=0.01, steps_per_epoch=10**9, checkpoint_seconds=1e12,
                      log_every=steps, device=device, amp=amp, channels_last=channels_last, description=name)


def _fit_variant(name: str, make_model: Callable[[], nn.Module], make_step: Callable[[nn.Module], Callable],
                 batch: Any, device: torch.device, *, amp: bool, channels_last: bool, sync: bool,
                 steps: int = 1, plain: bool = False, **training: Any) -> Variant:
    """A variant that runs ``steps`` training steps of ``fit`` (SGD + EMA, as in a phase, unless
    ``training`` says otherwise: see :func:`_training`)."""
    built: dict[str, Any] = {}

    def prepare() -> None:
        state, step_fn = _training(make_model, make_step, device, channels_last=channels_last, sync=sync,
                                   **training)
        built.update(state=state, step_fn=step_fn)
    opts = _fit_options(name, steps, device, amp=amp, channels_last=channels_last)

    def run() -> None:
        built["state"].step = 0
        fit(built["step_fn"], built["state"], [batch] * steps, opts, save=lambda s: None)
    return Variant(name, run, plain=plain, prepare=prepare)


def _step_variants(quick: bool, device: torch.device, make_model, make_step, batch) -> list[Variant]:
    v = [_fit_variant("plain", make_model, make_step, batch, device, amp=False, channels_last=False, sync=True,
                      plain=True)]
    if not quick:
        v.append(_fit_variant("no host sync", make_model, make_step, batch, device, amp=False,
                              channels_last=False, sync=False))
        v.append(_fit_variant("channels_last", make_model, make_step, batch, device, amp=False,
                              channels_last=True, sync=False))
        if autocast_dtype(device, "auto") is not None:
            v.append(_fit_variant("amp", make_model, make_step, batch, device, amp=True, channels_last=False,
                                  sync=False))
    v.append(_fit_variant("dmt (defaults)", make_model, make_step, batch, device, amp="auto", channels_last=True,
                          sync=False))
    return v


def _cls_case() -> tuple[Callable[[], nn.Module], Callable[[nn.Module], Callable], dict[str, torch.Tensor]]:
    """(model factory, step factory, batch) of the WRN-28-2 DMT step."""
    from dmt.tasks.classification.steps import DynamicMixupStep
    from dmt.tasks.stats import StatTotals

    g = torch.Generator().manual_seed(0)
    batch = {"pseudo_images": torch.randn(56, 3, 32, 32, generator=g),
             "pseudo_probs": torch.rand(56, 10, generator=g).softmax(1),
             "labelled_images": torch.randn(8, 3, 32, 32, generator=g),
             "labels": torch.randint(0, 10, (8,), generator=g)}

    def make_model() -> nn.Module:
        torch.manual_seed(0)
        return create_model("wrn_28_2", num_classes=10)

    def make_step(model: nn.Module) -> Callable:
        return DynamicMixupStep(model, gamma1=4.0, gamma2=4.0, ramp=True, total_steps=100, alpha=0.75, seed=0,
                                totals=StatTotals())
    return make_model, make_step, batch


def cls_dmt_step_variants(quick: bool, device: torch.device) -> list[Variant]:
    return _step_variants(quick, device, *_cls_case())


@item("cls_dmt_step")
def cls_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """WRN-28-2 DMT step: batch 64 (56 pseudo + 8 labelled), weight pass on un-mixed images + mixup."""
    return {"what": "WRN-28-2 DMT step, batch 64 (56 pseudo + 8 labelled), mixup + weight pass",
            "rows": _isolated("cls_dmt_step", cls_dmt_step_variants(quick, device), 2 if quick else 6, str(device),
                              quick)}


def _seg_batch(side: int, classes: int = 21) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"pseudo_image": torch.randn(1, 3, side, side, generator=g), "image": torch.randn(1, 3, side, side, generator=g),
            "mask": torch.randint(0, classes, (1, side, side), generator=g),
            "pseudo_mask": torch.randint(0, classes, (1, side, side), generator=g),
            "pseudo_confidence": torch.rand(1, side, side, generator=g)}


def _deeplab() -> nn.Module:
    torch.manual_seed(0)
    return create_model("deeplabv2_resnet101", num_classes=21, init="none")


def _seg_step(model: nn.Module) -> Callable:
    from dmt.tasks.segmentation.steps import SegmentationStep
    from dmt.tasks.stats import StatTotals

    return SegmentationStep(model, weighting="dynamic", gamma1=5.0, gamma2=5.0, ramp=False, total_steps=100,
                            totals=StatTotals())


def seg_dmt_step_variants(quick: bool, device: torch.device) -> list[Variant]:
    return _step_variants(quick, device, _deeplab, _seg_step, _seg_batch(161 if quick else 321))


@item("seg_dmt_step")
def seg_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """DeepLab-v2/ResNet-101 DMT step, 1 pseudo + 1 labelled crop (321x321; --quick: 161x161)."""
    side = 161 if quick else 321
    return {"what": f"DeepLab-v2/ResNet-101 DMT step, 2 x {side}x{side}",
            "rows": _isolated("seg_dmt_step", seg_dmt_step_variants(quick, device), 1 if quick else 4, str(device),
                              quick)}


def dinov2_model(checkpointing: bool, name: str = "dinov2_vitb14_dpt",
                 classes: int = 21) -> Callable[[], nn.Module]:
    """A factory of the DINOv2 DPT model (random weights), with or without activation checkpointing."""
    def make() -> nn.Module:
        torch.manual_seed(0)
        model = create_model(name, num_classes=classes)
        model.set_grad_checkpointing(checkpointing)
        return model
    return make


def dinov2_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The DINOv2 presets' optimizer: AdamW, encoder lr 5e-6, head 40x, weight decay 0.01."""
    from dmt.engine.optim import make_optimizer

    return make_optimizer(model, "adamw", 5e-6, weight_decay=0.01, lr_mult={"head": 40.0})


def dinov2_dmt_step_variants(quick: bool, device: torch.device, name: str = "dinov2_vitb14_dpt") -> list[Variant]:
    """plain (float32, a host sync per step), activation checkpointing, the defaults, and both."""
    side = 112 if quick else 224
    batch = _seg_batch(side)
    kw = {"make_opt": dinov2_optimizer, "ema": False}  # the presets' phases: AdamW, no EMA
    v = [_fit_variant("plain", dinov2_model(False, name), _seg_step, batch, device, amp=False, channels_last=False,
                      sync=True, plain=True, **kw)]
    if not quick:
        v.append(_fit_variant("grad checkpointing", dinov2_model(True, name), _seg_step, batch, device, amp=False,
                              channels_last=False, sync=False, **kw))
    v.append(_fit_variant("dmt (defaults)", dinov2_model(False, name), _seg_step, batch, device, amp="auto",
                          channels_last=True, sync=False, **kw))
    v.append(_fit_variant("dmt (defaults) + grad checkpointing", dinov2_model(True, name), _seg_step, batch, device,
                          amp="auto", channels_last=True, sync=False, **kw))
    return v


@item("dinov2_dmt_step")
def dinov2_dmt_step(quick: bool, device: torch.device) -> dict[str, Any]:
    """DINOv2 ViT-B/14 + DPT DMT step, 1 pseudo + 1 labelled crop (224x224; --quick: 112x112), AdamW groups."""
    side = 112 if quick else 224
    return {"what": f"DINOv2 ViT-B/14 + DPT DMT step, 2 x {side}x{side}, AdamW (encoder / head x40)",
            "rows": _isolated("dinov2_dmt_step", dinov2_dmt_step_variants(quick, device), 1 if quick else 4,
                              str(device), quick)}


def seg_inference_variants(quick: bool, device: torch.device) -> list[Variant]:
    from dmt.tasks.segmentation.inference import upsampled_logits

    side = 321 if quick else 505
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device)

    def variant(name: str, amp: Any, cl: bool, plain: bool = False) -> Variant:
        built: dict[str, Any] = {}
        dtype = autocast_dtype(device, amp)

        def prepare() -> None:
            model = _deeplab().to(device).eval()
            if cl:
                apply_channels_last(model)
            built.update(model=model, x=to_channels_last(x) if cl else x)

        @torch.no_grad()
        def run() -> None:
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                upsampled_logits(built["model"], built["x"]).float().softmax(1)
        return Variant(name, run, plain=plain, prepare=prepare)
    return [variant("plain", False, False, True), variant("dmt (defaults)", "auto", True)]


@item("seg_inference")
def seg_inference(quick: bool, device: torch.device) -> dict[str, Any]:
    """DeepLab-v2/ResNet-101 inference on one 505x505 image (--quick: 321x321), logits upsampled."""
    return {"what": f"DeepLab-v2/ResNet-101 inference, 1 x {321 if quick else 505}x{321 if quick else 505}",
            "rows": _isolated("seg_inference", seg_inference_variants(quick, device), 2 if quick else 4, str(device),
                              quick)}


# ---- labelling ---------------------------------------------------------------------------------
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


def _isolated(item_name: str, variants: list[Variant], repeats: int, arg: str, quick: bool) -> list[dict]:
    """The item's variants timed each in processes of its own (see :func:`measure_in_processes`)."""
    plain = next((v.name for v in variants if v.plain), None)
    return measure_in_processes(f"dmt.bench.items:{item_name}_variants", [v.name for v in variants], plain, repeats,
                                arg, quick, rounds=1 if quick else 2)


@item("labelling")
def labelling(quick: bool, device: torch.device) -> dict[str, Any]:
    """Class-balanced labelling of 64 images of 505x505 (--quick: 16) with a 1x1-conv stand-in network.

    Each variant runs in processes of its own (times and the peak of its first run there).
    """
    tmp = Path(tempfile.mkdtemp(prefix="dmt-bench-labels-"))
    n = 16 if quick else 64
    try:
        rows = measure_in_processes("dmt.bench.items:labelling_variants", ["plain", "dmt", "dmt-amp"], "plain",
                                    2 if quick else 4, str(tmp), quick, rounds=1 if quick else 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows[0]["variant"] = "plain (original two-pass, float32)"
    rows[1]["variant"] = "dmt, float32"
    rows[2]["variant"] = "dmt defaults (amp auto)"
    return {"what": f"labelling {n} images of 505x505, 1x1-conv stand-in, CPU", "rows": rows}


@item("step_ops")
def step_ops(quick: bool, device: torch.device) -> dict[str, Any]:
    """Operator calls per DMT step by part (host work, what bounds a GPU step): plain vs defaults.

    Counted on the CPU (the same Python code issues the same calls on a GPU) at small inputs:
    counts do not depend on image size. See :mod:`dmt.bench.host_ops`.
    """
    from dmt.bench.host_ops import step_op_counts

    rows = []
    for label, (make_model, make_step, batch) in (("WRN-28-2", _cls_case()),
                                                  ("DeepLab-v2", (_deeplab, _seg_step, _seg_batch(33)))):
        for variant, amp, channels_last, sync in (("plain", False, False, True), ("dmt (defaults)", "auto", True, False)):
            cpu = torch.device("cpu")
            state, step_fn = _training(make_model, make_step, cpu, channels_last=channels_last, sync=sync)
            counts = step_op_counts(state, step_fn, batch, _fit_options(variant, 3, cpu, amp=amp,
                                                                        channels_last=channels_last))
            rows.append({"variant": f"{label} {variant}", **{f"ops_{k}": v for k, v in counts.items()}})
    return {"what": "operator calls per DMT step by part (the optimizer as on CUDA: foreach SGD)", "rows": rows}


# ---- data and whole pipeline -------------------------------------------------------------------
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
            Image.fromarray(img).save(base / "JPEGImages" / f"{name}.jpg", quality=90)
            Image.fromarray(((xx // 50 + yy // 50) % 21).astype(np.uint8)).save(base / "SegmentationClassAug" / f"{name}.png")
        (base / "ImageSets/Segmentation/train_aug.txt").write_text("\n".join(names) + "\n")
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
        "def hwm():\n"
        "    with open('/proc/self/status') as f:\n"
        "        kb = next(l.split()[1] for l in f if l.startswith('VmHWM:'))\n"
        "    print('bench-peak-kib', kb, file=sys.stderr)\n"
        "atexit.register(hwm)\n"
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
