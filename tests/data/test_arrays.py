"""ArrayDataset validation and the ImageSetDataset items a DataLoader sees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.transforms import v2

from dmt.data.arrays import ArrayDataset, ImageSetDataset


def _data(n: int = 6) -> ArrayDataset:
    images = np.arange(n * 4 * 5 * 3, dtype=np.int64).reshape(n, 4, 5, 3).astype(np.uint8)
    return ArrayDataset(images, np.arange(n, dtype=np.int64) % 3, ["a", "b", "c"])


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((2, 4, 4), np.uint8), np.zeros(2, np.int64), "4-d"),
        (np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64), "uint8"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, np.int32), "int64"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, np.int64), "2 images but 3 labels"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 3]), r"\[0, 2\]"),
    ],
)
def test_invalid_arrays_are_rejected(images, labels, match):
    with pytest.raises(ValueError, match=match):
        ArrayDataset(images, labels, ["a", "b", "c"])


def test_subset_keeps_order_and_classes():
    data = _data()
    sub = data.subset(np.array([4, 1]))
    assert len(sub) == 2 and sub.classes == data.classes
    np.testing.assert_array_equal(sub.images, data.images[[4, 1]])
    np.testing.assert_array_equal(sub.labels, [1, 1])
    with pytest.raises(ValueError, match="indices"):
        data.subset(np.array([6]))


def test_items_are_float_chw_in_unit_range_with_label_and_position():
    data = _data()
    dataset = ImageSetDataset(data, indices=np.array([5, 2]))
    image, target, i = dataset[0]
    assert type(image) is torch.Tensor and image.dtype == torch.float32 and image.shape == (3, 4, 5)
    expected = torch.from_numpy(data.images[5]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(image, expected)
    assert target.dtype == torch.int64 and target.item() == 2 and i == 0
    assert len(dataset) == 2 and dataset[1][2] == 1


def test_transform_gets_uint8_chw_image_and_float_output_is_kept():
    seen = []

    def transform(x: torch.Tensor) -> torch.Tensor:
        seen.append((type(x), x.dtype, tuple(x.shape)))
        return torch.full(x.shape, 0.25)

    image, _, _ = ImageSetDataset(_data(), transform=transform)[3]
    assert seen == [(tv_tensors.Image, torch.uint8, (3, 4, 5))]
    assert torch.all(image == 0.25)


def test_v2_pipeline_and_pseudo_label_targets_through_a_dataloader():
    transform = v2.Compose([v2.RandomHorizontalFlip(p=1.0)])  # stays uint8: scaled afterwards
    probs = torch.softmax(torch.randn(4, 3), dim=1)
    dataset = ImageSetDataset(_data(), indices=np.array([0, 1, 2, 3]), transform=transform, targets=probs)
    images, targets, positions = next(iter(DataLoader(dataset, batch_size=4)))
    assert images.shape == (4, 3, 4, 5) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    flipped = torch.from_numpy(_data().images[1]).permute(2, 0, 1).flip(-1).float() / 255
    torch.testing.assert_close(images[1], flipped)
    torch.testing.assert_close(targets, probs)
    assert positions.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="targets"):
        ImageSetDataset(_data(), indices=np.array([0, 1]), targets=probs)
