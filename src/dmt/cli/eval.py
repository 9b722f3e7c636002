"""``dmt eval CHECKPOINT``: evaluate any model file on a dataset's test or val set."""

from __future__ import annotations

import argparse
import json

from dmt.cli.help_format import DefaultsOnce
from dmt.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model file", description="Evaluate a model file "
                       "(stages/<stage>/model.safetensors) on a dataset.",
                       formatter_class=DefaultsOnce)
    p.add_argument("checkpoint", help="a model file written by dmt run")
    p.add_argument("--data", required=True,
                   help="dataset name (classification: cifar10, digits, ...; segmentation: voc, cityscapes, folder, "
                        "digit_scenes)")
    p.add_argument("--root", default=None, help="dataset folder")
    p.add_argument("--split", default=None, help="which set: classification test (default; val where there is no "
                   "test set) or val; segmentation val (default) or a named split")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-pixels", type=int, default=None, metavar="PIXELS",
                   help="images of more pixels are refused from their header (= data.max_pixels; default: the "
                        "run's, else Pillow's 89,478,485; 0: no limit)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted data config overrides, e.g. eval_pad=[505,505]; "
                   "eval.window=[H,W] eval.stride=[H,W] for sliding-window evaluation")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.engine import distributed as dist
    from dmt.predict.evaluate import evaluate_checkpoint
    from dmt.tasks.classification.data import CLASSIFICATION_SPLITS, classification_datasets

    if args.split is not None and args.data in classification_datasets() and args.split not in CLASSIFICATION_SPLITS:
        raise UserError(f"--split {args.split!r}: {args.data} models are scored on the test set (the default) "
                        "or the val set (--split val)")
    # bare keys are data keys; eval.window / eval.stride choose sliding-window evaluation
    overrides = [o if o.startswith(("data.", "eval.")) else f"data.{o}" for o in args.overrides]
    if args.max_pixels is not None:
        overrides.append(f"data.max_pixels={args.max_pixels}")
    if any("=" not in o for o in overrides):
        raise UserError("overrides must look like key=value")
    with dist.joined(args.device) as job:  # under torchrun each process scores its share of the set
        metrics = evaluate_checkpoint(args.checkpoint, args.data, args.root, args.split, args.device,
                                      args.batch_size, overrides, job)
    if job.is_main:
        print(json.dumps(metrics, indent=2))
    return 0
