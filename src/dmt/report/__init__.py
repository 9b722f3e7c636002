"""``dmt report``: one self-contained HTML page from one or several run directories.

``load`` reads what a run directory holds (never writing into it), ``figures`` and ``curves``
draw one plot per section on ``drawing``'s ground (plain tick labels, PNG bytes) and ``page``
assembles the HTML with every picture embedded. A tool above ``run``:
imports ``run`` (a run's config, the summaries), ``tasks.panels`` (sample pictures) and ``data``.
"""

from __future__ import annotations

from pathlib import Path

from dmt.atomic import write_text
from dmt.report.load import RunData, load_run
from dmt.report.page import render_page

__all__ = ["RunData", "load_run", "render_page", "write_report"]


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Read every run directory and write the page to ``out``; returns its path."""
    runs = [load_run(d) for d in run_dirs]
    path = Path(out)
    write_text(path, render_page(runs))
    return path
