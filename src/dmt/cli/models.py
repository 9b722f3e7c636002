"""``dmt models``: the registered model factories."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models", description="List the registered models.")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.models import list_models, model_task

    for name in list_models():
        print(f"{name:<28} {model_task(name)}")
    return 0
