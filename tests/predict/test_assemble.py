"""Band-by-band reduction (:func:`dmt.predict.assemble.assemble`): the old whole-image restore's
classes and confidences, the padding cropped away, a read-time resize undone piece by piece."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dmt.predict.assemble import OUT_ROWS, assemble


def whole_restore(logits: torch.Tensor, shape: tuple[int, int], size: tuple[int, int]):
    """The former whole-image restore: crop, one ``F.interpolate`` to ``size``, softmax, max."""
    logits = logits[..., : shape[0], : shape[1]].float()
    if tuple(shape) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    confidence, classes = logits.softmax(dim=1).max(dim=1)
    return classes[0].to(torch.uint8).numpy(), confidence[0].numpy(), logits.softmax(dim=1)[0]


def bands_of(logits: torch.Tensor, rows: list[int]):
    top = 0
    for k in rows:
        yield top, top + k, logits[:, :, top : top + k]
        top += k


def test_a_hand_checked_upsampling_of_two_rows_to_four():
    """Class 1's logit is 0 on input row 0 and 4 on row 1 (class 0's is 0): output rows sit at
    source rows -0.25 (clamped to 0), 0.25, 0.75 and 1.25 (clamped to 1), so class 1's logits are
    0, 1, 3, 4 and the confidences 1/2 (a tie: class 0, the first), sigmoid(1), sigmoid(3), sigmoid(4)."""
    logits = torch.zeros(1, 2, 2, 1)
    logits[0, 1, 1, 0] = 4.0
    ((classes, confidence),) = assemble(bands_of(logits, [1, 1]), [(2, 1)], [(4, 1)], float_confidence=True)
    sigmoid = [1 / (1 + math.exp(-v)) for v in (0.0, 1.0, 3.0, 4.0)]
    np.testing.assert_array_equal(classes[:, 0], [0, 1, 1, 1])
    np.testing.assert_allclose(confidence[:, 0], sigmoid, rtol=1e-6)
    old_classes, old_confidence, _ = whole_restore(logits, (2, 1), (4, 1))
    np.testing.assert_array_equal(classes, old_classes)
    np.testing.assert_allclose(confidence, old_confidence, rtol=1e-6)


@pytest.mark.parametrize("in_h, size, rows", [(9, (70, 40), [4, 5]), (20, (20, 13), [20]), (37, (12, 9), [7, 30]),
                                              (16, (150, 11), [16])])
def test_band_by_band_restore_is_the_whole_image_restore(in_h, size, rows):
    torch.manual_seed(0)
    logits = torch.randn(1, 5, in_h, 13) * 3
    classes, confidence = assemble(bands_of(logits, rows), [(in_h, 13)], [size], float_confidence=True)[0]
    old_classes, old_confidence, probs = whole_restore(logits, (in_h, 13), size)
    top2 = probs.topk(2, dim=0).values
    clear = (top2[0] - top2[1]).numpy() > 1e-4  # float rounding (< 1e-5) may only swap near-ties
    assert clear.mean() > 0.99 and np.array_equal(classes[clear], old_classes[clear])
    np.testing.assert_allclose(confidence, old_confidence, atol=1e-5)


def test_padding_is_cropped_and_every_image_takes_its_size_and_probabilities_skip_the_softmax():
    logits = torch.zeros(2, 2, 4, 6)
    logits[0, 1, :2, :3] = 5.0  # image 0: class 1 in its top-left 2 x 3, padding elsewhere
    logits[1, 0] = 5.0
    out = assemble(bands_of(logits, [3, 1]), [(2, 3), (4, 6)], [(4, 6), (4, 6)])
    assert (out[0][0] == 1).all() and out[0][0].shape == (4, 6) and (out[1][0] == 0).all()
    assert out[0][1].dtype == np.uint8 and (out[0][1] == round(255 / (1 + math.exp(-5.0)))).all()
    probs = torch.tensor([0.2, 0.8]).view(1, 2, 1, 1).expand(1, 2, 3, 3)
    ((classes, confidence),) = assemble(bands_of(probs, [3]), [(3, 3)], [(3, 3)], True, probabilities=True)
    assert (classes == 1).all() and np.allclose(confidence, 0.8)


def test_a_large_upsampling_is_reduced_a_few_rows_at_a_time(monkeypatch):
    """Read at 1/8, one band of 40 rows is 320 output rows: reduced in pieces of OUT_ROWS, never at once."""
    import dmt.predict.assemble as assemble_module

    seen = []
    original = assemble_module.reduce_rows
    monkeypatch.setattr(assemble_module, "reduce_rows", lambda rows, *a: (seen.append(rows.shape[2]), original(rows, *a)))
    logits = torch.randn(1, 3, 40, 5)
    classes, _ = assemble(bands_of(logits, [40]), [(40, 5)], [(320, 40)])[0]
    assert sum(seen) == 320 and max(seen) <= OUT_ROWS + 8 and classes.shape == (320, 40)
