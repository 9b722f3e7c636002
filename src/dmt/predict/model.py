"""``dmt.load_model``: a trained model file as a Python object that predicts images.

A :class:`Model` is the network in eval mode with everything that gives its outputs a meaning:
class names, palette, task, input convention and how its run read and evaluated images (read
scale, classification size, sliding windows). :meth:`Model.predict` takes PIL images, numpy
arrays or uint8 tensors and returns one :class:`Prediction` per image at the image's own size,
computed by the path ``dmt predict`` uses (:mod:`dmt.predict.pipeline`: the same reading, batches
of consecutive images of one size, windows when larger than the run's ``eval.max_side``, band-by-band
reduction) and under the same precision policy (:func:`~dmt.predict.scorers.autocast_policy`:
autocast on CUDA unless ``amp=False``), so it gives the masks ``dmt predict`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from dmt.errors import UserError
from dmt.models.conventions import InputConvention
from dmt.models.files import load_model as load_model_file
from dmt.predict.meta import PredictMeta, resolve_meta
from dmt.predict.batches import batches, sample
from dmt.predict.pipeline import classify, segment
from dmt.predict.scorers import TorchScorer, input_channels
from dmt.tasks.context import resolve_device

ImageLike = Any  # PIL.Image.Image | np.ndarray (H x W x C or H x W, uint8) | torch.Tensor (C x H x W, uint8)


@dataclass(frozen=True)
class Prediction:
    """One image's prediction, at the image's own size.

    Attributes:
        classes: segmentation: ``H x W`` uint8 class of every pixel; classification: the class index.
        confidence: segmentation: ``H x W`` float32 probability of each pixel's class;
            classification: the probability of the class.
        probabilities: classification: ``(K,)`` float32 probability of every class; segmentation: None.
        class_names: the model's class names (``class_names[c]`` names class ``c``).
    """

    classes: np.ndarray | int
    confidence: np.ndarray | float
    probabilities: np.ndarray | None
    class_names: tuple[str, ...]

    @property
    def label(self) -> str | None:
        """Classification: the predicted class's name; segmentation: None."""
        return self.class_names[self.classes] if isinstance(self.classes, int) else None


def as_pixels(image: ImageLike, channels: int) -> np.ndarray:
    """A PIL image, ``H x W [x C]`` uint8 array or ``C x H x W`` uint8 tensor as ``H x W x channels`` uint8."""
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8 or image.dim() != 3:
            raise UserError(f"a tensor image must be C x H x W uint8, got {image.dtype} {tuple(image.shape)}")
        image = image.permute(1, 2, 0).cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise UserError(f"an array image must be H x W, H x W x 1 or H x W x 3 uint8, got {image.dtype} {image.shape}")
        if image.ndim == 3 and image.shape[2] == channels:
            return image
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    if not isinstance(image, Image.Image):
        raise UserError(f"cannot predict a {type(image).__name__}: pass PIL images, uint8 arrays or uint8 tensors")
    converted = image.convert("L" if channels == 1 else "RGB")
    return np.asarray(converted).reshape(converted.height, converted.width, channels)


class Model:
    """A trained dmt model ready to predict (build it with :func:`load_model`).

    Attributes:
        network: the ``torch.nn.Module`` in eval mode; it takes RGB floats in [0, 1] and applies
            its input convention itself.
        task: ``"segmentation"`` or ``"classification"``.
        class_names: one name per class; palette: ``K x 3`` uint8 colours.
        input_convention: the channel order, scale, mean and std the network applies inside.
        window, stride: the run's sliding-window evaluation (segmentation), or None: whole images.
        scale: segmentation read scale; size: classification image size.
        scorer: the network under ``dmt predict``'s precision policy (autocast on CUDA unless
            ``amp=False``); batch_size: consecutive images of one size predicted together.
    """

    def __init__(self, network: nn.Module, task: str, meta: PredictMeta, path: Path, device: torch.device,
                 amp: bool = True, batch_size: int = 8) -> None:
        self.network, self.task, self.path, self.device = network, task, path, device
        self.scorer = TorchScorer(network, task, device, amp)
        self.batch_size = batch_size  # consecutive images of one size scored together, as dmt predict does
        self.class_names, self.palette = meta.class_names, meta.palette
        self.window, self.stride, self.scale, self.size = meta.window, meta.stride, meta.scale, meta.size
        self.max_side = meta.max_side  # larger images are predicted in windows (the run's eval.max_side)
        self.input_channels = input_channels(network)
        self.input_convention: InputConvention | None = getattr(network, "input_convention", None)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        how = f"windows {self.window}" if self.window else "whole images"
        return f"Model({str(self.path)!r}, {self.task}, {self.num_classes} classes, {how}, {self.device})"

    def predict(self, images: ImageLike | Sequence[ImageLike]) -> Prediction | list[Prediction]:
        """Predict one image or several, each at its own size.

        Args:
            images: a PIL image, an ``H x W x 3`` (or grey ``H x W``) uint8 numpy array or a
                ``C x H x W`` uint8 tensor; or a list of them, an ``N x H x W x C`` array or an
                ``N x C x H x W`` tensor.

        Returns:
            One :class:`Prediction` for one image, a list for several.
        """
        batched = isinstance(images, (list, tuple)) or (getattr(images, "ndim", 0) == 4)
        segmentation = self.task == "segmentation"
        samples = (sample(i, as_pixels(image, self.input_channels), self.scale, None if segmentation else self.size)
                   for i, image in enumerate(images if batched else [images]))
        predictions: list[Prediction] = []
        for batch in batches(samples, self.batch_size):
            assert batch.images is not None  # in-memory images are never unreadable
            x = self.scorer.place(batch.images)
            if segmentation:
                maps = segment(self.scorer, x, batch.sizes, self.window, self.stride, self.max_side,
                               float_confidence=True)
                predictions += [Prediction(classes, confidence, None, self.class_names) for classes, confidence in maps]
            else:
                for probs in classify(self.scorer, x):
                    top = int(probs.argmax())
                    predictions.append(Prediction(top, float(probs[top]), probs, self.class_names))
        return predictions if batched else predictions[0]


def load_model(path: str | Path, device: str = "auto", *, data: str | None = None, classes_file: str | None = None,
               palette_file: str | None = None, amp: bool = True, batch_size: int = 8) -> Model:
    """Load a model file written by ``dmt run`` (``<run>/stages/<stage>/model.safetensors``) as a :class:`Model`.

    Class names, palette, read scale and windows come from the model's run directory when the file
    is inside one, else from the file; ``data`` (a built-in dataset's name), ``classes_file`` and
    ``palette_file`` override them as ``dmt predict``'s options do.

    Args:
        path: the model file.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: autocast on CUDA (``dmt predict``'s default; False: float32, as ``--no-amp``).
        batch_size: consecutive images of one size predicted together (``--batch-size``).
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        raise UserError(f"{path} is an exported ONNX file: run it with ONNX Runtime or `dmt predict` "
                        "(docs/export.md); dmt.load_model reads model files (model.safetensors)")
    dev = resolve_device(device)
    network, model_meta = load_model_file(path, dev)
    meta = resolve_meta(path, model_meta, data=data, classes_file=classes_file, palette_file=palette_file)
    return Model(network, model_meta["task"], meta, path, dev, amp, batch_size)
