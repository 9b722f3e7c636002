"""``dmt models``: the registered model factories; ``dmt models --timm PATTERN``: timm's models."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models (--timm PATTERN: timm's)",
                       description="List the registered models, or with --timm the timm classification models "
                                   "that model.name: timm/<name> builds, and their pretrained tags on the hub.")
    p.add_argument("--timm", metavar="PATTERN", default=None,
                   help="timm architectures matching this wildcard pattern (e.g. 'resnet1*', '*dinov2*')")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.models import list_families, list_models, model_task

    if args.timm is not None:
        return _timm(args.timm)
    for name in list_models():
        print(f"{name:<28} {model_task(name)}")
    for prefix, task in list_families().items():
        print(f"{prefix + '/<name>':<28} {task} (any {prefix} model: dmt models --{prefix} PATTERN)")
    return 0


def _timm(pattern: str) -> int:
    from dmt.models.timm_classifier import timm_architectures

    found = timm_architectures(pattern)
    if not found:
        print(f"no timm model matches {pattern!r} (patterns are wildcards: 'resnet*', '*dinov2*')")
        return 1
    for arch, tags in found:
        # the first tag is timm's default: timm/<arch> with weights: hub fetches it
        hub = f"hub: {tags[0]} (default){''.join(', ' + t for t in tags[1:])}" if tags else "no hub weights"
        print(f"timm/{arch:<36} {hub}")
    with_weights = sum(1 for _, tags in found if tags)
    print(f"{len(found)} models, {with_weights} with hub weights; model.name: timm/<name> (timm/<name>.<tag> for "
          "another tag than the default), model.weights: hub")
    return 0
