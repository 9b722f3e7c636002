"""The community's published split files (UniMatch / U2PL formats) on fabricated files and datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dmt.config.schema import DataConfig, ExperimentConfig
from dmt.data.published_splits import (
    cityscapes_entry_name,
    published_entry_name,
    published_split,
    split_from_config,
)
from dmt.data.splits import read_split_file
from dmt.errors import UserError
from dmt.tasks.segmentation.data import load_segmentation_data

sys.path.insert(0, str(Path(__file__).parent))
from seg_fixtures import write_cityscapes_tree, write_voc_tree  # noqa: E402

VOC_TRAIN_AUG = [f"20{7 + k % 4:02d}_{k:06d}" for k in range(12)]
CITY_TRAIN = [f"{c}/{c}_{f:06d}_{19 + 10 * f:06d}" for c, n in (("aachen", 3), ("bremen", 2)) for f in range(n)]


def unimatch_voc(name: str) -> str:
    return f"JPEGImages/{name}.jpg SegmentationClass/{name}.png"


def unimatch_city(name: str) -> str:
    city, stem = name.split("/")
    return f"leftImg8bit/train/{city}/{stem}_leftImg8bit.png gtFine/train/{city}/{stem}_gtFine_labelTrainIds.png"


def u2pl_city(name: str) -> str:
    city, stem = name.split("/")
    return f"leftImg8bit/train/{city}/{stem}_leftImg8bit.png"


def write_split(folder: Path, labelled: list[str], unlabelled: list[str] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labeled.txt").write_text("".join(line + "\n" for line in labelled))
    if unlabelled is not None:
        (folder / "unlabeled.txt").write_text("".join(line + "\n" for line in unlabelled))
    return folder


def test_line_formats_give_dmt_names() -> None:
    assert published_entry_name("JPEGImages/2007_000032.jpg SegmentationClass/2007_000032.png", "voc") == "2007_000032"
    assert published_entry_name("2007_000032", "voc") == "2007_000032"  # U2PL
    assert published_entry_name("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png", "voc") \
        == "2007_000032"  # DeepLab
    name = "aachen/aachen_000000_000019"
    assert cityscapes_entry_name(unimatch_city(name)) == name
    assert cityscapes_entry_name(u2pl_city(name)) == name
    assert cityscapes_entry_name(name) == name  # dmt's own form
    assert cityscapes_entry_name("aachen_000000_000019_leftImg8bit.png") == name  # no folder: the city from the name
    assert published_entry_name("scene_1.png", "folder") == "scene_1.png"
    for bad in ("gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png", "aachen/oops.png",
                "bremen/aachen_000000_000019_leftImg8bit.png"):
        with pytest.raises(ValueError):
            cityscapes_entry_name(bad)


@pytest.mark.parametrize("fmt", ["unimatch", "u2pl"])
def test_voc_split_in_both_formats(tmp_path, fmt) -> None:
    line = unimatch_voc if fmt == "unimatch" else str
    labelled, unlabelled = VOC_TRAIN_AUG[7:10], VOC_TRAIN_AUG[:7] + VOC_TRAIN_AUG[10:]
    folder = write_split(tmp_path / "92", [line(n) for n in labelled], [line(n) for n in unlabelled])
    assert published_split(folder, "voc", VOC_TRAIN_AUG) == (labelled, unlabelled)  # file order kept


@pytest.mark.parametrize("line", [unimatch_city, u2pl_city])
def test_cityscapes_split_in_both_formats(tmp_path, line) -> None:
    labelled, unlabelled = [CITY_TRAIN[4], CITY_TRAIN[0]], CITY_TRAIN[1:4]
    folder = write_split(tmp_path / "1_16", [line(n) for n in labelled], [line(n) for n in unlabelled])
    assert published_split(folder, "cityscapes", CITY_TRAIN) == (labelled, unlabelled)


def test_images_in_both_lists_are_labelled_only(tmp_path, caplog) -> None:
    folder = write_split(tmp_path / "s", VOC_TRAIN_AUG[:2], VOC_TRAIN_AUG[1:5])
    assert published_split(folder, "voc", VOC_TRAIN_AUG) == (VOC_TRAIN_AUG[:2], VOC_TRAIN_AUG[2:5])
    assert "also in labeled.txt" in caplog.text


@pytest.mark.parametrize(("files", "message"), [
    ("no folder", "data.split_dir': .* is not a folder"),
    ("no unlabelled", "unlabeled.txt: no such file"),
    ("empty", "labeled.txt: the split file lists no images"),
    ("bad line", "labeled.txt: line 2: 'gtFine/x.png' is not a Cityscapes image"),
    ("unknown image", "unlabeled.txt: 1 entry is not in the dataset, e.g. 'zurich/zurich_000001_000019'"),
    ("twice", "labeled.txt: images listed more than once"),
])
def test_bad_split_files_are_one_line_errors_naming_the_file(tmp_path, files, message) -> None:
    folder = tmp_path / "split"
    good = [u2pl_city(n) for n in CITY_TRAIN]
    if files == "no unlabelled":
        write_split(folder, good[:1], None)
    elif files == "empty":
        write_split(folder, ["", "  "], good[1:])
    elif files == "bad line":
        write_split(folder, [good[0], "gtFine/x.png"], good[1:])
    elif files == "unknown image":
        write_split(folder, good[:1], [*good[1:], u2pl_city("zurich/zurich_000001_000019")])
    elif files == "twice":
        write_split(folder, [good[0], unimatch_city(CITY_TRAIN[0])], good[1:])
    with pytest.raises(UserError, match=message) as err:
        published_split(folder, "cityscapes", CITY_TRAIN)
    assert "\n" not in str(err.value)


def test_config_rules(tmp_path) -> None:
    assert split_from_config(None, "1/8", None, "voc", VOC_TRAIN_AUG) is None
    with pytest.raises(UserError, match="data.split_dir': this preset trains on a published split; set "
                                        "data.split_dir=PATH"):
        split_from_config(None, "published", None, "voc", VOC_TRAIN_AUG)
    folder = write_split(tmp_path / "s", VOC_TRAIN_AUG[:1], VOC_TRAIN_AUG[1:])
    with pytest.raises(UserError, match="split_dir' and 'data.labelled_list"):
        split_from_config(str(folder), "published", "mine.txt", "voc", VOC_TRAIN_AUG)
    # split_dir decides whatever labelled_split says
    assert split_from_config(str(folder), "1/8", None, "voc", VOC_TRAIN_AUG) == (VOC_TRAIN_AUG[:1], VOC_TRAIN_AUG[1:])


def _cfg(name: str, root: Path, **data) -> ExperimentConfig:
    return ExperimentConfig(task="segmentation", method="dmt",
                            data=DataConfig(name=name, root=str(root), num_workers=0, **data))


def test_a_run_on_voc_takes_its_sets_from_the_split_dir(tmp_path) -> None:
    root = write_voc_tree(tmp_path / "voc", size=(8, 8), splits={
        "train_aug": VOC_TRAIN_AUG, "train": VOC_TRAIN_AUG[:6], "val": ["2012_000001"]})
    labelled, unlabelled = VOC_TRAIN_AUG[:3], VOC_TRAIN_AUG[3:]
    folder = write_split(tmp_path / "splits/pascal/92", [unimatch_voc(n) for n in labelled],
                         [unimatch_voc(n) for n in unlabelled])
    run = tmp_path / "run"
    run.mkdir()
    data = load_segmentation_data(_cfg("voc", root, labelled_split="published", split_dir=str(folder)), run, ["a", "b"])
    assert [it.name for it in data.labelled["a"]] == labelled == [it.name for it in data.labelled["b"]]
    assert [it.name for it in data.unlabelled] == unlabelled
    assert read_split_file(run / "unlabelled.txt") == unlabelled  # recorded as names
    assert [it.name for it in data.val] == ["2012_000001"]
    with pytest.raises(UserError, match="data.split_dir"):  # the classic presets without their split files
        load_segmentation_data(_cfg("voc", root, labelled_split="published"), tmp_path / "other", ["a", "b"])


def test_a_run_on_cityscapes_takes_its_sets_from_the_split_dir(tmp_path) -> None:
    root = write_cityscapes_tree(tmp_path / "city", cities={"train": {"aachen": 3, "bremen": 2},
                                                           "val": {"frankfurt": 1}}, size=(8, 16))
    folder = write_split(tmp_path / "1_4", [unimatch_city(CITY_TRAIN[3])],
                         [unimatch_city(n) for n in CITY_TRAIN if n != CITY_TRAIN[3]])
    run = tmp_path / "run"
    run.mkdir()
    data = load_segmentation_data(_cfg("cityscapes", root, labelled_split="published", split_dir=str(folder)),
                                  run, [""])
    assert [it.name for it in data.labelled[""]] == [CITY_TRAIN[3]]
    assert sorted(it.name for it in data.unlabelled) == sorted(set(CITY_TRAIN) - {CITY_TRAIN[3]})
    assert all(it.mask is not None for it in data.labelled[""])
