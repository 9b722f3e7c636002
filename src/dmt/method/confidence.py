"""The teacher's pseudo label and confidence per pixel: arg max and max of the softmax.

A labelling pass needs, per pixel, only the predicted class (uint8) and the softmax probability
of that class (stored as float16). Computing ``softmax`` of a whole ``N x C x H x W`` batch in
float32 first holds ``4 * C`` bytes per pixel (84 for VOC) next to the logits, and the ``max``
over classes reads them all again from memory. :func:`max_softmax` runs the same two torch
operations, ``softmax(dim=1)`` then ``max(dim=1)``, on blocks of rows small enough to stay in
cache, and writes 3 bytes per pixel. Softmax and max work pixel by pixel, so every pixel gets
bit-for-bit the value the whole-batch computation gives it (``tests/method/test_confidence.py``
checks this, including odd sizes and ties). NHWC logits (``train.channels_last``) take the
max over the contiguous class dimension instead, and the confidence as ``1 / sum(exp(l - max))``
(the top class's softmax value, without the other classes' probabilities): the same classes away
from near-ties of the logits, confidences within one float16 rounding step of the NCHW path's.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Elements of float32 probabilities per block: 4 MiB, small enough for a core's share of the
# cache, large enough that the per-block Python overhead stays below a few per cent.
BLOCK_ELEMENTS = 1 << 20


def max_softmax(logits: Tensor, block_elements: int = BLOCK_ELEMENTS) -> tuple[Tensor, Tensor]:
    """Per-pixel confidence and class: ``softmax(logits.float(), 1).max(1)``, block by block.

    Args:
        logits: ``(N, C, H, W)`` logits, any float dtype, any device; ``C <= 256``.
        block_elements: at most this many float32 probabilities are held at once (at least one
            row of one image).

    Returns:
        ``(confidence, classes)``: ``(N, H, W)`` float16 max-softmax probability (rounded to
        nearest from float32, as ``.to(torch.float16)`` does) and ``(N, H, W)`` uint8 class
        index (the first class among equal probabilities, as ``Tensor.max`` returns), on the
        device of ``logits``.
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must be (N, C, H, W), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a float tensor, got {logits.dtype}")
    n, c, h, w = logits.shape
    if not 1 <= c <= 256:
        raise ValueError(f"classes must fit uint8: 1..256 classes, got {c}")
    confidence = torch.empty((n, h, w), dtype=torch.float16, device=logits.device)
    classes = torch.empty((n, h, w), dtype=torch.uint8, device=logits.device)
    rows = max(1, block_elements // max(c * w, 1))
    if c > 1 and logits.is_contiguous(memory_format=torch.channels_last) and not logits.is_contiguous():
        # NHWC logits (train.channels_last): each pixel's classes are adjacent, so a block of rows
        # is a contiguous (rows, W, C) array and the softmax runs over its last dimension, with
        # no transposed copy (torch's softmax(1) of NHWC logits first copies them to NCHW)
        # The top softmax probability is exp(0) / sum(exp(l - max)) = 1 / sum(exp(l - max)): the
        # class comes from the logits' max and the confidence from one sum of exponentials,
        # without writing and re-reading every class's probability (about a quarter faster)
        pixels = logits.permute(0, 2, 3, 1)
        for i in range(n):
            for r in range(0, h, rows):
                block = pixels[i, r : r + rows].float()
                top, cls = block.max(dim=-1)
                total = (block - top.unsqueeze(-1)).exp_().sum(dim=-1)
                confidence[i, r : r + rows] = total.reciprocal_()
                classes[i, r : r + rows] = cls
        return confidence, classes
    for i in range(n):
        for r in range(0, h, rows):
            probs = logits[i : i + 1, :, r : r + rows].float().softmax(dim=1)
            conf, cls = probs.max(dim=1)
            confidence[i : i + 1, r : r + rows] = conf  # copy_ rounds to nearest, like .to(float16)
            classes[i : i + 1, r : r + rows] = cls
    return confidence, classes
