"""Inference loaders ask for page-locked batches exactly when the device is CUDA (the copies to
the device are non_blocking, which overlaps them with compute only from pinned memory)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dmt.engine.batches import eval_loader


class _Stop(Exception):
    pass


def test_eval_loader_passes_pin_memory():
    data = torch.utils.data.TensorDataset(torch.zeros(4, 2))
    assert eval_loader(data, 2).pin_memory is False
    assert eval_loader(data, 2, pin_memory=True).pin_memory is True


@pytest.mark.parametrize("device, pinned", [("cpu", False), ("cuda", True)])
def test_evaluation_and_labelling_pin_for_cuda(device, pinned, monkeypatch):
    """The spy stops each pass at its loader: no CUDA is needed to see what it asked for."""
    from dmt.tasks.classification import evaluate
    from dmt.tasks.segmentation import inference, labelling

    asked = []

    def spy(*args, pin_memory=False, **kwargs):
        asked.append(pin_memory)
        raise _Stop

    monkeypatch.setattr(inference, "eval_loader", spy)
    monkeypatch.setattr(evaluate, "eval_loader", spy)
    model = nn.Conv2d(3, 2, 1)
    dataset = type("D", (), {"source": type("S", (), {"mean": (0.0, 0.0, 0.0)})()})()
    with pytest.raises(_Stop):
        next(labelling.label_images(model, dataset, 2, torch.device(device), False))
    with pytest.raises(_Stop):
        evaluate.predict_probabilities(model, dataset, 2, torch.device(device))
    assert asked == [pinned, pinned]
