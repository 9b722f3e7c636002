"""``dmt predict MODEL_FILE INPUTS... --out DIR``: a trained model (or its exported ``.onnx`` file) on your own images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dmt.cli.help_format import DefaultsOnce


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="run a model file on your own images",
        description="Predict images with a model file written by dmt run (stages/<stage>/model.safetensors), "
        "or with an .onnx file written by dmt export (scored by ONNX Runtime, through the same reading, windows "
        "and outputs). "
        "Segmentation: <out>/masks/<name>.png (palette PNG, pixel value = class index), "
        "<out>/overlays/<name>.png (image + colours + legend), with --probs <out>/probs/<name>.png "
        "(confidence, 255 = certain). Classification: <out>/predictions.csv.",
        formatter_class=DefaultsOnce)
    p.add_argument("model", metavar="MODEL_FILE", help="a model file written by dmt run, or an .onnx file from dmt export")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively, masks/ folders left out; a folder "
                   "dataset's root: its images/ only) or list files (.txt/.lst, one path a line)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-amp", action="store_true", help="float32 on CUDA too (default: autocast on CUDA)")
    p.add_argument("--workers", type=int, default=0, help="image-decoding processes")
    p.add_argument("--probs", action="store_true", help="segmentation: also write uint8 confidence maps")
    p.add_argument("--window", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="segmentation: sliding-window inference (default: the run's eval.window, else whole images)")
    p.add_argument("--stride", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="step between windows (default: two thirds of the window)")
    p.add_argument("--max-side", type=int, default=None, metavar="PIXELS",
                   help="segmentation: images whose larger side exceeds this are predicted in windows of this "
                        "size, so memory is bounded by a window (default: the run's eval.max_side, else 1024; "
                        "0: whole images)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="PIXELS",
                   help="images of more pixels are skipped, read from the header only (default: the run's "
                        "data.max_pixels, else Pillow's 89,478,485; 0: no limit)")
    p.add_argument("--top-k", type=int, default=5, help="classification: classes in the top_k column")
    add_meaning_options(p)
    p.set_defaults(func=main)


def add_meaning_options(p: argparse.ArgumentParser) -> None:
    """What the classes mean and how images are read (``dmt predict`` and ``dmt export``; see :func:`meaning`)."""
    p.add_argument("--data", default=None,
                   help="take class names and colours from a built-in dataset (voc, cityscapes, digit_scenes, "
                   "cifar10, digits); default: the model's run, else the model file")
    p.add_argument("--classes", default=None, metavar="FILE", help="class names, one per line (classes.txt)")
    p.add_argument("--palette", default=None, metavar="FILE", help="colours, one 'r g b' line per class (palette.txt)")
    p.add_argument("--scale", type=float, default=None,
                   help="segmentation: resize factor on reading (default: the dataset's, e.g. 0.5 for Cityscapes)")
    p.add_argument("--size", type=int, default=None,
                   help="classification: images are resized to SIZE x SIZE (default: the dataset's, else 32)")


def meaning(args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`add_meaning_options` as keyword arguments of ``predict`` and ``export_model``."""
    return {"data": args.data, "classes_file": args.classes, "palette_file": args.palette, "scale": args.scale,
            "size": args.size}


def main(args: argparse.Namespace) -> int:
    from dmt.errors import UserError
    from dmt.predict.onnx_predict import is_onnx_file
    from dmt.predict.outputs import PredictOptions

    if args.batch_size < 1 or args.top_k < 1 or args.workers < 0:
        raise UserError("--batch-size and --top-k must be at least 1, --workers at least 0")
    if (args.max_side or 0) < 0 or (args.max_pixels or 0) < 0:
        raise UserError("--max-side and --max-pixels must be at least 0 (0: no limit)")
    opts = PredictOptions(out=Path(args.out), device=args.device, batch_size=args.batch_size,
                          amp=not args.no_amp, probs=args.probs, top_k=args.top_k, window=args.window,
                          stride=args.stride, num_workers=args.workers, max_side=args.max_side,
                          max_pixels=args.max_pixels)
    if is_onnx_file(args.model):  # scored by ONNX Runtime
        from dmt.predict.onnx_predict import predict_onnx

        fixed = [f"--{k}" for k in ("data", "classes", "palette") if getattr(args, k) is not None]
        if fixed:
            raise UserError(f"{args.model}: {' '.join(fixed)} does not apply to an .onnx file "
                            "(class names and colours are fixed by dmt export --data/--classes/--palette)")
        summary = predict_onnx(args.model, args.inputs, opts, scale=args.scale, size=args.size)
    else:
        from dmt.predict.predict import predict
        from dmt.tasks.context import resolve_device

        opts.device = resolve_device(args.device)
        summary = predict(args.model, args.inputs, opts, **meaning(args))
    print(f"predicted {summary.written} image(s) -> {args.out}")
    return report_skipped(summary.skipped)


def report_skipped(skipped: list[tuple[object, str]]) -> int:
    """The images a command could not read, one line each on stderr; its exit status (1 if any, else 0)."""
    if not skipped:
        return 0
    print(f"skipped {len(skipped)} image(s) that could not be read:", file=sys.stderr)
    for _, reason in skipped:
        print(f"  {reason}", file=sys.stderr)
    return 1
