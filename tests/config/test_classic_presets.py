"""The field's common benchmark presets: what each states, their --smoke sizes, and a run on fabricated data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from dmt.cli.main import main
from dmt.config import list_presets, load_config
from dmt.config.smoke import apply_smoke
from dmt.config.validate import check_window
from dmt.tasks.plan import make_plan

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import write_cityscapes_tree  # noqa: E402

VOC = {"92": "75.2", "183": "77.2", "366": "78.8", "732": "79.9", "1464": "81.2"}
CITYSCAPES = {"16": "76.6", "8": "77.9", "4": "79.2", "2": "79.5"}
CLASSIC = [f"voc-classic-{n}-dmt" for n in VOC] + [f"cityscapes-classic-{n}-dmt" for n in CITYSCAPES]


def test_one_preset_per_published_split() -> None:
    assert sorted(n for n in list_presets() if "-classic-" in n and n.endswith("-dmt")) == sorted(CLASSIC)
    descriptions = list_presets()
    for n, score in VOC.items():
        assert f"UniMatch {score}; ours not yet run" in descriptions[f"voc-classic-{n}-dmt"]
    for n, score in CITYSCAPES.items():
        assert f"UniMatch {score}; ours not yet run" in descriptions[f"cityscapes-classic-{n}-dmt"]


@pytest.mark.parametrize("name", CLASSIC)
def test_classic_presets_state_the_benchmark(name) -> None:
    c = load_config(name)
    assert c.method == "dmt" and c.task == "segmentation"
    assert c.model.name == "deeplabv3plus_resnet101" and c.model.init == c.mutual.init_b == "imagenet"
    assert c.model.kwargs == {"output_stride": 16, "eval_output_stride": 16}
    assert c.data.labelled_split == "published" and c.data.split_dir is None  # the user names the folder
    assert c.data.scale_range == [0.5, 2.0] and c.data.pad_fill == "black"  # as UniMatch pads crops
    if name.startswith("voc"):
        assert c.data.crop_size == [321, 321] and c.data.eval_pad is None and c.eval.window is None
        assert c.eval.batch_size == 1  # whole images at their own size
    else:
        assert c.data.crop_size == [801, 801] and c.data.scale == 1.0
        assert c.eval.window == [801, 801] and c.eval.stride == [534, 534]
    names = [s.name for s in make_plan(c)]
    assert names[:2] == ["baseline-a", "baseline-b"] and names[-1] == "phase5-b"
    small = apply_smoke(c)
    check_window(small.eval.window, small.eval.stride)
    if small.eval.window is not None:  # full-size Cityscapes shrinks by 16: 128 x 64 images
        assert small.data.scale == 1 / 16 and small.data.crop_size == small.eval.window == [51, 51]
        assert small.eval.stride == [34, 34]


def test_a_classic_preset_without_its_split_files_says_so(tmp_path, capsys) -> None:
    root = write_cityscapes_tree(tmp_path / "city", size=(16, 32))
    assert main(["run", "cityscapes-classic-8-dmt", f"data.root={root}", "--smoke", "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.split_dir" in err and "labeled.txt" in err and len(err.splitlines()) == 1


def test_cityscapes_classic_smoke_with_published_split_files(tmp_path, monkeypatch) -> None:
    """The whole pipeline: split files, full-size reading, --smoke shrinking, sliding windows.

    The fixture's images are read at 1/16 (8 x 16 pixels), so small windows make the sliding-window
    evaluation and labelling overlap for real.
    """
    root = write_cityscapes_tree(tmp_path / "city", cities={"train": {"aachen": 4, "bremen": 2},
                                                           "val": {"frankfurt": 2}}, size=(128, 256))
    train = sorted(p.name[: -len("_leftImg8bit.png")] for p in (root / "leftImg8bit" / "train").rglob("*.png"))
    split = tmp_path / "splits" / "cityscapes" / "1_8"
    split.mkdir(parents=True)
    line = "leftImg8bit/train/{0}/{1}_leftImg8bit.png gtFine/train/{0}/{1}_gtFine_labelTrainIds.png\n"
    (split / "labeled.txt").write_text("".join(line.format(n.split("_")[0], n) for n in train[:2]))
    (split / "unlabeled.txt").write_text("".join(line.format(n.split("_")[0], n) for n in train[2:]))
    from dmt.tasks.segmentation import windows

    slid = []  # (side, window) of every side that was cut into windows
    real_starts = windows.window_starts
    monkeypatch.setattr(windows, "window_starts", lambda n, w, s: slid.append((n, w)) or real_starts(n, w, s))
    out = tmp_path / "run"
    assert main(["run", "cityscapes-classic-8-dmt", f"data.root={root}", f"data.split_dir={split}",
                 "model.name=deeplabv3plus_tiny", "model.init=none", "mutual.init_b=none", "data.num_workers=0",
                 "phases.ratios=[1.0]", "eval.window=[4, 8]", "eval.stride=[2, 4]", "--smoke", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == ["baseline-a", "baseline-b", "phase1-a", "phase1-b"]
    assert all(len(s["metrics"]["per_class_iou"]) == 19 for s in results["stages"])
    assert (8, 4) in slid and (16, 8) in slid  # evaluation and labelling went window by window
    assert yaml.safe_load((out / "config.yaml").read_text())["eval"]["window"] == [4, 8]
    assert (out / "splits" / "labelled-a.txt").read_text().split() == [f"{n.split('_')[0]}/{n}" for n in train[:2]]
