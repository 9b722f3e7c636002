"""``--smoke``: every stage of a preset for a few steps on a few small images.

Users check a set-up (data layout, weights, memory, output directory) in a minute or two before
a run of days. The run directory receives everything a real run writes, and every stage runs
the code a real run uses: the same model code (a large model, DeepLab-v2/v3+ with ResNet-101 or
a foundation encoder, trains as its registered tiny stand-in of the same code, from random
weights, while the pre-flight loads its weights file into the real one: twelve 171 MB model
files made a DeepLab smoke 2 GB), the same transforms, labelling, thresholds and weights. Only
sizes shrink: datasets read from disk are resized on reading by ``1 / SMOKE_SHRINK``
(``data.scale``), with crops and evaluation padding to match, and each stage sees a few images
for a few steps with small batches. What the smoke does not read, its pre-flight does: every
listed file's header and every mask's values (:mod:`dmt.run.preflight`).
"""

from __future__ import annotations

import copy
import math

from dmt.config.schema import ExperimentConfig

SMOKE_STEPS = 2
SMOKE_IMAGES = 24  # classification: images of each set
SMOKE_SEG_IMAGES = 4  # segmentation: images of each set (labelled, unlabelled, val, held-out)
# Segmentation data on disk is read at 1/8 of its size: VOC's ~500x375 images become ~63x47,
# Cityscapes' 1024x512 (its default 0.5 of 2048x1024) 128x64. DeepLab's output stride is 8, so
# crops of 41x41 (VOC) or 32x64 (Cityscapes) still give 6x6 and 4x8 logits.
SMOKE_SHRINK = 8
_DEFAULT_SCALE = {"cityscapes": 0.5}  # data.scale 0 means this (see dmt.tasks.segmentation.data)
# Official layouts: their image sizes are known. The generated demo scenes keep their sizes, and
# so do custom folders, unless their crops are large (the foundation-encoder preset's 518): then
# they shrink by SMOKE_SHRINK too, whatever their images' size (a ViT pads any size to its patches).
_SHRUNK_DATASETS = ("voc", "cityscapes")
_LARGE_CROP = 256
_MIN_SIDE = 32  # crops and padding shrink no further than this (or their own size, if smaller)


def _shrunk(size: list[int] | None, shrink: float = SMOKE_SHRINK) -> list[int] | None:
    return None if size is None else [max(math.ceil(s / shrink), min(s, _MIN_SIDE)) for s in size]


def apply_smoke(cfg: ExperimentConfig, world_size: int = 1) -> ExperimentConfig:
    """A copy of ``cfg`` cut down to a few steps and small images per stage (``smoke: true`` recorded).

    Args:
        world_size: processes that will share each batch (torchrun): the small global batches
            are rounded up to a multiple of it, so a smoke run works on any number of GPUs.
    """
    c = _small(copy.deepcopy(cfg))
    if world_size > 1:
        _divisible(c, world_size)
    return c


def _divisible(c: ExperimentConfig, world: int) -> None:
    """Round the global batches up to multiples of ``world`` (phases: the pseudo-labelled part grows)."""
    def up(n: int) -> int:
        return -(-n // world) * world

    c.baseline.batch_size = up(c.baseline.batch_size)
    c.oracle.batch_size = up(c.oracle.batch_size)
    total = c.phases.batch_pseudo + c.phases.batch_labelled
    c.phases.batch_pseudo += up(total) - total


def _small(c: ExperimentConfig) -> ExperimentConfig:
    """Few steps, few and small images, small batches (what one process needs)."""
    c.smoke = True
    c.data.num_workers = 0
    for section in (c.baseline, c.phases, c.oracle):
        section.max_steps = SMOKE_STEPS
    if c.task != "segmentation":
        c.data.limit = SMOKE_IMAGES
        c.baseline.batch_size = min(c.baseline.batch_size, 8)
        c.oracle.batch_size = min(c.oracle.batch_size, 8)
        c.phases.batch_labelled = min(c.phases.batch_labelled, 4)
        c.phases.batch_pseudo = min(c.phases.batch_pseudo, 4)
        c.eval.batch_size = min(c.eval.batch_size, 8)
        return c
    c.data.limit = SMOKE_SEG_IMAGES
    large_folder = c.data.name == "folder" and max(c.data.crop_size) > _LARGE_CROP
    if c.data.name in _SHRUNK_DATASETS or large_folder:
        default = _DEFAULT_SCALE.get(c.data.name, 1.0)
        scale = c.data.scale or default
        # the same small images whatever scale the preset reads at: the classic Cityscapes
        # protocol's full-size images (scale 1, not 0.5) shrink by 16; windows shrink with crops
        shrink = SMOKE_SHRINK * max(scale / default, 1.0)
        c.data.scale = scale / shrink
        c.data.crop_size = _shrunk(c.data.crop_size, shrink)
        c.data.eval_pad = _shrunk(c.data.eval_pad, shrink)
        c.eval.window = _shrunk(c.eval.window, shrink)
        if c.eval.window is not None and c.eval.stride is not None:
            c.eval.stride = [min(s, w) for s, w in zip(_shrunk(c.eval.stride, shrink), c.eval.window)]
    # batches of 2 keep BatchNorm in training mode meaningful; the pseudo + labelled split of a
    # phase batch keeps both parts
    c.baseline.batch_size = min(c.baseline.batch_size, 2)
    c.oracle.batch_size = min(c.oracle.batch_size, 2)
    c.phases.batch_labelled = min(c.phases.batch_labelled, 1)
    c.phases.batch_pseudo = min(c.phases.batch_pseudo, 1)
    # one evaluation / labelling batch: at these sizes a forward pass costs its fixed overhead
    c.eval.batch_size = min(c.eval.batch_size, SMOKE_SEG_IMAGES)
    return c
