"""``dmt eval``: any model file on a dataset's test or val set (classification: test by default; segmentation: val)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmt.config.loader import load_config
from dmt.config.validate import HELD_OUT_VAL_DATASETS
from dmt.data.segmentation import SegmentationDataset
from dmt.data.transforms import seg_eval_transform
from dmt.engine.accel import use_channels_last
from dmt.engine.distributed import ONE, Processes
from dmt.engine.sharding import shard_items
from dmt.errors import UserError
from dmt.models.files import load_model
from dmt.predict.meta import run_config
from dmt.tasks.context import resolve_device

log = logging.getLogger("dmt")

# how the run evaluated: what makes `dmt eval` of a run's model score it as the run did
RUN_EVAL_KEYS = (("data", "eval_pad"), ("data", "pad_fill"), ("data", "scale"), ("data", "max_pixels"),
                 ("eval", "window"), ("eval", "stride"),
                 ("eval", "max_side"), ("train", "channels_last"))
# your own folders hold their val images out of the masked ones: the same share picks the same images
OWN_DATA_EVAL_KEYS = (("data", "val_share"),)


def run_eval_overrides(checkpoint: str | Path, data: str) -> list[str]:
    """``key=value`` overrides repeating the evaluation settings of the run holding ``checkpoint``.

    A model file inside a run directory (``<run>/stages/<stage>/model.safetensors``) of the same
    dataset is evaluated with the run's padding (size and colour), read scale and windows; none
    when the file is elsewhere or the run used another dataset. Command-line overrides come later
    and win.
    """
    raw = run_config(Path(checkpoint))
    if raw is None or not isinstance(raw.get("data"), dict) or raw["data"].get("name") != data:
        return []
    out = []
    for section, key in RUN_EVAL_KEYS + (OWN_DATA_EVAL_KEYS if data in HELD_OUT_VAL_DATASETS else ()):
        value = (raw.get(section) or {}).get(key)
        if value is not None:
            out.append(f"{section}.{key}={value if isinstance(value, str) else json.dumps(value)}")
    return out


def evaluate_checkpoint(checkpoint: str, data: str, root: str | None, split: str | None, device: str,
                        batch_size: int, overrides: list[str], processes: Processes = ONE) -> dict[str, Any]:
    """Load a model file and score it; the model's recorded input convention is applied.

    ``overrides`` are dotted config keys (``data.*``, and ``eval.window`` / ``eval.stride`` for
    sliding-window evaluation). ``processes``: each scores its share of the set (torchrun).
    """
    dev = resolve_device(device, processes)
    model, meta = load_model(checkpoint, dev)
    from_run = run_eval_overrides(checkpoint, data)
    if from_run:
        log.info("evaluating as the run did: %s (override on the command line)", " ".join(from_run))
    # a classification model is scored at the side it trained at (its file records it): a folder's
    # images would otherwise be read at imagefolder's default 96, CIFAR's at 32 (data.image_size=N overrides)
    size = meta.get("image_size") if meta["task"] == "classification" else None
    trained_at = [f"data.image_size={size}"] if isinstance(size, int) and size > 0 else []
    # the model's task: config.validate refuses keys the task does not read
    cfg = load_config(None, [f"task={meta['task']}", f"data.name={data}", *([f"data.root={root}"] if root else []),
                             *trained_at, *from_run, *overrides])
    # the layout a run evaluates in (train.channels_last), so a run's scores are reproduced
    channels_last = use_channels_last(dev, cfg.train.channels_last)
    if meta["task"] == "classification":
        from dmt.data.arrays import ImageSetDataset
        from dmt.data.classification_transforms import classification_eval_transform
        from dmt.tasks.classification.data import evaluation_set
        from dmt.tasks.classification.evaluate import classification_accuracy

        split, test = evaluation_set(cfg, split)
        if len(test.classes) != meta["num_classes"]:
            raise UserError(f"{checkpoint}: a {meta['num_classes']}-class model, but {data} has {len(test.classes)}")
        mine = np.asarray(shard_items(np.arange(len(test)), processes, batch_size), dtype=np.int64)
        acc = classification_accuracy(model, ImageSetDataset(test, mine, classification_eval_transform()),
                                      torch.as_tensor(test.labels[mine]), batch_size, dev, channels_last=channels_last,
                                      processes=processes)
        return {"checkpoint": checkpoint, "data": data, "split": split, "images": len(test), "accuracy": acc}

    from dmt.config.validate import check_window
    from dmt.tasks.segmentation.data import build_source, pad_colour
    from dmt.tasks.segmentation.inference import evaluate_segmentation

    check_window(cfg.eval.window, cfg.eval.stride)
    source = build_source(cfg)
    if source.num_classes != meta["num_classes"]:
        raise UserError(f"{checkpoint}: a {meta['num_classes']}-class model, but {data} has {source.num_classes}")
    split = split or "val"
    items = source.items_from_file(cfg.data.val_list) if cfg.data.val_list else source.items(split)
    pad = tuple(cfg.data.eval_pad) if cfg.data.eval_pad else None
    dataset = SegmentationDataset(shard_items(items, processes, batch_size), source, seg_eval_transform(pad, fill=pad_colour(cfg, source)))
    scores = evaluate_segmentation(model, dataset, source.num_classes, batch_size, dev, window=cfg.eval.window,
                                   stride=cfg.eval.stride, channels_last=channels_last, max_side=cfg.eval.max_side,
                                   processes=processes)
    per_class = dict(zip(source.class_names, scores["per_class_iou"]))
    return {"checkpoint": checkpoint, "data": data, "split": split, "images": len(items), "miou": scores["miou"],
            "pixel_accuracy": scores["pixel_accuracy"], "per_class_iou": per_class,
            "mean_iou_of_present_classes": float(np.nanmean([v for v in per_class.values() if v is not None]))}
