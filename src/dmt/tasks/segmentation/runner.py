"""Segmentation DMT: baselines, class-balanced labelling, (mutual) phases and oracle.

Per phase, the teacher labels every unlabelled image once; its class (uint8) and confidence
(float16) maps go to ``stages/<phase>/labels``. Per-class thresholds then keep the ``ratio``
most confident pixels of each predicted class, counted exactly from a histogram of the stored
values, and the student trains on labelled + pseudo-labelled crops with the method's weights.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmt.atomic import write_text
from dmt.config.schema import TrainConfig
from dmt.config.validate import check_window
from dmt.data.labels import PseudoLabelStore, histogram_of_store
from dmt.data.segmentation import SegItem, SegmentationDataset, collate_segmentation
from dmt.data.transforms import seg_eval_transform, seg_train_transform
from dmt.engine.batches import mix_seed, step_loader, steps_per_epoch
from dmt.engine.checkpoint import load_checkpoint
from dmt.engine.loop import TrainState, make_ema
from dmt.engine.sharding import shard_items, stream_slices, zip_streams
from dmt.errors import UserError
from dmt.method.thresholds import class_balanced_thresholds
from dmt.models import create_model, smoke_standin
from dmt.models.files import load_model, save_model
from dmt.tasks.context import StageContext, total_steps
from dmt.tasks.plan import Stage, member_init, member_model, members, name_config_key
from dmt.tasks.segmentation.data import load_segmentation_data, pad_colour
from dmt.tasks.segmentation.inference import evaluate_segmentation
from dmt.tasks.segmentation.labelling import ThresholdedLabels, label_images
from dmt.tasks.segmentation.panels import segmentation_stage_end
from dmt.tasks.segmentation.val_scenes import store_val_predictions
from dmt.tasks.segmentation.steps import SegmentationStep
from dmt.tasks.stats import StatTotals
from dmt.tasks.training import convert_sync_bn, reduce_totals, stage_optimizer, sync_from_main, train_stage

log = logging.getLogger("dmt")

MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
SELECTED_ON_VAL = ("model selected on the evaluation set (eval.select: val, the original protocol): "
                   "the scores are not held-out numbers")
WEIGHTING = {"dmt": "dynamic", "dst": "dynamic", "cbst": "dynamic", "naive": "confidence", "flip": "flip",
             "online": "online", "baseline": "dynamic"}


class SegmentationRunner:
    """Runs the stages of a segmentation plan."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx, self.cfg = ctx, ctx.cfg
        self.data = load_segmentation_data(self.cfg, ctx.run.splits_dir(), members(self.cfg), ctx.processes)
        src, d = self.data.source, self.cfg.data
        self.num_classes = src.num_classes
        fill = pad_colour(self.cfg, src)  # data.pad_fill: the mean colour, or black as the original
        self.train_tf = seg_train_transform(tuple(d.crop_size), tuple(d.scale_range), fill=fill)
        self.eval_tf = seg_eval_transform(tuple(d.eval_pad) if d.eval_pad else None, fill=fill)
        check_window(self.cfg.eval.window, self.cfg.eval.stride)  # before any training, not at the first eval
        self._pseudo_targets: ThresholdedLabels | None = None  # the running phase's, for its sample pictures

    # ---- models -----------------------------------------------------------------------------
    def _network(self, member: str) -> tuple[str, dict[str, Any]]:
        """The registered model a member trains and its factory arguments (model B may differ).

        ``--smoke`` trains a large model (DeepLab's ResNet-101, a foundation encoder) as its tiny
        stand-in, from random weights (the pre-flight has loaded the weights file into the real
        architecture and warned about a missing one). The stand-in is told the ``init`` all the same,
        because the init picks the input convention (COCO's caffe BGR 0-255 against ImageNet's), so
        the smoke feeds its model as the real run will.
        """
        name, kwargs = member_model(self.cfg, member)
        _, init, weights = member_init(self.cfg, member)
        if self.cfg.smoke and smoke_standin(name) != name:
            return smoke_standin(name), ({} if init == "none" else
                                         {"init": init, "weights_path": None, "strict_weights": False})
        if init != "none":  # the weights of init none (a preset's "hub") are not read
            # --smoke runs anywhere: missing pretrained files become a warning and random init
            kwargs.update(init=init, weights_path=weights, strict_weights=not self.cfg.smoke)
        return name, kwargs

    def _new_model(self, member: str, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        name, kwargs = self._network(member)
        if name != member_model(self.cfg, member)[0]:
            log.warning("--smoke: %s trains as %s, its tiny stand-in of the same code (random weights)",
                        member_model(self.cfg, member)[0], name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = create_model(name, self.num_classes, **kwargs)
        if name != member_model(self.cfg, member)[0]:
            caught = []  # the stand-in has no weights file by design; the pre-flight named the real one's
        key = member_init(self.cfg, member)[0]
        for w in caught:
            log.warning("%s", name_config_key(str(w.message), key))  # the config key, not the factory's
        return self._prepared(model)

    def _prepared(self, model: torch.nn.Module) -> torch.nn.Module:
        """On the device, with SyncBatchNorm when several processes share each batch, and the
        encoder's activation checkpointing when ``model.grad_checkpointing`` asks for it."""
        if self.cfg.model.grad_checkpointing:
            if not hasattr(model, "set_grad_checkpointing"):
                raise UserError(f"config key 'model.grad_checkpointing': {type(model).__name__} has no activation "
                                "checkpointing (the DINOv2 / DINOv3 models have); set it to false")
            model.set_grad_checkpointing(True)
        sync = self.cfg.model.sync_bn if self.cfg.model.sync_bn is not None else True
        return convert_sync_bn(model, sync, self.ctx.device, self.ctx.processes).to(self.ctx.device)

    def _save(self, path: Path, model: torch.nn.Module, member: str, info: dict[str, Any]) -> None:
        """A member's model file: its own network name and factory arguments (model B may differ)."""
        name, kwargs = self._network(member)
        save_model(path, model, name=name, num_classes=self.num_classes, kwargs=kwargs, info=info)

    def _model_path(self, stage: str) -> Path:
        return self.ctx.run.stage_dir(stage) / MODEL_FILE

    def _dataset(self, items: list[SegItem], train: bool, **kw: Any) -> SegmentationDataset:
        return SegmentationDataset(items, self.data.source, self.train_tf if train else self.eval_tf, **kw)

    def _evaluate(self, model: torch.nn.Module, items: list[SegItem], what: str) -> dict[str, Any]:
        """Scores over ``items``; each process predicts its share, the confusion matrices add up."""
        c = self.cfg
        mine = shard_items(items, self.ctx.processes, c.eval.batch_size)
        return evaluate_segmentation(model, self._dataset(mine, False), self.num_classes,
                                     c.eval.batch_size, self.ctx.device, c.amp, c.data.num_workers, f"eval {what}",
                                     window=c.eval.window, stride=c.eval.stride, channels_last=self.ctx.channels_last,
                                     max_side=c.eval.max_side, processes=self.ctx.processes, display=self.ctx.display)

    # ---- stages -----------------------------------------------------------------------------
    def run_stage(self, stage: Stage, seed: int) -> dict[str, Any]:
        if stage.kind == "baseline":
            items = self.data.labelled_for(stage)
            return self._supervised(stage, seed, items, self.cfg.baseline)
        if stage.kind == "oracle":
            return self._supervised(stage, seed, self.data.all_train, self.cfg.oracle)
        return self._phase(stage, seed)

    def _selection_set(self, stage: Stage) -> tuple[list[SegItem], str] | None:
        """The images ``eval.select`` chooses the stage's model on, and their name, or ``None``."""
        select = self.cfg.eval.select
        if select == "val":  # the original protocol: best on the evaluation set itself
            return self.data.val, "val"
        heldout = self.data.heldout.get(stage.member)
        return (heldout, "heldout") if select == "heldout" and heldout else None

    def _selection(self, stage: Stage, state: TrainState) -> Any:
        """Keep the best model on the held-out labelled images (``eval.select: heldout``) or on
        the evaluation set (``eval.select: val``, the original's protocol)."""
        chosen = self._selection_set(stage)
        if chosen is None:
            return None
        items, what = chosen
        key = f"{what}_miou"
        best_path = self.ctx.run.stage_dir(stage.name) / BEST_FILE
        every = max(self.cfg.eval.every_epochs, 1)
        # the best score so far: read once (a resumed stage continues from its saved best model)
        best = [self.ctx.processes.on_main(lambda: load_checkpoint(best_path)["meta"]["metrics"][key]
                             if best_path.exists() else -1.0)]

        def on_epoch(epoch: int) -> None:
            if epoch % every:
                return
            sync_from_main(state, self.ctx.processes)  # every process evaluates its share with rank 0's statistics
            model = state.ema.module if state.ema is not None else state.model
            score = self._evaluate(model, items, what)["miou"]  # the same on every process
            if score > best[0]:
                best[0] = score
                if self.ctx.processes.is_main:
                    self._save(best_path, model, stage.member,
                               {"stage": stage.name, "epoch": epoch, "metrics": {key: score}})
            log.info("%s epoch %d: %s mIoU %.4f (best %.4f)", stage.name, epoch, what, score, best[0])

        return on_epoch

    def _finish(self, stage: Stage, state: TrainState, extra: dict[str, Any]) -> dict[str, Any]:
        final = state.ema.module if state.ema is not None else state.model
        best_path = self.ctx.run.stage_dir(stage.name) / BEST_FILE
        chosen = self._selection_set(stage)
        self.ctx.processes.barrier()  # rank 0 has written the stage's files
        metrics = None
        if chosen is not None and self.ctx.processes.on_main(best_path.exists):
            key = f"{chosen[1]}_miou"
            best, meta = load_model(best_path, self.ctx.device)
            selected = {"selected_epoch": meta["epoch"], key: meta["metrics"][key]}
            if chosen[1] == "val":
                # as in the original, the model after the last step is a candidate too
                final.eval()
                metrics = self._evaluate(final, self.data.val, "val")
                if metrics["miou"] > selected[key]:
                    selected = {"selected_epoch": "last", key: metrics["miou"]}
                else:
                    final, metrics = best, None
            else:
                final = best
            extra = {**extra, **selected}
        if self.cfg.eval.select == "val":
            log.warning("%s: eval.select: val keeps the model that scores best on the evaluation set (the "
                        "original protocol); its val scores are selected on that set, not held-out numbers",
                        stage.name)
            extra = {**extra, "selected_on": "val", "warning": SELECTED_ON_VAL}
        final.eval()
        if metrics is None:
            metrics = self._evaluate(final, self.data.val, "val")
        metrics.update(extra)
        if self.ctx.processes.is_main:
            self._save(self._model_path(stage.name), final, stage.member, {
                "stage": stage.name, "metrics": {"miou": metrics["miou"]},
                "classes": list(self.data.source.class_names)})
        # per-class IoU and a few sample pictures for TensorBoard and `dmt report` (rank 0, a few images)
        segmentation_stage_end(self.ctx, stage, state.step, final, metrics, self.data.unlabelled, self.data.source,
                               self.eval_tf, self._pseudo_targets if stage.kind == "phase" else None)
        # a few evaluation images' class maps, for the run's before/after comparison (val_scenes.png)
        store_val_predictions(self.ctx, stage, final, self.data.val, self.data.source, self.eval_tf)
        self.ctx.processes.barrier()  # the next stage may read the model file
        log.info("%s: val mIoU %.4f, pixel accuracy %.4f", stage.name, metrics["miou"], metrics["pixel_accuracy"])
        return {"metrics": metrics, "checkpoint": f"stages/{stage.name}/{MODEL_FILE}"}

    def _loader(self, dataset: SegmentationDataset, batch: int, seed: int, start: int, total: int,
                take: tuple[int, int] | None):
        """This process's part (``take``) of a stream's global batches; ``None`` if it reads none."""
        if take is None:
            return None
        return step_loader(dataset, batch, seed, start, total, num_workers=self.cfg.data.num_workers,
                           collate_fn=collate_segmentation, pin_memory=self.ctx.device.type == "cuda", take=take,
                           fill=self.ctx.processes.size > 1)

    def _supervised(self, stage: Stage, seed: int, items: list[SegItem], tc: TrainConfig) -> dict[str, Any]:
        model = self._new_model(stage.member, seed)
        key = "oracle" if stage.kind == "oracle" else "baseline"
        state = TrainState(model, stage_optimizer(model, tc, key), make_ema(model, tc.ema_decay))
        dataset = self._dataset(items, True)
        spe = steps_per_epoch(len(dataset), tc.batch_size)
        total = total_steps(tc, spe)
        (take,) = stream_slices([tc.batch_size], [f"{key}.batch_size"], self.ctx.processes)
        train_stage(self.ctx, stage.name, state,
                    lambda start: self._loader(dataset, tc.batch_size, seed, start, total, take),
                    SegmentationStep(model, processes=self.ctx.processes), total=total, steps_per_epoch=spe, opt=tc,
                    description=f"{stage.name} train", every_epoch=self._selection(stage, state))
        return self._finish(stage, state, {"train_images": len(items)})

    def _pseudo_labels(self, stage: Stage) -> tuple[PseudoLabelStore, dict[str, Any]]:
        """Label the unlabelled set with the teacher (resumable), then threshold per class."""
        store = self._open_store(stage)
        names = [it.name for it in self.data.unlabelled]
        if not self.ctx.processes.on_main(store.is_complete):
            # each process labels its share of what is missing, into the one shared store
            todo = set(self.ctx.processes.on_main(lambda: store.missing(names)))
            if todo:
                assert stage.teacher is not None
                teacher, _ = load_model(self._model_path(stage.teacher), self.ctx.device)
                items = shard_items([it for it in self.data.unlabelled if it.name in todo], self.ctx.processes,
                                    self.cfg.eval.batch_size)
                for name, classes, confidence in label_images(
                        teacher, self._dataset(items, False, with_mask=False), self.cfg.eval.batch_size,
                        self.ctx.device, self.cfg.amp, self.cfg.data.num_workers, f"{stage.name} label",
                        window=self.cfg.eval.window, stride=self.cfg.eval.stride,
                        channels_last=self.ctx.channels_last, max_side=self.cfg.eval.max_side,
                        display=self.ctx.display):
                    if np.isnan(confidence).any():  # overflowing logits: thresholds would be meaningless
                        raise UserError(f"{stage.name}: the teacher ({stage.teacher}) gives non-finite probabilities "
                                        f"on {name}; its logits overflow (lower the learning rate or set amp=false)")
                    store.write(name, classes, confidence)
            self.ctx.processes.barrier()
            if self.ctx.processes.is_main:
                store.mark_complete({"teacher": stage.teacher, "images": len(names)})
        # exact: integer histograms of the processes' shares add up to the single-process one
        hist = self.ctx.processes.all_reduce_sum(histogram_of_store(store, shard_items(names, self.ctx.processes), self.num_classes))
        thresholds, kept, empty = class_balanced_thresholds(hist, stage.ratio)
        if empty:
            log.warning("%s: the teacher predicts no pixel as %s", stage.name,
                        ", ".join(self.data.source.class_names[c] for c in empty))
        pixels = int(hist.sum())
        info = {
            "pseudo_share": int(kept.sum()) / max(pixels, 1),
            "pseudo_pixels": int(kept.sum()),
            "thresholds": [None if not np.isfinite(t) else float(t) for t in thresholds.tolist()],
            "kept_per_class": kept.tolist(),
            "predicted_per_class": hist.sum(1).tolist(),  # pixels the teacher gives each class, kept or not
            "empty_classes": [self.data.source.class_names[c] for c in empty],
        }
        if self.ctx.processes.is_main:
            write_text(self.ctx.run.stage_dir(stage.name) / "thresholds.json", json.dumps(info, indent=1))
        log.info("%s: teacher %s, ratio %.2f keeps %.1f%% of %d pixels", stage.name, stage.teacher, stage.ratio,
                 100 * info["pseudo_share"], pixels)
        return store, {**info, "thresholds_tensor": thresholds}

    def _open_store(self, stage: Stage) -> PseudoLabelStore:
        """The phase's pseudo-label store; rank 0 opens it first (it clears partial files)."""
        path = self.ctx.run.stage_dir(stage.name) / "labels"
        store = PseudoLabelStore(path) if self.ctx.processes.is_main else None
        self.ctx.processes.barrier()
        if store is None:
            store = PseudoLabelStore(path)
        self.ctx.processes.barrier()  # nobody writes before every process has opened the store
        return store

    def _phase(self, stage: Stage, seed: int) -> dict[str, Any]:
        pc, method = self.cfg.phases, self.cfg.method
        self._pseudo_targets = None
        if method == "online":
            info: dict[str, Any] = {}
            pseudo_set = self._dataset(self.data.unlabelled, True, with_mask=False)
        else:
            store, info = self._pseudo_labels(stage)
            self._pseudo_targets = ThresholdedLabels(store, info.pop("thresholds_tensor"))
            pseudo_set = self._dataset(self.data.unlabelled, True, targets=self._pseudo_targets)
        if not len(pseudo_set):
            raise UserError(f"{stage.name}: no unlabelled images (data.labelled_split {self.cfg.data.labelled_split!r})")
        if stage.init_from:
            model = self._prepared(load_model(self._model_path(stage.init_from), self.ctx.device)[0])
        else:
            model = self._new_model(stage.member, seed)
        state = TrainState(model, stage_optimizer(model, pc, "phases"), make_ema(model, pc.ema_decay))
        # DMS: both models' phases train on the whole labelled list (their subsets were the baselines')
        labelled = self._dataset(self.data.labelled_for(stage), True)
        info["labelled_images"] = len(labelled)
        spe = steps_per_epoch(len(pseudo_set), pc.batch_pseudo)  # the pseudo-labelled set defines an epoch
        total = total_steps(pc, spe)
        totals = StatTotals()
        step_fn = SegmentationStep(model, weighting=WEIGHTING[method], gamma1=pc.gamma1, gamma2=pc.gamma2,
                                   ramp=pc.ramp, total_steps=total, naive_gamma=pc.naive_gamma,
                                   online_threshold=pc.online_threshold, totals=totals,
                                   processes=self.ctx.processes)

        take_p, take_l = stream_slices([pc.batch_pseudo, pc.batch_labelled],
                                       ["phases.batch_pseudo", "phases.batch_labelled"], self.ctx.processes)
        online = method == "online"

        def batches(start: int):
            p = self._loader(pseudo_set, pc.batch_pseudo, mix_seed(seed, 1), start, total, take_p)
            lab = self._loader(labelled, pc.batch_labelled, mix_seed(seed, 2), start, total, take_l)
            for pb, lb in zip_streams(p, lab):
                # a process may hold no crop of one stream: an empty batch of the other's shape
                if pb is None:
                    pb = {"image": lb["image"][:0], "mask": lb["mask"][:0],
                          "confidence": torch.zeros(lb["mask"][:0].shape, dtype=torch.float32)}
                if lb is None:
                    lb = {"image": pb["image"][:0], "mask": torch.zeros(pb["image"][:0, 0].shape, dtype=torch.int64)}
                batch = {"pseudo_image": pb["image"], "image": lb["image"], "mask": lb["mask"]}
                if not online:
                    batch.update(pseudo_mask=pb["mask"], pseudo_confidence=pb["confidence"])
                yield batch

        train_stage(self.ctx, stage.name, state, batches, step_fn, total=total, steps_per_epoch=spe, opt=pc,
                    totals=totals, description=f"{stage.name} train", every_epoch=self._selection(stage, state))
        info.update({k: v for k, v in reduce_totals(totals, self.ctx.processes).means().items()})
        return self._finish(stage, state, info)
