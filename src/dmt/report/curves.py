"""The report's training curves: every TensorBoard scalar of a run, stage after stage, one panel a tag.

Each stage's curve starts where the previous stage's ended (grey lines mark the boundaries) and
takes its model's colour; one legend above the panels names each model's line and its stages.
Steps read as whole numbers with thousands separators (``250,000``), values as plain numbers
(:func:`~dmt.report.drawing.plain_ticks`), never with an offset in an axis corner.
"""

from __future__ import annotations

from typing import Any

from dmt.report.drawing import WIDTH, ReportFigure, member_label, pyplot
from dmt.report.load import RunData

CURVE_TAGS_SKIPPED = ("gamma1", "gamma2")  # constants of a phase: flat lines
MAX_CURVES = 8
CURVE_COLOURS = {"model a": "tab:blue", "model b": "tab:orange", "model": "tab:blue", "oracle": "tab:green"}


def curve_group(run: RunData, name: str) -> str:
    """The legend entry a stage's curves belong to: ``model a``, ``model b``, ``model`` (one model) or ``oracle``."""
    record = next((s for s in run.stages if s.get("name") == name), {})
    if record.get("kind") == "oracle" or name == "oracle":
        return "oracle"
    member = record.get("model") or (name[-1] if name.endswith(("-a", "-b")) else "")  # a running stage: its name
    return member_label(member)


def _curve_legend(fig, run: RunData, stages: list[str]) -> None:
    """One legend above the panels: a line per model naming its stages, and the stage boundaries."""
    from matplotlib.lines import Line2D

    groups: dict[str, list[str]] = {}
    for n in stages:
        groups.setdefault(curve_group(run, n), []).append(n)
    handles = [Line2D([], [], color=CURVE_COLOURS[g], lw=1.5, label=g if names == [g] else
                      f"{g}: " + ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""))
               for g, names in groups.items()]
    if len(stages) > 1:
        handles.append(Line2D([], [], color="grey", lw=0.5, label="stage boundary"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 2),
               fontsize=8, frameon=False)


@ReportFigure
def curves_figure(run: RunData) -> tuple[Any, str]:
    """Training scalars from TensorBoard, every stage one after the other (grey lines: stage ends)."""
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    if run.curves is None:
        return None, ""
    order = [s["name"] for s in run.stages] + sorted(set(run.curves) - {s["name"] for s in run.stages})
    stages = [n for n in order if n in run.curves and run.curves[n]]
    tags = []
    for n in stages:
        for t in run.curves[n]:
            if t not in tags and t not in CURVE_TAGS_SKIPPED and not t.startswith(("val/", "iou/")):
                tags.append(t)
    if not tags:
        return None, "the TensorBoard events hold no training scalars"
    tags = tags[:MAX_CURVES]
    plt = pyplot()
    cols = 2
    nrows = -(-len(tags) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(WIDTH * 1.6, 2.2 * nrows), squeeze=False)
    offsets, x0 = {}, 0
    for n in stages:
        offsets[n] = x0
        x0 += max((max(steps, default=0) for steps, _ in run.curves[n].values()), default=0)
    for ax, tag in zip(axes.flat, tags):
        for n in stages:
            if tag in run.curves[n]:
                steps, values = run.curves[n][tag]
                ax.plot([offsets[n] + s for s in steps], values, lw=1, color=CURVE_COLOURS[curve_group(run, n)],
                        label=n)
        for n in stages[1:]:
            ax.axvline(offsets[n], color="grey", lw=0.5, alpha=0.5)
        ax.set_title(tag, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole steps only
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))  # 250,000 rather than 2.5 and a 1e5 apart
    for ax in list(axes.flat)[len(tags):]:
        ax.axis("off")
    fig.supxlabel("training steps, stage after stage", fontsize=8)
    fig.tight_layout()
    _curve_legend(fig, run, stages)
    return fig, ""
