"""``dmt presets``: the shipped experiment presets, one line each; ``--show`` resolves one."""

from __future__ import annotations

import argparse

from dmt.config import config_to_dict, list_presets
from dmt.config.inherit import annotated_lines
from dmt.config.loader import load_config_with_origins


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "presets", help="list the shipped presets, or show one resolved",
        description="List the shipped presets. With --show, print one preset (or YAML file) fully "
        "resolved, each key with the file it came from (default, a preset file, or override).")
    p.add_argument("--show", metavar="NAME", help="a preset name or YAML file to resolve")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides applied before showing")
    p.set_defaults(func=main)


def show(source: str, overrides: list[str]) -> str:
    """The resolved configuration as YAML lines, each leaf followed by ``# <origin>``."""
    cfg, origins = load_config_with_origins(source, overrides)
    lines = annotated_lines(config_to_dict(cfg), origins)
    # align the comments, except after the odd very long line (a description)
    width = min(max(len(text) for text, origin in lines if origin), 44)
    out = [f"# {source}: resolved configuration; after each value, the file it comes from"]
    out += [f"{text:<{width}}  # {origin}" if origin else text for text, origin in lines]
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    if args.show:
        print(show(args.show, args.overrides))
        return 0
    if args.overrides:
        from dmt.errors import UserError

        raise UserError("overrides (KEY=VALUE) are only read with --show NAME")
    presets = list_presets()
    width = max((len(n) for n in presets), default=0)
    for name, desc in presets.items():
        print(f"{name:<{width}}  {desc}")
    return 0
