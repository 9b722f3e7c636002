"""Evaluation images before and after the phases: where the last phase gains on the better baseline.

Each segmentation stage stores its final model's class maps of the first :data:`VAL_SAMPLES`
evaluation images (by name) in ``stages/<stage>/val_predictions.npz`` (rank 0 of the stage's
processes); the images, their ground truth and the class colours go once per run into
``<run>/val_samples.npz``. :func:`write_val_scenes` composes ``<run>/val_scenes.png`` from them:
one row per image, the columns of :data:`~dmt.tasks.panels.COMPARISON_COLUMNS` (image | ground
truth | better baseline | last phase's better model | changes), and ``val_scenes.json`` naming
the images, the two stages compared and their mIoU. ``dmt report`` shows both.

Every file is a plain ``.npz`` (no pickles) written atomically; two members finishing side by
side may both write ``val_samples.npz``, with the same content.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dmt.atomic import atomic_path, atomic_write, write_text
from dmt.tasks.context import StageContext
from dmt.tasks.panels import (COMPARISON_COLUMNS, GAINED_COLOUR, IGNORE_COLOUR, LOST_COLOUR, UNCHANGED_COLOUR,
                              class_palette, comparison_rows, grid, titled)
from dmt.tasks.plan import Stage, best_stage
from dmt.tasks.segmentation.panels import load_picks, predict_maps

log = logging.getLogger("dmt")

VAL_SAMPLES = 6  # evaluation images compared: a few scenes, cheap at each stage's end
VAL_PREDICTIONS = "val_predictions.npz"
VAL_SAMPLES_FILE = "val_samples.npz"
VAL_SCENES_PNG = "val_scenes.png"
VAL_SCENES_JSON = "val_scenes.json"
GRID_FILL = 128  # grey between the cells: the changes map's white must not run into the background


def _save(path: Path, names: Sequence[str], arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path) as f:
        np.savez_compressed(f, names=np.array(list(names), dtype=str), **arrays)


def read_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """Every array of an ``.npz`` file written here (no pickles), or None if it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def store_val_predictions(ctx: StageContext, stage: Stage, model: nn.Module, items: Sequence[Any], source: Any,
                          eval_transform: Any) -> None:
    """The stage's class maps of the first :data:`VAL_SAMPLES` evaluation items (by name), and once
    per run those items' images and ground truth (rank 0 of the stage's processes).

    torch's global CPU generator is left as it was (the loader draws a seed from it), and the model
    in its mode: a stage's pictures must not move the run's numbers.
    """
    if not ctx.processes.is_main:
        return
    picks = sorted(items, key=lambda it: it.name)[:VAL_SAMPLES]
    if not picks:
        return
    rng = torch.get_rng_state()
    try:
        preds = predict_maps(ctx, model, picks, source, eval_transform, f"{stage.name} val samples")
    finally:
        torch.set_rng_state(rng)
    names = [it.name for it in picks]
    _save(ctx.run.stage_dir(stage.name) / VAL_PREDICTIONS, names, {f"prediction_{k}": p for k, p in enumerate(preds)})
    samples_path = ctx.run.run_file(VAL_SAMPLES_FILE)
    stored = read_arrays(samples_path)
    if stored is not None and stored["names"].tolist() == names:
        return
    images, truths = load_picks(picks, source, [it.mask is not None for it in picks])
    arrays: dict[str, np.ndarray] = {}
    for k, (image, truth) in enumerate(zip(images, truths)):
        arrays[f"image_{k}"] = image
        # an evaluation image without a mask (never scored) shows as unlabelled
        arrays[f"truth_{k}"] = truth if truth is not None else np.full(image.shape[:2], 255, dtype=np.uint8)
    arrays["palette"] = class_palette(source.num_classes, source.palette)
    arrays["classes"] = np.array([str(c) for c in source.class_names], dtype=str)
    _save(samples_path, names, arrays)


def compared_stages(stages: Sequence[dict[str, Any]]) -> tuple[tuple[str, float], tuple[str, float]] | None:
    """``(before, after)`` as ``(stage name, mIoU)``: the better baseline and the better model of the
    last phase that recorded one (:func:`~dmt.tasks.plan.best_stage`, as the run's summary picks
    them); None before a phase has finished."""
    phases = [s.get("phase", 0) for s in stages if s.get("kind") == "phase"
              and isinstance((s.get("metrics") or {}).get("miou"), (int, float))]
    before = best_stage(stages, "miou", "baseline")
    if before is None or not phases:
        return None
    return before, best_stage(stages, "miou", f"phase{max(phases)}")


def write_val_scenes(run: str | Path, stages: Sequence[dict[str, Any]]) -> Path | None:
    """``<run>/val_scenes.png`` and ``.json`` from the stored files; the picture's path, or None (quietly)
    when a file is missing or stale (an older run, no phase finished yet)."""
    run = Path(run)
    pair = compared_stages(stages)
    if pair is None:
        return None
    before, after = pair
    samples = read_arrays(run / VAL_SAMPLES_FILE)
    maps = [read_arrays(run / "stages" / name / VAL_PREDICTIONS) for name, _ in (before, after)]
    if samples is None or any(m is None for m in maps):
        return None
    names = samples["names"].tolist()
    if any(m["names"].tolist() != names for m in maps):  # type: ignore[index]
        log.warning("%s: the stored evaluation images differ between stages; %s not written", run, VAL_SCENES_PNG)
        return None
    n = len(names)
    truths = [samples[f"truth_{k}"] for k in range(n)]
    before_maps, after_maps = ([m[f"prediction_{k}"] for k in range(n)] for m in maps)  # type: ignore[index]
    if any(p.shape != t.shape for t, b, a in zip(truths, before_maps, after_maps) for p in (b, a)):
        return None
    rows = comparison_rows([samples[f"image_{k}"] for k in range(n)], truths, before_maps, after_maps,
                           samples["palette"])
    from PIL import Image

    png = run / VAL_SCENES_PNG
    with atomic_path(png) as tmp:  # the suffix (.png) chooses the format
        titles = ["image", "ground truth", *(f"{name}\nmIoU {miou:.3f}" for name, miou in (before, after)),
                  "green: now right\nred: now wrong"]
        cell = max(c.shape[1] for row in rows for c in row)
        Image.fromarray(titled(grid(rows, fill=GRID_FILL), titles, cell)).save(tmp)
    info = {"columns": COMPARISON_COLUMNS, "names": names,
            "before": {"stage": before[0], "miou": before[1]}, "after": {"stage": after[0], "miou": after[1]},
            "classes": samples["classes"].tolist(), "palette": samples["palette"].tolist(),
            "changes": {"right after, wrong before": GAINED_COLOUR, "wrong after, right before": LOST_COLOUR,
                        "unchanged": UNCHANGED_COLOUR, "no label": IGNORE_COLOUR}}
    write_text(run / VAL_SCENES_JSON, json.dumps(info, indent=1))
    return png
