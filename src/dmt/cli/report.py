"""``dmt report RUN_DIR [RUN_DIR ...]``: a self-contained HTML page about one or several runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmt.cli.help_format import DefaultsOnce
from dmt.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report of one or several run directories",
                       description="One self-contained HTML page (plots embedded, nothing loaded from the network) "
                                   "from results.json, TensorBoard events and the stage folders. With several run "
                                   "directories every plot is shown side by side.",
                       formatter_class=DefaultsOnce)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by dmt run / dmt demo")
    p.add_argument("--out", default=None, help="the HTML file (default: RUN_DIR/report.html for one run; "
                                               "required for several)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.report import write_report

    if args.out is None and len(args.runs) > 1:
        raise UserError("--out: give the HTML file to write when reporting on several run directories")
    out = Path(args.out) if args.out else Path(args.runs[0]) / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {out}: expected a file name ending in .html")
    path = write_report(args.runs, out)
    print(f"report: {path}")
    return 0
