"""Metrics against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from dmt.engine.metrics import ConfusionMatrix, accuracy, confusion_matrix, segmentation_scores

# Three classes; the 255 pixel is ignored. Valid (truth, prediction) pairs:
# (0,0) (0,0) (0,1) (1,1) (1,2) (2,2) (2,0) (2,2)
TARGET = torch.tensor([[0, 0, 0], [1, 1, 2], [2, 255, 2]])
PRED = torch.tensor([[0, 0, 1], [1, 2, 2], [0, 1, 2]])
CM = [[2, 1, 0], [0, 1, 1], [1, 0, 2]]


def test_accuracy_from_logits_and_predictions() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.0, 9.0]])
    target = torch.tensor([0, 1, 2, 2])
    assert accuracy(logits, target) == 0.75  # argmax 0, 1, 0, 2
    assert accuracy(torch.tensor([0, 1, 0, 2]), target) == 0.75
    assert accuracy(torch.tensor([1, 1, 1, 1]), target) == 0.25
    with pytest.raises(ValueError):
        accuracy(torch.tensor([0, 1]), target)
    with pytest.raises(ValueError):
        accuracy(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))


def test_confusion_matrix_hand_computed() -> None:
    cm = confusion_matrix(PRED, TARGET, num_classes=3)
    assert cm.dtype == torch.int64
    assert cm.tolist() == CM  # rows are ground truth, columns predictions
    # uint8 maps (as stored) give the same matrix.
    assert confusion_matrix(PRED.to(torch.uint8), TARGET.to(torch.uint8), 3).tolist() == CM


def test_segmentation_scores_hand_computed() -> None:
    s = segmentation_scores(torch.tensor(CM))
    assert s["pixel_accuracy"] == pytest.approx(5 / 8)
    # IoU_c = tp / (row + col - tp): 2/(3+3-2), 1/(2+2-1), 2/(3+3-2)
    assert s["per_class_iou"] == pytest.approx([0.5, 1 / 3, 0.5])
    assert s["miou"] == pytest.approx(4 / 9)
    assert s["per_class_accuracy"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert s["mean_class_accuracy"] == pytest.approx(11 / 18)


def test_ignored_and_out_of_range_targets_are_skipped() -> None:
    target = torch.tensor([0, 255, 1, 7, -1, 1])
    pred = torch.tensor([0, 2, 1, 0, 1, 0])
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    # A custom ignore value is skipped too; 255 is then just out of range.
    assert confusion_matrix(pred, target, 3, ignore_index=0).tolist() == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_prediction_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(torch.rand(2), torch.tensor([0, 1]), 3)


def test_absent_classes_are_left_out_of_the_means() -> None:
    cm = torch.zeros(5, 5, dtype=torch.int64)
    cm[:3, :3] = torch.tensor(CM)
    cm[0, 4] = 1  # class 4 is predicted once but never true: IoU 0 counts, accuracy undefined
    s = segmentation_scores(cm)
    assert s["per_class_iou"][3] is None  # class 3: neither true nor predicted
    assert s["per_class_iou"][4] == 0.0
    assert s["per_class_iou"][0] == pytest.approx(2 / 5)  # row 0 now has 4 pixels
    assert s["miou"] == pytest.approx((2 / 5 + 1 / 3 + 1 / 2 + 0) / 4)
    assert s["per_class_accuracy"][3] is None and s["per_class_accuracy"][4] is None
    assert s["mean_class_accuracy"] == pytest.approx((2 / 4 + 1 / 2 + 2 / 3) / 3)
    assert s["pixel_accuracy"] == pytest.approx(5 / 9)


def test_empty_matrix_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        segmentation_scores(torch.zeros(3, 3, dtype=torch.int64))


def test_whole_set_accumulation_differs_from_per_batch_average() -> None:
    batches = [
        (torch.tensor([0, 0]), torch.tensor([0, 0])),  # alone: class 0 perfect, mIoU 1
        (torch.tensor([1, 1, 1, 1, 1]), torch.tensor([1, 1, 1, 1, 0])),  # alone: IoUs 0, 4/5
    ]
    per_batch = [segmentation_scores(confusion_matrix(p, t, 2))["miou"] for p, t in batches]
    assert per_batch == pytest.approx([1.0, 0.4])
    wrong = sum(per_batch) / 2  # 0.7

    meter = ConfusionMatrix(num_classes=2)
    for pred, target in batches:
        meter.update(pred, target)
    assert meter.matrix.tolist() == [[2, 1], [0, 4]]
    # One matrix: IoU_0 = 2/(3+2-2), IoU_1 = 4/(4+5-4).
    miou = meter.compute()["miou"]
    assert miou == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert miou != pytest.approx(wrong)

    meter.reset()
    assert meter.matrix.sum().item() == 0
