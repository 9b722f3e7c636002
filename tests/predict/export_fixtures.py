"""Tiny model files and images shared by the export, ONNX-prediction and Model tests."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmt.models import create_model
from dmt.models.files import save_model

HAS_ONNX = all(find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs the export extra: pip install 'dmt[export]'")

CLASSES = ("background", "cat", "dog", "fox")


def save_tiny(path: Path, name: str, seed: int = 0, **kwargs) -> tuple[Path, torch.nn.Module]:
    """A randomly initialised registered model (4 classes) written as a model file; returns (path, model)."""
    torch.manual_seed(seed)
    model = create_model(name, len(CLASSES), **kwargs).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, model, name=name, num_classes=len(CLASSES), kwargs=kwargs, info={"classes": list(CLASSES)})
    return path, model


def save_and_export(path: Path, name: str, **kwargs) -> tuple[Path, torch.nn.Module]:
    """:func:`save_tiny`, then its ONNX export beside it (``PATH.onnx``); skips without the export extra."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from dmt.predict.export import export_model

    model_file, model = save_tiny(path, name, **kwargs)
    export_model(model_file, model_file.with_suffix(".onnx"), "onnx", print_fn=lambda line: None)
    return model_file, model


def write_image(path: Path, h: int, w: int, seed: int) -> Path:
    """A smooth random RGB image (noise plus gradients, like a photo more than pure noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
    pixels = np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path
