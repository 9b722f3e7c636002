"""``dmt check PRESET_OR_YAML [key=value ...] [--smoke] [--full]``: the pre-flight check alone.

Checks what ``dmt run`` checks before its first stage (see :mod:`dmt.run.preflight`):
listed files exist, image and mask headers open with matching sizes, weights files open and
fit the model; with ``--smoke`` every mask's values too, and a missing weights file is a
warning. Writes nothing.
"""

from __future__ import annotations

import argparse

from dmt.cli.help_format import DefaultsOnce
from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.engine.launch import launch_world_size


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check a run's data and weights files without running it",
                       description="Run the pre-flight check of `dmt run` alone: every listed image and mask "
                                   "exists, headers open with matching sizes, weights files fit the model.",
                       formatter_class=DefaultsOnce)
    p.add_argument("config", metavar="PRESET_OR_YAML", help="a preset name (see `dmt presets`) or a YAML file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. data.root=/data")
    p.add_argument("--smoke", action="store_true",
                   help="as `dmt run --smoke` checks: every listed file, every mask's values, and a missing "
                        "weights file is one warning line (its key and where it comes from) instead of an error")
    p.add_argument("--full", action="store_true", help="decode every image and mask (data.check=full)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.run.preflight import preflight

    overrides = [*args.overrides, *(["data.check=full"] if args.full else [])]
    cfg = load_config(args.config, overrides)
    if args.smoke:
        cfg = apply_smoke(cfg, world_size=launch_world_size())
    if cfg.data.check == "none":
        cfg.data.check = "headers"  # asked for explicitly: check at least the headers
    print(preflight(cfg).summary())
    return 0
