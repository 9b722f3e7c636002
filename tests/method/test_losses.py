"""Weighted losses against hand-computed values."""

import math

import pytest
import torch

from dmt.method.losses import mixup_cross_entropy, online_pseudo_targets, weighted_cross_entropy


def test_weighted_ce_divides_by_non_ignored_count():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [0.0, 0.0]])
    target = torch.tensor([0, 0, 255])
    w = torch.tensor([1.0, 0.5, 1.0])
    # CE0 = log 2; CE1 = -log(3/4); ignored contributes nothing; 2 valid targets
    expected = (math.log(2) + 0.5 * -math.log(0.75)) / 2
    assert weighted_cross_entropy(logits, target, w).item() == pytest.approx(expected, rel=1e-6)


def test_weighted_ce_per_pixel():
    logits = torch.zeros(1, 2, 2, 2)  # uniform: CE = log 2 everywhere
    target = torch.tensor([[[0, 1], [255, 1]]])
    w = torch.tensor([[[1.0, 0.0], [1.0, 0.25]]])
    assert weighted_cross_entropy(logits, target, w).item() == pytest.approx(1.25 * math.log(2) / 3, rel=1e-6)


def test_all_ignored_gives_zero():
    logits = torch.zeros(2, 3, requires_grad=True)
    loss = weighted_cross_entropy(logits, torch.tensor([255, 255]), torch.ones(2))
    assert loss.item() == 0.0
    loss.backward()


def test_mixup_ce_hand_computed():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    ya, yb = torch.tensor([0, 1]), torch.tensor([1, 0])
    lam = 0.75
    w = torch.tensor([0.5, 1.0])
    ce00, ce01 = -math.log(0.75), -math.log(0.25)
    ce = math.log(2)
    expected = (0.5 * (lam * ce00 + (1 - lam) * ce01) + 1.0 * (lam * ce + (1 - lam) * ce)) / 2
    assert mixup_cross_entropy(logits, ya, yb, lam, w).item() == pytest.approx(expected, rel=1e-6)
    unweighted = ((lam * ce00 + (1 - lam) * ce01) + ce) / 2
    assert mixup_cross_entropy(logits, ya, yb, lam).item() == pytest.approx(unweighted, rel=1e-6)


def test_online_targets_keep_confident_pixels():
    probs = torch.tensor([[0.95, 0.6], [0.05, 0.4]]).unsqueeze(0)  # 1 x C=2 x 2 ... as N x C x W
    t = online_pseudo_targets(probs.log().unsqueeze(2), threshold=0.9)
    assert t.squeeze().tolist() == [0, 255]
