"""The small networks for tests and demos: they learn, and handle the sizes they promise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dmt.errors import UserError
from dmt.models.conventions import CIFAR10, GRAY
from dmt.models.small import tiny_cnn
from dmt.models.small_seg import tiny_fcn, tiny_unet


@pytest.fixture
def single_thread():
    # Many tiny ops: intra-op threads only add synchronisation, and on a shared 2-core machine
    # spinning OpenMP workers make these loops 10x slower. Restore the setting afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_cnn_learns_sklearn_digits(single_thread) -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()  # bundled with scikit-learn: no download
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # 0..16 -> [0, 1]
    y = torch.tensor(digits.target)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    train, test = perm[:1200], perm[1200:]

    torch.manual_seed(0)
    model = tiny_cnn(10, in_channels=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        idx = train[torch.randint(len(train), (64,), generator=g)]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy > 0.95


def test_tiny_cnn_conventions_and_sizes() -> None:
    gray, rgb = tiny_cnn(4, in_channels=1), tiny_cnn(4, width=8)
    assert gray.input_convention == GRAY and rgb.input_convention == CIFAR10
    assert gray(torch.rand(2, 1, 8, 8)).shape == (2, 4)
    assert rgb(torch.rand(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="input channels"):
        rgb(torch.rand(2, 1, 32, 32))
    with pytest.raises(UserError, match="in_channels"):
        tiny_cnn(4, in_channels=2)


@pytest.mark.parametrize("factory", [tiny_unet, tiny_fcn])
def test_small_seg_full_resolution_on_odd_sizes(factory) -> None:
    model = factory(11).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 33, 47)).shape == (2, 11, 33, 47)
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 11, 64, 64)


def test_small_seg_sizes() -> None:
    assert 50_000 <= sum(p.numel() for p in tiny_unet(11).parameters()) <= 200_000
    assert sum(p.numel() for p in tiny_fcn(11).parameters()) < 20_000
    with pytest.raises(UserError, match="width"):
        tiny_unet(3, width=0)


def _scene(n: int, side: int, num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random axis-aligned rectangles; each class has its own colour, class 0 is the background."""
    palette = torch.rand(num_classes, 3, generator=generator)
    masks = torch.zeros(n, side, side, dtype=torch.long)
    for i in range(n):
        for c in range(1, num_classes):
            y0, x0 = torch.randint(0, side - 8, (2,), generator=generator).tolist()
            h, w = torch.randint(4, 12, (2,), generator=generator).tolist()
            masks[i, y0 : y0 + h, x0 : x0 + w] = c
    images = palette[masks].permute(0, 3, 1, 2).contiguous()
    return images, masks


@pytest.mark.parametrize("factory", [tiny_unet, tiny_fcn])
def test_small_seg_learns_a_synthetic_scene(factory, single_thread) -> None:
    g = torch.Generator().manual_seed(0)
    images, masks = _scene(4, 32, 5, g)
    torch.manual_seed(0)
    model = factory(5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model(images), masks)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pixel_accuracy = (model(images).argmax(1) == masks).float().mean().item()
    assert pixel_accuracy > 0.9
