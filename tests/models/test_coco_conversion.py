"""The COCO DeepLab-v2 checkpoint converter, on small checkpoints in the original's key names."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from dmt.errors import UserError
from dmt.models.coco import coco_head_classes, convert_coco_checkpoint, convert_coco_state_dict
from dmt.models.conventions import COCO_CAFFE
from dmt.models.deeplabv2 import deeplabv2_resnet101, deeplabv2_tiny


def _original_name(ours: str, prefix: str) -> str:
    """Our name -> AdvSemiSeg's name (written independently of the converter's own mapping)."""
    if ours.startswith("classifier.convs."):
        index, param = ours.split(".")[2:]
        return f"{prefix}layer5.conv2d_list.{index}.{param}"
    assert ours.startswith("backbone.")
    return prefix + ours[len("backbone.") :]


def _fabricated(num_classes: int = 21, prefix: str = "Scale.") -> tuple[dict, dict]:
    """A caffe-style checkpoint of the tiny DeepLab-v2: random values, no num_batches_tracked."""
    g = torch.Generator().manual_seed(3)
    ours = {
        k: torch.rand(v.shape, generator=g) + 0.5  # positive, so running_var stays valid
        for k, v in deeplabv2_tiny(num_classes).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    return ours, {_original_name(k, prefix): v for k, v in ours.items()}


def _save(obj, tmp_path, name: str = "resnet101COCO.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("prefix", ["Scale.", ""])
def test_round_trip_into_our_model_keeps_the_matching_head(tmp_path, prefix: str) -> None:
    ours, original = _fabricated(21, prefix)
    dst = tmp_path / "out" / "coco.safetensors"
    report = convert_coco_checkpoint(_save(original, tmp_path), dst, reference=deeplabv2_tiny)
    assert report.dst == dst and report.head_classes == 21 and report.dropped == ()
    assert report.tensors == len(ours)

    model = deeplabv2_tiny(21, init="coco", weights_path=dst)
    assert model.input_convention == COCO_CAFFE
    loaded = model.state_dict()
    for k, v in ours.items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0)


def test_head_of_another_class_count_is_not_loaded(tmp_path) -> None:
    ours, original = _fabricated(21)
    dst = tmp_path / "coco.safetensors"
    convert_coco_checkpoint(_save(original, tmp_path), dst, reference=deeplabv2_tiny)
    model = deeplabv2_tiny(19, init="coco", weights_path=dst)  # Cityscapes: random head, COCO body
    loaded = model.state_dict()
    torch.testing.assert_close(loaded["backbone.layer4.1.conv3.weight"], ours["backbone.layer4.1.conv3.weight"])
    assert loaded["classifier.convs.0.weight"].shape[0] == 19


def test_backbone_only_file_and_metadata(tmp_path) -> None:
    ours, original = _fabricated(21)
    dst = tmp_path / "coco.safetensors"
    report = convert_coco_checkpoint(_save(original, tmp_path), dst, keep_head=False, reference=deeplabv2_tiny)
    assert report.head_classes is None
    assert report.dropped == tuple(sorted(f"classifier.convs.{i}.{p}" for i in range(4) for p in ("weight", "bias")))
    with safe_open(str(dst), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == "dmt-deeplabv2-backbone"
    assert json.loads(meta["input_convention"]) == COCO_CAFFE.to_dict()
    assert keys == {k for k in ours if k.startswith("backbone.")}
    model = deeplabv2_tiny(21, init="coco", weights_path=dst)  # loads; the head stays random
    assert not torch.equal(model.state_dict()["classifier.convs.0.bias"], ours["classifier.convs.0.bias"])


def test_convert_state_dict_is_a_pure_key_mapping() -> None:
    src = {
        "Scale.conv1.weight": torch.ones(64, 3, 7, 7),
        "Scale.layer1.0.downsample.1.running_var": torch.ones(256),
        "Scale.layer3.22.bn3.bias": torch.zeros(1024),
        "Scale.layer5.conv2d_list.3.weight": torch.zeros(21, 2048, 3, 3),
        "Scale.layer5.conv2d_list.3.bias": torch.zeros(21),
        "Scale.layer5.conv2d_list.0.weight": torch.zeros(21, 2048, 3, 3),
    }
    before = dict(src)
    kept = convert_coco_state_dict(src, 21)
    assert src == before  # the input is not modified
    assert set(kept) == {
        "backbone.conv1.weight",
        "backbone.layer1.0.downsample.1.running_var",
        "backbone.layer3.22.bn3.bias",
        "classifier.convs.3.weight",
        "classifier.convs.3.bias",
        "classifier.convs.0.weight",
    }
    assert kept["backbone.conv1.weight"] is src["Scale.conv1.weight"]
    assert coco_head_classes(src) == 21
    for other in (19, None):
        assert set(convert_coco_state_dict(src, other)) == {k for k in kept if k.startswith("backbone.")}


def test_original_names_map_onto_resnet101() -> None:
    with torch.device("meta"):
        ours = deeplabv2_resnet101(21).state_dict()
    original = {_original_name(k, "Scale."): v for k, v in ours.items() if not k.endswith("num_batches_tracked")}
    converted = convert_coco_state_dict(original, 21)
    assert len(converted) == 528
    assert all(converted[k].shape == ours[k].shape for k in converted)


def test_missing_and_unexpected_tensors_are_named(tmp_path) -> None:
    _, original = _fabricated(21)
    del original["Scale.layer3.1.bn2.running_mean"]
    original["Scale.fc.weight"] = torch.zeros(3, 3)
    with pytest.raises(UserError) as err:
        convert_coco_checkpoint(_save(original, tmp_path), tmp_path / "x.safetensors", reference=deeplabv2_tiny)
    message = str(err.value)
    assert "backbone.layer3.1.bn2.running_mean" in message and "backbone.fc.weight" in message
    assert "\n" not in message and not (tmp_path / "x.safetensors").exists()


def test_wrong_architecture_is_refused_against_resnet101(tmp_path) -> None:
    _, original = _fabricated(21)  # a tiny body is not ResNet-101
    with pytest.raises(UserError, match="missing"):
        convert_coco_checkpoint(_save(original, tmp_path), tmp_path / "x.safetensors")


class _CreatesAFile:
    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_doctored_pickle_is_refused_without_running_it(tmp_path) -> None:
    marker = tmp_path / "pwned"
    src = _save({"Scale.conv1.weight": torch.zeros(1), "payload": _CreatesAFile(marker)}, tmp_path)
    assert not marker.exists()
    with pytest.raises(UserError, match="refused") as err:
        convert_coco_checkpoint(src, tmp_path / "x.safetensors", reference=deeplabv2_tiny)
    assert str(src) in str(err.value)
    assert not marker.exists()


def test_missing_source_and_same_destination(tmp_path) -> None:
    with pytest.raises(UserError, match="no such file"):
        convert_coco_checkpoint(tmp_path / "absent.pth", tmp_path / "x.safetensors")
    _, original = _fabricated(21)
    src = _save(original, tmp_path)
    with pytest.raises(UserError, match="differ"):
        convert_coco_checkpoint(src, src, reference=deeplabv2_tiny)
