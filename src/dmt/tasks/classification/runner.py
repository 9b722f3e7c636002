"""Classification DMT: data, baseline, curriculum phases and oracle for one run.

The stages of :mod:`dmt.tasks.plan` are executed by :class:`ClassificationRunner`; each
returns its metrics for ``results.json``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from dmt.atomic import atomic_path
from dmt.config.schema import TrainConfig
from dmt.data.arrays import ImageSet, ImageSetDataset
from dmt.data.classification_transforms import classification_eval_transform, classification_train_transform
from dmt.engine.batches import mix_seed, step_loader, steps_per_epoch
from dmt.engine.heap import map_large_blocks
from dmt.engine.loop import TrainState, make_ema
from dmt.engine.sharding import process_seed, shard_items, stream_slices, zip_streams
from dmt.errors import UserError
from dmt.method.selection import select_pseudo_labels
from dmt.models import create_model, smoke_network
from dmt.models.files import load_model, save_model
from dmt.tasks.classification.data import load_classification_data
from dmt.tasks.classification.evaluate import classification_accuracy, predict_probabilities, pseudo_statistics
from dmt.tasks.classification.panels import NUM_CLS_SAMPLES, classification_stage_end, sample_images
from dmt.tasks.classification.steps import DynamicMixupStep, SupervisedMixupStep
from dmt.tasks.context import StageContext, total_steps
from dmt.tasks.plan import Stage, name_config_key
from dmt.tasks.stats import StatTotals
from dmt.tasks.training import convert_sync_bn, reduce_totals, stage_optimizer, train_stage

log = logging.getLogger("dmt")

MODEL_FILE = "model.safetensors"


class ClassificationRunner:
    """Runs the stages of a classification plan on any image set (streamed one image per item)."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx, self.cfg = ctx, ctx.cfg
        map_large_blocks()  # batches come and go whole: memory follows the batch, not the pass's length
        # eval.select other than "last" was refused when the config was loaded (config/validate.py)
        self.data = load_classification_data(self.cfg, ctx.run.splits_dir(), ctx.processes)
        missing = self.data.unlabelled_without_label()
        if self.cfg.oracle.enabled and missing:  # before any training, not when the oracle's turn comes
            raise UserError(f"config key 'oracle.enabled': the oracle trains on the true labels of every training "
                            f"image, but {missing} of the {len(self.data.unlabelled)} unlabelled images of "
                            f"{self.cfg.data.name} have none; set oracle.enabled=false")
        if self.data.test is None and self.data.val is None:
            log.warning("%s has no test or val set: stages record no accuracy, only the pseudo-label "
                        "statistics", self.cfg.data.name)
        d = self.cfg.data
        # the pool's images all have the size the data layer read them at (data.image_size for folders)
        self.size = int(self.data.pool.image(0).shape[0])
        self.train_tf = classification_train_transform(
            self.size, padding=d.crop_padding, fill=128, randaugment=d.randaugment, cutout=d.cutout or None,
            hflip=d.hflip, policy=d.randaugment_policy)
        self.eval_tf = classification_eval_transform()

    # ---- helpers ----------------------------------------------------------------------------
    def _network(self) -> tuple[str, dict[str, Any]]:
        """The model a stage trains and its factory arguments: ``model``, or under ``--smoke`` the
        tiny stand-in of a timm ViT (the same code, random weights; the pre-flight checks the weights)."""
        m = self.cfg.model
        return smoke_network(m.name, m.kwargs) if self.cfg.smoke else (m.name, dict(m.kwargs))

    def _new_model(self, seed: int) -> torch.nn.Module:
        """A fresh student: random, or pretrained from ``model.weights`` (a file or ``hub``; timm models).

        ``--smoke`` starts from random weights when the file is missing (a warning); the other stage
        models are loaded from their model files (:func:`load_model`), never from ``model.weights``.
        """
        torch.manual_seed(seed)  # the student's initialisation (its new head too) is part of the stage's seed
        m = self.cfg.model
        name, kwargs = self._network()
        if name != m.name or kwargs != m.kwargs:
            log.warning("--smoke: %s trains as its tiny stand-in %s %s (random weights)", m.name, name, kwargs)
        elif m.weights:
            kwargs.update(weights_path=m.weights, strict_weights=not self.cfg.smoke)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = create_model(name, self.data.num_classes, **kwargs)
        except UserError as e:
            text = str(e)  # the factory names its own argument; the user knows the config key
            raise UserError(name_config_key(text, "model.weights") if "weights_path" in text else text) from None
        for w in caught:
            log.warning("%s", name_config_key(str(w.message), "model.weights"))
        return self._prepared(model)

    def _prepared(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.cfg.model.grad_checkpointing:  # timm models: recompute each block in the backward pass
            if not hasattr(model, "set_grad_checkpointing"):
                raise UserError(f"config key 'model.grad_checkpointing': {type(model).__name__} has no activation "
                                "checkpointing (timm/<name> models have); set it to false")
            model.set_grad_checkpointing(True)
        # classification batches are large: per-process BN statistics unless model.sync_bn asks
        return convert_sync_bn(model, bool(self.cfg.model.sync_bn), self.ctx.device, self.ctx.processes).to(self.ctx.device)

    def _model_path(self, stage: str) -> Path:
        return self.ctx.run.stage_dir(stage) / MODEL_FILE

    def _eval_set(self, data: ImageSet, idx: np.ndarray | None = None) -> ImageSetDataset:
        return ImageSetDataset(data, idx, self.eval_tf)

    def _accuracy(self, model: torch.nn.Module, data: ImageSet, idx: np.ndarray, what: str) -> float:
        """Accuracy on ``data[idx]``; each process scores its share and the counts add up."""
        c = self.cfg
        mine = np.asarray(shard_items(idx, self.ctx.processes, c.eval.batch_size), dtype=np.int64)
        return classification_accuracy(model, self._eval_set(data, mine), torch.as_tensor(data.labels[mine]),
                                       c.eval.batch_size, self.ctx.device, c.amp, c.data.num_workers, what,
                                       self.ctx.channels_last, processes=self.ctx.processes, display=self.ctx.display)

    def _evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """``accuracy`` on the test set, ``val_accuracy`` on the val set, ``valtiny_accuracy``: those the data has."""
        metrics = {}
        if self.data.test is not None:
            metrics["accuracy"] = self._accuracy(model, self.data.test, np.arange(len(self.data.test)), "eval test")
        if self.data.val is not None:
            metrics["val_accuracy"] = self._accuracy(model, self.data.val, np.arange(len(self.data.val)), "eval val")
        if len(self.data.valtiny):
            metrics["valtiny_accuracy"] = self._accuracy(model, self.data.pool, self.data.valtiny, "eval valtiny")
        return metrics

    def _finish(self, stage: Stage, state: TrainState, extra: dict | None = None) -> dict[str, Any]:
        final = state.ema.module if state.ema is not None else state.model
        final.eval()
        metrics = self._evaluate(final)
        metrics.update(extra or {})
        if self.ctx.processes.is_main:
            name, kwargs = self._network()  # the stand-in's, under --smoke
            save_model(self._model_path(stage.name), final, name=name, num_classes=self.data.num_classes, kwargs=kwargs,
                       info={"stage": stage.name, "metrics": metrics, "classes": self.data.classes,
                             "image_size": self.size})
        self.ctx.processes.barrier()  # the next stage may read the model file
        log.info("%s: %s", stage.name, " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return {"metrics": metrics, "checkpoint": f"stages/{stage.name}/{MODEL_FILE}"}

    # ---- stages -----------------------------------------------------------------------------
    def run_stage(self, stage: Stage, seed: int) -> dict[str, Any]:
        if stage.kind == "baseline":
            return self._supervised(stage, seed, self.data.labelled, self.cfg.baseline)
        if stage.kind == "oracle":
            return self._supervised(stage, seed, self.data.oracle, self.cfg.oracle)
        return self._phase(stage, seed)

    def _supervised(self, stage: Stage, seed: int, indices: np.ndarray, tc: TrainConfig) -> dict[str, Any]:
        model = self._new_model(seed)
        optimizer = stage_optimizer(model, tc, "oracle" if stage.kind == "oracle" else "baseline")
        state = TrainState(model, optimizer, make_ema(model, tc.ema_decay))
        dataset = ImageSetDataset(self.data.pool, indices, self.train_tf)
        spe = steps_per_epoch(len(dataset), tc.batch_size)
        total = total_steps(tc, spe)
        (take,) = stream_slices([tc.batch_size], [f"{'oracle' if stage.kind == 'oracle' else 'baseline'}.batch_size"],
                                self.ctx.processes)
        fill = self.ctx.processes.size > 1  # every process's slice of an epoch's last batch is full
        pin = self.ctx.device.type == "cuda"  # page-locked batches: the loop's non_blocking copies overlap

        def batches(start: int):
            loader = step_loader(dataset, tc.batch_size, seed, start, total, num_workers=self.cfg.data.num_workers,
                                 take=take, fill=fill, pin_memory=pin)
            return ((x, y) for x, y, _ in loader)

        # mixup pairs images within each process's share of the batch
        step = SupervisedMixupStep(model, tc.mixup_alpha, process_seed(seed, self.ctx.processes))
        train_stage(self.ctx, stage.name, state, batches, step,
                    total=total, steps_per_epoch=spe, opt=tc, description=f"{stage.name} train")
        return self._finish(stage, state, {"train_images": len(indices)})

    def _teacher_probabilities(self, stage: Stage) -> torch.Tensor:
        """The teacher's softmax on every unlabelled image (cached in the stage folder)."""
        path = self.ctx.run.stage_dir(stage.name) / "teacher_probs.safetensors"
        if self.ctx.processes.on_main(path.exists):
            return load_file(str(path))["probs"]
        assert stage.teacher is not None
        teacher, _ = load_model(self._model_path(stage.teacher), self.ctx.device)
        # each process labels a block of whole batches; the blocks, in rank order, are the set
        mine = np.asarray(shard_items(self.data.unlabelled, self.ctx.processes, self.cfg.eval.batch_size), dtype=np.int64)
        probs = predict_probabilities(teacher, self._eval_set(self.data.pool, mine),
                                      self.cfg.eval.batch_size, self.ctx.device, self.cfg.amp,
                                      self.cfg.data.num_workers, f"{stage.name} label", self.ctx.channels_last,
                                      display=self.ctx.display)
        if not bool(torch.isfinite(probs).all()):  # overflowing logits: the threshold would be meaningless
            raise UserError(f"{stage.name}: the teacher ({stage.teacher}) gives non-finite probabilities; its logits "
                            "overflow (lower the learning rate or set amp=false)")
        if self.ctx.processes.size > 1:
            parts = [p for p in self.ctx.processes.all_gather_objects(probs) if p.numel()]
            probs = torch.cat(parts) if parts else probs
        if self.ctx.processes.is_main:
            with atomic_path(path) as tmp:
                save_file({"probs": probs.contiguous()}, str(tmp))
        return probs

    def _phase(self, stage: Stage, seed: int) -> dict[str, Any]:
        pc = self.cfg.phases
        probs = self._teacher_probabilities(stage)
        keep = select_pseudo_labels(probs, stage.ratio, pc.selection)  # global or class-balanced (schema)
        pseudo_idx = self.data.unlabelled[keep.numpy()]
        pseudo_probs = probs[keep]
        pseudo = pseudo_statistics(pseudo_probs, torch.as_tensor(self.data.pool.labels[pseudo_idx]),
                                   len(self.data.unlabelled))
        scored = (f"{100 * pseudo['pseudo_accuracy']:.2f}% correct" if "pseudo_accuracy" in pseudo
                  else "none has a true label to score")
        log.info("%s: teacher %s keeps %d of %d unlabelled images (%.1f%%, %s selection), %s", stage.name,
                 stage.teacher, pseudo["pseudo_kept"], len(self.data.unlabelled), 100 * pseudo["pseudo_share"],
                 pc.selection, scored)

        if stage.init_from:
            model = self._prepared(load_model(self._model_path(stage.init_from), self.ctx.device)[0])
        else:
            model = self._new_model(seed)
        optimizer = stage_optimizer(model, pc, "phases")
        state = TrainState(model, optimizer, make_ema(model, pc.ema_decay))
        labelled = ImageSetDataset(self.data.pool, self.data.labelled, self.train_tf)
        pseudo_set = ImageSetDataset(self.data.pool, pseudo_idx, self.train_tf, targets=pseudo_probs)
        spe = steps_per_epoch(len(pseudo_set), pc.batch_pseudo)  # the pseudo-labelled set defines an epoch
        total = total_steps(pc, spe)
        totals = StatTotals()
        # mixup pairs images within each process's share of the batch
        step_fn = DynamicMixupStep(model, gamma1=pc.gamma1, gamma2=pc.gamma2,
                                   ramp=pc.ramp, total_steps=total, alpha=pc.mixup_alpha,
                                   seed=process_seed(seed, self.ctx.processes), totals=totals)
        nw = self.cfg.data.num_workers
        take_p, take_l = stream_slices([pc.batch_pseudo, pc.batch_labelled],
                                       ["phases.batch_pseudo", "phases.batch_labelled"], self.ctx.processes)
        fill = self.ctx.processes.size > 1
        pin = self.ctx.device.type == "cuda"

        def batches(start: int):
            p = step_loader(pseudo_set, pc.batch_pseudo, mix_seed(seed, 1), start, total, num_workers=nw,
                            take=take_p, fill=fill, pin_memory=pin) if take_p else None
            lab = step_loader(labelled, pc.batch_labelled, mix_seed(seed, 2), start, total, num_workers=nw,
                              take=take_l, fill=fill, pin_memory=pin) if take_l else None
            for pb, lb in zip_streams(p, lab):
                # a process may hold no image of one stream: an empty batch of the other's shape
                xp, pp, _ = pb if pb is not None else (lb[0][:0], torch.zeros(0, probs.shape[1]), None)
                xl, yl, _ = lb if lb is not None else (xp[:0], torch.zeros(0, dtype=torch.int64), None)
                yield {"pseudo_images": xp, "pseudo_probs": pp, "labelled_images": xl, "labels": yl}

        train_stage(self.ctx, stage.name, state, batches, step_fn, total=total, steps_per_epoch=spe,
                    opt=pc, totals=totals, description=f"{stage.name} train")
        means = reduce_totals(totals, self.ctx.processes).means()
        pseudo.update({"mean_weight": means.get("mean_weight", float("nan")),
                       "disagree": means.get("disagree", float("nan")),
                       "student_wins": means.get("student_wins", float("nan"))})
        result = self._finish(stage, state, pseudo)
        # per class of the teacher's prediction: images it gives the class, and those kept (for `dmt report`)
        result["metrics"].update(
            predicted_per_class=torch.bincount(probs.argmax(1), minlength=self.data.num_classes).tolist(),
            kept_per_class=torch.bincount(pseudo_probs.argmax(1), minlength=self.data.num_classes).tolist())
        final = state.ema.module if state.ema is not None else state.model
        classification_stage_end(self.ctx, stage, state.step, final, result["metrics"],
                                 sample_images(self.data.pool, pseudo_idx[:NUM_CLS_SAMPLES]), pseudo_probs,
                                 self.data.classes, self.eval_tf)
        return result
