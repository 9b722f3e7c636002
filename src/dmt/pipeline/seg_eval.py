"""Segmentation inference: whole-image prediction, mIoU over a set, the labelling pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmt.data.segmentation import IGNORE_INDEX, SegmentationDataset
from dmt.engine import distributed as dist
from dmt.engine.batches import eval_loader
from dmt.engine.loop import amp_settings
from dmt.engine.metrics import ConfusionMatrix
from dmt.engine.progress import Progress
from dmt.method.confidence import max_softmax


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


@torch.no_grad()
def predictions(model: nn.Module, dataset: SegmentationDataset, batch_size: int, device: torch.device,
                amp: bool, num_workers: int = 0, description: str = "predict"
                ) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
    """Yields ``(batch, probabilities N x C x H x W on the device)`` for every batch, in order."""
    model.eval()
    use_amp, dtype = amp_settings(device, amp)
    loader = eval_loader(dataset, batch_size, num_workers, collate_fn=PadCollate(dataset.source.mean))
    with Progress(description, len(loader)) as bar:
        for batch in loader:
            with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                logits = upsampled_logits(model, batch["image"].to(device, non_blocking=True))
            yield batch, logits.float().softmax(dim=1)
            bar.advance()


def evaluate_segmentation(model: nn.Module, dataset: SegmentationDataset, num_classes: int, batch_size: int,
                          device: torch.device, amp: bool = False, num_workers: int = 0,
                          description: str = "eval") -> dict[str, Any]:
    """mIoU, per-class IoU and pixel accuracy from one confusion matrix over the whole set."""
    cm = ConfusionMatrix(num_classes)
    for batch, probs in predictions(model, dataset, batch_size, device, amp, num_workers, description):
        cm.update(probs.argmax(1).cpu(), batch["mask"])
    # with several processes each scored its share of the set: the matrices add up exactly
    cm.matrix = dist.all_reduce_sum(cm.matrix)
    scores = cm.compute()
    return {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"],
            "per_class_iou": scores["per_class_iou"]}


@torch.no_grad()
def label_images(model: nn.Module, dataset: SegmentationDataset, batch_size: int, device: torch.device,
                 amp: bool, num_workers: int = 0, description: str = "label"
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields ``(name, class uint8 HxW, confidence float16 HxW)`` at each image's own size.

    Streams: after the model's forward pass, each image is upsampled on its own (when the model
    predicts at a lower resolution), cropped to its own size and reduced by
    :func:`~dmt.method.confidence.max_softmax` in cache-sized blocks, so no full-size float32
    probabilities of the batch exist. Every value is bit-for-bit the one the whole-batch
    ``upsampled_logits(...).float().softmax(1).max(1)`` gives (tests/pipeline/test_labelling.py).
    """
    model.eval()
    use_amp, dtype = amp_settings(device, amp)
    loader = eval_loader(dataset, batch_size, num_workers, collate_fn=PadCollate(dataset.source.mean))
    with Progress(description, len(loader)) as bar:
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                logits = model(images)
            for i, name in enumerate(batch["name"]):
                yield (name, *_image_labels(logits[i : i + 1], images.shape[-2:], batch["size"][i], device, dtype,
                                            use_amp))
            del logits
            bar.advance()


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
