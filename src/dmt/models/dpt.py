"""Foundation encoders for segmentation: a DINOv2 or DINOv3 vision transformer with a DPT head.

``InputNormalization -> pad to a multiple of the patch size -> timm encoder (four blocks, normed)
-> DPT head -> logits upsampled to the padded size -> cropped to the input size``.

This is the network of today's strongest semi-supervised segmentation results (UniMatch-V2:
DINOv2 + DPT), fine-tuned with a small learning rate on the encoder and a larger one on the head:
:meth:`DPTSegmenter.param_groups` names the two groups (``encoder``, ``head``) that the
optimizer's ``lr_mult`` and ``group_weight_decay`` address.

* Any input size: sides that are not multiples of the patch size are padded (bottom and right,
  with zeros after normalisation, i.e. the encoder's mean colour) and the logits cropped back,
  so whole-image evaluation, sliding windows, labelling and ``dmt predict`` take any image.
* ``init="dinov2"`` / ``"dinov3"`` fills the encoder from a local file (Meta's ``.pth`` or timm's
  safetensors, :mod:`dmt.models.backbones.vit`), or from ``weights_path="hub"``: timm's
  ``model.safetensors`` of the encoder (``WEIGHT_SOURCES[arch].timm_hub``) through the Hugging Face
  cache (:mod:`dmt.models.backbones.hub`); the head starts from PyTorch's initialisation.
* ``set_grad_checkpointing`` recomputes each encoder block in the backward pass (timm's own
  activation checkpointing): less memory, about a third more compute.
* Attention is timm's fused ``scaled_dot_product_attention``; bf16 autocast comes from the engine.
* ``--smoke`` trains each real-size model as its tiny stand-in of the same code (``*_tiny_dpt``):
  the pre-flight still loads the user's weights file into the real architecture.

State-dict names: ``encoder.<timm name>``, ``head.*``.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from dmt.errors import UserError
from dmt.models.backbones.hub import HFHubFile
from dmt.models.backbones.vit import (
    WEIGHT_SOURCES,
    build_encoder,
    encoder_convention,
    intermediate_features,
    load_encoder_weights,
    patch_size,
)
from dmt.models.backbones.weights import find_weights
from dmt.models.conventions import InputNormalization
from dmt.models.heads.dpt import DPT_WIDTHS, DPTHead, DPTWidths
from dmt.models.registry import register

# the four blocks the head reads: Depth-Anything / UniMatch-V2's choice per depth
BLOCKS_12 = (2, 5, 8, 11)
BLOCKS_24 = (4, 11, 17, 23)
BLOCKS_TINY = (0, 1, 2, 3)
# tiny encoders for tests and smoke runs: the real architectures, 32-d tokens, 4 blocks
TINY = {"embed_dim": 32, "depth": 4, "num_heads": 2}


class DPTSegmenter(nn.Module):
    """Input normalisation, a timm ViT encoder, and a :class:`DPTHead`.

    Args:
        encoder: from :func:`~dmt.models.backbones.vit.build_encoder`.
        arch: its timm architecture name (recorded in model files).
        blocks: the four encoder blocks the head reads (0-based).
        widths: the head's channels.
        num_classes: output logits per pixel.
    """

    def __init__(self, encoder: nn.Module, arch: str, blocks: tuple[int, ...], widths: DPTWidths,
                 num_classes: int) -> None:
        super().__init__()
        self.input_convention = encoder_convention(encoder)
        self.normalize = InputNormalization(self.input_convention)
        self.encoder = encoder
        self.head = DPTHead(encoder.embed_dim, num_classes, widths)
        self.arch, self.blocks, self.patch_size = arch, tuple(blocks), patch_size(encoder)

    def forward(self, x: Tensor) -> Tensor:
        """Map RGB images in [0, 1] (``N x 3 x H x W``, any size) to logits ``N x C x H x W``."""
        h, w = x.shape[-2:]
        x = self.normalize(x)
        pad_h, pad_w = -h % self.patch_size, -w % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        logits = self.head(intermediate_features(self.encoder, x, self.blocks))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return logits[..., :h, :w]

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """The optimizer's named groups: the pretrained ``encoder`` and the new ``head``."""
        return {"encoder": list(self.encoder.parameters()), "head": list(self.head.parameters())}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each encoder block in backward instead of keeping its activations."""
        self.encoder.set_grad_checkpointing(enable)

    def describe(self) -> dict:
        """What a model file records besides the weights: the encoder, its patch size and blocks."""
        return {"encoder": self.arch, "patch_size": self.patch_size, "blocks": list(self.blocks)}


def _dpt(arch: str, family: str, blocks: tuple[int, ...], widths: str, num_classes: int, init: str,
         weights_path: str | Path | None, strict_weights: bool, **overrides) -> DPTSegmenter:
    inits = ("none", family)
    if init not in inits:
        raise UserError(f"model option init: expected one of {', '.join(inits)}, got {init!r}")
    path = None
    if init != "none":  # find the file before building the network, so a missing file fails fast
        source = WEIGHT_SOURCES.get(arch)
        how = (f"pass weights_path=FILE: Meta's {source.meta} or timm's model.safetensors from {source.timm_hub} "
               "(weights_path=hub fetches that one)" if source is not None else "pass weights_path=FILE")
        hub = HFHubFile(source.timm_hub) if source is not None else None
        path = find_weights(init, weights_path, None, how, strict_weights, hub=hub)
    model = DPTSegmenter(build_encoder(arch, **overrides), arch, blocks, DPT_WIDTHS[widths], num_classes)
    if path is not None:
        load_encoder_weights(model.encoder, path, arch)
    return model


# Every factory takes the same arguments:
#   num_classes: output logits per pixel;
#   init: "none" (random) or the encoder's family, "dinov2" / "dinov3" (the encoder from weights_path);
#   weights_path: the encoder's weights file (Meta's .pth or timm's safetensors), or "hub": timm's file
#         on the Hugging Face hub, from its cache or downloaded into it (never with HF_HUB_OFFLINE);
#   strict_weights: a missing file is an error (True) or a warning and random init (False).
# and raises UserError for a bad init, a missing (strict_weights) or unfitting weights file.
@register(task="segmentation", smoke="dinov2_tiny_dpt")
def dinov2_vits14_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                      strict_weights: bool = True) -> DPTSegmenter:
    """DINOv2 ViT-S/14 (22 M encoder parameters) with a DPT head; ``init``: none | dinov2."""
    return _dpt("vit_small_patch14_dinov2", "dinov2", BLOCKS_12, "small", num_classes,
                init, weights_path, strict_weights)


@register(task="segmentation", smoke="dinov2_tiny_dpt")
def dinov2_vitb14_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                      strict_weights: bool = True) -> DPTSegmenter:
    """DINOv2 ViT-B/14 (86 M encoder parameters) with a DPT head; ``init``: none | dinov2."""
    return _dpt("vit_base_patch14_dinov2", "dinov2", BLOCKS_12, "base", num_classes,
                init, weights_path, strict_weights)


@register(task="segmentation", smoke="dinov2_tiny_dpt")
def dinov2_vitl14_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                      strict_weights: bool = True) -> DPTSegmenter:
    """DINOv2 ViT-L/14 (304 M encoder parameters) with a DPT head; ``init``: none | dinov2."""
    return _dpt("vit_large_patch14_dinov2", "dinov2", BLOCKS_24, "large", num_classes,
                init, weights_path, strict_weights)


@register(task="segmentation", smoke="dinov3_tiny_dpt")
def dinov3_vits16_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                      strict_weights: bool = True) -> DPTSegmenter:
    """DINOv3 ViT-S/16 (22 M encoder parameters, RoPE, 4 registers) with a DPT head; ``init``: none | dinov3."""
    return _dpt("vit_small_patch16_dinov3", "dinov3", BLOCKS_12, "small", num_classes,
                init, weights_path, strict_weights)


@register(task="segmentation", smoke="dinov3_tiny_dpt")
def dinov3_vitb16_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                      strict_weights: bool = True) -> DPTSegmenter:
    """DINOv3 ViT-B/16 (86 M encoder parameters, RoPE, 4 registers) with a DPT head; ``init``: none | dinov3."""
    return _dpt("vit_base_patch16_dinov3", "dinov3", BLOCKS_12, "base", num_classes,
                init, weights_path, strict_weights)


@register(task="segmentation", smoke="dinov3_tiny_dpt")
def dinov3_vitl16_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                      strict_weights: bool = True) -> DPTSegmenter:
    """DINOv3 ViT-L/16 (303 M encoder parameters, RoPE, 4 registers) with a DPT head; ``init``: none | dinov3."""
    return _dpt("vit_large_patch16_dinov3", "dinov3", BLOCKS_24, "large", num_classes,
                init, weights_path, strict_weights)


@register(task="segmentation")
def dinov2_tiny_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                    strict_weights: bool = True) -> DPTSegmenter:
    """The DINOv2 architecture shrunk for tests and smoke runs (ViT/14, 32-d tokens, 4 blocks, 8..32-channel head)."""
    return _dpt("vit_small_patch14_dinov2", "dinov2", BLOCKS_TINY, "tiny", num_classes,
                init, weights_path, strict_weights, img_size=70, **TINY)


@register(task="segmentation")
def dinov3_tiny_dpt(num_classes: int, init: str = "none", weights_path: str | Path | None = None,
                    strict_weights: bool = True) -> DPTSegmenter:
    """The DINOv3 architecture shrunk for tests and smoke runs (ViT/16, 32-d tokens, 4 blocks, 8..32-channel head)."""
    return _dpt("vit_small_patch16_dinov3", "dinov3", BLOCKS_TINY, "tiny", num_classes,
                init, weights_path, strict_weights, img_size=64, **TINY)
