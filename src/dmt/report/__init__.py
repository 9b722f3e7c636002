"""``dmt report``: one self-contained HTML page from one or several run directories."""

from __future__ import annotations

from pathlib import Path

from dmt.report.load import RunData, load_run
from dmt.report.page import render_page

__all__ = ["RunData", "load_run", "render_page", "write_report"]


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Read every run directory and write the page to ``out``; returns its path."""
    runs = [load_run(d) for d in run_dirs]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_page(runs), encoding="utf-8")
    tmp.replace(path)
    return path
