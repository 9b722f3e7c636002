"""A run: pre-flight check, the runner that executes a plan's stages in a run directory, status and summaries.

``runner.run_experiment`` is what ``dmt run`` calls: it checks data and weights (``preflight``),
opens the run directory (``rundir``: lock, config.yaml, results.json), runs each unfinished stage
with its task's runner and writes the summary (``summary``: results table and results.png).
``status`` reads a run without touching it. The only layer that knows the run directory's layout.
Imports ``tasks`` and everything below it.

This package is also the public function ``dmt.run(config_or_preset, out, **overrides)``
(:func:`run`): ``dmt.run`` names the package, so the package itself is made callable.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any


def run(config_or_preset: Any, out: str | Path, overrides: list[str] | None = None, *, smoke: bool = False,
        **dotted: Any) -> dict[str, Any]:
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
    from dmt.config import ExperimentConfig, load_config
    from dmt.config.loader import apply_overrides, config_from_dict, config_to_dict
    from dmt.config.smoke import apply_smoke
    from dmt.config.validate import validate_config
    from dmt.engine.launch import launch_world_size
    from dmt.run.runner import run_experiment

    texts = [*(overrides or []), *(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in dotted.items())]
    if isinstance(config_or_preset, ExperimentConfig):
        cfg = config_from_dict(apply_overrides(config_to_dict(config_or_preset), texts))
        validate_config(cfg)
    else:
        cfg = load_config(str(config_or_preset), texts)
    if smoke:
        cfg = apply_smoke(cfg, world_size=launch_world_size())
    return run_experiment(cfg, out)


class _CallablePackage(types.ModuleType):
    """The ``dmt.run`` package, callable as :func:`run` (a submodule import rebinds ``dmt.run`` to the package)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
