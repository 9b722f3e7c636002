"""``dmt bench``: time our optimised paths against the plain configuration, print a table, write JSON."""

from __future__ import annotations

import argparse
import json

from dmt.atomic import write_text
from dmt.errors import UserError


class _ItemNames:
    """The bench items' names, read when argparse first checks or lists them.

    ``dmt.bench.items`` imports torch; building the parser of every command must not (``dmt
    predict MODEL.onnx`` runs without it).
    """

    def __iter__(self):
        from dmt.bench.items import ITEMS

        return iter(list(ITEMS))

    def __contains__(self, name: object) -> bool:
        return name in list(self)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark the training step, inference, labelling, data and --smoke",
                       description="Interleaved timings of each item's variants against our plain configuration "
                                   "(float32, contiguous, per-step host syncs, the original's labelling).")
    p.add_argument("--quick", action="store_true", help="smaller shapes and fewer repeats (about a minute)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="also write the results as JSON")
    p.add_argument("--only", action="append", choices=_ItemNames(), metavar="ITEM",
                   help="run only this item (repeatable): %(choices)s")
    p.add_argument("--device", default="cpu", help="device for the model items (cpu, cuda)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import torch

    from dmt.bench import run_bench

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        results = run_bench(quick=args.quick, only=args.only, device=args.device)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.out:
        write_text(args.out, json.dumps(results, indent=1))
        print(f"\nwrote {args.out}")
    return 0 if all("error" not in r for r in results["items"].values()) else 1
