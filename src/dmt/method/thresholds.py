"""Curriculum thresholds of pseudo labels: the count a ratio keeps, and segmentation's class balance.

In phase ``i`` of the curriculum DMT trains on the ``ratio`` most confident pseudo labels;
:func:`keep_count` says how many of ``n`` items that is, exactly.

* Classification selects whole images (:mod:`dmt.method.selection`: the global ranking or the
  top ``ratio`` of each predicted class).
* Segmentation keeps, for every class ``c``, the top ``ratio`` of the pixels predicted as ``c``
  (class-balanced, as in CBST), so rare classes are not crowded out by frequent ones. The ranking
  is exact over all pixels of all images: pixel confidences are stored as float16, so a
  histogram with one bin per float16 bit pattern (:func:`confidence_histogram`) counts every
  distinct value, and :func:`class_balanced_thresholds` reads off the exact value a full sort
  would put at the cut. No pixel sampling, no approximation.

When the training stage reads the labels back, the thresholds are applied to the float16 bit
patterns as stored (:func:`threshold_table`, one table look-up per pixel), never to float32
copies of the maps; the result equals :func:`apply_class_thresholds` for every float16 value.

Everything here is a pure function on tensors (plus one tiny accumulator); reading the stored
labels from disk lives in :mod:`dmt.data.labels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

NUM_FLOAT16_BITS = 65536  # one histogram bin per 16-bit pattern
# Bit pattern of float16 +inf. Non-negative float16 values (0 .. inf) are exactly the patterns
# 0x0000 .. 0x7C00, and on them the integer order of the pattern is the order of the value.
_FLOAT16_INF_BITS = 0x7C00
_FLOAT16_ONE_BITS = 0x3C00
_NEGATIVE_ZERO_BITS = 0x8000
_MAX_HISTOGRAM_CLASSES = 32767  # keys class * 65536 + pattern stay below 2**31
# Ratios such as 0.29 are meant as the decimal 29/100; recovering the nearest fraction with a
# denominator up to 10**6 undoes the float error (0.29 * 100 == 28.999999999999996) while two
# different such fractions are always at least 1e-12 apart, far more than float error (~1e-16).
_MAX_RATIO_DENOMINATOR = 10**6
_RATIO_SNAP_TOLERANCE = 1e-12


def _check_ratio(ratio: float) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    if not (math.isfinite(ratio) and 0 < ratio <= 1):
        raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")


def keep_count(ratio: float, n: int) -> int:
    """How many of ``n`` items a curriculum ratio keeps: ``floor(ratio * n)``, without float error.

    ``0.29 * 100`` is ``28.999999999999996`` in floating point; a naive ``int()`` would keep 28.
    The ratio is first snapped to the simple fraction it stands for (denominator up to 10**6,
    e.g. ``0.29 -> 29/100``, ``1/3 -> 1/3``) and the product is then computed exactly.
    Ratios that are not such a fraction are used at their exact binary value.

    Args:
        ratio: the curriculum ratio, in ``(0, 1]``.
        n: number of items, ``>= 0``.

    Returns:
        ``floor(ratio * n)``, in ``[0, n]``.

    Raises:
        ValueError: if ``ratio`` is not in ``(0, 1]`` or ``n`` is negative.
    """
    _check_ratio(ratio)
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    n = int(n)
    exact = Fraction(ratio)
    snapped = exact.limit_denominator(_MAX_RATIO_DENOMINATOR)
    fraction = snapped if abs(snapped - exact) <= _RATIO_SNAP_TOLERANCE else exact
    return min(max(math.floor(fraction * n), 0), n)


def _check_same_shape(classes: Tensor, confidence: Tensor) -> None:
    if classes.shape != confidence.shape:
        raise ValueError(
            f"classes {tuple(classes.shape)} and confidence {tuple(confidence.shape)} differ in shape"
        )


def _check_float16(confidence: Tensor) -> None:
    if confidence.dtype != torch.float16:
        raise ValueError(f"confidence must be float16, got {confidence.dtype}")


def _float16_bits(confidence: Tensor) -> Tensor:
    """Bit patterns (int32 in ``[0, 0x3C00]``) of float16 confidences in ``[0, 1]``.

    Checked on the integers, without converting to float: the patterns of ``[0, 1]`` are
    ``0x0000 .. 0x3C00``; ``-0.0`` (``0x8000``, which would rank above 1.0) counts as ``+0.0``;
    negatives, values above 1, infinities and NaN have other patterns and are rejected.
    """
    _check_float16(confidence)
    bits = confidence.view(torch.int16).to(torch.int32) & 0xFFFF
    bits.masked_fill_(bits == _NEGATIVE_ZERO_BITS, 0)
    if bits.numel() and int(bits.max()) > _FLOAT16_ONE_BITS:
        raise ValueError("confidence must lie in [0, 1] (no NaN)")
    return bits


def confidence_histogram(classes: Tensor, confidence: Tensor, num_classes: int) -> Tensor:
    """Exact per-class count of every float16 confidence value in one image (or a batch).

    Args:
        classes: predicted class per pixel, uint8 or integer, any shape, values in
            ``[0, num_classes)``.
        confidence: float16 confidence per pixel in ``[0, 1]``, same shape as ``classes``.
        num_classes: ``C``.

    Returns:
        ``(C, 65536)`` int64: entry ``[c, b]`` counts pixels of class ``c`` whose confidence has
        float16 bit pattern ``b``. Histograms of several images add up.
    """
    return histogram_of_keys([histogram_keys(classes, confidence, num_classes)], num_classes)


def histogram_keys(classes: Tensor, confidence: Tensor, num_classes: int) -> Tensor:
    """The histogram bin of every pixel, ``class * 65536 + bit pattern``, as flat int32 (checked).

    Keys of several images can be concatenated and counted by one :func:`histogram_of_keys`,
    which is much cheaper than one ``(C, 65536)`` histogram per image.

    Raises:
        ValueError: shapes differ, classes outside ``[0, num_classes)``, confidence not float16
            in ``[0, 1]``.
    """
    _check_same_shape(classes, confidence)
    if classes.is_floating_point() or classes.dtype == torch.bool:
        raise ValueError(f"classes must be an integer tensor, got {classes.dtype}")
    if not 1 <= num_classes <= _MAX_HISTOGRAM_CLASSES:
        raise ValueError(f"num_classes must be in 1..{_MAX_HISTOGRAM_CLASSES}, got {num_classes}")
    bits = _float16_bits(confidence.reshape(-1))
    cls = classes.reshape(-1)
    if cls.numel():
        lo, hi = torch.aminmax(cls)
        if int(lo) < 0 or int(hi) >= num_classes:
            raise ValueError(f"classes must lie in [0, {num_classes}), got {int(lo)}..{int(hi)}")
    # int32 keys: half the memory traffic of int64; C * 65536 < 2**31
    return bits.add_(cls.to(torch.int32) * NUM_FLOAT16_BITS)


def histogram_of_keys(keys: list[Tensor], num_classes: int) -> Tensor:
    """``(C, 65536)`` int64 counts of the keys from :func:`histogram_keys`, one ``bincount``."""
    flat = keys[0] if len(keys) == 1 else torch.cat(keys)
    counts = torch.bincount(flat, minlength=num_classes * NUM_FLOAT16_BITS)
    return counts.reshape(num_classes, NUM_FLOAT16_BITS)


def class_balanced_thresholds(hist: Tensor, ratio: float) -> tuple[Tensor, Tensor, list[int]]:
    """Per-class confidence thresholds that keep the top ``ratio`` of each class's pixels.

    For class ``c`` with ``n_c`` pixels, ``k_c = max(1, keep_count(ratio, n_c))`` and the threshold
    is the ``k_c``-th largest confidence of the class: exactly what a full descending sort of all
    its pixels gives at position ``k_c - 1``. Pixels with ``confidence >= threshold`` are kept, so
    every pixel tied with the threshold is kept as well and the real count may exceed ``k_c``.

    Args:
        hist: ``(C, 65536)`` int64 counts from :func:`confidence_histogram`, summed over images.
        ratio: the curriculum ratio, in ``(0, 1]``; ``1.0`` keeps every pixel.

    Returns:
        ``(thresholds, kept_counts, empty_classes)``: ``(C,)`` float32 thresholds (each an exact
        float16 value; ``+inf`` for classes never predicted), ``(C,)`` int64 number of pixels
        the thresholds keep, and the classes with no pixel at all, for the caller to report.
    """
    _check_ratio(ratio)
    if hist.dim() != 2 or hist.shape[1] != NUM_FLOAT16_BITS:
        raise ValueError(f"hist must have shape (C, {NUM_FLOAT16_BITS}), got {tuple(hist.shape)}")
    if hist.is_floating_point() or hist.dtype == torch.bool:
        raise ValueError(f"hist must hold integer counts, got {hist.dtype}")
    hist = hist.to(torch.int64).cpu()
    if bool((hist < 0).any()) or bool(hist[:, _FLOAT16_INF_BITS + 1 :].any()):
        raise ValueError("hist has negative counts or counts for negative/NaN float16 values")

    # at_least[c, b] = number of class-c pixels whose confidence is >= the value with pattern b.
    at_least = hist.flip(1).cumsum(1).flip(1)
    totals = at_least[:, 0]
    num_classes = hist.shape[0]
    k = torch.tensor(
        [max(1, keep_count(ratio, int(n))) if n > 0 else 1 for n in totals.tolist()], dtype=torch.int64
    )
    # at_least is non-increasing in b, so the largest b with at_least >= k (the cut) is the
    # number of such b minus one: that is the k-th largest value.
    cut = (at_least >= k[:, None]).sum(1) - 1
    empty = totals == 0
    cut_safe = cut.clamp_min(0)
    kept = at_least.gather(1, cut_safe[:, None]).squeeze(1)
    thresholds = cut_safe.to(torch.int16).view(torch.float16).to(torch.float32)
    thresholds[empty] = math.inf
    kept[empty] = 0
    empty_classes = [c for c in range(num_classes) if bool(empty[c])]
    return thresholds, kept, empty_classes


def apply_class_thresholds(
    classes: Tensor, confidence: Tensor, thresholds: Tensor, ignore_index: int = 255
) -> Tensor:
    """Pseudo-label map: the predicted class where its confidence reaches the class's threshold.

    Args:
        classes: ``(H, W)`` predicted classes (uint8 or integer), values in ``[0, C)``.
        confidence: ``(H, W)`` float16 confidences.
        thresholds: ``(C,)`` per-class thresholds from :func:`class_balanced_thresholds`.
        ignore_index: the value written where a pixel is not kept (``0..255``).

    Returns:
        ``(H, W)`` uint8 map of kept classes, ``ignore_index`` elsewhere.
    """
    _check_same_shape(classes, confidence)
    _check_float16(confidence)
    if thresholds.dim() != 1:
        raise ValueError(f"thresholds must be 1-D (C,), got shape {tuple(thresholds.shape)}")
    if not 0 <= ignore_index <= 255:
        raise ValueError(f"ignore_index must fit uint8, got {ignore_index}")
    cls = classes.to(torch.int64)
    num_classes = thresholds.numel()
    if cls.numel() and (int(cls.min()) < 0 or int(cls.max()) >= num_classes):
        raise ValueError(f"classes must lie in [0, {num_classes}), got {int(cls.min())}..{int(cls.max())}")
    # float16 -> float32 is exact, and every threshold is a float16 value (or +inf), so this
    # comparison agrees bit for bit with the histogram's ranking.
    keep = confidence.to(torch.float32) >= thresholds.to(device=cls.device, dtype=torch.float32)[cls]
    return torch.where(keep, cls, torch.full_like(cls, ignore_index)).to(torch.uint8)


_NAN_KEY = -(1 << 17)  # below every float16 value's key
_NEVER_KEY = 1 << 17  # above every key: a NaN threshold keeps nothing


def _float16_order_keys() -> Tensor:
    """``(65536,)`` int32: for each float16 bit pattern, its rank among float16 values.

    Adjacent values get consecutive keys, ``-0.0`` and ``+0.0`` share key 0, negatives are
    negative, ``+inf`` is ``0x7C00`` and NaN gets a key below every value (NaN passes no test).
    """
    bits = torch.arange(NUM_FLOAT16_BITS, dtype=torch.int32)
    magnitude = bits & 0x7FFF
    keys = torch.where(bits < 0x8000, magnitude, -magnitude)
    keys[magnitude > _FLOAT16_INF_BITS] = _NAN_KEY
    return keys


_ORDER_KEYS = _float16_order_keys()


def threshold_keys(thresholds: Tensor) -> Tensor:
    """Per-class thresholds as float16 order keys (the comparison behind :func:`threshold_table`).

    A float16 confidence ``x`` satisfies ``x >= t`` exactly when its order key is at least the
    key of the smallest float16 value ``>= t``, for any float threshold ``t`` (float16 values,
    like those of :func:`class_balanced_thresholds`, map to their own key; ``+inf`` to
    ``0x7C00``; NaN to a key no confidence reaches).

    Args:
        thresholds: ``(C,)`` float thresholds.

    Returns:
        ``(C,)`` int32 keys.
    """
    if thresholds.dim() != 1 or not thresholds.is_floating_point():
        raise ValueError(f"thresholds must be a 1-D float tensor (C,), got {thresholds.dtype} {tuple(thresholds.shape)}")
    t = thresholds.detach().cpu().to(torch.float64)
    half = t.to(torch.float16)  # nearest float16 (may be below t, or +-inf beyond the range)
    keys = _ORDER_KEYS[half.view(torch.int16).to(torch.int64) & 0xFFFF].clone()
    keys += (half.to(torch.float64) < t).to(torch.int32)  # rounded down: the next float16 up
    keys[torch.isnan(t)] = _NEVER_KEY
    return keys


def threshold_table(thresholds: Tensor, ignore_index: int = 255) -> Tensor:
    """The pseudo label of every (class, float16 confidence) pair, for :func:`apply_threshold_table`.

    Entry ``[c, b]`` is ``c`` where a confidence with bit pattern ``b`` reaches class ``c``'s
    threshold (compared as float16 order keys, :func:`threshold_keys`) and ``ignore_index``
    elsewhere: ``65536`` bytes per class, built once per phase.

    Args:
        thresholds: ``(C,)`` float thresholds, ``C <= 256``.
        ignore_index: the label of pixels not kept (``0..255``).

    Returns:
        ``(C, 65536)`` uint8.
    """
    if not 0 <= ignore_index <= 255:
        raise ValueError(f"ignore_index must fit uint8, got {ignore_index}")
    keys = threshold_keys(thresholds)
    if keys.numel() > 256:
        raise ValueError(f"classes must fit uint8: at most 256 thresholds, got {keys.numel()}")
    kept = _ORDER_KEYS[None, :] >= keys[:, None]
    classes = torch.arange(keys.numel(), dtype=torch.uint8)[:, None].expand_as(kept)
    return torch.where(kept, classes, torch.tensor(ignore_index, dtype=torch.uint8))


def apply_threshold_table(classes: Tensor, confidence: Tensor, table: Tensor) -> Tensor:
    """:func:`apply_class_thresholds` on float16 bit patterns: same result, no float32 maps.

    One look-up per pixel at ``class * 65536 + bit pattern`` in the table of
    :func:`threshold_table`; equal to ``apply_class_thresholds`` for every float16 value (tests
    check all 65536 patterns).

    Args:
        classes: ``(H, W)`` uint8 predicted classes, values in ``[0, C)``.
        confidence: ``(H, W)`` float16 confidences.
        table: ``(C, 65536)`` uint8 from :func:`threshold_table`.

    Returns:
        ``(H, W)`` uint8 map of kept classes, ``ignore_index`` elsewhere.
    """
    _check_same_shape(classes, confidence)
    if classes.dtype != torch.uint8:
        raise ValueError(f"classes must be uint8, got {classes.dtype}")
    _check_float16(confidence)
    if table.dim() != 2 or table.shape[1] != NUM_FLOAT16_BITS or table.dtype != torch.uint8:
        raise ValueError(f"table must be (C, {NUM_FLOAT16_BITS}) uint8 from threshold_table, "
                         f"got {table.dtype} {tuple(table.shape)}")
    if classes.numel() and int(classes.max()) >= table.shape[0]:
        raise ValueError(f"classes must lie in [0, {table.shape[0]}), got up to {int(classes.max())}")
    index = confidence.reshape(-1).view(torch.int16).to(torch.int32) & 0xFFFF
    index += classes.reshape(-1).to(torch.int32) * NUM_FLOAT16_BITS
    return table.to(confidence.device).reshape(-1).index_select(0, index).reshape(classes.shape)


@dataclass
class ConfidenceHistogram:
    """A running sum of :func:`confidence_histogram` over the images of one labelling pass.

    Attributes:
        counts: ``(C, 65536)`` int64 counts.
    """

    counts: Tensor

    @classmethod
    def empty(cls, num_classes: int) -> "ConfidenceHistogram":
        """A histogram with no pixels for ``num_classes`` classes."""
        return cls(torch.zeros(num_classes, NUM_FLOAT16_BITS, dtype=torch.int64))

    def add(self, classes: Tensor, confidence: Tensor) -> None:
        """Count one image's (or batch's) pixels."""
        self.counts += confidence_histogram(classes, confidence, self.counts.shape[0]).to(self.counts.device)

    def thresholds(self, ratio: float) -> tuple[Tensor, Tensor, list[int]]:
        """:func:`class_balanced_thresholds` of the counts so far."""
        return class_balanced_thresholds(self.counts, ratio)
