"""The metric-per-stage chart shared by results.png and `dmt report`: a line per model, each
model's baseline and the oracle as horizontal lines, named in the legend with their values."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dmt.run.summary import draw_stage_metric, plot_results  # noqa: E402


def _seg_stages() -> list[dict]:
    scores = {"baseline-a": 0.698, "baseline-b": 0.65, "phase1-a": 0.71, "phase1-b": 0.69, "phase2-a": 0.72,
              "phase2-b": 0.73, "oracle": 0.8}
    stages = []
    for name, v in scores.items():
        kind = "oracle" if name == "oracle" else "phase" if name.startswith("phase") else "baseline"
        s = {"name": name, "kind": kind, "metrics": {"miou": v}}
        if kind != "oracle":
            s["model"] = name[-1]
        if kind == "phase":
            s["phase"] = int(name[5])
            s["metrics"]["pseudo_share"] = 0.5
        stages.append(s)
    return stages


def _lines(ax) -> dict[str, tuple[list, list, str, str]]:
    return {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata()), ln.get_linestyle(), ln.get_color())
            for ln in ax.get_lines()}


def test_two_members_each_with_its_baseline_line_and_the_oracle() -> None:
    fig, ax = plt.subplots()
    assert draw_stage_metric(ax, _seg_stages(), "segmentation")
    lines = _lines(ax)
    assert set(lines) == {"model a", "model b", "baseline A 0.698", "baseline B 0.650", "oracle 0.800"}
    assert lines["model a"][:2] == ([0, 1, 2], [0.698, 0.71, 0.72])
    assert lines["model b"][:2] == ([0, 1, 2], [0.65, 0.69, 0.73])
    assert lines["baseline A 0.698"][1] == [0.698, 0.698] and lines["baseline A 0.698"][2] == ":"
    assert lines["baseline A 0.698"][3] == lines["model a"][3] != lines["model b"][3] == lines["baseline B 0.650"][3]
    assert lines["oracle 0.800"][1] == [0.8, 0.8] and lines["oracle 0.800"][2] == "--"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "phase1", "phase2"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(lines)
    fig.canvas.draw()
    assert ax.yaxis.get_major_formatter().get_offset() == ""
    plt.close(fig)


def test_one_model_classification_run() -> None:
    stages = [{"name": "baseline", "kind": "baseline", "metrics": {"accuracy": 0.9}},
              {"name": "phase1", "kind": "phase", "phase": 1, "metrics": {"accuracy": 0.93}},
              {"name": "oracle", "kind": "oracle", "metrics": {"accuracy": 0.97}}]
    fig, ax = plt.subplots()
    assert draw_stage_metric(ax, stages, "classification")
    lines = _lines(ax)
    assert set(lines) == {"model", "baseline 0.900", "oracle 0.970"}
    assert lines["model"][:2] == ([0, 1], [0.9, 0.93])
    assert ax.get_ylabel() == "accuracy"
    plt.close(fig)
    fig, ax = plt.subplots()
    assert not draw_stage_metric(ax, [{**s, "metrics": {}} for s in stages], "classification")  # nothing scored
    assert ax.get_lines() == []
    plt.close(fig)


def test_results_png_draws_the_chart(tmp_path) -> None:
    plot_results({"task": "segmentation", "stages": _seg_stages()}, tmp_path / "results.png")
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")
