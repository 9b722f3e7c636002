"""The pretrained classification presets: DINOv2 ViT-S/14 from the hub at 224, USB's label counts and
figures, the recipe of the segmentation DINOv2 presets, and a ``--smoke`` stand-in that runs at 224."""

from __future__ import annotations

import pytest
import torch

from dmt.cli.main import main
from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.models import create_model, smoke_network

# preset -> (data.name, labels per class, USB's FixMatch error in its usb_cv results table)
PRESETS = {"cifar100-2-dinov2": ("cifar100", 2, "29.60"), "cifar100-4-dinov2": ("cifar100", 4, "19.56"),
           "stl10-4-dinov2": ("stl10", 4, "16.15"), "stl10-10-dinov2": ("stl10", 10, "8.11"),
           "imagefolder-dinov2": ("imagefolder", None, None)}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_presets_state_the_encoder_the_recipe_and_usbs_figure(name):
    data, per_class, fixmatch = PRESETS[name]
    c = load_config(name)
    assert c.task == "classification" and c.method == "dmt" and c.data.name == data
    assert c.model.name == "timm/vit_small_patch14_dinov2.lvd142m" and c.model.weights == "hub"
    assert c.model.init == "none" and c.model.kwargs == {"dynamic_img_size": True, "dynamic_img_pad": True}
    assert c.data.image_size == 224 and c.phases.selection == "class_balanced" and c.phases.from_scratch
    for section in (c.baseline, c.phases, c.oracle):
        assert section.optimizer == "adamw" and section.lr == 1e-5 and section.lr_mult == {"head": 40.0}
        assert section.weight_decay == 0.01
    if per_class is not None:
        assert c.data.labels_per_class == per_class and c.data.valtiny_per_class == 0
        assert f"FixMatch {fixmatch}" in c.description and "ours: not yet run" in c.description


def test_smoke_trains_a_narrow_dinov2_that_takes_224_pixel_images():
    c = apply_smoke(load_config("cifar100-4-dinov2"))
    name, kwargs = smoke_network(c.model.name, c.model.kwargs)
    assert name == c.model.name and kwargs["embed_dim"] == 32 and kwargs["dynamic_img_size"]
    torch.manual_seed(0)
    model = create_model(name, 100, **kwargs)
    assert sum(p.numel() for p in model.parameters()) < 300_000
    assert model(torch.rand(2, 3, 224, 224)).shape == (2, 100)
    assert model(torch.rand(1, 3, 40, 40)).shape == (1, 100)  # a smaller image size, not a multiple of 14


def test_classification_refuses_model_init(capsys):
    assert main(["run", "cifar100-2-dinov2", "data.root=/nowhere", "model.init=dinov2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'model.init'" in err and "model.weights" in err
