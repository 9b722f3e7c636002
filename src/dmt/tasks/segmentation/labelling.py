"""The labelling pass of a phase: the teacher's class and confidence maps, and the thresholded targets read back.

Per phase the teacher labels every unlabelled image once (:func:`label_images`, streamed, at each
image's own size); the runner stores the maps in a :class:`~dmt.data.labels.PseudoLabelStore` and
computes the class-balanced thresholds from the store's histogram; :class:`ThresholdedLabels`
then gives the training data each image's kept targets.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmt.data.labels import PseudoLabelStore
from dmt.data.segmentation import SegmentationDataset
from dmt.engine.loop import amp_settings
from dmt.engine.progress import Display
from dmt.method.confidence import max_softmax
from dmt.method.thresholds import apply_threshold_table, threshold_table
from dmt.tasks.segmentation.inference import device_batches, inference_window, window_bands


class ThresholdedLabels:
    """Pseudo targets of one phase: stored class maps with per-class thresholds applied.

    A small picklable callable, so data-loader workers can read the store themselves.
    """

    def __init__(self, store: PseudoLabelStore, thresholds: torch.Tensor) -> None:
        self.store, self.thresholds = store, thresholds
        # one look-up per pixel on the float16 bit patterns as stored: no float32 copy of any map
        self.table = threshold_table(thresholds)

    def __call__(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        classes, confidence = self.store.read(name)
        kept = apply_threshold_table(torch.from_numpy(classes), torch.from_numpy(confidence), self.table)
        return kept.numpy(), confidence


@torch.no_grad()
def label_images(model: nn.Module, dataset: SegmentationDataset, batch_size: int, device: torch.device,
                 amp: bool, num_workers: int = 0, description: str = "label",
                 window: Sequence[int] | None = None, stride: Sequence[int] | None = None,
                 channels_last: bool = False, max_side: int | None = None, display: Display = Display()
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields ``(name, class uint8 HxW, confidence float16 HxW)`` at each image's own size.

    Streams: after the model's forward pass, each image is upsampled on its own (when the model
    predicts at a lower resolution), cropped to its own size and reduced by
    :func:`~dmt.method.confidence.max_softmax` in cache-sized blocks, so no full-size float32
    probabilities of the batch exist. Every value is bit-for-bit the one the whole-batch
    ``upsampled_logits(...).float().softmax(1).max(1)`` gives (tests/tasks/segmentation/test_labelling.py).
    In windows (``window``, or an image larger than ``max_side``:
    :func:`~dmt.tasks.segmentation.inference.inference_window`) the logits come band by band,
    averaged over the windows (:func:`~dmt.tasks.segmentation.inference.window_bands`), and each
    band is reduced the same way: only a few rows of windows' logits are held, whatever the
    image's size. ``channels_last`` as for :func:`~dmt.tasks.segmentation.inference.predictions`;
    ``display``: how progress shows (with several processes: rank 0 alone).
    """
    use_amp, dtype = amp_settings(device, amp)
    autocast = functools.partial(torch.autocast, device.type, dtype=dtype, enabled=use_amp)
    for batch, images in device_batches(model, dataset, batch_size, device, num_workers, description, channels_last,
                                        display):
        win = inference_window(images.shape[-2:], window, max_side)
        if win is None:
            with autocast():
                logits = model(images)
            for i, name in enumerate(batch["name"]):
                yield (name, *_image_labels(logits[i : i + 1], images.shape[-2:], batch["size"][i], device, dtype,
                                            use_amp))
            del logits
            continue
        labels = [(np.empty(size, np.uint8), np.empty(size, np.float16)) for size in batch["size"]]
        for top, end, logits in window_bands(model, images, win, stride if window else None, autocast):
            for i, ((h, w), (classes, confidence)) in enumerate(zip(batch["size"], labels)):
                if top < h:  # the image's own rows: evaluation padding is cropped before the softmax
                    conf, cls = max_softmax(logits[i : i + 1, :, : min(end, h) - top, :w])
                    classes[top : min(end, h)] = cls[0].cpu().numpy()
                    confidence[top : min(end, h)] = conf[0].cpu().numpy()
        for name, (classes, confidence) in zip(batch["name"], labels):
            yield name, classes, confidence


def _image_labels(logits: torch.Tensor, padded: torch.Size, size: tuple[int, int], device: torch.device,
                  dtype: torch.dtype, use_amp: bool) -> tuple[np.ndarray, np.ndarray]:
    """One image's ``(classes uint8, confidence float16)`` at its own ``size`` from its ``1 x C`` logits."""
    if logits.shape[-2:] != padded:
        # the same interpolation as upsampled_logits, per image: every output pixel is the same
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
            logits = F.interpolate(logits, size=padded, mode="bilinear", align_corners=True)
    h, w = size  # the image's own size: evaluation padding is cropped away before the softmax
    confidence, classes = max_softmax(logits[:, :, :h, :w])
    return classes[0].cpu().numpy(), confidence[0].cpu().numpy()
