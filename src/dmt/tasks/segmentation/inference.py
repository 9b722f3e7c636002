"""Segmentation inference: whole-image or sliding-window prediction, and mIoU over a set.

The labelling pass (:mod:`dmt.tasks.segmentation.labelling`) runs the same batches through the
same windows (:func:`window_bands`); ``dmt predict`` and ``dmt.load_model`` score your own images
through the same :func:`~dmt.tasks.segmentation.windows.score_bands` (:mod:`dmt.predict.pipeline`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ContextManager

import torch
import torch.nn.functional as F
from torch import nn

from dmt.data.segmentation import IGNORE_INDEX, SegmentationDataset
from dmt.engine.distributed import ONE, Processes
from dmt.engine.accel import inference_layout
from dmt.engine.batches import eval_loader
from dmt.engine.loop import amp_settings
from dmt.engine.metrics import ConfusionMatrix
from dmt.engine.progress import Display
from dmt.tasks.segmentation.windows import inference_window, score_bands, window_starts


class PadCollate:
    """Batches images of different sizes: pads (bottom/right) to the largest, masks with 255.

    Predictions in the padding are cropped away (labelling) or ignored by the 255 mask (mIoU).
    """

    def __init__(self, fill: Sequence[float]) -> None:
        self.fill = torch.tensor(list(fill), dtype=torch.float32).view(3, 1, 1)

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        h = max(s["image"].shape[1] for s in batch)
        w = max(s["image"].shape[2] for s in batch)
        images = self.fill.expand(len(batch), 3, h, w).clone()
        out: dict[str, Any] = {"name": [s["name"] for s in batch], "size": [s["size"] for s in batch]}
        for i, s in enumerate(batch):
            images[i, :, : s["image"].shape[1], : s["image"].shape[2]] = s["image"]
        out["image"] = images
        if "mask" in batch[0]:
            masks = torch.full((len(batch), h, w), IGNORE_INDEX, dtype=torch.int64)
            for i, s in enumerate(batch):
                masks[i, : s["mask"].shape[0], : s["mask"].shape[1]] = s["mask"]
            out["mask"] = masks
        out["shape"] = [tuple(s["image"].shape[1:]) for s in batch]
        return out


def upsampled_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits at the input resolution (DeepLab predicts at 1/8; bilinear, corners aligned)."""
    logits = model(images)
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=True)
    return logits


def window_counts(height: int, width: int, window: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """How many windows cover each pixel (``height x width``, int64): what :func:`window_logits` divides by."""
    wh, ww = min(window[0], height), min(window[1], width)
    counts = torch.zeros(height, width, dtype=torch.int64)
    for top in window_starts(height, wh, stride[0]):
        for left in window_starts(width, ww, stride[1]):
            counts[top : top + wh, left : left + ww] += 1
    return counts


def window_bands(model: nn.Module, images: torch.Tensor, window: Sequence[int] | None,
                 stride: Sequence[int] | None = None,
                 autocast: Callable[[], ContextManager[Any]] = contextlib.nullcontext
                 ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """The logits of ``images`` at the input resolution, as consecutive bands of rows, top to bottom.

    :func:`~dmt.tasks.segmentation.windows.score_bands` with ``model``'s
    :func:`upsampled_logits` as the score: yields ``(first_row, end_row, logits N x C x rows x W)``,
    whole images as one band, windows summed in float32 and divided by their count; the values
    are those of :func:`window_logits`, to the bit.

    Args:
        model: maps ``N x 3 x h x w`` images to logits at that or a lower resolution.
        images: the batch, already padded to one size.
        window: ``(height, width)`` of the crops, or None for the whole image.
        stride: ``(height, width)`` steps between crops, each between 1 and the window's side.
        autocast: the context each forward pass runs in (mixed precision); the sums and the
            division run outside it, in float32.
    """
    def score(x: torch.Tensor) -> torch.Tensor:
        with autocast():
            return upsampled_logits(model, x)

    return score_bands(score, images, window, stride)


def window_logits(model: nn.Module, images: torch.Tensor, window: Sequence[int] | None,
                  stride: Sequence[int] | None = None) -> torch.Tensor:
    """Logits ``N x C x H x W`` at the input resolution, predicted whole or window by window.

    With ``window=None``, or a window at least as large as the image, this is exactly
    :func:`upsampled_logits`. Otherwise the logits of overlapping windows are averaged (see
    :func:`window_bands`, which yields the same values band by band without holding the whole
    image's logits), so each pixel's value is the mean over exactly the windows that contain it.

    Args:
        model: maps ``N x 3 x h x w`` images to logits at that or a lower resolution.
        images: the batch, already padded to one size.
        window: ``(height, width)`` of the crops, or None for the whole image.
        stride: ``(height, width)`` steps between crops, each between 1 and the window's side.
    """
    bands = [logits for _, _, logits in window_bands(model, images, window, stride)]
    return bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)


@torch.no_grad()
def predictions(model: nn.Module, dataset: SegmentationDataset, batch_size: int, device: torch.device,
                amp: bool, num_workers: int = 0, description: str = "predict",
                window: Sequence[int] | None = None, stride: Sequence[int] | None = None,
                channels_last: bool = False) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
    """Yields ``(batch, probabilities N x C x H x W on the device)`` for every batch, in order.

    ``window`` / ``stride``: sliding-window inference (see :func:`window_logits`); None: whole images.
    ``channels_last``: model and inputs in NHWC order (``train.channels_last``; faster, same values
    up to the convolution algorithm's rounding).
    """
    use_amp, dtype = amp_settings(device, amp)
    for batch, images in device_batches(model, dataset, batch_size, device, num_workers, description, channels_last):
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
            logits = window_logits(model, images, window, stride)
        yield batch, logits.float().softmax(dim=1)


def device_batches(model: nn.Module, dataset: SegmentationDataset, batch_size: int, device: torch.device,
                    num_workers: int, description: str, channels_last: bool, display: Display = Display()
                    ) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
    """The inference passes' common part: ``model`` in eval mode (and NHWC with ``channels_last``);
    yields ``(batch, its padded images on the device in the model's layout)``, its progress shown
    as ``display`` says (with several processes: rank 0's alone)."""
    model.eval()
    layout = inference_layout(model, channels_last)
    loader = eval_loader(dataset, batch_size, num_workers, collate_fn=PadCollate(dataset.source.mean),
                         pin_memory=device.type == "cuda")
    with display(description, len(loader)) as bar:
        for batch in loader:
            yield batch, layout(batch["image"].to(device, non_blocking=True))
            bar.advance()


def evaluate_segmentation(model: nn.Module, dataset: SegmentationDataset, num_classes: int, batch_size: int,
                          device: torch.device, amp: bool = False, num_workers: int = 0,
                          description: str = "eval", window: Sequence[int] | None = None,
                          stride: Sequence[int] | None = None, channels_last: bool = False,
                          max_side: int | None = None, processes: Processes = ONE,
                          display: Display | None = None) -> dict[str, Any]:
    """mIoU, per-class IoU and pixel accuracy from one confusion matrix over the whole set.

    ``processes``: each scored its share of the set (``dataset``); their matrices are summed.
    ``display``: how progress shows (default: rank 0 of ``processes``, without the run's clock).

    ``window`` / ``stride``: sliding-window evaluation (Cityscapes' protocol); None: whole images,
    except those larger than ``max_side`` (:func:`inference_window`). Windows are scored band by
    band (:func:`window_bands`): no full-size map of every class's logits is held.
    """
    cm = ConfusionMatrix(num_classes)
    use_amp, dtype = amp_settings(device, amp)
    autocast = functools.partial(torch.autocast, device.type, dtype=dtype, enabled=use_amp)
    display = display or Display(processes.shows_progress())
    for batch, images in device_batches(model, dataset, batch_size, device, num_workers, description, channels_last,
                                        display):
        win = inference_window(images.shape[-2:], window, max_side)
        for top, end, logits in window_bands(model, images, win, stride if window else None, autocast):
            cm.update(logits.float().softmax(dim=1).argmax(1).cpu(), batch["mask"][:, top:end])
    # with several processes each scored its share of the set: the matrices add up exactly
    cm.matrix = processes.all_reduce_sum(cm.matrix)
    scores = cm.compute()
    return {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"],
            "per_class_iou": scores["per_class_iou"]}
