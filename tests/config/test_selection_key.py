"""``phases.selection``: the paper's global ranking stays the default; class_balanced is classification's."""

from __future__ import annotations

import pytest

from dmt.config import list_presets, load_config
from dmt.errors import UserError


def test_the_cifar10_presets_and_the_digits_demo_keep_the_papers_global_ranking():
    names = [n for n in list_presets() if n.startswith("cifar10-")] + ["demo-digits"]
    assert len(names) > 3
    assert {load_config(n).phases.selection for n in names} == {"global"}


def test_classification_takes_class_balanced():
    assert load_config("demo-digits", ["phases.selection=class_balanced"]).phases.selection == "class_balanced"


def test_segmentation_refuses_it_in_one_line_its_thresholds_are_class_balanced_already():
    with pytest.raises(UserError) as info:
        load_config("voc-20-dmt", ["phases.selection=class_balanced"])
    assert str(info.value) == ("config key 'phases.selection': 'class_balanced' does nothing for segmentation "
                               "(only classification runs read it); remove it")
    assert load_config("voc-20-dmt", ["phases.selection=global"]).phases.selection == "global"  # the default


def test_an_unknown_rule_is_refused_naming_the_key():
    with pytest.raises(UserError, match="config key 'phases.selection': expected one of"):
        load_config("demo-digits", ["phases.selection=per_class"])
