"""Segmentation data of a run on fabricated VOC trees: DMS labelled sets, list formats and order."""

import random
import sys
from pathlib import Path

import pytest

from dmt.config.schema import DataConfig, ExperimentConfig, MutualConfig
from dmt.data.splits import dms_subsets, read_split_file, segmentation_splits
from dmt.errors import UserError
from dmt.tasks.plan import make_plan
from dmt.tasks.segmentation.data import DMS_RATIOS, load_segmentation_data

sys.path.insert(0, str(Path(__file__).parents[2] / "data"))
from seg_fixtures import write_voc_tree  # noqa: E402

NAMES = [f"20{7 + k % 4:02d}_{k:06d}" for k in range(80)]  # sorted order differs from this one
VAL = ["2012_000001", "2012_000002"]


def _deeplab(name: str) -> str:
    return f"/JPEGImages/{name}.jpg /SegmentationClassAug/{name}.png"


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return write_voc_tree(tmp_path_factory.mktemp("voc"), size=(8, 8),
                          splits={"train_aug": NAMES, "train": NAMES[:12], "val": VAL})


def _write_list(root: Path, file: str, lines: list[str]) -> None:
    (root / "ImageSets" / "Segmentation" / file).write_text("".join(line + "\n" for line in lines))


def _cfg(root: Path, **data) -> ExperimentConfig:
    return ExperimentConfig(task="segmentation", method="dmt",
                            data=DataConfig(name="voc", root=str(root), num_workers=0, **data))


def _names(items) -> list[str]:
    return [it.name for it in items]


def test_dms_phases_of_both_models_train_on_the_whole_labelled_list(voc_root, tmp_path):
    cfg = _cfg(voc_root, labelled_split="1/8", split_set=1)
    cfg.mutual = MutualConfig(init_b="coco", dms=True)
    data = load_segmentation_data(cfg, tmp_path, ["a", "b"])

    sets = segmentation_splits(sorted(NAMES), DMS_RATIOS)
    full = sets[1][8.0][0]
    left, right = dms_subsets([{r: s[r][0] for r in DMS_RATIOS} for s in sets])[1][8.0]
    assert len(full) == 10 and left != right  # the subsets differ from each other and from the list
    for stage in make_plan(cfg):
        got = _names(data.labelled_for(stage))
        if stage.kind == "baseline":
            assert got == {"a": left, "b": right}[stage.member], stage.name
        else:  # every phase of both models: the full list, as in the original's scripts
            assert got == full, stage.name
    assert read_split_file(tmp_path / "labelled-a.txt") == left
    assert read_split_file(tmp_path / "phases-labelled-b.txt") == full


def test_dms_phases_leave_out_each_models_held_out_images(voc_root, tmp_path):
    cfg = _cfg(voc_root, labelled_split="1/8")
    cfg.mutual = MutualConfig(dms=True)
    cfg.eval.select, cfg.eval.heldout = "heldout", 2
    data = load_segmentation_data(cfg, tmp_path, ["a", "b"])
    full = segmentation_splits(sorted(NAMES), [8.0])[0][8.0][0]
    for m in "ab":
        held = _names(data.heldout[m])
        phase = _names(data.phase_labelled[m])
        assert len(held) == 2 and not set(held) & set(phase)
        assert phase == [n for n in full if n not in held]


def test_sbd_split_with_a_deeplab_format_train_aug(tmp_path):
    root = write_voc_tree(tmp_path / "voc", size=(8, 8), splits={"train_aug": NAMES, "train": NAMES[:12], "val": VAL})
    _write_list(root, "train_aug.txt", [_deeplab(n) for n in NAMES])  # plain train.txt stays
    data = load_segmentation_data(_cfg(root, labelled_split="sbd"), tmp_path, [""])
    labelled, unlabelled = _names(data.labelled[""]), _names(data.unlabelled)
    assert labelled == NAMES[:12]
    assert sorted(unlabelled) == sorted(NAMES[12:]) and not set(labelled) & set(unlabelled)
    # the split files hold names, not the list's lines
    assert read_split_file(tmp_path / "labelled.txt") == NAMES[:12]
    assert set(read_split_file(tmp_path / "unlabelled.txt")) == set(NAMES[12:])


@pytest.mark.parametrize("fmt", ["plain", "deeplab"])
def test_any_order_and_format_of_train_aug_gives_the_same_splits(fmt, tmp_path):
    root = write_voc_tree(tmp_path / "voc", size=(8, 8), splits={"train_aug": NAMES, "train": NAMES[:12], "val": VAL})
    shuffled = list(NAMES)
    random.Random(3).shuffle(shuffled)
    _write_list(root, "train_aug.txt", [_deeplab(n) if fmt == "deeplab" else n for n in shuffled])
    data = load_segmentation_data(_cfg(root, labelled_split="1/20", split_set=2), tmp_path, [""])
    expected_labelled, expected_unlabelled = segmentation_splits(sorted(NAMES), [20.0])[2][20.0]
    assert _names(data.labelled[""]) == expected_labelled
    assert _names(data.unlabelled) == expected_unlabelled
    assert read_split_file(tmp_path / "labelled.txt") == expected_labelled


def test_resume_refuses_splits_that_came_out_differently(voc_root, tmp_path):
    cfg = _cfg(voc_root, labelled_split="1/8")
    load_segmentation_data(cfg, tmp_path, [""])
    load_segmentation_data(cfg, tmp_path, [""])  # the same lists again: fine
    (tmp_path / "labelled.txt").write_text("".join(n + "\n" for n in NAMES[:10]))  # as an older dmt split
    with pytest.raises(UserError, match="labelled.txt: this run started with another list"):
        load_segmentation_data(cfg, tmp_path, [""])


def test_run_lists_parts_by_hand():
    """The parts of load_segmentation_data on hand-made names: held out last, cut by --smoke, files in order."""
    from dmt.config.schema import EvalConfig
    from dmt.tasks.segmentation.data import RunLists, hold_out

    cfg = ExperimentConfig(task="segmentation", eval=EvalConfig(select="heldout", heldout=2))
    train, held = hold_out(cfg, {"a": ["p", "q", "r", "s"], "b": ["t", "u", "v"]})
    assert train == {"a": ["p", "q"], "b": ["t"]} and held == {"a": ["r", "s"], "b": ["u", "v"]}
    with pytest.raises(UserError, match="2 of 2 labelled images leaves none"):
        hold_out(cfg, {"": ["p", "q"]})
    lists = RunLists(["p", "q", "r", "s", "x"], ["p", "q", "r", "s"], ["x"], ["v1", "v2"], train,
                     {"a": ["p", "q", "r", "s"], "b": ["p", "q", "r", "s"]}, held, True).limited(1)
    assert lists.train == ["p", "q", "r", "s", "x"] and lists.val == ["v1"] and lists.per_member == {"a": ["p"], "b": ["t"]}
    assert list(lists.files()) == ["labelled-a.txt", "labelled-b.txt", "phases-labelled-a.txt", "phases-labelled-b.txt",
                                   "heldout-a.txt", "heldout-b.txt", "unlabelled.txt", "val.txt"]
