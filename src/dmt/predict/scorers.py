"""What scores a batch of images: the one part of prediction that differs between runtimes.

A scorer takes a uint8 ``N x C x h x w`` batch (RGB 0-255, or grey) on its device and returns
float scores: ``N x K x h x w`` for segmentation (at the input's resolution), ``N x K`` for
classification. :class:`TorchScorer` runs a model file's network under dmt's one precision
policy; :class:`OnnxScorer` runs an exported ``.onnx`` file with ONNX Runtime. Everything around
them (reading, batching, windows, the band-by-band reduction, the files written) is shared:
:mod:`dmt.predict.pipeline`.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from dmt.engine.loop import amp_settings
from dmt.predict.exported import onnx_scores
from dmt.tasks.segmentation.inference import upsampled_logits


def input_channels(model: nn.Module) -> int:
    """Channels the model reads (its input convention's), 3 when it has none."""
    normalize = getattr(model, "normalize", None)
    mean = getattr(normalize, "mean", None)
    return int(mean.shape[1]) if isinstance(mean, torch.Tensor) else 3


def autocast_policy(device: torch.device, amp: bool) -> Any:
    """The precision every torch prediction runs under: autocast on CUDA (bfloat16 where supported,
    else float16) unless ``amp`` is False; float32 on every other device. A context factory."""
    use_amp, dtype = amp_settings(device, amp and device.type == "cuda")
    return functools.partial(torch.autocast, device.type, dtype=dtype, enabled=use_amp)


class TorchScorer:
    """A model file's network as a scorer (``dmt predict MODEL_FILE``, ``dmt.load_model``).

    Args:
        network: a dmt model in eval mode; it takes RGB floats in [0, 1] and applies its input
            convention itself.
        task: ``"segmentation"`` (logits upsampled to the input's size, bilinear with aligned
            corners, as evaluation does) or ``"classification"``.
        device: where the network is; amp: see :func:`autocast_policy`.
    """

    probabilities = False  # the scores are logits

    def __init__(self, network: nn.Module, task: str, device: torch.device, amp: bool = True) -> None:
        self.network, self.segmentation, self.device = network.eval(), task == "segmentation", device
        self.autocast = autocast_policy(device, amp)

    def place(self, images: torch.Tensor) -> torch.Tensor:
        """The batch on the scorer's device."""
        return images.to(self.device, non_blocking=True)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = TF.to_dtype(images, torch.float32, scale=True)  # as evaluation reads: uint8 / 255
        with self.autocast():
            return upsampled_logits(self.network, x) if self.segmentation else self.network(x)


class OnnxScorer:
    """An exported ``.onnx`` file's ONNX Runtime session as a scorer (``dmt predict MODEL.onnx``).

    The graph does its own preprocessing (uint8 in); its output is logits, or probabilities when
    exported with ``--output probabilities`` (then windows average probabilities, and no softmax
    follows). Batches stay on the CPU: ONNX Runtime takes numpy arrays.
    """

    def __init__(self, session: Any, probabilities: bool) -> None:
        self.session, self.probabilities = session, probabilities
        self.device = torch.device("cpu")

    def place(self, images: torch.Tensor) -> torch.Tensor:
        """The batch as it is (ONNX Runtime copies it to its own device)."""
        return images

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(onnx_scores(self.session, images.numpy()))
