"""What an exported model file carries, and running an exported ONNX file with ONNX Runtime.

``dmt export`` writes, beside the graph, everything a deployment needs to use its outputs: the
task, the class names and colours, what the graph returns, how images are read (scale, size),
the windows the run evaluated with and the source model file's sha256. ONNX files keep these in
``metadata_props`` (one string each); TorchScript files in the extra file ``dmt.json``. Plain
strings stay strings (:data:`TEXT_KEYS`), every other value is JSON text.

The ONNX file needs nothing but ONNX Runtime (these functions use numpy and onnxruntime only);
``dmt predict MODEL.onnx`` scores batches through :func:`onnx_scores`
(:class:`~dmt.predict.scorers.OnnxScorer`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dmt.errors import UserError

INPUT_NAME = "images"  # the graph's one input: uint8 N x C x H x W
TORCHSCRIPT_META_FILE = "dmt.json"  # the extra file of a TorchScript archive holding the metadata
TEXT_KEYS = ("dmt_version", "task", "model", "output", "input", "source_file", "source_sha256")
JSON_KEYS = ("num_classes", "input_channels", "input_convention", "class_names", "palette", "scale", "size",
             "window", "stride")
INSTALL_HINT = "pip install 'dmt[export]' (onnx, onnxscript, onnxruntime)"


def encode_metadata(meta: dict[str, Any]) -> dict[str, str]:
    """The metadata as ONNX ``metadata_props`` strings: text keys as they are, the others as JSON."""
    unknown = sorted(set(meta) - set(TEXT_KEYS) - set(JSON_KEYS))
    if unknown:
        raise ValueError(f"unknown metadata keys {unknown}")
    return {k: str(v) if k in TEXT_KEYS else json.dumps(v) for k, v in meta.items()}


def decode_metadata(props: dict[str, str], path: Path | str) -> dict[str, Any]:
    """:func:`encode_metadata` undone; a file without dmt's metadata is a UserError naming it."""
    missing = [k for k in ("task", "output", "class_names", "input_channels") if k not in props]
    if missing:
        raise UserError(f"{path}: not written by `dmt export` (its metadata lacks {', '.join(missing)})")
    try:
        return {k: v if k in TEXT_KEYS else json.loads(v) for k, v in props.items()
                if k in TEXT_KEYS or k in JSON_KEYS}
    except ValueError as e:
        raise UserError(f"{path}: damaged dmt metadata ({e})") from None


def onnxruntime_module() -> Any:
    """The ``onnxruntime`` package, or a UserError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"running an .onnx file needs ONNX Runtime: {INSTALL_HINT}") from None
    return onnxruntime


def onnx_session(path: Path | str, device: str = "cpu", threads: int = 0) -> Any:
    """An ONNX Runtime session of ``path``.

    Args:
        device: ``"cpu"``; ``"cuda"`` (refused if this ONNX Runtime has no CUDA provider); ``"auto"``:
            CUDA where this ONNX Runtime has it (``onnxruntime-gpu``), else the CPU.
        threads: intra-op threads (0: ONNX Runtime's default, one per core).
    """
    ort = onnxruntime_module()
    if device not in ("cpu", "cuda", "auto"):
        raise UserError(f"--device {device!r}: an .onnx file runs on auto, cpu or cuda")
    providers = ["CPUExecutionProvider"]
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise UserError("--device cuda: this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu)")
    if device != "cpu" and has_cuda:
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: no warnings about unused initialisers on stderr
    # no CPU arena: it keeps the largest window's activations for good (+10 % peak at 36 MP)
    options.enable_cpu_mem_arena = False
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # ONNX Runtime's own exception types (InvalidProtobuf, NoSuchFile, ...)
        raise UserError(f"{path}: ONNX Runtime cannot load it ({str(e).strip().splitlines()[0]})") from None


def onnx_metadata(session: Any, path: Path | str) -> dict[str, Any]:
    """The dmt metadata of a loaded ONNX file (see :func:`decode_metadata`)."""
    return decode_metadata(dict(session.get_modelmeta().custom_metadata_map), path)


def onnx_scores(session: Any, images: np.ndarray) -> np.ndarray:
    """Run the graph on a ``N x C x H x W`` uint8 batch; returns its float32 output (logits or probabilities)."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W uint8, got {images.dtype} {images.shape}")
    return session.run(None, {INPUT_NAME: np.ascontiguousarray(images)})[0]
