"""``timm/<name>``: any timm classifier, its weights loaded strictly through our safe path, groups, files.

The weight files are fabricated from timm models of the real architectures built with
``pretrained=False`` at tiny sizes (timm's ``test_*`` models, a one-block DINOv2 ViT), with
ImageNet's 1000-class classifier, in timm's format (safetensors) and as ``.pth`` state dicts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from dmt.errors import UserError
from dmt.models import create_model, is_model, model_task, smoke_network
from dmt.models.files import load_model, save_model

sys.path.insert(0, str(Path(__file__).parent / "backbones"))
from hub_fixtures import cache_file  # noqa: E402

# a one-block DINOv2 ViT-S/14 at 28 px (2 x 2 patches); the name's tag picks the hub file and convention
VIT = "vit_small_patch14_dinov2.lvd142m"
VIT_KW = {"depth": 1, "embed_dim": 32, "num_heads": 2, "img_size": 28}
ARCHS = {"test_resnet": {}, "test_convnext": {}, "test_efficientnet": {}, "test_vit": {}, VIT: VIT_KW}


def imagenet_source(arch: str, seed: int = 1) -> torch.nn.Module:
    """A timm model as its pretrained file would hold it: random weights, 1000 classes."""
    torch.manual_seed(seed)
    return timm.create_model(arch, pretrained=False, **ARCHS[arch])


def write(path: Path, state: dict[str, torch.Tensor]) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def build(arch: str, weights: str | Path | None = None, classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(99)  # another random start: every loaded tensor must come from the file
    extra = {} if weights is None else {"weights_path": str(weights)}
    return create_model(f"timm/{arch}", classes, **ARCHS[arch], **extra).eval()


def assert_body_from(model: torch.nn.Module, source: torch.nn.Module) -> None:
    """Every tensor but the classifier equals the source's; the classifier is new (5 classes)."""
    head = {f"{model.describe()['classifier']}.{n}" for n, _ in model.net.get_classifier().named_parameters()}
    for k, v in model.net.state_dict().items():
        if k not in head:
            assert torch.equal(v, source.state_dict()[k]), k
    assert all(model.net.state_dict()[k].shape[0] == 5 for k in head)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("arch", ["test_resnet", VIT])
def test_a_resnet_and_a_dinov2_vit_load_strictly_without_the_imagenet_classifier(arch, suffix, tmp_path):
    source = imagenet_source(arch)
    model = build(arch, write(tmp_path / f"model{suffix}", source.state_dict()))
    assert_body_from(model, source)
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 5)


def test_meta_dinov2_files_go_through_timms_conversion(tmp_path):
    source = imagenet_source(VIT)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    meta = {**state, "mask_token": torch.zeros(1, 32)}  # Meta's release names, as dinov2_vits14_pretrain.pth
    assert_body_from(build(VIT, write(tmp_path / "dinov2_vits14_pretrain.pth", meta)), source)


def test_a_truncated_file_or_a_missing_tensor_is_one_line_naming_file_and_keys(tmp_path):
    source = imagenet_source("test_resnet")
    good = write(tmp_path / "model.safetensors", source.state_dict())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    missing = write(tmp_path / "missing.safetensors",
                    {k: v for k, v in source.state_dict().items() if k != "layer1.0.conv1.weight"})
    other = write(tmp_path / "other.safetensors", imagenet_source("test_convnext").state_dict())
    for path, words in ((cut, ["cannot read"]), (missing, ["missing: layer1.0.conv1.weight"]),
                        (other, ["unexpected:", "missing:"])):
        with pytest.raises(UserError) as e:
            build("test_resnet", path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg and all(w in msg for w in words), msg


def test_a_vit_file_of_another_patch_size_is_refused_and_another_grid_is_resampled(tmp_path):
    wide = timm.create_model("vit_small_patch14_dinov2", pretrained=False, **{**VIT_KW, "img_size": 42})
    model = build(VIT, write(tmp_path / "grid.safetensors", wide.state_dict()))  # 3x3 position grid -> 2x2
    assert model.net.pos_embed.shape == (1, 1 + 4, 32) and torch.equal(model.net.cls_token, wide.cls_token)
    patch16 = timm.create_model("vit_small_patch16_dinov3", pretrained=False, depth=1, embed_dim=32, num_heads=2)
    state = {**imagenet_source(VIT).state_dict(), "patch_embed.proj.weight": patch16.patch_embed.proj.weight}
    with pytest.raises(UserError, match=r"other shape: patch_embed\.proj\.weight"):
        build(VIT, write(tmp_path / "patch16.safetensors", state))


def test_hub_loads_the_tags_file_from_the_cache_offline_and_names_it_when_absent(hub_cache):
    with pytest.raises(UserError) as e:
        build("test_resnet", "hub")
    msg = str(e.value)
    url = "https://huggingface.co/timm/test_resnet.r160_in1k/resolve/main/model.safetensors"
    assert "\n" not in msg and url in msg and "HF_HUB_OFFLINE" in msg and "weights_path=FILE" in msg
    source = imagenet_source("test_resnet")
    cache_file(hub_cache, "timm/test_resnet.r160_in1k", source.state_dict())
    assert_body_from(build("test_resnet", "hub"), source)
    source = imagenet_source(VIT)
    cache_file(hub_cache, "timm/vit_small_patch14_dinov2.lvd142m", source.state_dict())
    assert_body_from(build(VIT, "hub"), source)
    with pytest.raises(UserError, match="no hub source"):  # timm publishes no weights for test_vit4
        create_model("timm/test_vit4", 3, weights_path="hub")


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_param_groups_cover_every_parameter_once_with_timms_classifier_as_head(arch):
    model = build(arch)
    groups = model.param_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert sorted(groups) == ["encoder", "head"] and len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["head"]} == {id(p) for p in model.net.get_classifier().parameters()}


def test_model_file_round_trip_rebuilds_the_same_network(tmp_path):
    model = build(VIT, classes=3)
    path = tmp_path / "m.safetensors"
    save_model(path, model, name=f"timm/{VIT}", num_classes=3, kwargs=VIT_KW)
    loaded, meta = load_model(path)
    x = torch.rand(2, 3, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta["task"] == "classification" and meta["kwargs"] == VIT_KW
    assert meta["architecture"] == {"timm": "vit_small_patch14_dinov2", "pretrained_tag": "lvd142m",
                                    "hf_hub_id": "timm/vit_small_patch14_dinov2.lvd142m", "classifier": "head"}
    assert meta["input_convention"]["mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_names_sizes_and_arguments_are_checked_in_one_line():
    assert is_model("timm/anything") and model_task("timm/resnet18") == "classification"
    for name, kwargs, key in (("timm/resnet_nope", {}, "'model.name'"), ("timm/resnet18.nosuchtag", {}, "'model.name'"),
                              ("timm/test_resnet", {"foo": 1}, "'model.kwargs'"),
                              ("timm/test_resnet", {"pretrained": True}, "'model.kwargs'"),
                              ("wrn_28_2", {"weights_path": "x.safetensors"}, "'model.weights'")):
        with pytest.raises(UserError) as e:
            create_model(name, 3, **kwargs)
        assert "\n" not in str(e.value) and key in str(e.value)
    model = build(VIT)  # img_size 28: another size is one line, not timm's assertion
    with pytest.raises(UserError, match=r"takes 28x28 images, got 42x42.*dynamic_img_size"):
        model(torch.rand(1, 3, 42, 42))
    dynamic = create_model(f"timm/{VIT}", 3, depth=1, embed_dim=32, num_heads=2, dynamic_img_size=True)
    assert dynamic(torch.rand(1, 3, 42, 56)).shape == (1, 3)
    with pytest.raises(UserError, match="multiples of its 14-pixel patches"):
        dynamic(torch.rand(1, 3, 40, 56))


def test_grad_checkpointing_passes_through_and_smoke_shrinks_only_vits():
    model = build(VIT)
    model.set_grad_checkpointing(True)
    assert model.net.grad_checkpointing
    model.train()(torch.rand(2, 3, 28, 28)).sum().backward()
    assert smoke_network(f"timm/{VIT}", {"dynamic_img_size": True}) == (
        f"timm/{VIT}", {"dynamic_img_size": True, "embed_dim": 32, "depth": 2, "num_heads": 2})
    assert smoke_network("timm/resnet50", {"drop_rate": 0.1}) == ("timm/resnet50", {"drop_rate": 0.1})
