"""Summaries of results.json: the headline numbers, a printed table and a plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dmt.atomic import atomic_path
from dmt.tasks.plan import best_stage


def headline_metric(task: str, stages: list[dict[str, Any]] | None = None) -> str:
    """The metric the stages report: ``miou`` (segmentation); for classification ``accuracy`` (the
    test set's), or ``val_accuracy`` when ``stages`` are given and none records a test accuracy
    but one records a val accuracy (a dataset without a test set)."""
    if task != "classification":
        return "miou"
    recorded = [s.get("metrics") or {} for s in stages or []]
    if recorded and not any("accuracy" in m for m in recorded) and any("val_accuracy" in m for m in recorded):
        return "val_accuracy"
    return "accuracy"


def gap_closed(baseline: float, final: float, oracle: float) -> float:
    """Share of the baseline-to-oracle gap that the final model closes."""
    gap = oracle - baseline
    return (final - baseline) / gap if gap > 0 else float("nan")


def summarize(stages: list[dict[str, Any]], task: str) -> dict[str, Any]:
    """Baseline, last phase and oracle scores (averaged over models where two train); ``None`` where
    the stages record no score (a dataset with no test or val set)."""
    key = headline_metric(task, stages)

    def mean_of(prefix: str) -> float | None:
        vals = [s["metrics"][key] for s in stages if s["name"].split("-")[0] == prefix and key in s["metrics"]]
        return sum(vals) / len(vals) if vals else None

    phases = sorted({s["phase"] for s in stages if s["kind"] == "phase"})
    out: dict[str, Any] = {"metric": key, "baseline": mean_of("baseline"),
                           "final": mean_of(f"phase{phases[-1]}") if phases else None, "oracle": mean_of("oracle")}
    if out["final"] is None:
        out["final"] = out["baseline"]
    if None not in (out["baseline"], out["final"], out["oracle"]):
        out["gap_closed"] = gap_closed(out["baseline"], out["final"], out["oracle"])
    # two models: also the better baseline against the better model of the last phase, the
    # stricter comparison (the mean flatters DMT when one baseline is weaker)
    best = best_stage(stages, key, "baseline"), best_stage(stages, key, f"phase{phases[-1]}") if phases else None
    if None not in best and sum(s["name"].split("-")[0] == "baseline" for s in stages) > 1:
        out["best_baseline"], out["best_final"] = best
        if out["oracle"] is not None:
            out["best_gap_closed"] = gap_closed(best[0][1], best[1][1], out["oracle"])
    return out


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table of every stage's main numbers."""
    key = headline_metric(results.get("task", "classification"), results["stages"])
    cols = list(dict.fromkeys([key, "val_accuracy", "valtiny_accuracy", "pseudo_share", "pseudo_accuracy",
                               "mean_weight", "disagree"]))
    present = [c for c in cols if any(c in s["metrics"] for s in results["stages"])]
    header = f"{'stage':<12}" + "".join(f"{c:>18}" for c in present) + f"{'wall s':>10}"
    lines = [header, "-" * len(header)]
    for s in results["stages"]:
        cells = []
        for c in present:
            v = s["metrics"].get(c)
            cells.append(f"{'' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{v:.4f}':>18}")
        lines.append(f"{s['name']:<12}" + "".join(cells) + f"{s.get('wall_time_s', 0):>10.1f}")
    summary = results.get("summary", {})
    if summary.get("gap_closed") is not None and math.isfinite(summary["gap_closed"]):
        mean = "mean of the models: " if "best_baseline" in summary else ""
        lines.append(f"{mean}baseline {summary['baseline']:.4f} -> final {summary['final']:.4f} "
                     f"(oracle {summary['oracle']:.4f}): {100 * summary['gap_closed']:.1f}% of the gap closed")
    best_gap = summary.get("best_gap_closed")
    if best_gap is not None and math.isfinite(best_gap):
        (b_name, b), (f_name, f) = summary["best_baseline"], summary["best_final"]
        lines.append(f"better baseline ({b_name}) {b:.4f} -> better final ({f_name}) {f:.4f}: {f - b:+.4f}, "
                     f"{100 * best_gap:.1f}% of the gap to the oracle closed")
    return "\n".join(lines)


MEMBER_COLOURS = {"a": "tab:blue", "b": "tab:orange", "": "tab:blue"}  # as the report's training curves
ORACLE_COLOUR = "tab:green"


def member_label(member: str) -> str:
    """A model's name in legends: ``model a``, ``model b``, or ``model`` for a run of one."""
    return f"model {member}" if member else "model"


def draw_stage_metric(ax: Any, stages: list[dict[str, Any]], task: str) -> bool:
    """The headline metric per stage on ``ax``: x is baseline, phase1 .. phaseN; one line per model,
    each model's baseline score as a dotted line in its colour, the oracle's as a dashed one.

    Shared by ``results.png`` and ``dmt report`` (one drawing of the run's main result). Returns
    False, drawing nothing, when no stage records the metric (a dataset with no test or val set).
    """
    key = headline_metric(task, stages)
    scored = [s for s in stages if isinstance((s.get("metrics") or {}).get(key), (int, float))]
    if not scored:
        return False
    n_phases = max([s.get("phase", 0) for s in stages if s.get("kind") == "phase"], default=0)
    found = sorted({s.get("model", "") for s in scored if s.get("kind") in ("baseline", "phase")})
    for m in found or [""]:
        points = sorted((0 if s["kind"] == "baseline" else s.get("phase", 0), float(s["metrics"][key]))
                        for s in scored if s.get("model", "") == m and s.get("kind") in ("baseline", "phase"))
        colour = MEMBER_COLOURS.get(m, None)
        if points:
            ax.plot(*zip(*points), "o-", color=colour, label=member_label(m))
        base = [v for x, v in points if x == 0]
        if base:
            ax.axhline(base[0], linestyle=":", color=colour,
                       label=f"baseline {m.upper() + ' ' if m else ''}{base[0]:.3f}")
    oracle = [float(s["metrics"][key]) for s in scored if s.get("kind") == "oracle"]
    if oracle and all(math.isfinite(v) for v in oracle):
        v = sum(oracle) / len(oracle)
        ax.axhline(v, linestyle="--", color=ORACLE_COLOUR, label=f"oracle {v:.3f}")
    ax.set_xticks(range(n_phases + 1), ["baseline"] + [f"phase{k}" for k in range(1, n_phases + 1)])
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")  # an offset in a corner is easy to miss
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    # under the axes: inside, it hides the oracle's line or the baselines' whatever corner it takes
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    ax.set_title(f"{key} per stage")
    return True


def plot_results(results: dict[str, Any], path: str | Path) -> None:
    """The headline metric per stage (:func:`draw_stage_metric`), and the pseudo-label share/accuracy of each phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = results["stages"]
    if not stages:
        return
    key = headline_metric(results.get("task", "classification"), stages)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if not draw_stage_metric(ax1, stages, results.get("task", "classification")):
        # a dataset with no test or val set: nothing scores the stages
        ax1.axis("off")
        ax1.text(0.5, 0.5, f"no {key}: the dataset has no test or val set", ha="center", va="center")
    phases = [s for s in stages if s["kind"] == "phase"]
    if phases:
        for field, style in (("pseudo_share", "o-"), ("pseudo_accuracy", "s--"), ("mean_weight", "^:"),
                             ("disagree", "x-.")):
            vals = [s["metrics"].get(field) for s in phases]
            if any(v is not None for v in vals):
                ax2.plot([s["name"] for s in phases], [v if v is not None else float("nan") for v in vals],
                         style, label=field)
        ax2.set_ylim(0, 1.05)
        ax2.legend()
        ax2.set_title("pseudo labels per phase")
        ax2.tick_params(axis="x", rotation=45)
    else:
        ax2.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:  # it keeps the suffix, from which savefig takes the format
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
