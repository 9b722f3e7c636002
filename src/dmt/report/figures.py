"""The report's plots, one function per section: a run in, PNG bytes (or ``None``) and a note out.

A figure whose data the run does not hold (an old run, a classification run for a segmentation
plot) returns ``None`` with a note saying why, and the page shows the note instead. Each is a
:class:`~dmt.report.drawing.ReportFigure` (plain tick labels, PNG bytes); the training curves
are :mod:`dmt.report.curves`'.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dmt.report.drawing import WIDTH, ReportFigure, member_label, pyplot
from dmt.report.load import RunData
from dmt.run.summary import draw_stage_metric, headline_metric


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and v is not None else float("nan")


def members(run: RunData) -> list[str]:
    """The models of a run: ``[""]`` for one, ``["a", "b"]`` for mutual training."""
    found = sorted({s.get("model", "") for s in run.stages if s.get("kind") in ("baseline", "phase")})
    return found or [""]


def phase_rows(run: RunData) -> list[dict[str, Any]]:
    """Phase stages in order (phase, then model)."""
    return sorted(run.phases, key=lambda s: (s.get("phase", 0), s.get("model", "")))


@ReportFigure
def headline_figure(run: RunData) -> tuple[Any, str]:
    """The headline metric after the baseline and each phase, per model, with each model's baseline
    and the oracle as lines: the same drawing as ``results.png``'s (:func:`dmt.run.summary.draw_stage_metric`)."""
    key = headline_metric(run.task, run.stages)
    if not run.stages:
        return None, "no stage has finished yet"
    if not any(key in s.get("metrics", {}) for s in run.stages):
        return None, f"the stages record no {key}: the dataset has no test or val set"
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, 3.4))
    draw_stage_metric(ax, run.stages, run.task)
    ax.set_title(f"{key} on the evaluation set")
    return fig, ""


def _heatmap(ax, values: np.ndarray, rows: list[str], cols: list[str], vmax: float | None = 1.0,
             fmt: str = "{:.2f}", cmap: str = "viridis") -> None:
    masked = np.ma.masked_invalid(values)
    import matplotlib

    colours = matplotlib.colormaps[cmap].with_extremes(bad="#dddddd")  # grey: no value
    im = ax.imshow(masked, aspect="auto", vmin=0.0, vmax=vmax, cmap=colours)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, fontsize=8, rotation=45 if max(map(len, cols), default=0) > 2 else 0,
                  ha="right" if max(map(len, cols), default=0) > 2 else "center")
    if values.size <= 300:  # numbers in the cells while they stay legible
        hi = np.nanmax(values) if np.isfinite(values).any() else 1.0
        for (i, j), v in np.ndenumerate(values):
            if math.isfinite(v):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if v < 0.6 * (vmax or hi) else "black")
    ax.figure.colorbar(im, ax=ax, fraction=0.04)


@ReportFigure
def iou_figure(run: RunData) -> tuple[Any, str]:
    """Per-class IoU of every stage (rows) as a heat map."""
    if run.task != "segmentation":
        return None, "per-class IoU is a segmentation score: classification runs record accuracy only"
    rows = [s for s in run.stages if isinstance(s.get("metrics", {}).get("per_class_iou"), list)]
    if not rows:
        return None, "this run's results.json holds no per-class IoU"
    n = max(len(s["metrics"]["per_class_iou"]) for s in rows)
    values = np.full((len(rows), n), np.nan)
    for i, s in enumerate(rows):
        for j, v in enumerate(s["metrics"]["per_class_iou"]):
            values[i, j] = _num(v)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, 0.9 + 0.28 * len(rows)))
    _heatmap(ax, values, [s["name"] for s in rows], _names(run, n))
    ax.set_title("IoU per class (grey: class absent)")
    return fig, ""


def _names(run: RunData, n: int) -> list[str]:
    names = list(run.class_names[:n])
    return names + [str(k) for k in range(len(names), n)]


@ReportFigure
def pseudo_figure(run: RunData) -> tuple[Any, str]:
    """Per phase and class: share of the teacher's predictions kept, and the threshold."""
    phases = phase_rows(run)
    if not phases:
        return None, "no phase has finished (or the method trains no phases)"
    if run.results.get("method") == "online":
        return None, "online pseudo labelling stores no per-phase labels"
    notes = []
    shares, rows = [], []
    for s in phases:
        m = s.get("metrics", {})
        kept, pred = m.get("kept_per_class"), m.get("predicted_per_class")
        if isinstance(kept, list) and isinstance(pred, list):
            shares.append([k / p if p else float("nan") for k, p in zip(kept, pred)])
        elif isinstance(kept, list) and m.get("pseudo_pixels"):
            shares.append([k / m["pseudo_pixels"] for k in kept])
            notes.append("older run: the teacher's per-class counts were not recorded; shown is each class's "
                         "share of the kept pixels instead")
        else:
            shares.append(None)
        rows.append(s["name"])
    seg = run.task == "segmentation"
    thresholds = [s.get("metrics", {}).get("thresholds") for s in phases] if seg else None
    have_share = [r for r in shares if r is not None]
    have_thr = seg and any(isinstance(t, list) for t in thresholds)
    plt = pyplot()
    if not have_share and not have_thr:
        fig, ax = plt.subplots(figsize=(WIDTH, 3.0))
        ax.plot(rows, [_num(s.get("metrics", {}).get("pseudo_share")) for s in phases], "o-")
        ax.set_ylim(0, 1.05)
        ax.set_title("share of unlabelled data pseudo-labelled")
        ax.tick_params(axis="x", rotation=45)
        return fig, "per-class counts were not recorded by this run: the overall share only"
    n = max([len(r) for r in have_share] + [len(t) for t in (thresholds or []) if isinstance(t, list)])
    cols = _names(run, n)
    panels = 2 if (have_thr or not seg) else 1
    fig, axes = plt.subplots(1, panels, figsize=(WIDTH * (1.6 if panels == 2 else 1), max(3.0, 0.9 + 0.28 * len(rows))),
                             squeeze=False)
    share_arr = np.full((len(rows), n), np.nan)
    for i, r in enumerate(shares):
        if r is not None:
            share_arr[i, : len(r)] = r
    _heatmap(axes[0][0], share_arr, rows, cols)
    axes[0][0].set_title("kept / predicted per class" if not notes else "share of kept pixels per class")
    if seg and have_thr:
        thr = np.full((len(rows), n), np.nan)
        for i, t in enumerate(thresholds):
            if isinstance(t, list):
                thr[i, : len(t)] = [_num(v) for v in t]
        _heatmap(axes[0][1], thr, rows, cols, cmap="magma")
        axes[0][1].set_title("confidence threshold per class")
    elif not seg:
        ax = axes[0][1]
        ax.plot(rows, [_num(s.get("metrics", {}).get("pseudo_min_confidence")) for s in phases], "o-",
                label="threshold (lowest kept confidence)")
        ax.plot(rows, [_num(s.get("metrics", {}).get("pseudo_share")) for s in phases], "s--", label="share kept")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", rotation=45)
        ax.set_title("one threshold for all classes")
    fig.tight_layout()
    return fig, "; ".join(dict.fromkeys(notes))


@ReportFigure
def dynamics_figure(run: RunData) -> tuple[Any, str]:
    """Mean dynamic weight, share where the models disagree and where the student wins, per phase."""
    phases = phase_rows(run)
    fields = ("mean_weight", "disagree", "student_wins")
    if not any(f in s.get("metrics", {}) for s in phases for f in fields):
        return None, "no phase recorded dynamic-weight statistics"
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH * 1.6, 2.8), sharex=True)
    for ax, f in zip(axes, fields):
        for m in members(run):
            pts = [(s.get("phase", 0), _num(s["metrics"].get(f))) for s in phases if s.get("model", "") == m]
            if pts:
                ax.plot(*zip(*pts), "o-", label=member_label(m))
        ax.set_title({"mean_weight": "mean dynamic weight", "disagree": "share where models disagree",
                      "student_wins": "share where the student wins"}[f], fontsize=9)
        ax.set_xlabel("phase")
        ax.set_xticks(sorted({s.get("phase", 0) for s in phases}))  # whole phases only
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig, ""
