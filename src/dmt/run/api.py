"""``dmt.run_experiment``: ``dmt run`` from Python, and the configuration both of them run.

:func:`experiment_config` turns a preset name, a YAML file or an
:class:`~dmt.config.ExperimentConfig`, with overrides and ``--smoke``, into the validated
configuration of a run; ``dmt run`` (:mod:`dmt.cli.run`) and :func:`run_experiment` both call it,
then :func:`dmt.run.runner.run_stages`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dmt.config import ExperimentConfig, load_config
from dmt.config.loader import apply_overrides, config_from_dict, config_to_dict
from dmt.config.smoke import apply_smoke
from dmt.config.validate import validate_config
from dmt.engine.launch import launch_world_size
from dmt.run.runner import processes_per_member, run_stages


def override_texts(overrides: list[str] | None, dotted: dict[str, Any]) -> list[str]:
    """The ``key=value`` strings of ``overrides`` then ``dotted`` (non-strings as JSON, which YAML reads)."""
    return [*(overrides or []), *(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in dotted.items())]


def experiment_config(config_or_preset: str | Path | ExperimentConfig, overrides: list[str] | None = None, *,
                      smoke: bool = False) -> ExperimentConfig:
    """The validated configuration of a run: a preset, YAML file or config object, overridden, smoke-cut.

    A config object is copied, never changed. With ``smoke``, batches are divided by the processes
    each stage runs on (all of them, or a member's share when members run side by side).
    """
    if isinstance(config_or_preset, ExperimentConfig):
        cfg = config_from_dict(apply_overrides(config_to_dict(config_or_preset), overrides or []))
        validate_config(cfg)
    else:
        cfg = load_config(str(config_or_preset), overrides or [])
    if smoke:
        cfg = apply_smoke(cfg, world_size=processes_per_member(cfg, launch_world_size()))
    return cfg


def run_experiment(config_or_preset: str | Path | ExperimentConfig, out: str | Path,
                   overrides: list[str] | None = None, *, smoke: bool = False, **dotted: Any) -> dict[str, Any]:
    """Run (or resume) an experiment in the run directory ``out``, as ``dmt run`` does; returns its results.

    Args:
        config_or_preset: a preset name (``"voc-20-dmt"``, see ``dmt presets``), a YAML file, or an
            :class:`~dmt.config.ExperimentConfig` (e.g. from :func:`dmt.load_config`).
        out: the run directory; running again on the same directory resumes.
        overrides: ``"dotted.key=value"`` strings, as on the command line.
        smoke: every stage for a few steps on a few images (``--smoke``).
        **dotted: more overrides as keyword arguments, ``**{"baseline.epochs": 1}``; values are
            strings (read as YAML, as on the command line) or numbers, booleans, None and lists.

    Returns:
        The contents of ``out/results.json`` (see docs/results.md).
    """
    cfg = experiment_config(config_or_preset, override_texts(overrides, dotted), smoke=smoke)
    return run_stages(cfg, out)
