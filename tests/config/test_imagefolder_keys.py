"""The config keys of classification image folders: their rules, one line naming the key."""

from __future__ import annotations

import pytest

from dmt.config import load_config
from dmt.errors import UserError


def test_folder_keys_load():
    cfg = load_config(None, ["data.name=imagefolder", "data.image_size=224", "data.train_csv=l.csv",
                             "data.val_csv=v.csv", "data.test_csv=t.csv"])
    assert (cfg.data.image_size, cfg.data.train_csv, cfg.data.val_csv, cfg.data.test_csv) == (224, "l.csv", "v.csv",
                                                                                             "t.csv")
    assert load_config(None).data.image_size == 0


@pytest.mark.parametrize("overrides, key", [
    (["data.image_size=-1"], "data.image_size"),
    (["data.train_csv=l.csv"], "data.train_csv"),  # data.name is cifar10
    (["data.name=digits", "data.test_csv=t.csv"], "data.test_csv"),
    (["task=segmentation", "data.name=voc", "data.image_size=96", "baseline.mixup_alpha=0", "phases.mixup_alpha=0",
      "oracle.mixup_alpha=0"], "data.image_size"),
])
def test_mistakes_name_the_key(overrides, key):
    with pytest.raises(UserError) as info:
        load_config(None, overrides)
    assert f"config key '{key}'" in str(info.value) and "\n" not in str(info.value)
