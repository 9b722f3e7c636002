"""Every check that needs no data runs when the config loads (config/validate.py), before any list is read;
a key the task never reads is refused in one line. On the old code these passed load_config silently."""

from __future__ import annotations

import pytest

from dmt.config import list_presets, load_config
from dmt.config.validate import DMS_SPLITS, ONE_TASK_KEYS, parse_labelled_split
from dmt.data.splits import DMS_RATIOS
from dmt.errors import UserError


def _refused(preset: str, *overrides: str) -> str:
    with pytest.raises(UserError) as info:
        load_config(preset, list(overrides))
    line = str(info.value)
    assert "\n" not in line
    return line


@pytest.mark.parametrize("overrides, says", [
    (["mutual.dms=true", "data.labelled_split=1/4"], "config key 'mutual.dms': needs data.labelled_split 1/8, 1/20"),
    (["mutual.dms=true", "data.labelled_list=mine.txt"], "config key 'mutual.dms'"),
    (["eval.select=heldout", "eval.heldout=0"], "config key 'eval.heldout': select: heldout needs a positive"),
    (["data.labelled_split=1/x"], "config key 'data.labelled_split': expected '1/r'"),
    (["data.labelled_split=2/8"], "config key 'data.labelled_split'"),
    (["data.labelled_split=1/0.5"], "labels more than everything"),
])
def test_segmentation_split_checks_need_no_data(overrides, says):
    """No data.root and no dataset: the old code raised these only when the lists were read."""
    assert says in _refused("voc-20-dmt", *overrides)


def test_sbd_needs_voc():
    assert "'sbd' needs data.name: voc" in _refused("cityscapes-8-dmt", "data.labelled_split=sbd")


def test_the_papers_dms_splits_are_the_split_codes_ratios():
    assert tuple(parse_labelled_split(t) for t in DMS_SPLITS) == tuple(DMS_RATIOS)
    assert load_config("voc-20-dmt", ["mutual.dms=true", "data.labelled_split=1/106"]).mutual.dms


def test_a_key_segmentation_ignores_is_refused_naming_key_task_and_fix():
    line = _refused("voc-20-dmt", "baseline.mixup_alpha=0.4")
    assert line == ("config key 'baseline.mixup_alpha': 0.4 does nothing for segmentation (only classification "
                    "runs read it); remove it (or set 0)")
    assert "data.randaugment" in _refused("voc-20-dmt", "data.randaugment=false")
    assert load_config("voc-20-dmt", ["phases.mixup_alpha=0"]).phases.mixup_alpha == 0  # what segmentation does


def test_a_key_classification_ignores_is_refused():
    line = _refused("cifar10-4-dmt", "eval.window=[32, 32]")
    assert line.startswith("config key 'eval.window': [32, 32] does nothing for classification")
    assert "mutual.dms" in _refused("cifar10-4-dmt", "mutual.dms=true")
    assert "data.crop_size" in _refused("cifar10-4-dmt", "data.crop_size=[64, 64]")


def test_val_share_is_a_share_and_only_for_your_own_data():
    for value in ("0", "1", "1.5", "-0.2"):
        line = _refused("folder-dmt", f"data.val_share={value}")
        assert line == f"config key 'data.val_share': expected a share in (0, 1), e.g. 0.2, got {float(value)!r}"
    assert load_config("folder-dmt", ["data.val_share=0.3"]).data.val_share == 0.3
    assert load_config("imagefolder-dmt", ["data.val_share=0.1"]).data.val_share == 0.1
    assert _refused("voc-20-dmt", "data.val_share=0.3").startswith(
        "config key 'data.val_share': only your own data (data.name folder or imagefolder)")
    assert "data.val_share" in _refused("cifar10-4-dmt", "data.val_share=0.3")


def test_every_shipped_preset_passes_and_the_table_names_real_keys():
    for name in list_presets():
        load_config(name)  # raises on a refused key
    cfg = load_config(None)
    for key, task, _ in ONE_TASK_KEYS:
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)  # AttributeError: the table names a key the schema lacks
        assert task in ("classification", "segmentation")
