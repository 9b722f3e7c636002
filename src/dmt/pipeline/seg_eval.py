"""Segmentation inference: whole-image prediction, mIoU over a set, the labelling pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmt.data.segmentation import IGNORE_INDEX, SegmentationDataset
from dmt.engine.batches import eval_loader
from dmt.engine.loop import amp_settings
from dmt.engine.metrics import ConfusionMatrix
from dmt.engine.progress import Progress


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
    scores = cm.compute()
    return {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"],
            "per_class_iou": scores["per_class_iou"]}


def label_images(model: nn.Module, dataset: SegmentationDataset, batch_size: int, device: torch.device,
                 amp: bool, num_workers: int = 0, description: str = "label"
                 ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yields ``(name, class uint8 HxW, confidence float16 HxW)`` at each image's own size."""
    for batch, probs in predictions(model, dataset, batch_size, device, amp, num_workers, description):
        conf, cls = probs.max(dim=1)
        for i, name in enumerate(batch["name"]):
            h, w = batch["size"][i]  # the image's own size: evaluation padding is cropped away
            yield (name, cls[i, :h, :w].to(torch.uint8).cpu().numpy(),
                   conf[i, :h, :w].to(torch.float16).cpu().numpy())
