"""What ``dmt suggest`` reads from a run directory: its last phase's members and its unlabelled images.

The members are the model files of the run's last phase that has them
(``stages/phase<k>[-a|-b]/model.safetensors``; a run without phases: its baselines), loaded as
``dmt predict`` loads a model file; what their classes mean and how images are read (read scale,
windows, ``max_side``, ``max_pixels``) comes from the run as for ``dmt predict``
(:func:`~dmt.predict.meta.resolve_meta`). The candidates are the names of the run's
``splits/unlabelled.txt``, turned into images by the run's own data source (its ``config.yaml``),
so a folder dataset's files and the digit-scenes demo's generated images are found alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmt.data.segmentation import SegItem
from dmt.errors import UserError
from dmt.predict.meta import PredictMeta, resolve_meta
from dmt.predict.model import as_pixels
from dmt.predict.scorers import TorchScorer, input_channels

MODEL_FILE = "model.safetensors"


def last_stage_models(run: Path) -> list[Path]:
    """The model files of the run's last phase with any (members a then b), else of its baselines.

    Raises:
        UserError: ``run`` holds no phase or baseline model file.
    """
    found: dict[int, list[Path]] = {}
    for path in sorted((run / "stages").glob(f"*/{MODEL_FILE}")):
        m = re.fullmatch(r"(?:phase(\d+)|baseline)(-[ab])?", path.parent.name)
        if m:
            found.setdefault(int(m.group(1) or 0), []).append(path)
    if not found:
        raise UserError(f"{run}: no stages/phase<k>/{MODEL_FILE} or stages/baseline*/{MODEL_FILE} "
                        "(not a dmt run directory, or no phase has finished yet)")
    return found[max(found)]


class MeanScorer:
    """Several scorers as one: the mean of their class probabilities (the drafts' prediction)."""

    probabilities = True

    def __init__(self, scorers: list[Any]) -> None:
        self.scorers, self.device = scorers, scorers[0].device

    def place(self, images: torch.Tensor) -> torch.Tensor:
        """The batch on the first scorer's device (the members of a run share one)."""
        return self.scorers[0].place(images)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``N x K x h x w`` mean probabilities."""
        total = None
        for scorer in self.scorers:
            scores = scorer(images).float()
            p = scores if scorer.probabilities else scores.softmax(dim=1)
            total = p if total is None else total + p
        assert total is not None
        return total / len(self.scorers)


@dataclass
class Members:
    """The scorers of a run's last phase and what their outputs mean.

    Attributes:
        files: the model files (one or two); scorers: one :class:`~dmt.predict.scorers.TorchScorer` each.
        meta: the first member's meaning and reading (the members of one run share them).
        channels: 3 (RGB) or 1 (grey), as the first member reads.
    """

    files: list[Path]
    scorers: list[Any]
    meta: PredictMeta
    channels: int


def load_members(run: Path, device: torch.device, amp: bool = True) -> Members:
    """The run's last-phase members as scorers (segmentation runs only)."""
    from dmt.models.files import load_model

    files = last_stage_models(run)
    scorers, meta, channels = [], None, 3
    for path in files:
        network, model_meta = load_model(path, device)
        if model_meta["task"] != "segmentation":
            raise UserError(f"{path}: a {model_meta['task']} model; dmt suggest ranks segmentation runs' images")
        if meta is None:
            meta, channels = resolve_meta(path, model_meta), input_channels(network)
        scorers.append(TorchScorer(network, "segmentation", device, amp))
    assert meta is not None
    return Members(files, scorers, meta, channels)


def unlabelled_items(run: Path) -> list[SegItem]:
    """The run's unlabelled images (``splits/unlabelled.txt``) through its data source.

    Raises:
        UserError: no ``config.yaml`` or no ``splits/unlabelled.txt``, or an empty list.
    """
    from dmt.config.loader import load_config
    from dmt.data.splits import read_split_file
    from dmt.tasks.segmentation.data import build_source

    config, names_file = run / "config.yaml", run / "splits" / "unlabelled.txt"
    for path in (config, names_file):
        if not path.is_file():
            raise UserError(f"{path}: not found (dmt suggest reads a segmentation run directory)")
    names = read_split_file(names_file)
    if not names:
        raise UserError(f"{names_file}: the run has no unlabelled images to rank (pass --images LIST)")
    source = build_source(load_config(str(config)))
    return source.items_from_names(names, str(names_file))


def read_item(item: SegItem, channels: int, max_pixels: int | None) -> np.ndarray:
    """An item's image as ``H x W x channels`` uint8 (files as ``dmt predict`` reads them)."""
    from dmt.predict.inputs import read_rgb

    if isinstance(item.image, np.ndarray):
        return as_pixels(item.image, channels)
    return read_rgb(Path(item.image), channels, max_pixels)
