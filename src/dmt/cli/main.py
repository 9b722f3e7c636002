"""The ``dmt`` command: one small module per subcommand."""

from __future__ import annotations

import argparse
import logging
import sys

from dmt import __version__
from dmt.errors import UserError

COMMANDS = ("run", "demo", "presets", "models", "eval", "convert_coco")


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("dmt")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(getattr(h, "_dmt_console", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler._dmt_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmt", description="Dynamic Mutual Training for semi-supervised classification and segmentation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dmt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    import importlib

    for name in COMMANDS:
        importlib.import_module(f"dmt.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
