"""``dmt predict MODEL.onnx``: an exported ONNX file on your own images, scored by ONNX Runtime.

Only the scorer differs from the model file's path (:class:`~dmt.predict.scorers.OnnxScorer`
instead of the network): images are read, batched, windowed and reduced band by band by the
shared path (:mod:`dmt.predict.pipeline`), and written by the same functions, so the outputs are
the model file's up to the float arithmetic of the two runtimes (ONNX Runtime runs float32; a
model file on CUDA autocasts unless ``--no-amp``). Everything a prediction needs is in the file's
metadata (:mod:`dmt.predict.exported`): class names and colours (those recorded by ``dmt export
--classes/--palette/--data``), reading scale or size, the run's windows. A graph exported with
``--output probabilities`` has its probabilities averaged over windows (no softmax follows).

The ``.onnx`` file itself needs nothing of dmt or PyTorch: ONNX Runtime alone runs it
(docs/export.md); this command uses torch's CPU tensors for the shared reduction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dmt.data.images import DEFAULT_MAX_PIXELS
from dmt.errors import UserError
from dmt.predict.exported import onnx_metadata, onnx_session
from dmt.predict.inputs import collect_inputs, warn_if_classifying_masks
from dmt.predict.outputs import PredictOptions, PredictSummary
from dmt.predict.pipeline import predict_files
from dmt.predict.scorers import OnnxScorer
from dmt.tasks.segmentation.windows import DEFAULT_MAX_SIDE

log = logging.getLogger("dmt")


def is_onnx_file(path: str | Path) -> bool:
    """Whether ``dmt predict`` runs this file with ONNX Runtime (its suffix is ``.onnx``)."""
    return Path(path).suffix.lower() == ".onnx"


def predict_onnx(model_file: str, inputs: list[str], opts: PredictOptions, *, scale: float | None = None,
                 size: int | None = None) -> PredictSummary:
    """Predict every image with the ONNX file and write the outputs under ``opts.out``.

    ``scale`` (segmentation) and ``size`` (classification, fixed in the graph) override the export's
    reading settings; ``opts.window`` / ``opts.stride`` the windows recorded at export.
    """
    images = collect_inputs(inputs, opts.out)
    session = onnx_session(model_file, str(opts.device))
    meta = onnx_metadata(session, model_file)
    warn_if_classifying_masks(inputs, meta["task"], model_file)
    segmentation = meta["task"] == "segmentation"
    names = tuple(meta["class_names"])
    if scale is not None and not scale > 0:
        raise UserError(f"--scale: expected a positive factor, got {scale}")
    if not segmentation and size is not None and size != meta["size"]:
        raise UserError(f"--size {size}: {model_file} was exported for {meta['size']} x {meta['size']} images")
    if opts.window is None and meta.get("window"):  # the run evaluated in windows: predict alike
        opts.window, opts.stride = list(meta["window"]), (list(meta["stride"]) if meta.get("stride") else None)
    if opts.max_side is None:
        opts.max_side = DEFAULT_MAX_SIDE
    if opts.max_pixels is None:
        opts.max_pixels = DEFAULT_MAX_PIXELS
    read_scale = scale if scale is not None else float(meta.get("scale") or 1.0)
    log.info("%s: %s ONNX graph, %d classes; %d image(s) -> %s", model_file, meta["task"], len(names), len(images),
             opts.out)
    scorer = OnnxScorer(session, meta["output"] == "probabilities")
    return predict_files(scorer, meta["task"], images, int(meta["input_channels"]), read_scale,
                         None if segmentation else int(meta["size"]), names,
                         np.asarray(meta["palette"], dtype=np.uint8), opts)
