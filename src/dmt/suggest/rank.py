"""Ranking: every candidate image predicted by the members, its terms tallied row by row, one score each.

The images are read, batched and predicted by ``dmt predict``'s own path (:mod:`dmt.predict.batches`,
:func:`~dmt.predict.pipeline.segment` with the run's windows and ``max_side``). Member A's class
and confidence maps of a batch are computed as ``dmt predict`` computes them (uint8, at each
image's own size); member B's arrive a few rows at a time
(:func:`~dmt.predict.pipeline.segment_rows`) and are compared with A's rows at once, so memory is
what ``dmt predict`` needs for the batch: A's two uint8 maps and one member's window of scores,
never a second set of maps nor a ``classes x H x W`` array. The rarity weights need the class
counts of the whole set, so scores are computed once every image is tallied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from dmt.data.segmentation import SegItem
from dmt.engine.batches import eval_loader
from dmt.engine.progress import Progress
from dmt.errors import UserError
from dmt.predict.batches import Batch, batches, one, sample
from dmt.predict.pipeline import segment, segment_rows
from dmt.suggest.diversity import thumbnail
from dmt.suggest.members import Members, read_item
from dmt.suggest.terms import TERMS, Tally, combine, rarity_weights

log = logging.getLogger("dmt")


class ItemImages(Dataset):
    """Candidate images as :func:`~dmt.predict.batches.sample` dicts; an unreadable one as an ``error`` entry."""

    def __init__(self, items: list[SegItem], channels: int, scale: float, max_pixels: int | None) -> None:
        self.items, self.channels, self.scale, self.max_pixels = items, channels, scale, max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            pixels = read_item(self.items[index], self.channels, self.max_pixels)
        except UserError as e:
            return {"index": index, "error": str(e)}
        return sample(index, pixels, self.scale, None)


def predicted_batches(members: Members, items: list[SegItem], batch_size: int) -> Iterator[Batch]:
    """``dmt predict``'s batches of the items (read, resized to the run's read scale, grouped by size)."""
    meta = members.meta
    dataset = ItemImages(items, members.channels, meta.scale, meta.max_pixels)
    return batches(eval_loader(dataset, 1, 0, collate_fn=one), batch_size)


@dataclass
class Ranked:
    """One candidate's result: its terms (see :mod:`dmt.suggest.terms`) and score."""

    index: int
    name: str
    terms: dict[str, float | None]
    score: float


def tally_images(members: Members, items: list[SegItem], threshold: float, batch_size: int = 8
                 ) -> tuple[dict[int, Tally], dict[int, np.ndarray], list[tuple[str, str]]]:
    """Every readable item's :class:`~dmt.suggest.terms.Tally` and thumbnail, and the ``(name, reason)`` skipped."""
    meta, (first, *others) = members.meta, members.scorers
    tallies: dict[int, Tally] = {}
    thumbs: dict[int, np.ndarray] = {}
    skipped: list[tuple[str, str]] = []
    with Progress("suggest", len(items)) as bar:
        for batch in predicted_batches(members, items, batch_size):
            for index, error in batch.errors:
                log.warning("skipped %s", error)
                skipped.append((items[index].name, error))
            if batch.images is not None:
                x = first.place(batch.images)
                maps = segment(first, x, batch.sizes, meta.window, meta.stride, meta.max_side)
                batch_tallies = [Tally(len(meta.class_names), 1 + len(others), threshold) for _ in batch.index]
                if others:  # member B row by row against A's rows
                    for i, at, cls_b, conf_b in segment_rows(others[0], others[0].place(batch.images), batch.sizes,
                                                             meta.window, meta.stride, meta.max_side):
                        cls_a, conf_a = (m[at : at + len(cls_b)] for m in maps[i])
                        batch_tallies[i].add(cls_a, conf_a, cls_b, conf_b)
                else:
                    for tally, (cls_a, conf_a) in zip(batch_tallies, maps):
                        tally.add(cls_a, conf_a)
                for index, original, tally in zip(batch.index, batch.originals, batch_tallies):
                    tallies[index], thumbs[index] = tally, thumbnail(original)
                del maps, x
            bar.advance(len(batch.index) + len(batch.errors))
    return tallies, thumbs, skipped


def score_tallies(items: list[SegItem], tallies: dict[int, Tally], weights: dict[str, float]) -> list[Ranked]:
    """Each tallied item's terms and combined score, in input order (rarity against the whole set)."""
    unknown = set(weights) - set(TERMS)
    if unknown:
        raise UserError(f"unknown score terms {sorted(unknown)}; expected {', '.join(TERMS)}")
    total = np.sum([t.counts for t in tallies.values()], axis=0) if tallies else np.zeros(0, dtype=np.int64)
    rare = rarity_weights(total)
    out = []
    for index in sorted(tallies):
        terms = tallies[index].terms(rare)
        out.append(Ranked(index, items[index].name, terms, combine(terms, weights)))
    return out
