"""``dmt convert-coco SRC DST``: the COCO-pretrained DeepLab-v2 checkpoint as dmt safetensors."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-coco", help="convert the COCO-pretrained DeepLab-v2 checkpoint",
                       description="Map the caffe-converted COCO DeepLab-v2 checkpoint (AdvSemiSeg's "
                                   "resnet101COCO-41f33a49.pth) onto dmt's DeepLab-v2 and write safetensors "
                                   "for model.init=coco model.weights=DST.")
    p.add_argument("src", help="the .pth checkpoint")
    p.add_argument("dst", help="output .safetensors file")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.models.coco import convert_coco_checkpoint

    convert_coco_checkpoint(args.src, args.dst)
    print(f"wrote {args.dst}")
    return 0
