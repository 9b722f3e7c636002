"""``dmt run PRESET_OR_YAML [key=value ...] [--out DIR] [--smoke]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.pipeline.report import format_table
from dmt.pipeline.runner import run_experiment


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment: baseline, curriculum phases, evaluation",
                       description="Run (or resume) an experiment. Re-running the same command on the same "
                                   "--out resumes: finished stages are skipped, an interrupted one continues.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("config", metavar="PRESET_OR_YAML", help="a preset name (see `dmt presets`) or a YAML file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. data.root=/data")
    p.add_argument("--out", default=None, help="run directory (default: runs/<preset name>)")
    p.add_argument("--smoke", action="store_true", help="every stage for a few steps on a few images")
    p.set_defaults(func=main)


def default_out(config: str, smoke: bool) -> Path:
    return Path("runs") / (Path(config).stem + ("-smoke" if smoke else ""))


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    if args.smoke:
        cfg = apply_smoke(cfg)
    out = Path(args.out) if args.out else default_out(args.config, args.smoke)
    results = run_experiment(cfg, out)
    print(format_table(results))
    print(f"run directory: {out}")
    return 0
