"""One member process of ``benchmarks/run_parts.py``: times the parts of a DMT run, one JSON line each.

    python benchmarks/parts_member.py seg --data VOC --parts train_pair,label,eval,loader,checkpoint
    python benchmarks/parts_member.py vit --model dinov2_vitb14_dpt
    python benchmarks/parts_member.py compile --model deeplab|vitb

``seg`` runs the parts of a DeepLab-v2 VOC 1/106 DMT run (voc-106-dmt) with the library's own code
on a fabricated VOC tree: ``train_pair`` the phase step at 7 + 1 crops (``timed_fit``); ``label``
``label_images`` over the unlabelled images at their own size (padded as eval_pad), written into
a ``PseudoLabelStore`` as the runner does; ``eval`` ``evaluate_segmentation`` over val; ``loader``
the phase's two ``step_loader`` streams (JPEG decode, the preset's v2 train transforms, the
thresholded pseudo labels read back from that store) with the preset's ``data.num_workers`` and
with this member's share of the machine's cores; ``checkpoint`` ``save_checkpoint`` of the trained
state (model + SGD momentum) and ``save_model``'s model file. ``vit`` times one DINOv2 / DINOv3 phase
step of the DINOv2 presets (518 crops, 1 + 7, bf16, activation checkpointing as the preset says,
random weights: nothing is downloaded); ``compile`` times a step eager, then with
``train.compile=reduce-overhead``. ``--rank`` / ``--members`` / ``--barrier``: a member of a pair
waits for the other at each part, so both time the same part at once. Run by run_parts.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

from parts_common import SEG_PRESET, VIT_PRESET, barrier, peak_gib, reset_peak, shapes, step_batch, sync, \
    timed_fit  # noqa: E402

from dmt.config.loader import load_config  # noqa: E402
from dmt.models import create_model  # noqa: E402
from dmt.tasks.training import stage_optimizer  # noqa: E402

SEG_PARTS = ("train_pair", "label", "eval", "loader", "checkpoint")


def emit(part: str, result: dict) -> None:
    print(json.dumps({"part": part, **result}), flush=True)


class SegMember:
    """The parts of one DeepLab-v2 member; they share the model, its trained state and the label store."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        from dmt.data.transforms import seg_eval_transform, seg_train_transform
        from dmt.data.voc import voc_source

        self.args, self.device, self.s = args, device, shapes(args.dry_run)
        # under --dry-run one worker per loader: the CPU's two cores run both members
        self.cfg = load_config(SEG_PRESET, ["data.num_workers=1"] if args.dry_run else None)
        d, s = self.cfg.data, self.s
        self.source = voc_source(args.data)
        fill = (0.0, 0.0, 0.0)  # data.pad_fill: black, as the preset
        crop = (s.seg_crop, s.seg_crop)
        self.train_tf = seg_train_transform(crop, tuple(d.scale_range), fill=fill)
        self.eval_tf = seg_eval_transform(s.eval_pad or tuple(d.eval_pad), fill=fill)
        train = self.source.items("train_aug")
        self.labelled, self.unlabelled = train[: s.labelled], train[s.labelled:]
        self.val = self.source.items("val")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"dmt-parts-{args.rank}-", dir=getattr(args, "work", None)))
        self.state = None
        torch.manual_seed(args.rank)
        self.model = create_model(s.deeplab, num_classes=21, **({} if args.dry_run else
                                                                 {"init": "none", "aspp_legacy": False})).to(device)

    def close(self) -> None:
        """Remove this member's label store and checkpoint files."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def dataset(self, items, train: bool, **kw):
        from dmt.data.segmentation import SegmentationDataset

        return SegmentationDataset(items, self.source, self.train_tf if train else self.eval_tf, **kw)

    def train_pair(self) -> dict:
        pc = self.cfg.phases
        out, self.state = timed_fit(self.model, stage_optimizer(self.model, pc, "phases"),
                                    step_batch(self.s.seg_crop, pc.batch_labelled, pc.batch_pseudo if not self.args.dry_run
                                               else 1), self.cfg, self.device, self.s.steps, dry_run=self.args.dry_run)
        return out

    def _channels_last(self) -> bool:
        from dmt.engine.accel import use_channels_last

        return use_channels_last(self.device, self.cfg.train.channels_last)

    def label(self) -> dict:
        from dmt.data.labels import PseudoLabelStore
        from dmt.tasks.segmentation.labelling import label_images

        c, store = self.cfg, PseudoLabelStore(self.tmp / "labels")

        def one_pass(items) -> int:
            n = 0
            for name, classes, confidence in label_images(
                    self.model, self.dataset(items, False, with_mask=False), c.eval.batch_size, self.device, c.amp,
                    c.data.num_workers, "label", channels_last=self._channels_last(), max_side=c.eval.max_side):
                store.write(name, classes, confidence)
                n += 1
            return n
        one_pass(self.unlabelled[: c.eval.batch_size])  # warm-up: cuDNN's algorithm search for the shape
        sync(self.device)
        reset_peak(self.device)
        t0 = time.perf_counter()
        n = one_pass(self.unlabelled)  # worker start-up included, as in every real pass
        dt = time.perf_counter() - t0
        return {"images_per_s": round(n / dt, 2), "images": n, "seconds": round(dt, 2),
                "batch": c.eval.batch_size, "num_workers": c.data.num_workers, "peak_gib": peak_gib(self.device)}

    def eval(self) -> dict:
        from dmt.tasks.segmentation.inference import evaluate_segmentation

        c = self.cfg

        def one_pass(items) -> dict:
            return evaluate_segmentation(self.model, self.dataset(items, False), 21, c.eval.batch_size, self.device,
                                         c.amp, c.data.num_workers, "eval", channels_last=self._channels_last(),
                                         max_side=c.eval.max_side)
        one_pass(self.val[: c.eval.batch_size])
        sync(self.device)
        reset_peak(self.device)
        t0 = time.perf_counter()
        scores = one_pass(self.val)
        dt = time.perf_counter() - t0
        return {"images_per_s": round(len(self.val) / dt, 2), "images": len(self.val), "seconds": round(dt, 2),
                "miou_random_weights": round(scores["miou"], 4), "peak_gib": peak_gib(self.device)}

    def loader(self) -> dict:
        from dmt.data.labels import PseudoLabelStore
        from dmt.data.segmentation import collate_segmentation
        from dmt.engine.batches import step_loader
        from dmt.tasks.segmentation.labelling import ThresholdedLabels

        pc, out = self.cfg.phases, {}
        store = PseudoLabelStore(self.tmp / "labels")
        if len(store.names()) < len(self.unlabelled):  # the label part did not run: label maps of zeros
            from PIL import Image

            for it in self.unlabelled:
                with Image.open(it.image) as im:
                    size = im.size[::-1]  # (height, width): odd items are one pixel wider
                store.write(it.name, torch.zeros(size, dtype=torch.uint8), torch.ones(size, dtype=torch.float16))
        pseudo = self.dataset(self.unlabelled, True, targets=ThresholdedLabels(store, torch.zeros(21)))
        labelled = self.dataset(self.labelled, True)
        cores = max(1, (os.cpu_count() or 1) // self.args.members)
        steps = self.s.loader_steps
        for key, workers in (("preset_workers", self.cfg.data.num_workers), ("core_share_workers", cores)):
            pin = self.device.type == "cuda"
            t0 = time.perf_counter()
            p = step_loader(pseudo, pc.batch_pseudo, 1, 0, steps, num_workers=workers,
                            collate_fn=collate_segmentation, pin_memory=pin)
            lab = step_loader(labelled, pc.batch_labelled, 2, 0, steps, num_workers=workers,
                              collate_fn=collate_segmentation, pin_memory=pin)
            n, first = 0, None
            for pb, lb in zip(p, lab):  # as the runner's phase batches: both streams, step by step
                n += len(pb["image"]) + len(lb["image"])
                if first is None:  # workers' start-up: once per stage, not per step
                    first, n = time.perf_counter(), 0
            dt = time.perf_counter() - first
            out[key] = {"num_workers": workers, "images_per_s": round(n / max(dt, 1e-9), 2),
                        "first_batch_s": round(first - t0, 2), "images": n}
        best = max(out.values(), key=lambda r: r["images_per_s"])
        return {**out, "images_per_s": out["preset_workers"]["images_per_s"], "best_images_per_s": best["images_per_s"]}

    def checkpoint(self) -> dict:
        from dmt.engine.checkpoint import save_checkpoint
        from dmt.models.files import save_model

        if self.state is None:
            from dmt.engine.loop import TrainState

            self.state = TrainState(self.model, stage_optimizer(self.model, self.cfg.phases, "phases"))
        times = []
        for i in range(3):
            sync(self.device)
            t0 = time.perf_counter()
            save_checkpoint(self.tmp / "state.safetensors", self.state.state_dict())
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        save_model(self.tmp / "model.safetensors", self.model, name=self.s.deeplab, num_classes=21, kwargs={})
        model_s = time.perf_counter() - t0
        return {"state_write_s": round(sorted(times)[1], 3), "model_write_s": round(model_s, 3),
                "state_mib": round((self.tmp / "state.safetensors").stat().st_size / 2**20, 1),
                "model_mib": round((self.tmp / "model.safetensors").stat().st_size / 2**20, 1)}


def vit_step(args: argparse.Namespace, device: torch.device, name: str, compile_mode: str | bool = False) -> dict:
    """One DINOv2-preset phase step of ``name`` (random weights) at the preset's crop and batch."""
    from dmt.bench.items import dinov2_model

    s, cfg = shapes(args.dry_run), load_config(VIT_PRESET)
    pc = cfg.phases
    model = dinov2_model(cfg.model.grad_checkpointing, s.vits.get(name, name), 21)()
    batch = step_batch(s.vit_crop, pc.batch_labelled, pc.batch_pseudo if not args.dry_run else 1)
    out, _ = timed_fit(model, stage_optimizer(model, pc, "phases"), batch, cfg, device, s.steps, compile_mode,
                       args.dry_run)
    return {"model": name, "crop": s.vit_crop, "grad_checkpointing": cfg.model.grad_checkpointing, **out}


def deeplab_step(args: argparse.Namespace, device: torch.device, compile_mode: str | bool = False) -> dict:
    s, cfg = shapes(args.dry_run), load_config(SEG_PRESET)
    torch.manual_seed(0)
    model = create_model(s.deeplab, num_classes=21, **({} if args.dry_run else {"init": "none", "aspp_legacy": False}))
    pc = cfg.phases
    batch = step_batch(s.seg_crop, pc.batch_labelled, pc.batch_pseudo if not args.dry_run else 1)
    out, _ = timed_fit(model, stage_optimizer(model, pc, "phases"), batch, cfg, device, s.steps, compile_mode,
                       args.dry_run)
    return {"model": s.deeplab, **out}


def attempt(part: str, fn) -> None:
    try:
        emit(part, fn())
    except Exception as exc:  # one failed part must not cost the others
        traceback.print_exc()
        emit(part, {"error": f"{type(exc).__name__}: {exc}"[:400]})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("seg", "vit", "compile"))
    p.add_argument("--data", help="the fabricated VOC folder (seg)")
    p.add_argument("--parts", default=",".join(SEG_PARTS))
    p.add_argument("--model", default="dinov2_vitb14_dpt")
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--barrier", default=None)
    p.add_argument("--work", default=None, help="folder for the label store and checkpoints (default: the system's)")
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(1)  # two members share the CPU
    if args.what == "seg":
        parts = [q for q in args.parts.split(",") if q in SEG_PARTS]
        try:
            member = SegMember(args, device)
        except Exception as exc:  # every part fails; the other member of a pair must not wait for this one
            traceback.print_exc()
            for part in parts:
                if args.barrier:
                    Path(args.barrier, f"{part}.{args.rank}").touch()
                emit(part, {"error": f"set-up: {type(exc).__name__}: {exc}"[:400]})
            return 1
        for part in parts:
            barrier(args.barrier, part, args.rank, args.members)
            attempt(part, getattr(member, part))
            reset_peak(device)
        member.close()
    elif args.what == "vit":
        barrier(args.barrier, "vit", args.rank, args.members)
        attempt("vit", lambda: vit_step(args, device, args.model))
    else:
        make = (lambda mode: deeplab_step(args, device, mode)) if args.model == "deeplab" else \
            (lambda mode: vit_step(args, device, "dinov2_vitb14_dpt", mode))
        attempt(f"compile/{args.model}/eager", lambda: make(False))
        reset_peak(device)
        attempt(f"compile/{args.model}/reduce-overhead", lambda: make("reduce-overhead"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
