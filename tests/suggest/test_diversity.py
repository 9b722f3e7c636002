"""The near-duplicate rule: thumbnails, their distance, and the greedy pick."""

import numpy as np
import pytest

from dmt.suggest.diversity import distance, pick, thumbnail


def test_thumbnail_averages_blocks():
    pixels = np.zeros((4, 6, 1), np.uint8)
    pixels[:2, :3] = 255
    pixels[2:, 3:] = 51
    pixels[0, 3] = 204  # one of the 6 pixels of the top-right block
    thumb = thumbnail(pixels, side=2)
    assert thumb.shape == (2, 2, 1)
    assert thumb[..., 0] == pytest.approx(np.array([[1.0, 204 / 6 / 255], [0.0, 0.2]]))


def test_thumbnail_of_an_image_smaller_than_the_grid_repeats_pixels():
    pixels = np.array([[[0], [255]]], np.uint8)  # 1 x 2
    assert thumbnail(pixels, side=4)[..., 0] == pytest.approx(np.tile([0, 0, 1, 1], (4, 1)))


def test_distance_is_the_mean_absolute_difference():
    a = np.zeros((2, 2, 3), np.float32)
    b = np.full((2, 2, 3), 0.1, np.float32)
    b[0, 0] = 0.5
    assert distance(a, b) == pytest.approx((3 * 0.1 + 0.5) / 4)
    assert distance(a, np.full((2, 2, 1), 0.3, np.float32)) == pytest.approx(0.3)  # colour against grey


def test_pick_skips_near_duplicates_of_chosen_images():
    thumbs = [np.full((1, 1, 1), v, np.float32) for v in (0.0, 0.01, 0.5, 0.52, 0.9)]
    scores = [5.0, 4.0, 3.0, 2.0, 1.0]
    # 1 is within 0.04 of 0; 3 within 0.04 of 2
    assert pick(scores, thumbs, 3, 0.04) == [(0, None), (2, None), (4, None)]
    assert pick(scores, thumbs, 2, 0.04) == [(0, None), (2, None)]
    # more than the distinct ones: the near-duplicates follow, best first, each naming its look-alike
    assert pick(scores, thumbs, 5, 0.04) == [(0, None), (2, None), (4, None), (1, 0), (3, 2)]
    assert pick(scores, thumbs, 3, 0.0) == [(0, None), (1, None), (2, None)]  # no rule


def test_pick_orders_by_score_and_keeps_input_order_on_ties():
    thumbs = [np.full((1, 1, 1), v, np.float32) for v in (0.0, 0.3, 0.6)]
    assert pick([1.0, 2.0, 1.0], thumbs, 3) == [(1, None), (0, None), (2, None)]
