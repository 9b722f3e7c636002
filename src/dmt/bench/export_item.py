"""The ``export`` bench item: DeepLab-v2 exported to ONNX, and ONNX Runtime against PyTorch inference.

Both runtimes compute the same exported graph (:class:`~dmt.predict.export.ExportedGraph`: uint8
image in, logits at the input size out) on the same image, on the CPU, with the same number of
threads (torch's), after one untimed warm-up run each, interleaved by :func:`~dmt.bench.harness.measure`.
The export (``torch.onnx.export`` and writing the file) and its verification are timed once.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from dmt.bench.harness import Variant, measure
from dmt.bench.items import item
from dmt.models import create_model
from dmt.models.files import save_model


def export_variants(model_name: str, side: int, folder: Path) -> tuple[list[Variant], list[dict[str, Any]]]:
    """Export a randomly initialised ``model_name`` (21 classes) to ONNX in ``folder``.

    Returns the inference variants (PyTorch first, the plain one; then ONNX Runtime) on one
    ``side x side`` image, and the rows of the one-off export and verification times.
    """
    from dmt.predict.export import ExportedGraph, export_model
    from dmt.predict.exported import onnx_scores, onnx_session

    torch.manual_seed(0)
    model = create_model(model_name, num_classes=21).eval()
    model_file = folder / "model.safetensors"
    save_model(model_file, model, name=model_name, num_classes=21, kwargs={})
    report = export_model(model_file, folder / "model.onnx", "onnx", print_fn=lambda line: None)
    one_off = [{"variant": "export: torch.onnx.export (dynamo) + save, once", "median_s": report.export_s,
                "min_s": report.export_s, "peak_mib": 0.0, "ratio": None},
               {"variant": "verify: 2 batches, both runtimes, once", "median_s": report.verify_s,
                "min_s": report.verify_s, "peak_mib": 0.0, "ratio": None,
                "max_logit_difference": max(c.max_diff for c in report.checks)}]
    graph = ExportedGraph(model, "segmentation").eval()
    session = onnx_session(folder / "model.onnx", "cpu", threads=torch.get_num_threads())
    image = torch.randint(0, 256, (1, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))

    @torch.no_grad()
    def pytorch() -> None:
        graph(image)

    def onnxruntime() -> None:
        onnx_scores(session, image.numpy())
    return [Variant("pytorch eager, float32", pytorch, plain=True),
            Variant("onnxruntime (CPU provider), float32", onnxruntime)], one_off


@item("export")
def export(quick: bool, device: torch.device) -> dict[str, Any]:
    """DeepLab-v2/ResNet-101 (random init) exported to ONNX; inference on one 505x505 image (--quick: 321)."""
    side = 321 if quick else 505
    folder = Path(tempfile.mkdtemp(prefix="dmt-bench-export-"))
    try:
        variants, one_off = export_variants("deeplabv2_resnet101", side, folder)
        rows = measure(variants, 2 if quick else 3, torch.device("cpu"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"what": f"DeepLab-v2/ResNet-101 inference, 1 x {side}x{side}, CPU, {torch.get_num_threads()} threads "
                    "each; ONNX export once", "rows": rows + one_off}
