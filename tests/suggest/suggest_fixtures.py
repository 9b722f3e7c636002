"""A run directory made by hand for ``dmt suggest`` tests: a folder dataset, the run's config and lists, and
last-phase model files of random tiny networks (what ``dmt run --smoke`` leaves, without the training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dmt.config.loader import dump_config, load_config
from dmt.models import create_model
from dmt.models.files import save_model

CLASSES = ("background", "cat", "dog", "bird")


def folder_dataset(root: Path, images: dict[str, np.ndarray]) -> Path:
    """``root/images/<name>.png`` of each array and ``root/classes.txt`` (no masks: every image unlabelled)."""
    (root / "images").mkdir(parents=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(root / "images" / f"{name}.png")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def fake_run(run: Path, root: Path, unlabelled: list[str], members: tuple[str, ...] = ("a", "b"),
             model: str = "tiny_unet", overrides: tuple[str, ...] = ()) -> Path:
    """A run directory on ``root`` whose last phase (phase2) has a random ``model`` per member."""
    cfg = load_config(None, ["task=segmentation", "data.name=folder", f"data.root={root}", f"model.name={model}",
                             "model.init=none", *overrides])
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    (run / "splits").mkdir()
    (run / "splits" / "unlabelled.txt").write_text("".join(f"{n}\n" for n in unlabelled))
    for k, member in enumerate(members):
        torch.manual_seed(k)
        network = create_model(model, len(CLASSES)).eval()
        for stage in ("phase1", "phase2"):
            folder = run / "stages" / (f"{stage}-{member}" if member else stage)
            folder.mkdir(parents=True)
            save_model(folder / "model.safetensors", network, name=model, num_classes=len(CLASSES), kwargs={})
    return run


def smooth_image(seed: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    """An ``H x W x 3`` uint8 image of smooth random colours."""
    small = np.random.default_rng(seed).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size[::-1], Image.BILINEAR))
