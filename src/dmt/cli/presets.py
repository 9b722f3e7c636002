"""``dmt presets``: the shipped experiment presets, one line each."""

from __future__ import annotations

import argparse

from dmt.config import list_presets


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the shipped presets", description="List the shipped presets.")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    presets = list_presets()
    width = max((len(n) for n in presets), default=0)
    for name, desc in presets.items():
        print(f"{name:<{width}}  {desc}")
    return 0
