"""The score's terms against values computed by hand."""

import numpy as np
import pytest

from dmt.suggest.terms import Tally, combine, disagreement_sum, low_confidence_count, rarity, rarity_weights


def test_disagreement_weighs_differing_pixels_by_the_members_mean_confidence():
    cls_a = np.array([[0, 1], [2, 2]], np.uint8)
    cls_b = np.array([[0, 2], [2, 1]], np.uint8)
    conf_a = np.array([[255, 255], [10, 51]], np.uint8)
    conf_b = np.array([[0, 153], [10, 102]], np.uint8)
    # pixels (0, 1) and (1, 1) differ: (255 + 153) / 510 = 0.8 and (51 + 102) / 510 = 0.3
    assert disagreement_sum(cls_a, conf_a, cls_b, conf_b) == pytest.approx(1.1)
    assert disagreement_sum(cls_a, conf_a, cls_a, conf_b) == 0.0


def test_low_confidence_counts_pixels_below_the_threshold():
    conf = np.array([0, 190, 191, 192, 255], np.uint8)  # 255 * 0.75 = 191.25
    assert low_confidence_count(conf, 0.75) == 3
    assert low_confidence_count(conf, 1.0) == 4


def test_rarity_weights_are_the_rarest_frequency_over_each_class():
    assert rarity_weights(np.array([80, 0, 20, 10])) == pytest.approx([0.125, 0.0, 0.5, 1.0])
    assert rarity_weights(np.zeros(3)) == pytest.approx([0.0, 0.0, 0.0])


def test_rarity_is_the_weighted_share_of_an_image():
    weights = np.array([0.125, 0.0, 0.5, 1.0])
    assert rarity(np.array([6, 0, 0, 2]), weights) == pytest.approx((6 * 0.125 + 2 * 1.0) / 8)
    assert rarity(np.zeros(4), weights) == 0.0


def test_a_tally_of_two_members_row_by_row():
    tally = Tally(num_classes=3, members=2, threshold=0.5)
    # two calls of one row each: the image is 2 x 2
    tally.add(np.array([0, 1], np.uint8), np.array([255, 100], np.uint8),
              np.array([0, 2], np.uint8), np.array([255, 200], np.uint8))
    tally.add(np.array([2, 2], np.uint8), np.array([255, 255], np.uint8),
              np.array([1, 2], np.uint8), np.array([51, 255], np.uint8))
    assert tally.pixels == 4
    assert tally.counts.tolist() == [2, 2, 4]
    terms = tally.terms(np.array([1.0, 1.0, 0.5]))
    # differing: (100 + 200) / 510 and (255 + 51) / 510, over 4 pixels
    assert terms["disagreement"] == pytest.approx((300 + 306) / 510 / 4)
    assert terms["low_confidence"] == pytest.approx(2 / 8)  # 100 and 51 are below 127.5
    assert terms["rarity"] == pytest.approx((2 + 2 + 4 * 0.5) / 8)


def test_one_member_has_no_disagreement_and_the_score_skips_it():
    tally = Tally(num_classes=2, members=1, threshold=0.5)
    tally.add(np.array([[0, 1]], np.uint8), np.array([[255, 0]], np.uint8))
    terms = tally.terms(np.array([0.5, 1.0]))
    assert terms == {"disagreement": None, "low_confidence": 0.5, "rarity": pytest.approx(0.75)}
    assert combine(terms, {"disagreement": 5.0, "low_confidence": 2.0, "rarity": 1.0}) == pytest.approx(1.75)
