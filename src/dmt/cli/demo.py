"""``dmt demo``: the offline demo, a preset on bundled data run by the ordinary pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmt.cli.help_format import DefaultsOnce
from dmt.engine.launch import launch_rank

DEMO_PRESETS = {"cls": "demo-digits", "seg": "demo-digit-scenes"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo on bundled data (nothing is downloaded)",
                       description="Baseline, 5 DMT phases and an oracle on scikit-learn's handwritten digits "
                                   "(--task cls) or on scenes built from them (--task seg).",
                       formatter_class=DefaultsOnce)
    p.add_argument("--task", choices=sorted(DEMO_PRESETS), default="cls", help="classification or segmentation")
    p.add_argument("--out", default=None, help="run directory (default: runs/demo-<task>)")
    p.add_argument("--seed", type=int, default=1, help="run seed")
    p.add_argument("--smoke", action="store_true", help="a few steps per stage only")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.run.api import experiment_config
    from dmt.run.runner import run_stages
    from dmt.run.summary import format_table

    cfg = experiment_config(DEMO_PRESETS[args.task], [f"seed={args.seed}", *args.overrides], smoke=args.smoke)
    out = Path(args.out) if args.out else Path("runs") / f"demo-{args.task}"
    results = run_stages(cfg, out)
    if launch_rank() == 0:  # under torchrun: rank 0 speaks for the job
        print(format_table(results))
        print(f"run directory: {out} (results.json, results.png, log.txt, tb/)")
        print(f"metric per stage, each model against its baseline and the oracle: {out / 'results.png'}")
        if cfg.task == "segmentation" and (out / "val_scenes.png").is_file():
            print(f"evaluation images, better baseline against the last phase: {out / 'val_scenes.png'}")
    return 0
