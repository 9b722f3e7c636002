"""DeepLab-v2: ASPP arithmetic (and the legacy bug), output stride 8, dilation, weight loading."""

from __future__ import annotations

import warnings

import pytest
import torch

from dmt.errors import UserError
from dmt.models.backbones.resnet import imagenet_cache_path, load_coco_weights
from dmt.models.conventions import COCO_CAFFE, IMAGENET
from dmt.models.deeplabv2 import DeepLabV2, deeplabv2_resnet101, deeplabv2_tiny
from dmt.models.heads.deeplab import ASPPv2


def _aspp_pair() -> tuple[ASPPv2, ASPPv2, torch.Tensor]:
    torch.manual_seed(0)
    full = ASPPv2(8, 3)
    legacy = ASPPv2(8, 3, legacy=True)
    legacy.load_state_dict(full.state_dict())  # same parameters: the legacy head keeps all four convs
    return full, legacy, torch.randn(2, 8, 13, 11)


def test_aspp_sums_all_four_branches() -> None:
    full, _, x = _aspp_pair()
    assert [c.dilation[0] for c in full.convs] == [6, 12, 18, 24]
    assert [c.padding[0] for c in full.convs] == [6, 12, 18, 24]
    assert all(c.bias is not None and c.kernel_size == (3, 3) for c in full.convs)
    manual = sum(conv(x) for conv in full.convs)
    torch.testing.assert_close(full(x), manual)
    assert full(x).shape == (2, 3, 13, 11)


def test_aspp_legacy_uses_only_the_first_two_branches() -> None:
    full, legacy, x = _aspp_pair()
    assert len(legacy.state_dict()) == 8  # 4 weights + 4 biases, so checkpoints load either way
    torch.testing.assert_close(legacy(x), legacy.convs[0](x) + legacy.convs[1](x))
    assert (legacy(x) - full(x)).abs().max() > 1e-3
    # Changing the dead branches changes nothing in legacy mode.
    with torch.no_grad():
        legacy.convs[2].weight.add_(1.0)
        legacy.convs[3].bias.add_(1.0)
    torch.testing.assert_close(legacy(x), full.convs[0](x) + full.convs[1](x))


def test_deeplabv2_legacy_option_reaches_the_head() -> None:
    assert deeplabv2_tiny(3, aspp_legacy=True).classifier.legacy
    assert not deeplabv2_tiny(3).classifier.legacy


@pytest.mark.parametrize(("size", "expected"), [((65, 65), (9, 9)), ((129, 128), (17, 16)), ((321, 321), (41, 41))])
def test_output_stride_8(size: tuple[int, int], expected: tuple[int, int]) -> None:
    model = deeplabv2_tiny(4).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, *size)).shape == (1, 4, *expected)


def test_resnet101_body_is_dilated_like_dmt() -> None:
    with torch.device("meta"):  # structure only: no memory, no init cost
        model = deeplabv2_resnet101(21)
    body = model.backbone
    assert [len(getattr(body, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    # torchvision semantics: the first block of a dilated stage keeps the previous dilation.
    assert [b.conv2.dilation[0] for b in body.layer3] == [1] + [2] * 22
    assert [b.conv2.dilation[0] for b in body.layer4] == [2, 4, 4]
    assert body.layer2[0].conv2.stride == (2, 2)
    assert all(b.conv2.stride == (1, 1) for b in (*body.layer3, *body.layer4))
    assert not hasattr(body, "fc") and not hasattr(body, "avgpool")
    assert model.classifier.convs[0].in_channels == 2048
    keys = list(model.state_dict())
    # The COCO checkpoint has 528 tensors; torchvision adds one num_batches_tracked per BN (104).
    assert sum(not k.endswith("num_batches_tracked") for k in keys) == 528
    assert sum(k.endswith("num_batches_tracked") for k in keys) == 104
    assert model.input_convention == IMAGENET


def test_tiny_body_follows_the_same_dilation_logic() -> None:
    body = deeplabv2_tiny(3).backbone
    assert [b.conv2.dilation[0] for b in (*body.layer3, *body.layer4)] == [1, 2, 2, 4]
    assert isinstance(deeplabv2_tiny(3), DeepLabV2)


def test_bad_init_is_a_user_error() -> None:
    with pytest.raises(UserError, match="init"):
        deeplabv2_tiny(3, init="imagenet21k")


def test_missing_imagenet_weights_strict(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    expected = tmp_path / "checkpoints" / "resnet101-63fe2227.pth"
    assert imagenet_cache_path() == expected
    # Fails before building ResNet-101, naming the cache file and the URL to fetch it from.
    with pytest.raises(UserError, match="resnet101-63fe2227.pth") as err:
        deeplabv2_resnet101(21, init="imagenet")
    assert str(expected) in str(err.value) and "https://download.pytorch.org" in str(err.value)
    with pytest.raises(UserError, match="nope.pth"):
        deeplabv2_resnet101(21, init="imagenet", weights_path=tmp_path / "nope.pth")


def test_missing_coco_weights_strict_and_lenient(tmp_path) -> None:
    with pytest.raises(UserError, match="dmt convert-coco"):
        deeplabv2_tiny(3, init="coco")
    missing = tmp_path / "coco.safetensors"
    with pytest.raises(UserError, match="coco.safetensors"):
        deeplabv2_tiny(3, init="coco", weights_path=missing)
    with pytest.warns(UserWarning, match="coco.safetensors.*random initialisation"):
        model = deeplabv2_tiny(3, init="coco", weights_path=missing, strict_weights=False)
    assert model.input_convention == COCO_CAFFE  # the convention follows init even without weights


def _tiny_resnet_state(tmp_path) -> tuple[dict, object]:
    """A torchvision-style ResNet state dict for the tiny body: ``conv1.weight`` ... ``fc.bias``."""
    torch.manual_seed(1)
    body = deeplabv2_tiny(2).backbone.state_dict()
    state = {k: v.clone() for k, v in body.items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    for k, v in state.items():  # non-default BN statistics, so loading them is observable
        if "running" in k:
            v.uniform_(0.5, 1.5)
    path = tmp_path / "tiny_imagenet.pth"
    torch.save(state, path)
    return state, path


def test_imagenet_weights_load_from_a_local_file(tmp_path) -> None:
    state, path = _tiny_resnet_state(tmp_path)
    model = deeplabv2_tiny(6, init="imagenet", weights_path=path)
    ours = model.state_dict()
    assert model.input_convention == IMAGENET
    for k, v in state.items():
        if k.startswith("fc."):
            assert f"backbone.{k}" not in ours
        else:
            torch.testing.assert_close(ours[f"backbone.{k}"], v, rtol=0, atol=0)


def test_imagenet_file_with_missing_tensor_is_refused(tmp_path) -> None:
    state, path = _tiny_resnet_state(tmp_path)
    del state["layer3.1.conv2.weight"]
    torch.save(state, path)
    with pytest.raises(UserError, match=r"missing: backbone\.layer3\.1\.conv2\.weight"):
        deeplabv2_tiny(6, init="imagenet", weights_path=path)


def test_imagenet_file_that_is_not_a_state_dict(tmp_path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(UserError, match="state dict"):
        deeplabv2_tiny(6, init="imagenet", weights_path=path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="cannot read"):
        deeplabv2_tiny(6, init="imagenet", weights_path=path)


def test_coco_loader_refuses_files_not_written_by_the_converter(tmp_path) -> None:
    from safetensors.torch import save_file

    model = deeplabv2_tiny(3)
    raw = tmp_path / "raw.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, raw)
    with pytest.raises(UserError, match="dmt convert-coco"):
        load_coco_weights(model, raw)
    other = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(other), metadata={"format": "x"})
    with pytest.raises(UserError, match="dmt-deeplabv2-backbone"):
        load_coco_weights(model, other)


def test_no_warning_without_weights() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deeplabv2_tiny(3)
