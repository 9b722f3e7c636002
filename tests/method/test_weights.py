"""Dynamic weights against hand-computed values."""

import math

import pytest
import torch

from dmt.method.weights import agreement_stats, confidence_weights, dynamic_weights, flip_targets_and_weights


def logits_from_probs(rows):
    # softmax(log p) == p when each row sums to 1, so these logits have known probabilities.
    return torch.tensor(rows, dtype=torch.float64).log().float()


# student probabilities, pseudo target, teacher confidence, labelled
PROBS = [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]
TARGET = torch.tensor([0, 1, 1, 0, 255])
TEACHER = torch.tensor([0.9, 0.5, 0.8, 0.3, 0.9])
LABELLED = torch.tensor([False, False, False, True, False])


def test_dynamic_weights_hand_computed():
    w = dynamic_weights(logits_from_probs(PROBS), TARGET, TEACHER, LABELLED, gamma1=2.0, gamma2=3.0)
    # agree: 0.7^2; disagree & student 0.6 > teacher 0.5: 0; disagree & 0.5 < 0.8: 0.4^3;
    # labelled: 1; ignored: 0
    expected = torch.tensor([0.49, 0.0, 0.064, 1.0, 0.0])
    assert torch.allclose(w, expected, atol=1e-6)


def test_equal_confidence_is_not_a_student_win():
    # student conf 0.5 equals teacher 0.5: not strictly more confident, so p^gamma2 applies
    logits = logits_from_probs([[0.5, 0.3, 0.2]])
    w = dynamic_weights(logits, torch.tensor([1]), torch.tensor([0.5]), torch.tensor([False]), 1.0, 2.0)
    assert w.item() == pytest.approx(0.09, abs=1e-6)


def test_gamma_zero_is_curriculum_labelling_except_student_wins():
    w = dynamic_weights(logits_from_probs(PROBS), TARGET, TEACHER, LABELLED, gamma1=0.0, gamma2=0.0)
    assert torch.allclose(w, torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]))


def test_per_pixel_targets_broadcast_labelled_per_image():
    # 2 images of 1x2 pixels, 2 classes: image 0 pseudo, image 1 labelled
    probs = torch.tensor([[[0.8, 0.4]], [[0.2, 0.6]]])  # p(class 0) per pixel, N x H x W
    logits = torch.stack([probs, 1 - probs], dim=1).log()  # N x C x H x W
    target = torch.tensor([[[0, 0]], [[1, 255]]])
    teacher = torch.tensor([[[0.9, 0.5]], [[1.0, 1.0]]])
    w = dynamic_weights(logits, target, teacher, torch.tensor([False, True]), 1.0, 1.0)
    # pixel (0,0,0): agree, p=0.8 -> 0.8. pixel (0,0,1): student says 1 with 0.6 > 0.5 -> 0
    # image 1: labelled -> 1, ignored -> 0
    assert torch.allclose(w, torch.tensor([[[0.8, 0.0]], [[1.0, 0.0]]]), atol=1e-6)


def test_weights_do_not_carry_gradients():
    logits = logits_from_probs(PROBS).requires_grad_()
    w = dynamic_weights(logits, TARGET, TEACHER, LABELLED, 1.0, 1.0)
    assert not w.requires_grad


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="do not match"):
        dynamic_weights(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), torch.zeros(4), torch.zeros(4), 1, 1)


def test_confidence_weights_naive():
    w = confidence_weights(logits_from_probs(PROBS), TARGET, LABELLED, gamma=5.0)
    expected = torch.tensor([0.7**5, 0.3**5, 0.4**5, 1.0, 0.0])
    assert torch.allclose(w, expected, atol=1e-6)


def test_flip_takes_student_class_where_it_wins():
    t, w = flip_targets_and_weights(logits_from_probs(PROBS), TARGET, TEACHER, LABELLED, 2.0, 3.0)
    # sample 1: student (class 0, 0.6) beats teacher (0.5): target -> 0, weight (1 - 0.5)^3
    assert t.tolist() == [0, 0, 1, 0, 255]
    assert torch.allclose(w, torch.tensor([0.49, 0.125, 0.064, 1.0, 0.0]), atol=1e-6)


def test_agreement_stats():
    logits = logits_from_probs(PROBS)
    w = dynamic_weights(logits, TARGET, TEACHER, LABELLED, 2.0, 3.0)
    s = agreement_stats(logits, TARGET, TEACHER, LABELLED, w)
    # pseudo targets: samples 0, 1, 2 (3 is labelled, 4 ignored)
    assert s["pseudo_targets"] == 3
    assert s["disagree"] == pytest.approx(2 / 3)
    assert s["student_wins"] == pytest.approx(1 / 3)
    assert s["mean_weight"] == pytest.approx((0.49 + 0 + 0.064) / 3, abs=1e-6)
    assert math.isclose(agreement_stats(logits, TARGET, TEACHER, torch.ones(5, dtype=torch.bool), w)["mean_weight"], 0)
