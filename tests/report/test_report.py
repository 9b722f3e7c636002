"""`dmt report` on real (smoke) run directories: sections, embedded pictures, several runs, old runs."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.errors import UserError
from dmt.report import load_run, render_page, write_report
from dmt.run.runner import run_stages

SECTIONS = ("summary", "headline", "valpanel", "iou", "pseudo", "dynamics", "samples", "curves")


def _run(preset: str, out: Path, *overrides: str) -> Path:
    cfg = apply_smoke(load_config(preset, ["seed=1", "phases.ratios=[0.5, 1.0]", *overrides]))
    run_stages(cfg, out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    return {"seg": _run("demo-digit-scenes", base / "seg"), "cls": _run("demo-digits", base / "cls")}


def _sources(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)


def _check_self_contained(page: str, where: Path) -> None:
    refs = _sources(page)
    assert refs, "the page shows no picture"
    for ref in refs:
        assert ref.startswith(("data:image/png;base64,", "#")) or (where / ref).is_file(), ref[:80]
    assert not re.search(r"<(script|link)\b", page), "no script or style sheet from anywhere"
    assert "http://" not in page and "https://" not in page


def _section_ids(page: str) -> list[str]:
    return re.findall(r"<h2 id='([a-z]+)'>", page)


def test_the_stage_end_records_report_inputs(runs) -> None:
    seg = runs["seg"]
    r = json.loads((seg / "results.json").read_text())
    phase = next(s for s in r["stages"] if s["kind"] == "phase")
    m = phase["metrics"]
    assert len(m["predicted_per_class"]) == len(m["kept_per_class"]) == len(m["per_class_iou"]) == 4
    # kept pixels are a part of what the teacher predicted, class by class
    assert all(0 <= k <= p for k, p in zip(m["kept_per_class"], m["predicted_per_class"]))
    assert sum(m["predicted_per_class"]) >= m["pseudo_pixels"] == sum(m["kept_per_class"])
    info = json.loads((seg / "stages" / phase["name"] / "samples.json").read_text())
    assert info["columns"] == ["image", "ground truth", "kept pseudo labels", "prediction"]
    assert info["teacher"] == phase["teacher"]
    from PIL import Image

    with Image.open(seg / "stages" / phase["name"] / "samples.png") as im:
        # 4 rows of 32-pixel scenes enlarged 3x (96) with 2-pixel gaps
        assert im.size == (4 * 98 + 2, len(info["names"]) * 98 + 2)
    base = json.loads((seg / "stages" / "baseline-a" / "samples.json").read_text())
    assert "kept pseudo labels" not in base["columns"]
    c = json.loads((runs["cls"] / "results.json").read_text())
    cm = next(s for s in c["stages"] if s["kind"] == "phase")["metrics"]
    assert sum(cm["kept_per_class"]) == cm["pseudo_kept"] and len(cm["predicted_per_class"]) == 10


def test_evaluation_images_are_compared_before_and_after(runs) -> None:
    seg = runs["seg"]
    r = json.loads((seg / "results.json").read_text())
    for s in r["stages"]:  # every stage stores its class maps of the same evaluation images
        with np.load(seg / "stages" / s["name"] / "val_predictions.npz", allow_pickle=False) as z:
            names = z["names"].tolist()
            assert 0 < len(names) <= 6 and names == sorted(names)
            assert all(z[f"prediction_{k}"].dtype == np.uint8 for k in range(len(names)))
    with np.load(seg / "val_samples.npz", allow_pickle=False) as z:
        assert z["names"].tolist() == names and z["image_0"].shape == (*z["truth_0"].shape, 3)
    info = json.loads((seg / "val_scenes.json").read_text())
    assert info["names"] == names
    assert info["columns"] == ["image", "ground truth", "better baseline", "last phase", "changes"]
    miou = {s["name"]: s["metrics"]["miou"] for s in r["stages"]}
    assert info["before"] == {"stage": max(("baseline-a", "baseline-b"), key=miou.get),
                              "miou": max(miou["baseline-a"], miou["baseline-b"])}
    assert info["after"]["stage"] in ("phase2-a", "phase2-b")  # the last phase of phases.ratios=[0.5, 1.0]
    assert info["after"]["miou"] == max(miou["phase2-a"], miou["phase2-b"])
    from PIL import Image

    with Image.open(seg / "val_scenes.png") as im:  # 32-pixel scenes enlarged 3x (96) with 2-pixel gaps
        assert im.size == (5 * 98 + 2, len(names) * 98 + 2 + 28)  # 28: the two-line title strip
    assert not (runs["cls"] / "val_scenes.png").exists()


def test_val_scenes_are_skipped_quietly_without_their_files(runs, tmp_path) -> None:
    from dmt.tasks.segmentation.val_scenes import write_val_scenes

    run = tmp_path / "partial"
    shutil.copytree(runs["seg"], run)
    stages = json.loads((run / "results.json").read_text())["stages"]
    assert write_val_scenes(run, stages[:2]) is None  # baselines only: no phase to compare
    assert write_val_scenes(run, stages) == run / "val_scenes.png"
    (run / "val_samples.npz").unlink()
    assert write_val_scenes(run, stages) is None  # an older run: nothing stored


def test_tensorboard_gets_per_class_iou_and_sample_pictures(runs) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    across = EventAccumulator(str(runs["seg"] / "tb" / "per-phase"))
    across.Reload()
    tags = across.Tags()["scalars"]
    assert {"iou-a/background", "iou-b/background", "miou-a", "pseudo_share-b"} <= set(tags)
    assert [e.step for e in across.Scalars("miou-a")] == [0, 1, 2]  # baseline, phase 1, phase 2
    assert [e.step for e in across.Scalars("miou")] == [3]  # the oracle (one model) after the last phase
    phase = EventAccumulator(str(runs["seg"] / "tb" / "phase1-a"), size_guidance={"images": 0})
    phase.Reload()
    assert any(t.startswith("samples/") for t in phase.Tags()["images"])
    assert "iou/background" in phase.Tags()["scalars"]
    cls = EventAccumulator(str(runs["cls"] / "tb" / "phase1"), size_guidance={"images": 0})
    cls.Reload()
    assert cls.Tags()["images"] == ["samples/kept pseudo-labelled images"]


@pytest.mark.parametrize("task", ["seg", "cls"])
def test_one_run_page_has_every_section_and_embeds_its_pictures(runs, task) -> None:
    run = runs[task]
    from dmt.cli.report import main

    assert main(argparse.Namespace(runs=[str(run)], out=None)) == 0
    page = (run / "report.html").read_text()
    assert _section_ids(page) == list(SECTIONS)
    _check_self_contained(page, run)
    images = [s for s in _sources(page) if s.startswith("data:image/png")]
    # headline, pseudo, dynamics, curves (+ IoU and a grid per stage for segmentation)
    assert len(images) >= (4 + 1 + 7 if task == "seg" else 4)
    block = page.split("<h2 id='valpanel'>", 1)[1].split("<h2 ", 1)[0]
    if task == "cls":
        assert "per-class IoU is a segmentation score" in page
        assert "<img" not in block and "drawn for segmentation runs" in block
    else:
        assert block.count("<img") == 1 and "better baseline: baseline-" in block and "last phase: phase2-" in block


def test_several_runs_side_by_side(runs, tmp_path) -> None:
    out = write_report([runs["seg"], runs["cls"]], tmp_path / "compare.html")
    page = out.read_text()
    _check_self_contained(page, tmp_path)
    for sid in SECTIONS[1:]:
        block = page.split(f"<h2 id='{sid}'>", 1)[1].split("<h2 ", 1)[0]
        assert block.count("<div class='col'>") == 2
        assert block.index("<h3>seg</h3>") < block.index("<h3>cls</h3>")


def test_summary_row_gives_the_gap_by_the_mean_and_by_the_better_of_two(runs, tmp_path) -> None:
    run = tmp_path / "scored"
    shutil.copytree(runs["seg"], run)
    r = json.loads((run / "results.json").read_text())
    r["summary"].update(baseline=0.65, final=0.73, oracle=0.8, gap_closed=0.08 / 0.15, best_gap_closed=0.4)
    (run / "results.json").write_text(json.dumps(r))
    page = render_page([load_run(run)])
    row = page.split("<h2 id='summary'>", 1)[1].split("</table>", 1)[0].split("<tr>")[2]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert "<th>gap closed</th><th>better of two: gap closed</th>" in page
    assert cells[8:10] == ["53.3%", "40.0%"]


def test_old_run_without_new_fields_still_reports(runs, tmp_path) -> None:
    old = tmp_path / "old"
    shutil.copytree(runs["seg"], old)
    r = json.loads((old / "results.json").read_text())
    for s in r["stages"]:
        for key in ("predicted_per_class", "per_class_iou"):
            s["metrics"].pop(key, None)
    (old / "results.json").write_text(json.dumps(r))
    for f in [*old.glob("stages/*/samples.*"), *old.glob("val_scenes.*")]:
        f.unlink()
    shutil.rmtree(old / "tb")
    page = render_page([load_run(old)])
    assert _section_ids(page) == list(SECTIONS)
    assert "holds no per-class IoU" in page
    assert "share of the kept pixels" in page  # per-class counts of the teacher missing
    assert "no sample grid" in page and "no TensorBoard events" in page
    assert "this run has no val_scenes.png" in page
    _check_self_contained(page, old)


def test_stored_labels_are_shown_when_no_grid_was_drawn(runs, tmp_path) -> None:
    run = tmp_path / "kept"
    shutil.copytree(runs["seg"], run)
    for f in run.glob("stages/*/samples.*"):
        f.unlink()
    labels = run / "stages" / "phase1-a" / "labels"
    labels.mkdir()
    classes = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    confidence = np.array([[0.9, 0.2], [0.95, 0.5]], dtype=np.float16)
    np.savez(labels / "train%2F00001.npz", classes=classes, confidence=confidence)
    data = load_run(run)
    assert data.labels_kept["phase1-a"] and not data.labels_kept["phase1-b"]
    s = data.samples["phase1-a"]
    assert s.names == ["train/00001"] and s.png is None
    thresholds = json.loads((run / "results.json").read_text())["stages"][2]["metrics"]["thresholds"]
    picture = s.pictures[0]
    # the picture is classes | kept side by side, enlarged from 2x2 to 96x96 each
    assert picture.shape == (96, 192, 3)
    cream = np.array([224, 224, 192], dtype=np.uint8)
    for (i, j), c in np.ndenumerate(classes):
        t = thresholds[c]
        kept = t is not None and float(confidence[i, j]) >= t
        cell = picture[i * 48, 96 + j * 48]
        assert (cell == cream).all() != kept
    page = render_page([data])
    assert "stored labels alone" in page and "stored labels kept" in page


def test_bad_input_is_one_clear_line(tmp_path, runs) -> None:
    from dmt.cli.report import main

    with pytest.raises(UserError, match="results.json: not found"):
        load_run(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="--out"):
        main(argparse.Namespace(runs=[str(runs["seg"]), str(runs["cls"])], out=None))
    with pytest.raises(UserError, match=r"\.html"):
        main(argparse.Namespace(runs=[str(runs["seg"])], out=str(tmp_path / "x.txt")))
