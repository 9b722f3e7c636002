"""Mixup sampling and the gamma ramp."""

import math

import numpy as np
import pytest
import torch

from dmt.method.curriculum import check_ratios, ramped_gamma
from dmt.method.mixup import mix, random_permutation, sample_lambda


def test_lambda_keeps_first_image_dominant():
    rng = np.random.default_rng(0)
    lams = [sample_lambda(0.75, rng) for _ in range(200)]
    assert min(lams) >= 0.5 and max(lams) <= 1.0
    assert len(set(lams)) > 100  # really random


def test_lambda_reproducible_and_disabled():
    a = sample_lambda(0.75, np.random.default_rng(3))
    assert a == sample_lambda(0.75, np.random.default_rng(3))
    raw = np.random.default_rng(3).beta(0.75, 0.75)
    assert a == max(raw, 1 - raw)
    assert sample_lambda(0.0, np.random.default_rng(0)) == 1.0


def test_mix_images_and_weights_alike():
    x = torch.tensor([1.0, 2.0, 4.0])
    perm = torch.tensor([2, 0, 1])
    assert mix(x, 0.75, perm).tolist() == [0.75 * 1 + 0.25 * 4, 0.75 * 2 + 0.25 * 1, 0.75 * 4 + 0.25 * 2]


def test_permutation_is_seeded():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert random_permutation(10, g1).tolist() == random_permutation(10, g2).tolist()


def test_ramp_values():
    assert ramped_gamma(4.0, 0, 100) == pytest.approx(4 * math.exp(-5))
    assert ramped_gamma(4.0, 50, 100) == pytest.approx(4 * math.exp(-1.25))
    assert ramped_gamma(4.0, 100, 100) == 4.0
    assert ramped_gamma(4.0, 0, 100, enabled=False) == 4.0


def test_ratios_validated():
    check_ratios([0.2, 0.4, 1.0])
    for bad in ([], [0.0], [1.2], [0.4, 0.2]):
        with pytest.raises(ValueError):
            check_ratios(bad)
