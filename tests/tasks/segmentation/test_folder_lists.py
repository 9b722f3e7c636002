"""A folder dataset's run lists: every mask used (labelled or val), never both; the one log line
that says how many went where and why; a labelled fraction; the user's lists against the val set."""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from dmt.config.loader import load_config
from dmt.data.splits import read_split_file
from dmt.errors import UserError
from dmt.tasks.segmentation.data import build_source, load_segmentation_data, run_lists

sys.path.insert(0, str(Path(__file__).parents[2] / "data"))
from seg_fixtures import write_folder_tree  # noqa: E402

MASKED = [f"img{k:02d}" for k in range(10)]
PLAIN = [f"u{k:02d}" for k in range(20)]


@pytest.fixture
def root(tmp_path):
    """The issue's folder: 30 images, 10 of them with a mask, 3 classes, no splits/val.txt."""
    masks = {n: np.full((6, 8), k % 3, np.uint8) for k, n in enumerate(MASKED)}
    return write_folder_tree(tmp_path / "mine", masks, unlabelled=PLAIN)


def _load(root: Path, out: Path, caplog, *overrides: str):
    cfg = load_config("folder-dmt", [f"data.root={root}", "data.num_workers=0", *overrides])
    with caplog.at_level(logging.INFO, logger="dmt"):
        data = load_segmentation_data(cfg, out, ["a", "b"])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data folder:")]
    caplog.clear()
    return data, lines


def _names(items) -> list[str]:
    return [it.name for it in items]


def test_every_mask_is_labelled_or_val_and_the_log_says_so(root, tmp_path, caplog):
    data, lines = _load(root, tmp_path / "run", caplog)
    labelled, val = _names(data.labelled["a"]), _names(data.val)
    assert _names(data.labelled["b"]) == labelled and len(val) == 2 and len(labelled) == 8  # 0.2 of 10 held out
    assert sorted(labelled + val) == MASKED and not set(labelled) & set(val)
    assert sorted(_names(data.unlabelled)) == PLAIN
    assert read_split_file(tmp_path / "run" / "val.txt") == val
    assert read_split_file(tmp_path / "run" / "labelled-a.txt") == labelled
    assert lines == ["data folder: 10 masked images -> 8 labelled, 2 val (held out, data.val_share 0.2: no "
                     "splits/val.txt); 20 without a mask -> unlabelled"]
    # the run's seed does not move the held-out images
    again, _ = _load(root, tmp_path / "other", caplog, "seed=7", "data.split_set=2")
    assert _names(again.val) == val


def test_a_labelled_fraction_sets_the_other_masks_aside_and_says_how_to_use_them(root, tmp_path, caplog):
    data, lines = _load(root, tmp_path / "run", caplog, "data.labelled_split=1/4")
    labelled, val = _names(data.labelled["a"]), _names(data.val)
    aside = [n for n in _names(data.unlabelled) if n in MASKED]
    assert len(labelled) == 2 and len(aside) == 6 and len(val) == 2  # 1/4 of the 8 not held out
    assert sorted(labelled + aside + val) == MASKED
    assert lines == ["data folder: 10 masked images -> 2 labelled (data.labelled_split 1/4), 6 unlabelled with "
                     "their masks set aside (data.labelled_split=all would label them all), 2 val (held out, "
                     "data.val_share 0.2: no splits/val.txt); 20 without a mask -> unlabelled"]
    _, lines = _load(root, tmp_path / "smoke", caplog, "data.labelled_split=1/4", "data.limit=3")
    assert lines[0].endswith("; --smoke uses the first 3 of each")


def test_a_val_list_is_used_as_given_and_left_out_of_training(root, tmp_path, caplog):
    (tmp_path / "v.txt").write_text("img03\nimg07\nimg09\n")
    data, lines = _load(root, tmp_path / "run", caplog, f"data.val_list={tmp_path / 'v.txt'}")
    assert _names(data.val) == ["img03", "img07", "img09"]
    assert _names(data.labelled["a"]) == [n for n in MASKED if n not in ("img03", "img07", "img09")]
    assert lines == ["data folder: 10 masked images -> 7 labelled, 3 val (data.val_list); 20 without a mask -> "
                     "unlabelled"]
    (tmp_path / "lab.txt").write_text("img00\nimg07\n")
    cfg = load_config("folder-dmt", [f"data.root={root}", f"data.val_list={tmp_path / 'v.txt'}",
                                     f"data.labelled_list={tmp_path / 'lab.txt'}"])
    with pytest.raises(UserError, match=r"lab\.txt: 1 of its images \(e\.g\. 'img07'\) are in the val set"):
        run_lists(cfg, build_source(cfg), ["a", "b"])


def test_too_few_masks_to_hold_one_out_is_one_line(tmp_path):
    root = write_folder_tree(tmp_path / "one", {"only": np.zeros((6, 8), np.uint8)}, unlabelled=["u"])
    cfg = load_config("folder-dmt", [f"data.root={root}"])
    with pytest.raises(UserError, match=r"data\.root .*one: 1 image\(s\) with a mask.*splits/val\.txt") as info:
        run_lists(cfg, build_source(cfg), ["a", "b"])
    assert "\n" not in str(info.value)
