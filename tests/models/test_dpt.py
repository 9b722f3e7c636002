"""The DPT models: any image size, sliding windows, activation checkpointing, parameter groups, model files."""

from __future__ import annotations

import pytest
import torch

from dmt.models import create_model
from dmt.models.files import load_model, save_model
from dmt.tasks.segmentation.inference import window_logits

NAMES = ["dinov2_tiny_dpt", "dinov3_tiny_dpt"]


def _model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, num_classes=4)


@pytest.mark.parametrize("name", NAMES)
def test_an_odd_sized_image_is_the_padded_image_cropped_back(name):
    model = _model(name).eval()
    p = model.patch_size
    h, w = 3 * p + 5, 2 * p + 3  # no side a multiple of the patch size
    x = torch.rand(1, 3, h, w)
    # padded by hand with the encoder's mean colour: zero after normalisation, as the model pads
    mean = torch.tensor(model.input_convention.mean).view(1, 3, 1, 1)
    padded = mean.expand(1, 3, 4 * p, 3 * p).clone()
    padded[..., :h, :w] = x
    with torch.no_grad():
        out = model(x)
        whole = model(padded)
        one_window = window_logits(model, x, window=(h, w), stride=(h, w))
        windows = window_logits(model, x, window=(2 * p + 1, p + 2), stride=(p, p))  # odd windows, overlapping
    assert out.shape == (1, 4, h, w)
    assert torch.equal(out, whole[..., :h, :w])
    assert torch.equal(out, one_window)
    assert windows.shape == out.shape and torch.isfinite(windows).all()


@pytest.mark.parametrize("name", NAMES)
def test_activation_checkpointing_gives_the_same_gradients(name):
    """Recomputing each block in backward changes memory, not the gradients (float32: to 1e-6)."""
    x = torch.rand(2, 3, 37, 45)
    target = torch.randint(0, 4, (2, 37, 45))
    grads, calls = [], []
    for checkpointing in (False, True):
        model = _model(name).train()
        model.set_grad_checkpointing(checkpointing)
        count, block = [0], model.encoder.blocks[0]
        forward = block.forward
        block.forward = lambda *a, **k: count.__setitem__(0, count[0] + 1) or forward(*a, **k)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
        calls.append(count[0])
    assert calls == [1, 2]  # checkpointed: the block ran again in backward
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys()
    for k in plain:
        torch.testing.assert_close(checkpointed[k], plain[k], rtol=1e-5, atol=1e-6, msg=k)
    assert _model(name).encoder.grad_checkpointing is False


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_learns_and_belongs_to_one_named_group(name):
    model = _model(name).train()
    model(torch.rand(1, 3, 30, 30)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())  # DDP needs no search for unused ones
    groups = model.param_groups()
    assert list(groups) == ["encoder", "head"]
    ids = [id(p) for ps in groups.values() for p in ps]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert {id(p) for p in groups["encoder"]} == {id(p) for p in model.encoder.parameters()}


@pytest.mark.parametrize("name", NAMES)
def test_model_file_records_encoder_convention_and_patch_size(name, tmp_path):
    model = _model(name).eval()
    path = tmp_path / "model.safetensors"
    # the factory arguments a run records: the pretrained file is gone by the time the model is read
    save_model(path, model, name=name, num_classes=4,
               kwargs={"init": name[:6], "weights_path": str(tmp_path / "gone.pth"), "strict_weights": True})
    loaded, meta = load_model(path)
    arch = meta["architecture"]
    assert arch["encoder"] == model.arch and arch["patch_size"] == model.patch_size and len(arch["blocks"]) == 4
    assert meta["input_convention"]["mean"] == [0.485, 0.456, 0.406]
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("name", NAMES)
def test_attention_is_torch_scaled_dot_product_attention(name, monkeypatch):
    """timm's fused attention: no attention matrix of our own, memory-efficient kernels on GPUs."""
    model = _model(name).eval()
    assert all(block.attn.fused_attn for block in model.encoder.blocks)
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    assert len(calls) == len(model.encoder.blocks)
