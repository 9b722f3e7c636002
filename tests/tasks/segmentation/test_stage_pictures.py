"""The stage-end pictures of a large image: predicted as evaluated, kept at a picture's size."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from dmt.data.segmentation import SegItem, SegSource
from dmt.data.transforms import seg_eval_transform
from dmt.tasks.segmentation.inference import window_logits
from dmt.tasks.segmentation.panels import PICTURE_SIDE, load_picks, picture_step, predict_maps

CPU = torch.device("cpu")


def test_picture_step_brings_the_larger_side_within_the_picture():
    assert PICTURE_SIDE == 512
    assert [picture_step(s) for s in [(32, 32), (512, 300), (513, 10), (375, 1500), (2048, 1024)]] == [1, 1, 2, 3, 4]


@pytest.mark.parametrize("max_side", [0, 256])
def test_large_image_is_predicted_as_evaluated_and_kept_every_kth_pixel(max_side):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (700, 300, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (700, 300), dtype=np.uint8)
    source = SegSource("mem", tuple(f"c{k}" for k in range(5)), ("all",), lambda s: [], lambda n: None)
    item = SegItem("big", image, mask)
    torch.manual_seed(0)
    model = nn.Conv2d(3, 5, 3, stride=2, padding=1).train()
    ctx = SimpleNamespace(cfg=SimpleNamespace(amp=False, eval=SimpleNamespace(window=None, stride=None,
                                                                              max_side=max_side)), device=CPU)
    (pred,) = predict_maps(ctx, model, [item], source, seg_eval_transform(None, fill=source.mean), "pictures")
    images, truths = load_picks([item], source, [True])
    assert pred.dtype == np.uint8 and pred.shape == images[0].shape[:2] == truths[0].shape == (350, 150)
    assert np.array_equal(images[0], image[::2, ::2]) and np.array_equal(truths[0], mask[::2, ::2])
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    model.eval()
    with torch.no_grad():  # the whole image, or windows of max_side: what the evaluation scores
        full = window_logits(model, x, (max_side, max_side) if max_side else None)[0].argmax(0).numpy()
    assert np.array_equal(pred, full[::2, ::2])
    model.train()
    predict_maps(ctx, model, [item], source, seg_eval_transform(None, fill=source.mean), "pictures")
    assert model.training
