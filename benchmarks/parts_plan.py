"""The work of a whole DMT run, and its wall time projected from measured per-part rates (issue 27).

A run of a two-member preset (``voc-106-dmt``, ``voc-classic-92-dinov2``...) is, per member: a
baseline stage, then one stage per phase ratio; each phase first labels the unlabelled set with
the other member's model; every stage ends with one val evaluation (``eval.select: last``) and
writes resumable checkpoints as ``dmt.engine.loop`` does (after each epoch unless the last save is
younger than ``checkpoint_min_seconds``, every ``checkpoint_seconds``, at the end) and one model
file. :func:`run_plan` counts that work from the preset; :func:`member_seconds` turns it into
seconds with one member's measured rates, and :func:`project` gives the run's wall time (the
members side by side: the slower member; one after the other: the sum) beside the step-only
figure (training crops / training rate, what the earlier projections gave). Pure functions, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

VOC_TRAIN_AUG, VOC_VAL = 10582, 1449  # images in VOC 2012's train_aug and val lists


@dataclass(frozen=True)
class StagePlan:
    """One stage of one member: its training steps, crops per step, and steps per epoch."""

    steps: int
    batch: int
    steps_per_epoch: int


@dataclass(frozen=True)
class RunPlan:
    """The work of one member in a whole run (both members do the same amount)."""

    stages: tuple[StagePlan, ...]  # the baseline, then the phases
    label_images: int  # images labelled per phase
    eval_images: int  # images evaluated per stage
    checkpoint_seconds: float = 300.0
    checkpoint_min_seconds: float = 10.0

    @property
    def train_crops(self) -> int:
        return sum(s.steps * s.batch for s in self.stages)

    @property
    def phases(self) -> int:
        return len(self.stages) - 1


def protocol_labelled(total: int, ratio: float) -> int:
    """Labelled images of a 1/ratio split under the paper's protocol: int(N / r), one more when that % 8 == 1."""
    n = int(total / ratio)
    return n + 1 if n % 8 == 1 else n


def run_plan(preset: str, labelled: int, unlabelled: int, val: int) -> RunPlan:
    """The per-member work of ``preset`` with these set sizes (step counts as the runner computes them)."""
    from dmt.config.loader import load_config
    from dmt.engine.batches import steps_per_epoch
    from dmt.tasks.context import total_steps

    c = load_config(preset)
    base_spe = steps_per_epoch(labelled, c.baseline.batch_size)
    stages = [StagePlan(total_steps(c.baseline, base_spe), c.baseline.batch_size, base_spe)]
    phase_spe = steps_per_epoch(unlabelled, c.phases.batch_pseudo)
    phase_batch = c.phases.batch_pseudo + c.phases.batch_labelled
    stages += [StagePlan(total_steps(c.phases, phase_spe), phase_batch, phase_spe)] * len(c.phases.ratios)
    return RunPlan(tuple(stages), unlabelled, val, c.checkpoint_seconds, c.checkpoint_min_seconds)


def stage_saves(stage_s: float, epochs: float, cadence_s: float, min_s: float) -> int:
    """Checkpoints one stage writes: at epoch ends at most every ``min_s`` seconds, at least every
    ``cadence_s`` seconds (``checkpoint_seconds``), and one at the end."""
    if stage_s <= 0:
        return 1
    epoch_s = stage_s / max(epochs, 1e-9)
    every = math.ceil(min_s / epoch_s) if epoch_s < min_s else 1  # epochs between two epoch-end saves
    interval = min(every * epoch_s, cadence_s)
    return max(math.ceil(stage_s / interval - 1e-9), 1)  # the last epoch's save is the end's


def member_seconds(plan: RunPlan, rates: dict[str, float]) -> dict[str, float]:
    """Seconds of one member's parts from its rates: ``train``, ``label``, ``eval``, ``loader``
    (images/s) and ``state_write_s``, ``model_write_s`` (seconds per file). A missing rate counts 0 s
    (and is listed as missing by :func:`project`). Data loading overlaps training in workers: a
    stage trains at the slower of the two rates."""
    train = loader_wait = ckpt = 0.0
    saves = 0
    for s in plan.stages:
        crops = s.steps * s.batch
        step_s = crops / rates["train"] if rates.get("train") else 0.0
        load_s = crops / rates["loader"] if rates.get("loader") else 0.0
        train += step_s
        loader_wait += max(load_s - step_s, 0.0)
        n = stage_saves(max(step_s, load_s), s.steps / s.steps_per_epoch, plan.checkpoint_seconds,
                        plan.checkpoint_min_seconds)
        saves += n
        ckpt += n * rates.get("state_write_s", 0.0) + rates.get("model_write_s", 0.0)
    label = plan.phases * plan.label_images / rates["label"] if rates.get("label") else 0.0
    evaluate = len(plan.stages) * plan.eval_images / rates["eval"] if rates.get("eval") else 0.0
    return {"train_s": train, "loader_wait_s": loader_wait, "label_s": label, "eval_s": evaluate,
            "checkpoint_s": ckpt, "checkpoints": saves,
            "total_s": train + loader_wait + label + evaluate + ckpt}


def project(plan: RunPlan, members: list[dict[str, float]], side_by_side: bool) -> dict:
    """The whole run's wall time in minutes from each member's rates (measured together when
    ``side_by_side``, else each alone), beside the step-only projection."""
    need = ("train", "label", "eval", "loader", "state_write_s", "model_write_s")
    parts = [member_seconds(plan, m) for m in members]
    combine = max if side_by_side else sum
    total = combine(p["total_s"] for p in parts)
    step_only = combine(plan.train_crops / m["train"] for m in members if m.get("train")) if all(
        m.get("train") for m in members) else None
    return {"side_by_side": side_by_side, "whole_run_min": round(total / 60, 2),
            "step_only_min": None if step_only is None else round(step_only / 60, 2),
            "per_member_min": [{(k[:-2] + "_min" if k.endswith("_s") else k): (round(v / 60, 2) if k.endswith("_s")
                                else v) for k, v in p.items()} for p in parts],
            "missing": sorted({k for m in members for k in need if not m.get(k)}),
            "plan": {"train_crops_per_member": plan.train_crops, "stages_per_member": len(plan.stages),
                     "label_images_per_member": plan.phases * plan.label_images,
                     "eval_images_per_member": len(plan.stages) * plan.eval_images,
                     "baseline": asdict(plan.stages[0]), "phase": asdict(plan.stages[-1])}}
