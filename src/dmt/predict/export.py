"""``dmt export``: a model file as an ONNX or TorchScript graph that needs nothing of dmt to run.

The graph (:class:`ExportedGraph`) takes a uint8 ``N x C x H x W`` image batch (RGB, or grey
for one-channel models), applies the model's own input convention inside (scale, mean, std,
channel order: the model's :class:`~dmt.models.conventions.InputNormalization`) and returns
class logits, or probabilities with ``output="probabilities"``: ``N x K x H x W`` at the input's
own size for segmentation (upsampled bilinear with aligned corners, as dmt's inference does),
``N x K`` for classification. The batch is dynamic for both tasks; height and width are dynamic
for segmentation and fixed to the training size for classification.

The export is written to a temporary file beside ``out`` (:func:`dmt.atomic.atomic_path`: unique
name, fsync, rename), verified against the PyTorch model (:mod:`dmt.predict.verify`) and only then
renamed to ``out``; a failed export or verification
leaves nothing behind and is one line (a :class:`~dmt.errors.UserError`).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dmt import __version__
from dmt.atomic import atomic_path
from dmt.errors import UserError
from dmt.models.files import load_model
from dmt.predict.exported import INPUT_NAME, INSTALL_HINT, TORCHSCRIPT_META_FILE, encode_metadata
from dmt.predict.meta import PredictMeta, resolve_meta
from dmt.predict.scorers import input_channels
from dmt.predict.verify import Check, verify_export
from dmt.tasks.segmentation.inference import upsampled_logits

FORMATS = ("onnx", "torchscript")
OUTPUTS = ("logits", "probabilities")
EXAMPLE_SIDES = (64, 80)  # the segmentation batch traced (2 x C x 64 x 80); verification uses other sizes


class ExportedGraph(nn.Module):
    """uint8 images in, logits or probabilities out: the model with dmt's reading and upsampling inside.

    Args:
        network: a dmt model in eval mode (its first layer applies its input convention to RGB in [0, 1]).
        task: ``"segmentation"`` or ``"classification"``.
        output: ``"logits"`` or ``"probabilities"`` (softmax over the classes).
    """

    def __init__(self, network: nn.Module, task: str, output: str = "logits") -> None:
        super().__init__()
        self.network, self.segmentation, self.probabilities = network, task == "segmentation", output == "probabilities"

    def forward(self, images: Tensor) -> Tensor:
        """``N x C x H x W`` uint8 -> ``N x K x H x W`` (segmentation) or ``N x K`` float32."""
        x = images.to(torch.float32) * (1.0 / 255.0)  # exactly torchvision's to_dtype(scale=True), as dmt reads
        scores = upsampled_logits(self.network, x) if self.segmentation else self.network(x)
        return scores.softmax(dim=1) if self.probabilities else scores


def export_onnx(graph: nn.Module, example: Tensor, path: Path, metadata: dict[str, str], output: str,
                dynamic_hw: bool) -> None:
    """Write ``graph`` as ONNX with ``metadata`` in its ``metadata_props``.

    ``torch.onnx.export(dynamo=True)``: torch.export traces the model with symbolic batch, height
    and width, which handles DeepLab-v2's and -v3+'s strided and dilated ResNets, ceil-mode
    pooling and the upsampling to the input size (checked on torch 2.14); the TorchScript-based
    exporter (``dynamo=False``, ``dynamic_axes``) is deprecated in torch 2.9+.
    """
    dims = {0: torch.export.Dim("batch", min=1)}
    if dynamic_hw:
        dims.update({2: torch.export.Dim("height", min=1), 3: torch.export.Dim("width", min=1)})
    program = torch.onnx.export(graph, (example,), dynamo=True, dynamic_shapes={INPUT_NAME: dims},
                                input_names=[INPUT_NAME], output_names=[output], verbose=False)
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    import onnx

    onnx.save_model(proto, str(path))  # one file, weights inside (models up to ONNX's 2 GB)


def export_torchscript(graph: nn.Module, example: Tensor, path: Path, metadata: dict[str, str], output: str,
                       dynamic_hw: bool) -> None:
    """Write ``graph`` as TorchScript (``torch.jit.trace``), ``metadata`` as the extra file ``dmt.json``.

    Traced, not scripted: dmt models keep their input convention as a dataclass TorchScript cannot
    compile. The sizes the model reads (``x.shape``) are recorded as graph operations, so the trace
    serves any height and width; verification runs other sizes than the traced one to prove it.
    ``torch.jit`` is deprecated in torch 2.9+ (its FutureWarnings are silenced here) but still the
    format C++ deployments (libtorch) load.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the convention's channel check: fixed
        traced = torch.jit.trace(graph, (example,), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META_FILE: json.dumps(metadata)})


# format -> writer; tests replace one to prove a perturbed graph is refused
EXPORTERS: dict[str, Callable[..., None]] = {"onnx": export_onnx, "torchscript": export_torchscript}


@dataclass
class ExportReport:
    """What ``dmt export`` wrote and how well it matched: the file, its checks, the seconds spent."""

    path: Path
    format: str
    checks: list[Check]
    export_s: float
    verify_s: float


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_metadata(model_file: Path, model_meta: dict[str, Any], meta: PredictMeta, output: str,
                    channels: int) -> dict[str, Any]:
    """Everything :mod:`dmt.predict.exported` records about an export (see its keys)."""
    task = model_meta["task"]
    segmentation = task == "segmentation"
    return {"dmt_version": __version__, "task": task, "model": model_meta["model"],
            "num_classes": int(model_meta["num_classes"]), "output": output,
            "input": f"{INPUT_NAME}: uint8 N x {channels} x H x W, {'RGB' if channels == 3 else 'grey'} 0-255",
            "input_channels": channels, "input_convention": model_meta.get("input_convention"),
            "class_names": list(meta.class_names), "palette": meta.palette.tolist(),
            "scale": meta.scale if segmentation else None, "size": None if segmentation else meta.size,
            "window": meta.window if segmentation else None, "stride": meta.stride if segmentation else None,
            "source_file": model_file.name, "source_sha256": sha256_of(model_file)}


def check_request(fmt: str, out: Path, output: str) -> None:
    """Refuse an unknown format or output, a misnamed ONNX file, a missing folder or a missing package."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected {' or '.join(FORMATS)}")
    if output not in OUTPUTS:
        raise UserError(f"--output {output!r}: expected {' or '.join(OUTPUTS)}")
    if fmt == "onnx" and out.suffix.lower() != ".onnx":
        raise UserError(f"--out {out}: an ONNX file must end in .onnx (dmt predict recognises it by the suffix)")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; name the file to write")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as e:
            raise UserError(f"--format onnx needs {e.name}: {INSTALL_HINT}") from None


def export_model(model_file: str | Path, out: str | Path, fmt: str = "onnx", *, output: str = "logits",
                 data: str | None = None, classes_file: str | None = None, palette_file: str | None = None,
                 scale: float | None = None, size: int | None = None,
                 print_fn: Callable[[str], Any] = print) -> ExportReport:
    """Export a model file to ``out`` (ONNX or TorchScript), verify it, and only then keep it.

    Args:
        model_file: a model file written by ``dmt run`` (``stages/<stage>/model.safetensors``).
        out: the file to write (``.onnx`` for ONNX); its folder is created.
        fmt: ``"onnx"`` or ``"torchscript"``.
        output: ``"logits"`` or ``"probabilities"``.
        data, classes_file, palette_file, scale, size: what the classes mean and how images are
            read, as for ``dmt predict`` (default: the model's run, else the model file).
        print_fn: receives one line per verified batch.

    Raises:
        UserError: a bad request, an export the exporter refuses, or a graph that does not match
            the PyTorch model within the tolerance (:mod:`dmt.predict.verify`); nothing is written.
    """
    model_file, out = Path(model_file), Path(out)
    check_request(fmt, out, output)
    if out.resolve() == model_file.resolve():
        raise UserError(f"--out {out} is the model file itself; name another file")
    network, model_meta = load_model(model_file, "cpu")
    meta = resolve_meta(model_file, model_meta, data=data, classes_file=classes_file, palette_file=palette_file,
                        scale=scale, size=size)
    channels, task = input_channels(network), model_meta["task"]
    segmentation = task == "segmentation"
    graph = ExportedGraph(network, task, output).eval()
    side = EXAMPLE_SIDES if segmentation else (meta.size, meta.size)
    example = torch.randint(0, 256, (2, channels, *side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    metadata = encode_metadata(export_metadata(model_file, model_meta, meta, output, channels))
    with atomic_path(out) as tmp:  # renamed to out only once verified; removed on any failure
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                EXPORTERS[fmt](graph, example, tmp, metadata, output, segmentation)
        except UserError:
            raise
        except Exception as e:  # the exporter's own errors: one line, the model named
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(f"{model_file}: the {fmt} exporter failed ({type(e).__name__}: {first})") from e
        t1 = time.perf_counter()
        checks = verify_export(graph, tmp, fmt, task, channels, meta.size, output)
        t2 = time.perf_counter()
        for check in checks:
            print_fn(check.line())
        failed = [c for c in checks if not c.ok]
        if failed:
            raise UserError(f"{out}: not written: the exported {fmt} graph does not match the PyTorch model "
                            f"({failed[0].summary()})")
    return ExportReport(out, fmt, checks, t1 - t0, t2 - t1)
