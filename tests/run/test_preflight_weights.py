"""The pre-flight's weights check with ``weights: hub``: cached files are checked, absent ones are one
line (``--smoke``: skipped before any network is built), for timm classifiers and DINOv2 encoders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import timm
import torch

from dmt.config import load_config
from dmt.config.smoke import apply_smoke
from dmt.errors import UserError
from dmt.run.preflight_weights import check_weights

sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "backbones"))
from hub_fixtures import cache_file  # noqa: E402

TIMM = ["model.name=timm/test_resnet", "model.weights=hub"]


def test_an_absent_hub_file_is_one_line_naming_key_and_url_and_smoke_skips_it_unbuilt(hub_cache, monkeypatch):
    cfg = load_config("cifar10-4-dmt", TIMM)
    with pytest.raises(UserError) as e:
        check_weights(cfg, 10)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("config key 'model.weights': hub:")
    assert "https://huggingface.co/timm/test_resnet.r160_in1k/resolve/main/model.safetensors" in msg
    assert "set model.weights=FILE" in msg
    monkeypatch.setattr("dmt.models.timm_classifier.build_timm", lambda *a, **k: pytest.fail("built the network"))
    assert check_weights(apply_smoke(cfg), 10) == []


def test_a_cached_hub_file_is_checked_and_one_that_does_not_fit_is_refused(hub_cache):
    cfg = load_config("cifar10-4-dmt", TIMM)
    path = cache_file(hub_cache, "timm/test_resnet.r160_in1k", timm.create_model("test_resnet").state_dict())
    assert check_weights(cfg, 10) == ["model.weights=hub (timm/test_resnet)"]
    assert check_weights(apply_smoke(cfg), 10) == ["model.weights=hub (timm/test_resnet)"]  # cached: checked
    cache_file(hub_cache, "timm/test_resnet.r160_in1k", timm.create_model("test_convnext").state_dict())
    for c in (cfg, apply_smoke(cfg)):
        with pytest.raises(UserError, match=f"{path}: weights do not fit timm's test_resnet"):
            check_weights(c, 10)


def test_both_dinov2_members_read_the_hub_by_default(hub_cache):
    torch.manual_seed(0)
    encoder = timm.create_model("vit_small_patch14_dinov2", num_classes=0, dynamic_img_size=True, img_size=70,
                                embed_dim=32, depth=4, num_heads=2)  # dinov2_tiny_dpt's encoder
    cache_file(hub_cache, "timm/vit_small_patch14_dinov2.lvd142m", encoder.state_dict())
    cfg = load_config("voc-classic-92-dinov2", ["model.name=dinov2_tiny_dpt", "mutual.name_b=dinov2_tiny_dpt"])
    assert cfg.model.weights == "hub" == cfg.mutual.weights_b
    assert check_weights(cfg, 21) == ["model.weights=hub (dinov2_tiny_dpt)", "mutual.weights_b=hub (dinov2_tiny_dpt)"]
