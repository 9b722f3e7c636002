"""``dmt export MODEL_FILE --format onnx|torchscript --out FILE``: a model file as a verified graph."""

from __future__ import annotations

import argparse

from dmt.cli.help_format import DefaultsOnce
from dmt.cli.predict import add_meaning_options, meaning


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a model file to ONNX or TorchScript (verified against PyTorch)",
        description="Write a model file as an ONNX or TorchScript graph that takes a uint8 N x C x H x W image "
        "batch and returns logits or probabilities at the input size (segmentation) or per image "
        "(classification), with class names, palette, task and the model file's sha256 in its metadata. "
        "The file is run on batches of other sizes and compared with the PyTorch model before it is kept; "
        "a mismatch writes nothing and exits 2. See docs/export.md.",
        formatter_class=DefaultsOnce)
    p.add_argument("model", metavar="MODEL_FILE", help="a model file written by dmt run")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write (.onnx for ONNX)")
    p.add_argument("--format", default="onnx", choices=("onnx", "torchscript"), help="graph format")
    p.add_argument("--output", default="logits", choices=("logits", "probabilities"),
                   help="what the graph returns (probabilities: softmax over the classes)")
    add_meaning_options(p)  # what the classes mean and how images are read, recorded in the file
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.predict.export import export_model

    report = export_model(args.model, args.out, args.format, output=args.output, **meaning(args))
    print(f"exported {args.model} -> {report.path} ({report.format}, {report.export_s:.1f} s; "
          f"verified in {report.verify_s:.1f} s)")
    return 0
