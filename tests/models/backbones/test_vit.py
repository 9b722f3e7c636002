"""DINOv2 / DINOv3 encoder weights: Meta's and timm's formats load strictly and alike; bad files are one line.

The files are fabricated from tiny encoders of the real architectures, in the real formats: timm's
state dict as safetensors, and Meta's as a ``.pth`` (DINOv2: timm's names plus ``mask_token``;
DINOv3: ``storage_tokens``, ``ls1.gamma``, a zero ``qkv.bias`` with its mask, ``rope_embed.periods``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dmt.errors import UserError
from dmt.models import create_model

FAMILIES = {"dinov2": "dinov2_tiny_dpt", "dinov3": "dinov3_tiny_dpt"}


def _source(family: str, seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(FAMILIES[family], num_classes=3)


def meta_state(encoder: torch.nn.Module, family: str) -> dict[str, torch.Tensor]:
    """The encoder's tensors named as Meta's released checkpoints name them."""
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    dim = state["cls_token"].shape[-1]
    if family == "dinov2":
        return {**state, "mask_token": torch.zeros(1, dim)}
    out = {"mask_token": torch.zeros(1, dim), "rope_embed.periods": torch.arange(1.0, 5.0)}
    for k, v in state.items():
        k = k.replace("reg_token", "storage_tokens").replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma")
        out[k] = v
        if k.endswith("attn.qkv.weight"):  # the distilled S/B/L models ship zero biases and a k-bias mask
            out[k.replace("weight", "bias")] = torch.zeros(3 * dim)
            out[k.replace("weight", "bias_mask")] = torch.ones(3 * dim)
    return out


def write_meta(path: Path, encoder: torch.nn.Module, family: str) -> Path:
    torch.save(meta_state(encoder, family), path)
    return path


def write_timm(path: Path, encoder: torch.nn.Module) -> Path:
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(path))
    return path


def _load(family: str, path: Path) -> torch.nn.Module:
    torch.manual_seed(99)  # another random start: every encoder tensor must come from the file
    return create_model(FAMILIES[family], num_classes=3, init=family, weights_path=str(path)).eval()


@pytest.mark.parametrize("family", ["dinov2", "dinov3"])
def test_meta_and_timm_files_load_into_the_same_encoder(family, tmp_path):
    source = _source(family).eval()
    from_meta = _load(family, write_meta(tmp_path / "meta.pth", source.encoder, family))
    from_timm = _load(family, write_timm(tmp_path / "model.safetensors", source.encoder))
    for model in (from_meta, from_timm):
        for k, v in source.encoder.state_dict().items():
            assert torch.equal(model.encoder.state_dict()[k], v), k
    side = source.patch_size * 3
    x = torch.rand(2, 3, side, side)
    with torch.no_grad():
        a, b = from_meta.encoder(x), from_timm.encoder(x)
        assert torch.equal(a, b) and torch.equal(a, source.encoder(x))
        # both heads start from the same seed: the whole models agree, on an odd-sized image too
        assert torch.equal(from_meta(x[..., :45, :38]), from_timm(x[..., :45, :38]))


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def _other_encoder(family: str, **overrides) -> torch.nn.Module:
    from dmt.models.backbones.vit import build_encoder

    arch = "vit_small_patch14_dinov2" if family == "dinov2" else "vit_small_patch16_dinov3"
    size = {"img_size": 70} if family == "dinov2" else {"img_size": 64}
    return build_encoder(arch, **{"embed_dim": 32, "depth": 4, "num_heads": 2, **size, **overrides})


BAD = ["missing block", "extra tensor", "other width", "other patch size", "other family", "truncated safetensors",
       "truncated pth", "not a checkpoint", "pickled code", "non-zero qkv bias", "not a state dict"]


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("family", ["dinov2", "dinov3"])
def test_every_kind_of_bad_file_is_refused_in_one_line(family, kind, tmp_path):
    good = meta_state(_source(family).encoder, family)
    path = tmp_path / "weights.pth"
    says = {"missing block": "missing: blocks.3", "extra tensor": "unexpected: extra.weight",
            "other width": "other shape", "other patch size": "other shape: patch_embed.proj.weight",
            "other family": "do not fit", "truncated safetensors": "cannot read",
            "truncated pth": "cannot read", "not a checkpoint": "cannot read", "pickled code": "refused",
            "non-zero qkv bias": "qkv.bias", "not a state dict": "state dict"}[kind]
    if kind == "missing block":
        torch.save({k: v for k, v in good.items() if not k.startswith("blocks.3.")}, path)
    elif kind == "extra tensor":
        torch.save({**good, "extra.weight": torch.ones(2)}, path)
    elif kind == "other width":
        torch.save(meta_state(_other_encoder(family, embed_dim=48, num_heads=2), family), path)
    elif kind == "other patch size":
        torch.save(meta_state(_other_encoder(family, patch_size=8), family), path)
    elif kind == "other family":
        other = "dinov3" if family == "dinov2" else "dinov2"
        torch.save(meta_state(_source(other).encoder, other), path)
    elif kind == "truncated safetensors":
        path = write_timm(tmp_path / "model.safetensors", _source(family).encoder)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "truncated pth":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "not a checkpoint":
        path.write_bytes(b"<html>404 Not Found</html>")
    elif kind == "pickled code":
        class Evil:
            def __reduce__(self):
                return (print, ("pwned",))
        path.write_bytes(pickle.dumps({"cls_token": Evil()}))
    elif kind == "non-zero qkv bias":
        if family == "dinov2":
            pytest.skip("DINOv2 encoders have qkv biases: nothing is dropped")
        bad = dict(good)
        key = next(k for k in bad if k.endswith("attn.qkv.bias"))
        bad[key] = torch.ones_like(bad[key])
        torch.save(bad, path)
    elif kind == "not a state dict":
        torch.save([torch.zeros(1)], path)
    with pytest.raises(UserError) as exc:
        _load(family, path)
    assert says in _one_line(exc, path)


def test_a_missing_file_is_an_error_or_with_strict_weights_off_a_warning(tmp_path):
    missing = tmp_path / "dinov2_vitb14_pretrain.pth"
    with pytest.raises(UserError, match="dl.fbaipublicfiles.com/dinov2/dinov2_vitb14"):
        with torch.device("meta"):  # the file is looked for before the network is built
            create_model("dinov2_vitb14_dpt", num_classes=3, init="dinov2", weights_path=str(missing))
    with pytest.warns(UserWarning, match="random initialisation"):
        create_model("dinov3_tiny_dpt", num_classes=3, init="dinov3", weights_path=str(missing), strict_weights=False)
    with pytest.raises(UserError, match="init: expected one of none, dinov3"):
        create_model("dinov3_tiny_dpt", num_classes=3, init="dinov2")
