"""DeepLab-v3+: shapes, output stride 16/8 and the eval-time switch, parameter count, ImageNet key mapping."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet101

from dmt.errors import UserError
from dmt.models.conventions import IMAGENET
from dmt.models.deeplabv3plus import deeplabv3plus_resnet101, deeplabv3plus_tiny
from dmt.models.heads.deeplab import ASPP, aspp_rates


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("size", "expected"), [((65, 65), (17, 17)), ((64, 96), (16, 24)), ((33, 50), (9, 13))])
def test_logits_at_a_quarter_of_the_input(size, expected) -> None:
    model = deeplabv3plus_tiny(4)
    out = model(torch.rand(2, 3, *size))  # training mode: BN on a batch of 2
    assert out.shape == (2, 4, *expected)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, *size)).shape == (1, 4, *expected)


def _feature_sides(model, side: int) -> list[int]:
    """Spatial side after each body stage for a ``side`` x ``side`` input."""
    b, sides = model.backbone, []
    x = b.maxpool(b.relu(b.bn1(b.conv1(torch.rand(1, 3, side, side)))))
    for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
        x = layer(x)
        sides.append(x.shape[-1])
    return sides


@torch.no_grad()
def test_output_stride_16_and_8() -> None:
    assert _feature_sides(deeplabv3plus_tiny(3).eval(), 64) == [16, 8, 4, 4]
    assert _feature_sides(deeplabv3plus_tiny(3, output_stride=8).eval(), 64) == [16, 8, 8, 8]
    assert aspp_rates(16) == (6, 12, 18) and aspp_rates(8) == (12, 24, 36)
    assert deeplabv3plus_tiny(3).aspp.rates == (6, 12, 18)
    assert deeplabv3plus_tiny(3, output_stride=8).aspp.rates == (12, 24, 36)


@torch.no_grad()
def test_eval_output_stride_switches_with_the_mode_and_equals_a_model_built_at_8() -> None:
    torch.manual_seed(0)
    switching = deeplabv3plus_tiny(3, eval_output_stride=8)
    built_at_8 = deeplabv3plus_tiny(3, output_stride=8)
    built_at_8.load_state_dict(switching.state_dict())  # same tensors: only the geometry differs
    assert switching.output_stride == 16 and switching.aspp.rates == (6, 12, 18)
    switching.eval()
    assert switching.output_stride == 8 and switching.aspp.rates == (12, 24, 36)
    assert _feature_sides(switching, 64) == [16, 8, 8, 8]
    x = torch.rand(1, 3, 48, 40)
    torch.testing.assert_close(switching(x), built_at_8.eval()(x))
    switching.train()
    assert switching.output_stride == 16 and _feature_sides(switching.eval().train(), 64) == [16, 8, 4, 4]
    # every conv of the body has torchvision's geometry for stride 16 again
    reference = deeplabv3plus_tiny(3)
    for (name, conv), (_, ref) in zip(switching.backbone.named_modules(), reference.backbone.named_modules()):
        if isinstance(conv, torch.nn.Conv2d):
            assert (conv.stride, conv.padding, conv.dilation) == (ref.stride, ref.padding, ref.dilation), name


def test_aspp_has_image_pooling_and_five_branches() -> None:
    torch.manual_seed(0)
    aspp = ASPP(8, 4, (1, 2, 3)).eval()
    x = torch.rand(1, 8, 5, 7)
    with torch.no_grad():
        pooled = aspp.pool(x)
        assert pooled.shape == (1, 4, 1, 1)
        parts = [b(x) for b in aspp.branches] + [pooled.expand(1, 4, 5, 7)]
        torch.testing.assert_close(aspp(x), aspp.project(torch.cat(parts, 1)))
    assert aspp.project[0].in_channels == 5 * 4


def test_resnet101_parameter_count_matches_the_published_59_to_60_million() -> None:
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        model = deeplabv3plus_resnet101(21)
    assert 59e6 <= _params(model) <= 60e6
    body = model.backbone
    assert [len(getattr(body, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    assert model.aspp.branches[0][0].in_channels == 2048 and model.aspp.project[0].out_channels == 256
    assert model.decoder.reduce[0].in_channels == 256 and model.decoder.reduce[0].out_channels == 48
    assert [c.kernel_size for c in model.decoder.fuse.modules() if isinstance(c, torch.nn.Conv2d)] == [(3, 3)] * 2
    assert model.classifier.out_channels == 21 and model.input_convention == IMAGENET


def test_resnet101_backbone_names_are_torchvisions() -> None:
    with torch.device("meta"):
        model = deeplabv3plus_resnet101(19)
        tv = resnet101(weights=None)
    ours = {k[len("backbone."):]: v.shape for k, v in model.state_dict().items() if k.startswith("backbone.")}
    theirs = {k: v.shape for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    assert ours == theirs


def _torchvision_style_state(width: int = 8) -> dict[str, torch.Tensor]:
    """A fabricated ImageNet file for the tiny body: torchvision names, an ``fc`` head, random values."""
    from torchvision.models.resnet import ResNet

    from dmt.models.backbones.resnet import SlimBottleneck

    torch.manual_seed(123)
    net = ResNet(SlimBottleneck, [1, 1, 2, 2], width_per_group=width, num_classes=1000)
    state = net.state_dict()
    for v in state.values():
        if v.is_floating_point():
            v.copy_(torch.randn_like(v))  # values no fresh initialisation could give
    return state


def test_imagenet_init_fills_every_backbone_tensor_and_leaves_the_head(tmp_path) -> None:
    state = _torchvision_style_state()
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    torch.manual_seed(7)
    fresh = deeplabv3plus_tiny(5)
    torch.manual_seed(7)
    loaded = deeplabv3plus_tiny(5, init="imagenet", weights_path=path)
    got = loaded.state_dict()
    body = [k for k in got if k.startswith("backbone.")]
    assert body and len(body) == len([k for k in state if not k.startswith("fc.")])
    for k in body:
        torch.testing.assert_close(got[k], state[k[len("backbone."):]])
    for k, v in fresh.state_dict().items():  # ASPP, decoder and classifier keep their initialisation
        if not k.startswith("backbone."):
            torch.testing.assert_close(got[k], v)


@pytest.mark.parametrize("change", ["missing", "unexpected", "reshaped"])
def test_imagenet_init_is_strict(tmp_path, change) -> None:
    state = _torchvision_style_state()
    if change == "missing":
        del state["layer3.1.conv2.weight"]
    elif change == "unexpected":
        state["layer5.0.conv1.weight"] = torch.zeros(1)
    else:
        state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 1, 1)
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match=f"{path}.*{'other shape' if change == 'reshaped' else change}"):
        deeplabv3plus_tiny(5, init="imagenet", weights_path=path)


def test_bad_options_are_named(tmp_path) -> None:
    with pytest.raises(UserError, match="init: expected one of none, imagenet.*no COCO"):
        deeplabv3plus_tiny(3, init="coco")
    with pytest.raises(UserError, match="output_stride: expected 8 or 16, got 32"):
        deeplabv3plus_tiny(3, output_stride=32)
    with pytest.raises(UserError, match="weights_path: imagenet weights not found"):
        deeplabv3plus_tiny(3, init="imagenet", weights_path=tmp_path / "absent.pth")
