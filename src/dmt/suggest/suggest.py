"""``dmt suggest``: which unlabelled images to label next, and the model's drafts of them.

:func:`suggest` ranks the run's unlabelled images (:mod:`dmt.suggest.rank`), picks ``count`` of
them under the diversity rule (:func:`~dmt.suggest.diversity.pick`) and writes
``<out>/suggestions.csv``, ``<out>/contact_sheet.png`` (the first ``sheet_rows`` of them) and,
with ``drafts``, their pre-annotations (:mod:`dmt.suggest.drafts`). :func:`draft_images` drafts
any list of images, without ranking. The chosen images are predicted a second time for the sheet
and the drafts, one image at a time: the ranking pass keeps statistics, not maps.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dmt.annotations.draft_coco import MIN_AREA
from dmt.atomic import atomic_write
from dmt.data.segmentation import SegItem
from dmt.errors import UserError
from dmt.predict.batches import Batch
from dmt.predict.pipeline import segment
from dmt.suggest.diversity import MIN_DISTANCE, pick
from dmt.suggest.drafts import DraftWriters
from dmt.suggest.members import MeanScorer, Members
from dmt.suggest.rank import Ranked, predicted_batches, score_tallies, tally_images
from dmt.suggest.sheet import SheetRow, sheet_row, tile, write_sheet
from dmt.suggest.terms import TERMS

log = logging.getLogger("dmt")
# Blocks of 4 MiB and more always come from (and go back to) the kernel (dmt.engine.heap): the same
# large image is predicted several times in one process, and with glibc's default, rising threshold
# the later passes' temporaries fragmented the heap. On a 3000 x 3000 image read at 1 (two 21-class
# deeplabv2_tiny members, 2026-12-07) dmt suggest peaked at 1,293 MiB against dmt predict's 1,232 MiB
# with the default policy, and at 1,219 MiB with this threshold.
MMAP_THRESHOLD = 4 << 20

CSV_COLUMNS = ("rank", "image", "score", *TERMS, "similar_to")


@dataclass
class SuggestOptions:
    """How to rank and what to write.

    Attributes:
        count: images suggested; weights: each term's weight in the score.
        threshold: a pixel of lower top-class probability counts as low confidence.
        min_distance: thumbnails closer than this are near-duplicates (:mod:`dmt.suggest.diversity`).
        drafts: formats of the pre-annotations (``coco``, ``cvat``, ``labelstudio``); none: no drafts.
        sheet_rows: images shown on the contact sheet (the first of the suggestions).
    """

    out: Path
    count: int = 10
    weights: dict[str, float] = field(default_factory=lambda: {t: 1.0 for t in TERMS})
    threshold: float = 0.75
    min_distance: float = MIN_DISTANCE
    drafts: list[str] = field(default_factory=list)
    min_area: int = MIN_AREA
    sheet_rows: int = 12
    batch_size: int = 8
    image_url: str = ""


@dataclass
class Suggestions:
    """What :func:`suggest` chose (best first, with the chosen image each resembles) and skipped."""

    chosen: list[tuple[Ranked, str]]
    skipped: list[tuple[str, str]]
    files: list[Path]


def write_suggestions(path: Path, chosen: list[tuple[Ranked, str]]) -> Path:
    """``suggestions.csv``: rank, image, score, each term (empty when absent), similar_to."""
    with atomic_write(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for rank, (r, near) in enumerate(chosen, start=1):
            terms = ["" if r.terms[t] is None else f"{r.terms[t]:.6f}" for t in TERMS]
            writer.writerow([rank, r.name, f"{r.score:.6f}", *terms, near])
    return path


def suggest(members: Members, items: list[SegItem], opts: SuggestOptions, model_version: str = "dmt") -> Suggestions:
    """Rank ``items`` with the members, choose ``opts.count``, write the table, sheet and drafts."""
    if opts.count < 1:
        raise UserError(f"--count {opts.count}: expected at least 1")
    tallies, thumbs, skipped = tally_images(members, items, opts.threshold, opts.batch_size)
    ranked = score_tallies(items, tallies, opts.weights)
    if not ranked:
        raise UserError(f"none of the {len(items)} images could be read")
    picked = pick([r.score for r in ranked], [thumbs[r.index] for r in ranked], opts.count, opts.min_distance)
    chosen = [(ranked[i], "" if near is None else ranked[near].name) for i, near in picked]
    files = [write_suggestions(opts.out / "suggestions.csv", chosen)]
    files += render_chosen(members, items, chosen, opts, model_version)
    return Suggestions(chosen, skipped, files)


def render_chosen(members: Members, items: list[SegItem], chosen: list[tuple[Ranked, str]], opts: SuggestOptions,
                  model_version: str) -> list[Path]:
    """The contact sheet of the first ``sheet_rows`` chosen images and the drafts of all of them.

    One image at a time, one member's maps at a time: each member's full-size maps are cut to
    tiles at once; the drafts' class map is the only other full-size map held.
    """
    meta, shown = members.meta, opts.sheet_rows
    writers = (DraftWriters(opts.out / "drafts", opts.drafts, meta.class_names, meta.palette, opts.min_area,
                            opts.image_url, model_version) if opts.drafts else None)
    rows: list[SheetRow] = []
    for batch in predicted_batches(members, [items[r.index] for r, _ in chosen], 1):
        if batch.images is None:  # read once already: only a file changed since could fail here
            continue
        k = batch.index[0]  # position in chosen
        ranked = chosen[k][0]
        pixels, class_tiles, conf_tile, drafted = batch.originals[0], [], None, None
        if k < shown or (writers is not None and len(members.scorers) == 1):
            for scorer in members.scorers:
                classes, confidence = segment(scorer, scorer.place(batch.images), batch.sizes, meta.window,
                                              meta.stride, meta.max_side)[0]
                class_tiles.append(tile(classes))
                conf_tile = tile(confidence) if conf_tile is None else conf_tile
                drafted = classes if len(members.scorers) == 1 else None
                del classes, confidence
        if k < shown:
            rows.append(sheet_row(f"{len(rows) + 1}. {ranked.name}  score {ranked.score:.3f}", tile(pixels),
                                  class_tiles, conf_tile, opts.threshold))
        if writers is not None:
            drafted = drafted if drafted is not None else draft_classes(members, batch)
            writers.add(items[ranked.index], pixels, drafted, ranked.score)
    two = len(members.scorers) == 2
    headers = ["image", "A", "B", "disagreement"] if two else ["image", "prediction", "low confidence"]
    files = [write_sheet(opts.out / "contact_sheet.png", rows, meta.palette, headers)]
    return files + (writers.close() if writers is not None else [])


def draft_classes(members: Members, batch: Batch) -> np.ndarray:
    """The drafted class map of a one-image batch: the mean of the members' probabilities (one member: its own)."""
    meta = members.meta
    scorer = MeanScorer(members.scorers) if len(members.scorers) > 1 else members.scorers[0]
    return segment(scorer, scorer.place(batch.images), batch.sizes, meta.window, meta.stride, meta.max_side)[0][0]


def draft_images(members: Members, items: list[SegItem], opts: SuggestOptions, model_version: str = "dmt"
                 ) -> list[Path]:
    """The drafts of ``items`` (any images; no ranking, no sheet), one image at a time."""
    if not opts.drafts:
        raise UserError("--images drafts the listed images: name the formats with --drafts coco|cvat|labelstudio")
    writers = DraftWriters(opts.out / "drafts", opts.drafts, members.meta.class_names, members.meta.palette,
                           opts.min_area, opts.image_url, model_version)
    for batch in predicted_batches(members, items, 1):
        for index, error in batch.errors:
            log.warning("skipped %s", error)
        if batch.images is not None:
            writers.add(items[batch.index[0]], batch.originals[0], draft_classes(members, batch))
    return writers.close()
