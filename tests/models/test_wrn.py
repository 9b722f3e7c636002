"""Wide-ResNets: size, structure and behaviour of WRN-28-2 (CIFAR-10, SVHN), WRN-28-8 (CIFAR-100), WRN-37-2 (STL-10)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dmt.errors import UserError
from dmt.models.conventions import CIFAR10
from dmt.models.wrn import PreActBlock, WideResNet, wrn_28_2, wrn_28_8, wrn_37_2


def _expected_params(widths: list[int], num_classes: int) -> int:
    # Counted by hand from the architecture: stem, groups of 4 blocks, final BN, linear head.
    def block(cin: int, cout: int) -> int:
        bn = 2 * cin + 2 * cout  # two BatchNorms (weight + bias)
        convs = 9 * cin * cout + 9 * cout * cout
        shortcut = cin * cout if cin != cout else 0
        return bn + convs + shortcut

    total = 9 * 3 * 16
    for cin, cout in zip(widths, widths[1:]):
        total += block(cin, cout) + 3 * block(cout, cout)
    return total + 2 * widths[-1] + widths[-1] * num_classes + num_classes


def _expected_wrn_28_2_params(num_classes: int) -> int:
    return _expected_params([16, 32, 64, 128], num_classes)


def test_wrn_28_2_parameter_count() -> None:
    n = sum(p.numel() for p in wrn_28_2(10).parameters())
    assert 1_400_000 <= n <= 1_550_000
    assert n == _expected_wrn_28_2_params(10) == 1_467_610


def test_wrn_28_8_and_37_2_parameter_counts() -> None:
    # USB's figures: WRN-28-8 about 23.4 M (CIFAR-100), WRN-37-2 about 5.9 M (STL-10; USB's stem
    # convolution also has a bias, 16 parameters more)
    assert sum(p.numel() for p in wrn_28_8(100).parameters()) == _expected_params([16, 128, 256, 512], 100) \
        == 23_401_012
    assert sum(p.numel() for p in wrn_37_2(10).parameters()) == _expected_params([16, 32, 64, 128, 256], 10) \
        == 5_929_434


def test_wrn_37_2_structure_takes_96_pixels_to_6() -> None:
    model = wrn_37_2(10).eval()
    blocks = [m for m in model.modules() if isinstance(m, PreActBlock)]
    assert len(blocks) == 16 and [b.shortcut is not None for b in blocks] == [True, False, False, False] * 4
    assert [b.conv1.stride[0] for b in blocks if b.shortcut is not None] == [2, 2, 2, 2]
    assert model.fc.in_features == 256 and model.feature_dim == 256
    seen = {}
    model.group4.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(o.shape)))
    with torch.no_grad():
        assert model(torch.rand(2, 3, 96, 96)).shape == (2, 10)
    assert seen["shape"] == (2, 256, 6, 6)


def test_wrn_28_8_output_and_width() -> None:
    model = wrn_28_8(100).eval()
    assert model.fc.in_features == 512 and model.group1[0].conv1.out_channels == 128
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_wrn_28_2_structure() -> None:
    model = wrn_28_2(10)
    blocks = [m for m in model.modules() if isinstance(m, PreActBlock)]
    assert len(blocks) == 12  # (28 - 4) / 6 = 4 per group
    # Projection shortcuts exactly where the width changes (first block of each group).
    assert [b.shortcut is not None for b in blocks] == [True, False, False, False] * 3
    assert [b.conv1.stride[0] for b in blocks if b.shortcut is not None] == [1, 2, 2]
    assert model.fc.in_features == 128 and model.stem.out_channels == 16
    assert model.input_convention == CIFAR10


def test_wrn_kaiming_fan_out_init() -> None:
    torch.manual_seed(0)
    conv = wrn_28_2(10).group3[1].conv2  # 128 -> 128, fan_out = 128 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.05)
    bns = [m for m in wrn_28_2(10).modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 25 and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in bns)


def test_wrn_any_input_size_and_eval_is_batch_independent() -> None:
    torch.manual_seed(0)
    model = wrn_28_2(7).eval()
    x = torch.rand(3, 3, 40, 40)
    with torch.no_grad():
        out = model(x)
        alone = model(x[:1])
    assert out.shape == (3, 7)
    torch.testing.assert_close(out[:1], alone, rtol=1e-4, atol=1e-5)


def test_wrn_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    model = wrn_28_2(10, drop_rate=0.3)
    x = torch.rand(4, 3, 32, 32)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


@pytest.mark.parametrize("kwargs", [{"depth": 27}, {"depth": 4}, {"widen_factor": 0}, {"drop_rate": 1.0},
                                    {"depth": 28, "strides": (2, 2, 2, 2)}])  # 4 groups: 8n+5 (37), not 28
def test_wrn_rejects_bad_options(kwargs: dict) -> None:
    args = {"depth": 28, "widen_factor": 2, "num_classes": 10} | kwargs
    with pytest.raises(UserError, match=next(iter(kwargs))):
        WideResNet(**args)


def test_projection_shortcut_reads_the_preactivated_input() -> None:
    # Pre-activation ResNet: out = shortcut(relu(bn1(x))) + conv2(relu(bn2(conv1(relu(bn1(x)))))),
    # with the 1x1 projection applied to the activated input, as in DMT's WRN.
    torch.manual_seed(0)
    block = PreActBlock(4, 8, stride=2).eval()
    with torch.no_grad():
        for bn in (block.bn1, block.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
        x = torch.randn(2, 4, 8, 8)
        pre = torch.relu(block.bn1(x))
        expected = block.shortcut(pre) + block.conv2(torch.relu(block.bn2(block.conv1(pre))))
        torch.testing.assert_close(block(x), expected)
        identity = PreActBlock(8, 8, stride=1).eval()
        y = torch.randn(2, 8, 4, 4)
        branch = identity.conv2(torch.relu(identity.bn2(identity.conv1(torch.relu(identity.bn1(y))))))
        torch.testing.assert_close(identity(y) - y, branch)
