"""``dmt predict``: a trained model file on your own images.

Segmentation writes, per image, ``<out>/masks/<name>.png`` (a palette PNG whose pixel values
are the class indices), ``<out>/overlays/<name>.png`` (the image blended with the class colours,
with a legend of the classes present) and, with ``probs``, ``<out>/probs/<name>.png`` (the top
class's probability as uint8, 255 = certain). Classification writes ``<out>/predictions.csv``:
file, class, class name, probability, top-k.

The model file's network scores the images (:class:`~dmt.predict.scorers.TorchScorer`: autocast
on CUDA unless ``--no-amp``, float32 elsewhere); reading, batching, windows and the band-by-band
reduction are the shared path's (:mod:`dmt.predict.pipeline`), which ``dmt predict MODEL.onnx``
and ``Model.predict`` use too. An image larger than ``max_side`` (default: the run's
``eval.max_side``, else 1024) is predicted in windows; memory is bounded by a window and the
image's own bytes, at any read scale. An image that cannot be read, or one over the pixel limit
(``--max-pixels``), is reported and skipped; the others are written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dmt.models.files import load_model
from dmt.predict.inputs import collect_inputs, warn_if_classifying_masks
from dmt.predict.meta import resolve_meta
from dmt.predict.outputs import PredictOptions, PredictSummary
from dmt.predict.pipeline import predict_files
from dmt.predict.scorers import TorchScorer, input_channels

log = logging.getLogger("dmt")


def predict(model_file: str, inputs: list[str], opts: PredictOptions, *, data: str | None = None,
            classes_file: str | None = None, palette_file: str | None = None, scale: float | None = None,
            size: int | None = None) -> PredictSummary:
    """Load the model file, resolve what its classes mean, find the images and predict them all.

    ``opts.device`` is a ``torch.device``; ``data``, ``classes_file``, ``palette_file``, ``scale``
    and ``size`` override what the model's run (or the file) says (see :func:`resolve_meta`).
    """
    images = collect_inputs(inputs, opts.out)
    network, model_meta = load_model(model_file, opts.device)
    warn_if_classifying_masks(inputs, model_meta["task"], model_file)
    meta = resolve_meta(Path(model_file), model_meta, data=data, classes_file=classes_file,
                        palette_file=palette_file, scale=scale, size=size)
    if opts.window is None and meta.window is not None:  # the run evaluated in windows: predict alike
        opts.window, opts.stride = list(meta.window), (list(meta.stride) if meta.stride else None)
    if opts.max_side is None:
        opts.max_side = meta.max_side
    if opts.max_pixels is None:
        opts.max_pixels = meta.max_pixels
    log.info("%s: %s model, %d classes; %d image(s) -> %s", model_file, model_meta["task"], len(meta.class_names),
             len(images), opts.out)
    scorer = TorchScorer(network, model_meta["task"], opts.device, opts.amp)
    return predict_files(scorer, model_meta["task"], images, input_channels(network), meta.scale, meta.size,
                         meta.class_names, meta.palette, opts)
