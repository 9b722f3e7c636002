"""DINOv2 and DINOv3 vision transformers from timm, and the local weight files they start from.

timm builds the encoders (``vit_{small,base,large}_patch14_dinov2``: :class:`timm.models.VisionTransformer`;
``vit_{small,base,large}_patch16_dinov3``: :class:`timm.models.eva.Eva` with RoPE and four register
tokens), always with ``pretrained=False`` and ``dynamic_img_size=True`` (any grid of patches), and
converts Meta's own files with its ``checkpoint_filter_fn``. We only read the file, safely:

* Meta's ``dinov2_vit{s,b,l}14_pretrain.pth`` and DINOv3 ``dinov3_vit{s,b,l}16_pretrain_lvd1689m-*.pth``,
  or timm's ``model.safetensors`` of the same architectures (the Hugging Face hub's ``timm/...``);
* read by :func:`~dmt.models.backbones.weights.read_state_dict` (safetensors, or ``torch.load`` with
  ``weights_only=True``: timm's own file loader may unpickle), passed through the architecture's
  ``checkpoint_filter_fn``, then loaded with ``strict=True``: every encoder tensor is filled and
  nothing is left over, or the file is refused in one line naming it and the first keys at fault.

Two things the filter would do silently are refused instead: resampling a patch embedding or a
position embedding of another size (a file of another patch size or grid), and dropping Meta's
DINOv3 ``qkv.bias`` for a model without one when the bias is not zero (timm's ``_qkvb`` variants
exist for that; timm notes the distilled files carry zeros there, which are dropped as timm does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from dmt.errors import UserError
from dmt.models.backbones.weights import key_preview, key_problems, read_state_dict
from dmt.models.conventions import InputConvention

# timm resamples these when their size differs from the model's; a file that needs it is another model
_RESAMPLED_BY_FILTER = ("patch_embed.proj.weight", "pos_embed")


@dataclass(frozen=True)
class WeightSource:
    """Where the user downloads an encoder's weights (said in error messages and the docs)."""

    meta: str  # Meta's release
    timm_hub: str  # timm's safetensors on the Hugging Face hub


DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{0}14/dinov2_vit{0}14_pretrain.pth"
WEIGHT_SOURCES = {
    "vit_small_patch14_dinov2": WeightSource(DINOV2_URL.format("s"), "timm/vit_small_patch14_dinov2.lvd142m"),
    "vit_base_patch14_dinov2": WeightSource(DINOV2_URL.format("b"), "timm/vit_base_patch14_dinov2.lvd142m"),
    "vit_large_patch14_dinov2": WeightSource(DINOV2_URL.format("l"), "timm/vit_large_patch14_dinov2.lvd142m"),
    # DINOv3 files are licence-gated: Meta mails a download link after the request form
    "vit_small_patch16_dinov3": WeightSource("dinov3_vits16_pretrain_lvd1689m-*.pth (Meta's DINOv3 release)",
                                             "timm/vit_small_patch16_dinov3.lvd1689m"),
    "vit_base_patch16_dinov3": WeightSource("dinov3_vitb16_pretrain_lvd1689m-*.pth (Meta's DINOv3 release)",
                                            "timm/vit_base_patch16_dinov3.lvd1689m"),
    "vit_large_patch16_dinov3": WeightSource("dinov3_vitl16_pretrain_lvd1689m-*.pth (Meta's DINOv3 release)",
                                             "timm/vit_large_patch16_dinov3.lvd1689m"),
}


def build_encoder(arch: str, **overrides) -> nn.Module:
    """A timm DINOv2 / DINOv3 encoder without classifier, random weights, for any image size.

    Args:
        arch: a timm architecture name (``vit_base_patch14_dinov2``, ``vit_base_patch16_dinov3`` ...).
        overrides: timm keyword arguments; tests shrink the network (``embed_dim``, ``depth``,
            ``num_heads``, ``img_size``).
    """
    import timm  # here, not at the top: every dmt command imports the models, few build a ViT

    return timm.create_model(arch, pretrained=False, num_classes=0, dynamic_img_size=True, **overrides)


def patch_size(encoder: nn.Module) -> int:
    """The side of the encoder's square patches (14 for DINOv2, 16 for DINOv3)."""
    size = encoder.patch_embed.patch_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def encoder_convention(encoder: nn.Module) -> InputConvention:
    """The input convention the encoder's pretraining used (timm's ``pretrained_cfg``: ImageNet mean/std)."""
    cfg = encoder.pretrained_cfg
    return InputConvention("RGB", 1.0, tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"]))


def intermediate_features(encoder: nn.Module, x: Tensor, blocks: tuple[int, ...]) -> list[Tensor]:
    """The outputs of ``blocks``, each through the encoder's final norm, as ``N x D x h x w`` patch grids.

    Prefix tokens (class, registers) are dropped; ``x``'s sides must be multiples of the patch size.
    Honours the encoder's activation checkpointing (``set_grad_checkpointing``).
    """
    return encoder.forward_intermediates(x, indices=list(blocks), norm=True, output_fmt="NCHW",
                                         intermediates_only=True)


def _checkpoint_filter(encoder: nn.Module):
    """timm's conversion of Meta's (and its own) files for the encoder's architecture."""
    from timm.models import eva, vision_transformer

    if isinstance(encoder, eva.Eva):
        return eva.checkpoint_filter_fn
    if isinstance(encoder, vision_transformer.VisionTransformer):
        return vision_transformer.checkpoint_filter_fn
    raise TypeError(f"no weight conversion for {type(encoder).__name__}")


def _unused_qkv_biases(state: dict[str, Tensor], own: dict[str, Tensor]) -> tuple[list[str], list[str]]:
    """Meta's DINOv3 ``blocks.N.attn.qkv.bias`` for a model without q/v biases: (zero ones, non-zero ones)."""
    zero, nonzero = [], []
    for k, v in state.items():
        if k.endswith("attn.qkv.bias") and k.replace("qkv.bias", "q_bias") not in own and k not in own:
            q, _, val = v.chunk(3, dim=-1)  # DINOv3 masks the k part; only q and v would act
            (zero if not (q.any() or val.any()) else nonzero).append(k)
    return zero, nonzero


def load_encoder_weights(encoder: nn.Module, path: str | Path, arch: str) -> None:
    """Fill every tensor of ``encoder`` from a local Meta or timm file, through timm's conversion.

    Args:
        encoder: built by :func:`build_encoder`.
        path: the weights file (``.pth`` or ``.safetensors``).
        arch: the timm architecture name, for messages.

    Raises:
        UserError: one line naming the file and the first missing / unexpected / other-shape keys,
            or why the file cannot be read.
    """
    path = Path(path)
    state = read_state_dict(path, f"{arch} weights")
    own = encoder.state_dict()
    refuse = f"{path}: weights do not fit {arch}"
    reshaped = [k for k in _RESAMPLED_BY_FILTER if k in state and k in own and state[k].shape != own[k].shape]
    if reshaped:
        shapes = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in reshaped)
        raise UserError(f"{refuse} (other shape: {shapes})")
    zero, nonzero = _unused_qkv_biases(state, own) if "storage_tokens" in state else ([], [])
    if nonzero:
        raise UserError(f"{refuse} (unexpected: non-zero {key_preview(nonzero)}; this encoder has no qkv bias)")
    state = {k: v for k, v in state.items() if k not in zero}
    try:
        converted = _checkpoint_filter(encoder)(state, encoder)
    except Exception as e:  # noqa: BLE001 - a foreign file can break timm's conversion anywhere
        raise UserError(f"{refuse}: timm's conversion failed ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    problems = key_problems(converted, own, list(own))
    if problems:
        raise UserError(f"{refuse} ({'; '.join(problems)})")
    with torch.no_grad():
        encoder.load_state_dict(converted, strict=True)
