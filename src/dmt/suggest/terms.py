"""The three terms of an image's suggestion score, tallied a few rows at a time, and their combination.

Every term is a share of the image's pixels, in [0, 1], so images of any size compare:

* **disagreement** (two members): the pixels where member A's class differs from member B's,
  each weighted by the two members' mean confidence, divided by the image's pixels. A confident
  disagreement (one of the two is confidently wrong) weighs more than a pixel both shrug at.
* **low confidence**: the share of pixels whose top-class probability is below ``threshold``,
  averaged over the members.
* **rarity**: the image's predicted classes weighted by how rare they are in the predictions over
  the whole candidate set (:func:`rarity_weights`: the rarest predicted class weighs 1, a class
  ``n`` times as frequent ``1 / n``), averaged over the image's pixels (:func:`rarity`).

Confidences are uint8 ``round(255 p)`` (as the prediction pipeline hands them out); a pixel is of
low confidence when ``p < threshold``, i.e. its byte is below ``255 * threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TERMS = ("disagreement", "low_confidence", "rarity")


def disagreement_sum(cls_a: np.ndarray, conf_a: np.ndarray, cls_b: np.ndarray, conf_b: np.ndarray) -> float:
    """Sum over the pixels where the classes differ of the two members' mean probability ((a + b) / 2 / 255)."""
    differ = cls_a != cls_b
    weights = conf_a[differ].astype(np.float64) + conf_b[differ].astype(np.float64)
    return float(weights.sum() / (2 * 255.0))


def low_confidence_count(conf: np.ndarray, threshold: float) -> int:
    """Pixels whose probability ``conf / 255`` is below ``threshold``."""
    return int(np.count_nonzero(conf.astype(np.float32) < np.float32(255.0 * threshold)))


@dataclass
class Tally:
    """One image's running sums, filled row by row (:meth:`add`); the terms come from :meth:`terms`.

    Attributes:
        members: 1 or 2; counts: pixels predicted as each class, summed over the members.
    """

    num_classes: int
    members: int
    threshold: float
    pixels: int = 0
    disagreement: float = 0.0
    low: int = 0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, cls_a: np.ndarray, conf_a: np.ndarray, cls_b: np.ndarray | None = None,
            conf_b: np.ndarray | None = None) -> None:
        """Rows of member A (and B, the same rows) of the image: classes and uint8 confidences."""
        self.pixels += cls_a.size
        self.counts += np.bincount(cls_a.reshape(-1), minlength=self.num_classes)[: self.num_classes]
        self.low += low_confidence_count(conf_a, self.threshold)
        if cls_b is not None and conf_b is not None:
            self.counts += np.bincount(cls_b.reshape(-1), minlength=self.num_classes)[: self.num_classes]
            self.low += low_confidence_count(conf_b, self.threshold)
            self.disagreement += disagreement_sum(cls_a, conf_a, cls_b, conf_b)

    def terms(self, weights: np.ndarray) -> dict[str, float | None]:
        """``{"disagreement", "low_confidence", "rarity"}``; disagreement None with one member."""
        pixels = max(self.pixels, 1)
        return {"disagreement": self.disagreement / pixels if self.members == 2 else None,
                "low_confidence": self.low / (pixels * self.members),
                "rarity": rarity(self.counts, weights)}


def rarity_weights(total_counts: np.ndarray) -> np.ndarray:
    """Per class: the rarest predicted class's frequency over this class's (1 for the rarest, 0 when never predicted)."""
    counts = np.asarray(total_counts, dtype=np.float64)
    out = np.zeros_like(counts)
    seen = counts > 0
    if seen.any():
        out[seen] = counts[seen].min() / counts[seen]
    return out


def rarity(counts: np.ndarray, weights: np.ndarray) -> float:
    """An image's class counts weighted by :func:`rarity_weights`, per pixel counted (0 for no pixels)."""
    total = float(np.sum(counts))
    return float(np.dot(counts, weights) / total) if total else 0.0


def combine(terms: dict[str, float | None], weights: dict[str, float]) -> float:
    """The score: the weighted sum of the terms present (a one-member run has no disagreement)."""
    return float(sum(weights[k] * v for k, v in terms.items() if v is not None))
