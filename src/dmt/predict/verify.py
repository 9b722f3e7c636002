"""Verification of an export: the written file, run by its own runtime, against the PyTorch model.

The exported file is loaded the way a deployment loads it (ONNX Runtime for ``.onnx``,
``torch.jit.load`` for TorchScript) and run on seeded random uint8 batches of sizes the export
did not trace: for segmentation a batch of 1 at 67 x 93 and a batch of 3 at 45 x 61, for
classification batches of 1 and 3 at the training size. Each batch must match the PyTorch graph
within the tolerance (float32 on the CPU):

* logits: ``max |difference| <= LOGIT_RTOL * max(1, max |logit|)``. Rounding errors of float32
  convolutions grow with the values they add up: a randomly initialised DeepLab-v2 has logits
  near 2e5 and differs from ONNX Runtime by 3e-1 there (1.7e-6 of its scale); a trained model's
  logits are near 10 and agree to 1e-5.
* probabilities: ``max |difference| <= PROBABILITY_ATOL``.

Argmax agreement (the share of pixels or images whose top class is the same) is reported beside
it; it can only fall short of 100 % where two classes' scores are within twice the tolerance.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

LOGIT_RTOL = 1e-4
PROBABILITY_ATOL = 1e-4
SEGMENTATION_BATCHES = ((1, 67, 93), (3, 45, 61))  # (batch, height, width): odd, unlike the traced 2 x 64 x 80
CLASSIFICATION_BATCHES = (1, 3)
SEED = 2024


@dataclass(frozen=True)
class Check:
    """One verified batch: the input's shape, argmax agreement, largest difference and the tolerance."""

    shape: tuple[int, ...]
    agreement: float
    max_diff: float
    tolerance: float
    output: str = "logits"

    @property
    def ok(self) -> bool:
        return bool(self.max_diff <= self.tolerance)  # NaN fails

    def summary(self) -> str:
        shape = "x".join(str(s) for s in self.shape)
        what = "logit" if self.output == "logits" else "probability"
        return (f"batch {shape}: argmax agreement {self.agreement:.2%}, max |{what} difference| {self.max_diff:.3g} "
                f"(tolerance {self.tolerance:.3g})")

    def line(self) -> str:
        return f"verify {'ok  ' if self.ok else 'FAIL'} {self.summary()}"


def tolerance(reference: np.ndarray, output: str) -> float:
    """The largest difference accepted for this reference output (see the module docstring)."""
    if output == "probabilities":
        return PROBABILITY_ATOL
    return LOGIT_RTOL * max(1.0, float(np.abs(reference).max(initial=0.0)))


def compare(shape: tuple[int, ...], reference: np.ndarray, exported: np.ndarray, output: str) -> Check:
    """A :class:`Check` of the exported output for an input batch of ``shape`` against the PyTorch one."""
    if reference.shape != exported.shape:
        return Check(shape, 0.0, float("inf"), tolerance(reference, output), output)
    agreement = float((reference.argmax(1) == exported.argmax(1)).mean())
    diff = float(np.abs(reference.astype(np.float64) - exported).max(initial=0.0))
    return Check(shape, agreement, diff, tolerance(reference, output), output)


def verification_batches(task: str, channels: int, size: int) -> list[np.ndarray]:
    """Seeded random uint8 batches of the sizes listed in the module docstring."""
    rng = np.random.default_rng(SEED)
    shapes = ([(n, channels, h, w) for n, h, w in SEGMENTATION_BATCHES] if task == "segmentation"
              else [(n, channels, size, size) for n in CLASSIFICATION_BATCHES])
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]


def exported_runner(path: Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """The exported file loaded as a deployment loads it: ``uint8 batch -> float32 output``."""
    if fmt == "onnx":
        from dmt.predict.exported import onnx_scores, onnx_session

        session = onnx_session(path, "cpu")
        return lambda images: onnx_scores(session, images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated (see export_torchscript)
        module = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.no_grad()
    def run(images: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(images)).numpy()
    return run


@torch.no_grad()
def verify_export(graph: nn.Module, path: Path, fmt: str, task: str, channels: int, size: int,
                  output: str) -> list[Check]:
    """Run the exported file and the PyTorch ``graph`` on the verification batches; one check each."""
    run = exported_runner(path, fmt)
    return [compare(images.shape, graph(torch.from_numpy(images)).numpy(), run(images), output)
            for images in verification_batches(task, channels, size)]
