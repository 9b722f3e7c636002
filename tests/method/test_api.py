"""`dmt.method.api`: the plain-signature functions equal the internal ones they call."""

from __future__ import annotations

import torch

from dmt.method import weights
from dmt.method.api import dynamic_weights


def test_dynamic_weights_without_labelled_targets_is_the_internal_function():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 6, 7, generator=g)
    target = torch.randint(0, 5, (2, 6, 7), generator=g)
    target[0, 0, :3] = 255
    conf = torch.rand(2, 6, 7, generator=g)
    expected = weights.dynamic_weights(logits, target, conf, torch.zeros(2, dtype=torch.bool), 2.0, 3.0)
    got = dynamic_weights(logits, target, conf, 2.0, 3.0)
    assert torch.equal(got, expected) and (got[0, 0, :3] == 0).all()
    assert (got < 1).any() and (got == 0).any()  # p ** gamma below 1, student wins give 0
    labelled = torch.tensor([False, True])
    with_labels = dynamic_weights(logits, target, conf, 2.0, 3.0, labelled=labelled)
    assert torch.equal(with_labels, weights.dynamic_weights(logits, target, conf, labelled, 2.0, 3.0))
    assert (with_labels[1] == 1).all()


def test_classification_shapes():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    w = dynamic_weights(logits, torch.tensor([0, 0]), torch.tensor([0.9, 0.99]), 1.0, 1.0)
    p = logits.softmax(1)
    # image 0 agrees: p ** 1; image 1 disagrees and the student (0.88) is less sure than the teacher (0.99)
    assert torch.allclose(w, torch.stack([p[0, 0], p[1, 0]]))
