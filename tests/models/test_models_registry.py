"""Every registered model: builds, takes RGB [0, 1] input, returns logits of the right shape."""

from __future__ import annotations

import pytest

from dmt.errors import UserError
import torch

from dmt.models.conventions import InputConvention, InputNormalization
from dmt.models.registry import create_model, list_models, model_task

NUM_CLASSES = 5
# Segmentation models whose logits are not at input resolution: side length for a 65x65 input.
LOW_RES_SIDE = {"deeplabv2_resnet101": 9, "deeplabv2_tiny": 9, "deeplabv3plus_resnet101": 17, "deeplabv3plus_tiny": 17}
# Foundation encoders at their real sizes are built on the meta device (no memory, no forward: the
# tiny ones run the same code); encoder parameters in millions, as Meta's files hold them.
REAL_VITS = {"dinov2_vits14_dpt": 22.06, "dinov2_vitb14_dpt": 86.58, "dinov2_vitl14_dpt": 304.37,
             "dinov3_vits16_dpt": 21.59, "dinov3_vitb16_dpt": 85.64, "dinov3_vitl16_dpt": 303.08}


def test_all_modules_register_models() -> None:
    names = set(list_models())
    assert {"wrn_28_2", "tiny_cnn", "tiny_unet", "tiny_fcn", "deeplabv2_resnet101", "deeplabv2_tiny",
            "deeplabv3plus_resnet101", "deeplabv3plus_tiny"} <= names
    assert set(list_models("segmentation")) == {n for n in names if model_task(n) == "segmentation"}
    assert "wrn_28_2" in list_models("classification") and "tiny_unet" not in list_models("classification")


@pytest.mark.parametrize("name", [n for n in list_models() if n not in REAL_VITS])
def test_model_builds_and_forwards(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    first = next(iter(model.children()))
    assert isinstance(first, InputNormalization), "the first layer must normalise the input"
    assert isinstance(model.input_convention, InputConvention)
    assert model.input_convention == first.convention

    task = model_task(name)
    side = 32 if task == "classification" else 65
    batch = 1 if name.endswith("resnet101") else 2  # keep the ResNet-101 forwards cheap
    with torch.no_grad():
        out = model(torch.rand(batch, 3, side, side))
    assert isinstance(out, torch.Tensor)
    assert torch.isfinite(out).all()
    if task == "classification":
        assert out.shape == (batch, NUM_CLASSES)
    else:
        out_side = LOW_RES_SIDE.get(name, side)
        assert out.shape == (batch, NUM_CLASSES, out_side, out_side)


def test_unknown_model_names_known_ones() -> None:
    with pytest.raises(UserError, match="tiny_cnn"):
        create_model("no_such_model", num_classes=2)


def test_unknown_factory_options_are_named() -> None:
    with pytest.raises(UserError, match="model.kwargs': tiny_unet does not take aspp_legacy"):
        create_model("tiny_unet", num_classes=2, aspp_legacy=True)


@pytest.mark.parametrize("name", sorted(REAL_VITS))
def test_real_size_foundation_models_are_the_published_encoders(name: str) -> None:
    assert name in list_models() and model_task(name) == "segmentation"
    with torch.device("meta"):
        model = create_model(name, num_classes=NUM_CLASSES)
    assert isinstance(next(iter(model.children())), InputNormalization)
    assert model.input_convention.mean == (0.485, 0.456, 0.406)  # ImageNet's, as both were pretrained
    millions = sum(p.numel() for p in model.encoder.parameters()) / 1e6
    assert millions == pytest.approx(REAL_VITS[name], abs=0.01)
    assert model.patch_size == (14 if name.startswith("dinov2") else 16)
