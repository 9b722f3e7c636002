"""The report's figures drawn from fabricated runs: legends that name every line, plain tick labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmt.report import figures
from dmt.report.curves import curves_figure
from dmt.report.load import RunData

STAGES = ("baseline-a", "baseline-b", "phase1-a", "phase1-b", "oracle")


def _stage(name: str, phase: int = 0) -> dict:
    kind = "oracle" if name == "oracle" else "phase" if name.startswith("phase") else "baseline"
    record = {"name": name, "kind": kind, "metrics": {"miou": 1234.5 + phase * 0.01, "per_class_iou": [0.9, 0.4]}}
    if kind != "oracle":
        record["model"] = name[-1]
    if kind == "phase":
        record["phase"] = phase
        record["metrics"].update(mean_weight=0.5, disagree=0.1, student_wins=0.05, kept_per_class=[900, 20],
                                 predicted_per_class=[1000, 80], thresholds=[0.9, 0.6])
    return record


def _run(curve_stages=STAGES) -> RunData:
    """A mutual-training run whose numbers make matplotlib put an offset on every axis: steps past
    a million (a long run resumed) and a loss that moves in its fourth decimal around 1234.5."""
    stages = [_stage(n, int(n[5]) if n.startswith("phase") else 0) for n in STAGES]
    results = {"task": "segmentation", "method": "dmt", "stages": stages,
               "summary": {"baseline": 1234.5, "oracle": 1234.52}}
    curves = {n: {"loss": ([1_000_000 + k for k in range(0, 500, 50)], [1234.5 + k * 1e-5 for k in range(10)]),
                  "gamma1": ([1_000_000], [5.0])}
              for n in curve_stages}
    return RunData(Path("fabricated"), results, {}, ["background", "cat"], curves, {}, {})


def _offsets(fig) -> list[str]:
    fig.canvas.draw()  # offsets are chosen when the ticks are drawn
    return [axis.get_major_formatter().get_offset() for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]


def test_curves_legend_names_each_model_line_and_its_stages() -> None:
    fig, note = curves_figure.draw(_run())
    assert note == "" and len(fig.legends) == 1
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["model a: baseline-a, phase1-a", "model b: baseline-b, phase1-b", "oracle", "stage boundary"]
    # each legend entry has the colour of its stages' lines
    colours = {h.get_label().split(":")[0]: h.get_color() for h in fig.legends[0].legend_handles}
    lines = {line.get_label(): line.get_color() for line in fig.axes[0].get_lines() if line.get_label() in STAGES}
    assert lines["baseline-a"] == lines["phase1-a"] == colours["model a"] != colours["model b"] == lines["phase1-b"]
    assert lines["oracle"] == colours["oracle"] not in (colours["model a"], colours["model b"])


def test_a_running_stage_joins_its_model_by_name() -> None:
    fig, _ = curves_figure.draw(_run((*STAGES[:4], "phase2-b")))  # phase2-b has no record yet
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[1] == "model b: baseline-b, phase1-b, phase2-b"


@pytest.mark.parametrize("figure", [curves_figure, figures.headline_figure, figures.dynamics_figure,
                                    figures.iou_figure, figures.pseudo_figure])
def test_no_axis_uses_an_offset_or_a_power_of_ten(figure) -> None:
    fig, note = figure.draw(_run())
    assert fig is not None, note
    assert set(_offsets(fig)) == {""}
    png, _ = figure(_run())
    assert png.startswith(b"\x89PNG")


def test_the_fabricated_run_would_put_offsets_on_default_axes() -> None:
    """The data above really provokes matplotlib's offsets: the test before this one can fail."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, values = _run().curves["baseline-a"]["loss"]
    fig, ax = plt.subplots()
    ax.plot(steps, values)
    assert all(_offsets(fig))
    plt.close(fig)


@pytest.mark.parametrize("figure", [figures.headline_figure, figures.dynamics_figure])
def test_line_plots_name_both_models(figure) -> None:
    fig, _ = figure.draw(_run())
    legend = fig.axes[0].get_legend()
    assert legend is not None
    assert {"model a", "model b"} <= {t.get_text() for t in legend.get_texts()}
