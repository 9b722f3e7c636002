"""The report page: one self-contained HTML file, every picture embedded as a ``data:`` URI.

No script, no style sheet or font from elsewhere: the page opens offline and can be mailed.
Several runs share each section, one column per run, so the same plot sits side by side.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from dmt import __version__
from dmt.report import curves, figures
from dmt.report.drawing import FigureResult
from dmt.report.load import RunData

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ccc; }
h3 { font-size: 14px; margin: 4px 0; } .sub { color: #666; font-size: 13px; }
.row { display: flex; gap: 16px; align-items: flex-start; flex-wrap: nowrap; overflow-x: auto; }
.col { flex: 1 1 0; min-width: 320px; } img { max-width: 100%; height: auto; }
.note { color: #8a5a00; background: #fff7e0; border-left: 3px solid #e0b000; padding: 4px 8px; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.grid { display: inline-block; } .grid-head { display: flex; font-size: 12px; color: #444; }
.grid-head span { flex: 1; text-align: center; }
details { margin: 4px 0; } summary { cursor: pointer; font-size: 13px; }
.legend span { display: inline-block; margin-right: 10px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 3px; border: 1px solid #999; }
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for ``png`` bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png_of(picture: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    return buf.getvalue()


def _e(text: object) -> str:
    return html.escape(str(text))


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>' if text else ""


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else "" if v is None or isinstance(v, float) else _e(v)


def _share(v: object) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, float) and math.isfinite(v) else ""


def summary_table(runs: list[RunData]) -> str:
    """One line per run: task, method, stages done, baseline / final / oracle (the mean of two models) and
    the gap closed, by the mean and by the better baseline against the better final model."""
    head = ("<tr><th>run</th><th>task</th><th>method</th><th>stages done</th><th>metric</th><th>baseline</th>"
            "<th>final</th><th>oracle</th><th>gap closed</th><th>better of two: gap closed</th><th>wall time</th></tr>")
    lines = [head]
    for r in runs:
        s = r.results.get("summary", {})
        plan = r.results.get("plan") or []
        wall = sum(float(st.get("wall_time_s", 0)) for st in r.stages)
        flag = " (smoke)" if r.results.get("smoke") else ""
        lines.append(
            f"<tr><td>{_e(r.name)}{flag}</td><td>{_e(r.task)}</td><td>{_e(r.results.get('method', ''))}</td>"
            f"<td>{len(r.stages)} / {len(plan) or '?'}</td><td>{_e(s.get('metric', ''))}</td>"
            f"<td>{_fmt(s.get('baseline'))}</td><td>{_fmt(s.get('final'))}</td><td>{_fmt(s.get('oracle'))}</td>"
            f"<td>{_share(s.get('gap_closed'))}</td><td>{_share(s.get('best_gap_closed'))}</td>"
            f"<td>{wall:.0f} s</td></tr>")
    return "<table>" + "".join(lines) + "</table>"


def _figure_cell(run: RunData, make: Callable[[RunData], FigureResult], alt: str) -> str:
    png, note = make(run)
    body = f'<img alt="{_e(alt)}" src="{data_uri(png)}">' if png is not None else ""
    if png is None and not note:
        note = "not available for this run"
    return body + _note(note)


def _swatches(items: Sequence[tuple[str, Sequence[int]]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background: rgb{tuple(int(c) for c in colour)}"></i>{_e(name)}</span>'
        for name, colour in items) + "</div>"


def _legend(run: RunData) -> str:
    from dmt.tasks.panels import IGNORE_COLOUR, class_palette

    palette = class_palette(len(run.class_names))
    return _swatches([*zip(run.class_names, palette), ("no label / not kept", IGNORE_COLOUR)])


def val_scenes_cell(run: RunData) -> str:
    """The evaluation images compared: the better baseline against the last phase's better model."""
    if run.task != "segmentation":
        return _note("the evaluation-image comparison is drawn for segmentation runs")
    if run.val_scenes is None:
        return _note("this run has no val_scenes.png (written at the run's end once a phase has finished, "
                     "by dmt versions that store evaluation predictions)")
    info = run.val_scenes.info
    before, after = info.get("before") or {}, info.get("after") or {}

    def said(s: dict) -> str:
        score = s.get("miou")
        return f"{s.get('stage', '?')}" + (f" (mIoU {score:.4f})" if isinstance(score, (int, float)) else "")

    classes, palette = info.get("classes") or run.class_names, info.get("palette")
    if not isinstance(palette, list):
        from dmt.tasks.panels import class_palette

        palette = class_palette(len(classes)).tolist()
    changes = [(k, tuple(v)) for k, v in (info.get("changes") or {}).items()]
    return (f"<p class='sub'>better baseline: {_e(said(before))}; last phase: {_e(said(after))}; images "
            f"{_e(', '.join(info.get('names', [])))}</p>" + _swatches(list(zip(classes, map(tuple, palette))))
            + _swatches([("changes: " + k if i == 0 else k, c) for i, (k, c) in enumerate(changes)])
            # the picture names its own columns (tasks.panels.titled)
            + f"<div class='grid'><img alt='evaluation images compared' "
            f"src='{data_uri(run.val_scenes.png.read_bytes())}'></div>")


def samples_cell(run: RunData) -> str:
    """The sample grids of a segmentation run: the last phase open, the other stages folded."""
    if run.task != "segmentation":
        return _note("sample grids are drawn for segmentation runs")
    if not run.samples:
        return _note("this run stored no sample grid (written at each stage's end since dmt 0.1 with this "
                     "report) and no pseudo labels (phases.keep_labels: false)")
    names = [s["name"] for s in run.stages if s["name"] in run.samples]
    phases = [n for n in names if any(st["name"] == n and st.get("kind") == "phase" for st in run.stages)]
    open_at = phases[-2:] if len(phases) > 1 and phases[-1].endswith("-b") else phases[-1:]
    out = [_legend(run)]
    for n in names:
        s = run.samples[n]
        pic = data_uri(s.png.read_bytes()) if s.png is not None else None
        imgs = []
        if pic is not None:
            imgs.append(f'<img alt="samples of {_e(n)}" src="{pic}">')
        for picture in s.pictures:
            imgs.append(f'<img alt="stored labels of {_e(n)}" src="{data_uri(_png_of(picture))}"><br>')
        kept = run.labels_kept.get(n)
        mixed = len(set(run.labels_kept.values())) > 1  # else one note below says it for every phase
        label_note = "" if kept is None or not mixed else " (stored labels kept)" if kept else \
            " (stored labels deleted after the phase)"
        head = "".join(f"<span>{_e(c)}</span>" for c in s.columns)
        out.append(f"<details{' open' if n in open_at else ''}><summary>{_e(n)}{label_note}: "
                   f"{_e(', '.join(s.names))}</summary><div class='grid'><div class='grid-head'>{head}</div>"
                   f"{''.join(imgs)}</div>{_note(s.note)}</details>")
    if run.labels_kept and not any(run.labels_kept.values()):
        out.insert(1, _note("stored pseudo labels were deleted after each phase (phases.keep_labels: false); "
                            "the grids were drawn at each stage's end"))
    return "".join(out)


SECTIONS: list[tuple[str, str, Callable[[RunData], str]]] = [
    ("headline", "Headline metric per stage", lambda r: _figure_cell(r, figures.headline_figure, "headline metric")),
    ("valpanel", "Evaluation images: better baseline against the last phase", val_scenes_cell),
    ("iou", "IoU per class and stage", lambda r: _figure_cell(r, figures.iou_figure, "per-class IoU")),
    ("pseudo", "Pseudo labels per class and phase: share kept and threshold",
     lambda r: _figure_cell(r, figures.pseudo_figure, "pseudo-label share and threshold")),
    ("dynamics", "Dynamic weights per phase", lambda r: _figure_cell(r, figures.dynamics_figure, "dynamic weights")),
    ("samples", "Unlabelled images: kept pseudo labels and final prediction", samples_cell),
    ("curves", "Training curves (TensorBoard)", lambda r: _figure_cell(r, curves.curves_figure, "training curves")),
]


def render_page(runs: list[RunData]) -> str:
    """The whole HTML page for ``runs`` (one column per run in every section)."""
    title = "dmt report: " + ", ".join(r.name for r in runs)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{CSS}</style>"
             "</head><body>", f"<h1>{_e(title)}</h1>",
             f"<p class='sub'>made {datetime.now():%Y-%m-%d %H:%M} by dmt {__version__} from "
             f"{_e(', '.join(str(r.path) for r in runs))}</p>", "<h2 id='summary'>Summary</h2>", summary_table(runs)]
    for r in runs:
        for n in r.notes:
            parts.append(_note(f"{r.name}: {n}"))
    for anchor, heading, cell in SECTIONS:
        parts.append(f"<h2 id='{anchor}'>{_e(heading)}</h2><div class='row'>")
        for r in runs:
            title = f"<h3>{_e(r.name)}</h3>" if len(runs) > 1 else ""
            parts.append(f"<div class='col'>{title}{cell(r)}</div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
