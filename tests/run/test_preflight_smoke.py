"""The ``--smoke`` pre-flight keeps its promise: every mask's values are read (not only the smoke's few
images), and each missing weights file is one warning line naming its key and where it comes from."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from dmt.cli.main import main
from dmt.config import load_config
from dmt.config.smoke import SMOKE_SEG_IMAGES, apply_smoke
from dmt.data.segmentation import SegSource
from dmt.errors import UserError
from dmt.models import smoke_standin
from dmt.models.backbones.resnet import COCO_SOURCE_URL, IMAGENET_WEIGHTS
from dmt.run.preflight import check_mask_values, preflight
from dmt.run.preflight_weights import check_weights

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import write_folder_tree  # noqa: E402

IMAGENET_URL = "https://download.pytorch.org/models/resnet101-63fe2227.pth"


def _mask(seed: int, h: int = 12, w: int = 14) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[:, w // 2:] = 1 + seed % 2
    m[0] = 255
    return m


@pytest.fixture
def folder(tmp_path) -> Path:
    """Ten masked images of 3 classes (three in splits/val.txt), two without masks."""
    masks = {f"im{k}": _mask(k) for k in range(10)}
    return write_folder_tree(tmp_path / "mine", masks, unlabelled=["u0", "u1"], splits={"val": ["im0", "im1", "im2"]})


def _source(num_classes: int = 3, label_map: np.ndarray | None = None) -> SegSource:
    return SegSource("mine", tuple(f"c{k}" for k in range(num_classes)), (), lambda s: [], lambda n: None,
                     label_map=label_map)


def test_mask_values_are_checked_against_the_classes_and_ignore(tmp_path):
    from PIL import Image

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray(np.array([[0, 1, 2, 255]], np.uint8)).save(good)
    Image.fromarray(np.array([[0, 3, 7, 255, 7]], np.uint8)).save(bad)
    check_mask_values(good, _source())
    with pytest.raises(UserError) as e:
        check_mask_values(bad, _source())
    assert str(e.value) == (f"mask {bad} has values [3, 7] outside 0..2 and 255 (ignore); mine has 3 classes")
    # raw ids go through the label map first (Cityscapes' labelIds): 3 and 7 map to train ids 0 and 255
    table = np.full(256, 255, np.uint8)
    table[[0, 1, 2, 3]] = [0, 1, 2, 0]
    check_mask_values(bad, _source(label_map=table))


def test_smoke_reads_every_mask_outside_its_subset(folder, capsys):
    from PIL import Image

    overrides = ["data.name=folder", f"data.root={folder}", "data.labelled_split=all", "model.init=none",
                 "mutual.init_b=none"]
    Image.fromarray(np.array(_mask(0) * 0 + np.uint8(7))).save(folder / "masks" / "im9.png")  # a mask of all 7s
    cfg = apply_smoke(load_config("voc-8-dmt", overrides))
    assert cfg.data.limit == SMOKE_SEG_IMAGES < 7  # im9 is outside the smoke's few labelled images
    with pytest.raises(UserError, match=r"^mask .*im9\.png has values \[7\] outside 0\.\.2"):
        preflight(cfg)
    assert preflight(load_config("voc-8-dmt", overrides)).masks == 10  # a real run's headers check passes it
    assert main(["check", "voc-8-dmt", *overrides, "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "im9.png" in err
    Image.fromarray(_mask(9)).save(folder / "masks" / "im9.png")
    assert main(["check", "voc-8-dmt", *overrides, "--smoke"]) == 0
    assert capsys.readouterr().out.strip() == ("ok: 12 images and 10 masks (headers read, every mask's values "
                                               "checked)")


def test_smoke_warns_once_per_missing_weights_file_with_its_source(hub_cache, caplog):
    cfg = apply_smoke(load_config("voc-8-dmt", ["data.root=/nowhere"]))  # model A: coco, none; B: imagenet, hub
    with caplog.at_level(logging.WARNING, logger="dmt"):
        assert check_weights(cfg, 21) == []  # nothing built: both files are missing
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("\n" not in line and line.endswith("the smoke run goes on from random weights")
                                   for line in lines)
    coco, imagenet = lines
    assert coco.startswith("--smoke (deeplabv2_resnet101): config key 'model.weights': coco weights not given")
    assert COCO_SOURCE_URL in coco and "`dmt convert-coco SRC DST`, then set model.weights=DST" in coco
    assert "resnet101COCO-41f33a49.pth" in COCO_SOURCE_URL and "ucmerced.edu" in COCO_SOURCE_URL
    assert "config key 'mutual.weights_b'" in imagenet and IMAGENET_URL == IMAGENET_WEIGHTS.url
    assert IMAGENET_URL in imagenet and "set mutual.weights_b=FILE" in imagenet


def test_a_real_run_is_refused_in_one_line_naming_the_source_and_the_key(hub_cache, tmp_path):
    cfg = load_config("voc-8-dmt", ["data.root=/nowhere"])
    with pytest.raises(UserError) as e:
        check_weights(cfg, 21)
    assert str(e.value).startswith("config key 'model.weights': coco weights not given; download AdvSemiSeg's "
                                   f"resnet101COCO-41f33a49.pth from {COCO_SOURCE_URL}")
    not_converted = tmp_path / "resnet101COCO-41f33a49.pth"  # the download itself, not dmt convert-coco's output
    not_converted.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(UserError) as e:
        check_weights(load_config("voc-8-dmt", ["data.root=/nowhere", f"model.weights={not_converted}"]), 21)
    assert str(e.value).startswith(f"config key 'model.weights': {not_converted}: not a safetensors file written by "
                                   "`dmt convert-coco`")
    assert COCO_SOURCE_URL in str(e.value) and str(e.value).endswith("then set model.weights=DST")
    cfg = load_config("voc-8-dmt", ["data.root=/nowhere", "model.init=none", "mutual.weights_b=null"])
    with pytest.raises(UserError) as e:  # B: imagenet from torch.hub's cache path, absent
        check_weights(cfg, 21)
    assert f"set mutual.weights_b=hub (torchvision's {IMAGENET_URL}" in str(e.value)


def test_the_deeplab_presets_smoke_as_their_tiny_stand_ins():
    assert smoke_standin("deeplabv2_resnet101") == "deeplabv2_tiny"
    assert smoke_standin("deeplabv3plus_resnet101") == "deeplabv3plus_tiny"
    assert smoke_standin("deeplabv2_tiny") == "deeplabv2_tiny"  # the stand-ins train as themselves
