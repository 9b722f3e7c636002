"""Model files carry their input convention; rebuilding never re-reads pretrained files."""

import warnings

import torch

from dmt.models import create_model
from dmt.models.conventions import COCO_CAFFE, IMAGENET
from dmt.models.files import load_model, save_model


def test_coco_convention_survives_the_round_trip(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model("deeplabv2_tiny", 5, init="coco", weights_path=tmp_path / "absent.safetensors",
                             strict_weights=False).eval()
    assert model.input_convention == COCO_CAFFE
    kwargs = {"init": "coco", "weights_path": str(tmp_path / "absent.safetensors"), "strict_weights": False}
    save_model(tmp_path / "m.safetensors", model, name="deeplabv2_tiny", num_classes=5, kwargs=kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilding must not look for the pretrained file again
        loaded, meta = load_model(tmp_path / "m.safetensors")
    assert loaded.input_convention == COCO_CAFFE and meta["input_convention"]["channel_order"] == "BGR"
    x = torch.rand(1, 3, 33, 33)
    assert torch.equal(loaded(x), model(x))


def test_imagenet_convention_and_meta(tmp_path):
    model = create_model("tiny_unet", 4).eval()
    save_model(tmp_path / "u.safetensors", model, name="tiny_unet", num_classes=4, kwargs={},
               info={"stage": "phase1", "metrics": {"miou": 0.5}})
    loaded, meta = load_model(tmp_path / "u.safetensors")
    assert meta["task"] == "segmentation" and meta["stage"] == "phase1" and meta["metrics"]["miou"] == 0.5
    assert loaded.input_convention == model.input_convention != IMAGENET
