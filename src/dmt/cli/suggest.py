"""``dmt suggest RUN_DIR --count N --out DIR``: the unlabelled images worth labelling next, and drafts of them."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmt.cli.help_format import DefaultsOnce
from dmt.cli.predict import report_skipped


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "suggest", help="rank a run's unlabelled images for labelling; draft them for an annotation tool",
        description="Rank a segmentation run's unlabelled images (splits/unlabelled.txt) by how much labelling "
        "them would help: the last phase's two members' disagreement, low-confidence area and rare predicted "
        "classes; near-duplicates are skipped. Writes <out>/suggestions.csv and <out>/contact_sheet.png; with "
        "--drafts, the predictions of the chosen images as pre-annotations under <out>/drafts/. With --images, "
        "drafts the listed images instead (no ranking). See docs/labelling.md.",
        formatter_class=DefaultsOnce)
    p.add_argument("run", metavar="RUN_DIR", help="a segmentation run directory written by dmt run")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--count", type=int, default=10, help="images to suggest")
    p.add_argument("--drafts", nargs="+", default=[], metavar="FORMAT",
                   help="also write pre-annotations: coco, cvat (Segmentation mask 1.1), labelstudio")
    p.add_argument("--images", nargs="+", default=None, metavar="INPUT",
                   help="draft these images (files, folders, list files) instead of ranking the run's unlabelled ones")
    p.add_argument("--weight", action="append", default=[], metavar="TERM=W",
                   help="a term's weight in the score (disagreement, low_confidence, rarity; each 1 by default)")
    p.add_argument("--threshold", type=float, default=0.75,
                   help="pixels whose top-class probability is below this count as low confidence")
    p.add_argument("--min-distance", type=float, default=0.04,
                   help="images whose 16x16 thumbnails differ by less than this (mean absolute, 0-1) are "
                        "near-duplicates: only the best of them is chosen")
    p.add_argument("--min-area", type=int, default=10, metavar="PIXELS", help="drafts leave out smaller regions")
    p.add_argument("--sheet-rows", type=int, default=12, help="images on the contact sheet")
    p.add_argument("--image-url", default="", metavar="PREFIX",
                   help="Label Studio drafts: prefix of each task's image, e.g. /data/local-files/?d=photos/")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-amp", action="store_true", help="float32 on CUDA too (default: autocast on CUDA)")
    p.set_defaults(func=main)


def parse_weights(pairs: list[str]) -> dict[str, float]:
    """``TERM=W`` options over the default weights (1 each)."""
    from dmt.errors import UserError
    from dmt.suggest.terms import TERMS

    weights = {t: 1.0 for t in TERMS}
    for pair in pairs:
        term, _, value = pair.partition("=")
        try:
            if term not in weights:
                raise ValueError
            weights[term] = float(value)
        except ValueError:
            raise UserError(f"--weight {pair!r}: expected TERM=NUMBER with TERM one of {', '.join(TERMS)}") from None
    return weights


def main(args: argparse.Namespace) -> int:
    from dmt.data.segmentation import SegItem
    from dmt.errors import UserError
    from dmt.suggest.members import load_members, unlabelled_items
    from dmt.engine.heap import map_large_blocks
    from dmt.suggest.suggest import MMAP_THRESHOLD, SuggestOptions, draft_images, suggest
    from dmt.tasks.context import resolve_device

    if args.count < 1 or args.batch_size < 1 or args.sheet_rows < 0 or args.min_area < 1:
        raise UserError("--count, --batch-size and --min-area must be at least 1, --sheet-rows at least 0")
    if not 0 < args.threshold <= 1 or args.min_distance < 0:
        raise UserError("--threshold must be in (0, 1], --min-distance at least 0")
    opts = SuggestOptions(out=Path(args.out), count=args.count, weights=parse_weights(args.weight),
                          threshold=args.threshold, min_distance=args.min_distance, drafts=args.drafts,
                          min_area=args.min_area, sheet_rows=args.sheet_rows, batch_size=args.batch_size,
                          image_url=args.image_url)
    map_large_blocks(MMAP_THRESHOLD)  # successive passes over one large image: see dmt.suggest.suggest
    run = Path(args.run)
    if args.images is not None:
        from dmt.predict.inputs import collect_inputs
        from dmt.suggest.drafts import check_formats

        check_formats(args.drafts)
        items = [SegItem(i.name, i.path) for i in collect_inputs(args.images)]
        members = load_members(run, resolve_device(args.device), not args.no_amp)
        files = draft_images(members, items, opts, model_version=f"dmt {run.resolve().name}")
        print(f"drafted {len(items)} image(s) -> {', '.join(str(f) for f in files)}")
        return 0
    if args.drafts:
        from dmt.suggest.drafts import check_formats

        check_formats(args.drafts)
    items = unlabelled_items(run)
    members = load_members(run, resolve_device(args.device), not args.no_amp)
    done = suggest(members, items, opts, model_version=f"dmt {run.resolve().name}")
    print(f"suggested {len(done.chosen)} of {len(items)} unlabelled image(s) -> {opts.out / 'suggestions.csv'}")
    for f in done.files[1:]:
        print(f"  {f}")
    return report_skipped(done.skipped)
