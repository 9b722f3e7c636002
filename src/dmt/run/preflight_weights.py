"""The pre-flight's weights files: each one the config names is loaded into the real model, safely.

:func:`check_weights` builds every member's network with its weights file (``model.weights``,
``mutual.weights_b``), so a file that does not open or does not fit is one line naming its config
key before the first stage. Under ``--smoke`` a missing file is instead one warning line, printed
here once per file (the smoke's own model builds train stand-ins, or start from random weights,
without repeating it): :func:`smoke_weights_warning`.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Iterator

from dmt.config.schema import ExperimentConfig
from dmt.errors import UserError
from dmt.tasks.plan import make_plan, member_init, member_model, name_config_key

log = logging.getLogger("dmt")


@contextmanager
def held_back_info() -> Iterator[None]:
    """Hold back the info lines of code that the run will call again (its own log says it then)."""
    logger = logging.getLogger("dmt")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def weights_files(cfg: ExperimentConfig) -> list[tuple[str, str, str | None, str, dict]]:
    """``(config key, init, file, model name, model kwargs)`` of each pretrained initialisation the
    run will load (model B may be another network than A). Segmentation reads a member's weights
    for its ``init`` only (``init: none`` ignores the preset's ``weights: hub``); classification
    (``timm/<name>``) has no init and reads ``model.weights`` whenever it is set."""
    names = sorted({s.member for s in make_plan(cfg)}, key=str)  # model A's (or the one model's) first
    out: dict[tuple, tuple] = {}
    for m in names:
        key, init, path = member_init(cfg, m)
        name, kwargs = member_model(cfg, m)
        if init != "none" or (path and cfg.task == "classification"):
            out.setdefault((key, init, path, name, repr(sorted(kwargs.items()))), (key, init, path, name, kwargs))
    return list(out.values())


def check_weights(cfg: ExperimentConfig, num_classes: int) -> list[str]:
    """Build the model with each weights file the config names (safe loading); returns the files.

    ``--smoke`` runs start from random weights when a file is missing, so a missing file is not
    an error there but one warning line per file (:func:`smoke_weights_warning`: the key, where the
    file comes from, and that the smoke goes on from random weights); a file that is present must
    still fit the real model, even where the smoke trains a tiny stand-in. ``hub`` (the model's
    published file) is checked from its cache, fetched into it first when online; offline with
    nothing cached it is one line naming the file. ``--smoke`` checks a cached hub file and warns
    about an absent one (never downloading it).
    """
    from dmt.models import create_model
    from dmt.models.backbones.hub import HUB, WeightsFileMissing

    checked = []
    for key, init, path, name, model_kwargs in weights_files(cfg):
        hub = path is not None and str(path) == HUB
        kwargs = {**model_kwargs, "weights_path": path, "strict_weights": not cfg.smoke}
        if init != "none":  # timm/<name> models take no init: their weights alone make them pretrained
            kwargs["init"] = init
        try:
            with held_back_info(), warnings.catch_warnings():
                warnings.simplefilter("error", WeightsFileMissing)  # stops the factory before it builds the network
                create_model(name, num_classes, **kwargs)
        except WeightsFileMissing as missing:  # --smoke, and no file: nothing to check now
            log.warning("%s", smoke_weights_warning(missing.problem, key, name))
            continue
        except UserError as e:
            text = name_config_key(str(e), key)  # an unreadable file's line names the file first: the key leads
            raise UserError(text if text.startswith("config key") else f"config key {key!r}: {text}") from None
        checked.append(f"{key}=hub ({name})" if hub else str(path) if path else f"{init} default")
    return checked


def smoke_weights_warning(problem: str, key: str, model: str) -> str:
    """The one line ``--smoke`` prints for a missing weights file: the factory's ``problem`` (what is
    missing, where it comes from, what to set) in the config's words, and what the smoke does."""
    return f"--smoke ({model}): {name_config_key(problem, key)}; the smoke run goes on from random weights"
