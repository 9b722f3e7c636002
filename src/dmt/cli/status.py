"""``dmt status RUN_DIR``: finished stages, the running or interrupted one, time left, how to resume."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="where a run stands (read only)",
        description="Show which stages of a run are finished (with their metric), which one is running or "
        "was interrupted and at what step, the estimated time left for the stage and the run, and the "
        "command that resumes it. The run directory is only read (its lock is not taken).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (--out of dmt run)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from dmt.run.status import format_status, run_status

    status = run_status(args.run_dir)
    print(json.dumps(status.to_dict(), indent=2) if args.json else format_status(status))
    return 0
