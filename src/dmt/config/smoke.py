"""``--smoke``: every stage of a preset for a few steps on a few images.

Users check a set-up (data layout, weights, memory, output directory) in about a minute before
a run of days. The run directory receives everything a real run writes.
"""

from __future__ import annotations

import copy

from dmt.config.schema import ExperimentConfig

SMOKE_STEPS = 2
SMOKE_IMAGES = 24


def apply_smoke(cfg: ExperimentConfig) -> ExperimentConfig:
    """A copy of ``cfg`` cut down to a few steps and images per stage (``smoke: true`` recorded)."""
    c = copy.deepcopy(cfg)
    c.smoke = True
    c.data.limit = SMOKE_IMAGES
    c.data.num_workers = 0
    for section in (c.baseline, c.phases, c.oracle):
        section.max_steps = SMOKE_STEPS
    c.baseline.batch_size = min(c.baseline.batch_size, 8)
    c.oracle.batch_size = min(c.oracle.batch_size, 8)
    c.phases.batch_labelled = min(c.phases.batch_labelled, 4)
    c.phases.batch_pseudo = min(c.phases.batch_pseudo, 4)
    c.eval.batch_size = min(c.eval.batch_size, 8)
    return c
