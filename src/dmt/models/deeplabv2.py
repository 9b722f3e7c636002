"""DeepLab-v2 (Chen et al., 2017) with a dilated ResNet body, as DMT uses it for segmentation.

The network is ``InputNormalization -> ResNet body (output stride 8) -> ASPPv2`` and returns
logits at 1/8 of the input resolution (``(H - 1) // 8 + 1``); the trainer upsamples them.

Fidelity notes (we follow DMT's PyTorch implementation where it differs from caffe DeepLab):

* The body is torchvision's ResNet (V1.5: stride in the 3x3 conv) with the strides of
  ``layer3``/``layer4`` replaced by dilation 2/4. As in torchvision, the *first* block of a
  dilated stage keeps the previous dilation (1 in ``layer3``, 2 in ``layer4``); caffe
  DeepLab dilates every block of the stage. The max-pool uses floor rounding (caffe: ceil);
  both give 41x41 logits for the usual 321x321 crops.
* ASPP branch convolutions keep PyTorch's default initialisation (caffe DeepLab: N(0, 0.01)).
* ``aspp_legacy=True`` reproduces a bug of the original ASPP: see :class:`ASPPv2`.

State-dict names are ``backbone.<torchvision ResNet name>`` and ``classifier.convs.<i>.*``,
so torchvision's ImageNet weights load after dropping ``fc.*`` and adding a prefix.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import ResNet101_Weights, resnet101
from torchvision.models.resnet import Bottleneck, ResNet

from dmt.errors import UserError
from dmt.models.conventions import COCO_CAFFE, IMAGENET, InputConvention, InputNormalization
from dmt.models.registry import register

#: ``metadata["format"]`` of the safetensors files written by ``dmt convert-coco``.
COCO_WEIGHTS_FORMAT = "dmt-deeplabv2-backbone"
IMAGENET_WEIGHTS = ResNet101_Weights.IMAGENET1K_V1
INITS = ("none", "imagenet", "coco")


class ASPPv2(nn.Module):
    """DeepLab-v2 atrous spatial pyramid pooling: parallel dilated 3x3 convs whose logits are summed.

    Each branch maps ``in_channels`` straight to ``num_classes`` (with bias), dilation = padding
    = rate, so the output keeps the input's spatial size.

    The original PyTorch port (AdvSemiSeg, inherited by DMT) returns from inside its summation
    loop after adding the *second* branch, so only rates 6 and 12 ever contribute; the 18 and 24
    convolutions are dead parameters that still appear in checkpoints. ``legacy=True`` reproduces
    exactly that (all four convs exist, so checkpoints load both ways); the default sums all.

    Args:
        in_channels: channels of the backbone features (2048 for ResNet-101).
        num_classes: output logits per pixel.
        rates: dilation rates of the branches.
        legacy: sum only the first two branches, like the original implementation.
    """

    def __init__(
        self, in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24), legacy: bool = False
    ) -> None:
        super().__init__()
        if legacy and len(rates) < 2:
            raise ValueError("legacy ASPP needs at least two rates")
        self.rates = tuple(rates)
        self.legacy = legacy
        # the legacy branches 3-4 never reach the output: DDP must be told (find_unused_parameters)
        self.has_dead_parameters = legacy
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r, bias=True) for r in self.rates
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = self.convs[:2] if self.legacy else self.convs
        out = branches[0](x)
        for conv in branches[1:]:
            out = out + conv(x)
        return out


class DeepLabV2(nn.Module):
    """Input normalisation, a feature body of output stride 8, and an :class:`ASPPv2` head.

    Args:
        body: maps the normalised image to ``N x body_channels x H/8 x W/8`` features.
        body_channels: channels of the body's output.
        num_classes: output logits per pixel.
        convention: the input convention the body's weights expect.
        aspp_legacy: see :class:`ASPPv2`.
    """

    output_stride = 8

    def __init__(
        self,
        body: nn.Module,
        body_channels: int,
        num_classes: int,
        convention: InputConvention = IMAGENET,
        aspp_legacy: bool = False,
    ) -> None:
        super().__init__()
        self.input_convention = convention
        self.normalize = InputNormalization(convention)
        self.backbone = body
        self.classifier = ASPPv2(body_channels, num_classes, legacy=aspp_legacy)

    def forward(self, x: Tensor) -> Tensor:
        """Map RGB images in [0, 1] (``N x 3 x H x W``) to logits ``N x C x ((H-1)//8+1) x ((W-1)//8+1)``."""
        return self.classifier(self.backbone(self.normalize(x)))


def resnet_body(resnet: ResNet) -> nn.Sequential:
    """The convolutional part of a torchvision ResNet (``avgpool`` and ``fc`` dropped), names kept."""
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    return nn.Sequential(OrderedDict((n, getattr(resnet, n)) for n in names))


class _SlimBottleneck(Bottleneck):
    # torchvision's Bottleneck unchanged except expansion 4 -> 1: stage outputs shrink from
    # 256..2048 to 64..512 channels, keeping the block code and the dilation logic identical.
    expansion = 1


def _dilated_resnet101() -> nn.Sequential:
    return resnet_body(resnet101(weights=None, replace_stride_with_dilation=[False, True, True]))


def _dilated_tiny(width: int) -> nn.Sequential:
    return resnet_body(
        ResNet(_SlimBottleneck, [1, 1, 2, 2], width_per_group=width, replace_stride_with_dilation=[False, True, True])
    )


# ---------------------------------------------------------------------------------------------
# Weight files
# ---------------------------------------------------------------------------------------------


def imagenet_cache_path() -> Path:
    """Where torchvision keeps the ResNet-101 ImageNet weights once downloaded (never fetched here)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(IMAGENET_WEIGHTS.url).path).name


def read_torch_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """Read a ``.pth`` state dict with ``torch.load(weights_only=True)``: tensors only, no code.

    Args:
        path: the file.
        what: what the file should hold, for error messages.

    Raises:
        UserError: the file holds other Python objects (refused, nothing executed), cannot be
            read, or is not a mapping of names to tensors.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt or hostile files
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise UserError(
                f"{path}: refused to load {what}: the file holds Python objects, not only tensors "
                f"(it references {found.group(1)})"
            ) from None
        if "Weights only load failed" in str(e) or "WeightsUnpickler" in str(e):
            # never pass on torch's advice to retry with weights_only=False: that runs the file's code
            detail = str(e).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
            reason = detail[0].strip() if detail and "weights_only" not in detail[0] else "not plain tensors"
            raise UserError(f"{path}: cannot read {what}: the safe loader refused it ({reason}); "
                            "nothing in it was executed") from None
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: cannot read {what} as a PyTorch checkpoint ({first_line})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):  # some copies wrap it
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise UserError(f"{path}: expected {what} as a state dict (names -> tensors), got {type(obj).__name__}")
    return dict(obj)


def _preview(keys: Sequence[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def backbone_key_problems(state: dict[str, Tensor], own: dict[str, Tensor], backbone_only: bool = True) -> list[str]:
    """What keeps ``state`` from filling every backbone tensor of a model whose state dict is ``own``.

    Every ``backbone.*`` tensor (counters aside) must be present with its shape; keys ``own`` does
    not have are unexpected. With ``backbone_only`` the head (``classifier.*``) is not checked.

    Returns:
        One ``"label: keys"`` entry per kind of problem; empty when the weights fit.
    """
    required = [k for k in own if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    checked = [k for k in state if k.startswith("backbone.") or not backbone_only]
    missing = [k for k in required if k not in state]
    unexpected = [k for k in checked if k not in own]
    reshaped = [k for k in checked if k in own and state[k].shape != own[k].shape]
    return [f"{label}: {_preview(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped)) if keys]


def load_backbone_state(model: DeepLabV2, state: dict[str, Tensor], source: str) -> bool:
    """Copy ``backbone.*`` tensors (all required) and ``classifier.*`` (if they fit) into ``model``.

    ``num_batches_tracked`` counters may be absent (caffe-converted weights have none). The
    head is loaded only when every ASPP tensor is present with this model's shape, which is how
    the COCO head (21 classes) is kept for PASCAL VOC, as in DMT, and dropped otherwise.

    Args:
        model: the network to fill.
        state: tensors named like ``model.state_dict()``.
        source: the file the tensors came from, for error messages.

    Returns:
        Whether the ASPP head was loaded too.

    Raises:
        UserError: backbone tensors are missing, unexpected or of another shape.
    """
    own = model.state_dict()
    problems = backbone_key_problems(state, own)
    if problems:
        raise UserError(f"{source}: weights do not fit this {type(model).__name__} backbone ({'; '.join(problems)})")
    new = {k: v for k, v in state.items() if k.startswith("backbone.")}
    head = [k for k in own if k.startswith("classifier.")]
    load_head = all(k in state and state[k].shape == own[k].shape for k in head)
    if load_head:
        new.update({k: state[k] for k in head})
    own.update(new)
    model.load_state_dict(own)
    return load_head


def load_imagenet_weights(model: DeepLabV2, path: str | Path) -> None:
    """Load a torchvision ResNet ImageNet state dict (``conv1.weight`` ... ``fc.bias``) into the body."""
    state = read_torch_state_dict(path, "ImageNet ResNet weights")
    load_backbone_state(model, {f"backbone.{k}": v for k, v in state.items() if not k.startswith("fc.")}, str(path))


def load_coco_weights(model: DeepLabV2, path: str | Path) -> bool:
    """Load a safetensors file written by ``dmt convert-coco``; returns whether the head was loaded."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            fmt = (f.metadata() or {}).get("format")
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise UserError(
            f"{path}: not a safetensors file ({e}); convert the COCO checkpoint first: dmt convert-coco SRC DST"
        ) from None
    if fmt != COCO_WEIGHTS_FORMAT:
        raise UserError(f"{path}: metadata format is {fmt!r}, expected {COCO_WEIGHTS_FORMAT!r} (dmt convert-coco)")
    return load_backbone_state(model, state, str(path))


def _find_weights(
    init: str, weights_path: str | Path | None, default: Path | None, how: str, strict: bool
) -> Path | None:
    """The weights file to read, or ``None`` (after a warning) when it is absent and not required."""
    path = Path(weights_path).expanduser() if weights_path is not None else default
    if path is not None and path.is_file():
        return path
    where = f"not found at {path}" if path is not None else "not given"
    message = f"model option weights_path: {init} weights {where}; {how}"
    if strict:
        raise UserError(message)
    # stacklevel 4: _find_weights <- _deeplabv2 <- the factory <- the code that asked for the model.
    warnings.warn(f"{message}; continuing with random initialisation (strict_weights=False)", stacklevel=4)
    return None


def _deeplabv2(
    make_body: Callable[[], nn.Module],
    body_channels: int,
    num_classes: int,
    init: str,
    weights_path: str | Path | None,
    strict_weights: bool,
    aspp_legacy: bool,
    imagenet_default: Path | None,
) -> DeepLabV2:
    if init not in INITS:
        raise UserError(f"model option init: expected one of {', '.join(INITS)}, got {init!r}")
    # Find the file before building the network, so a missing file fails fast.
    path = None
    if init == "imagenet":
        how = (
            f"download {IMAGENET_WEIGHTS.url} to {imagenet_default} or pass weights_path=FILE"
            if imagenet_default is not None
            else "no published ImageNet weights exist for this body: pass weights_path=FILE"
        )
        path = _find_weights(init, weights_path, imagenet_default, how, strict_weights)
    elif init == "coco":
        how = (
            "convert AdvSemiSeg's resnet101COCO-41f33a49.pth with `dmt convert-coco SRC DST`, "
            "then pass weights_path=DST"
        )
        path = _find_weights(init, weights_path, None, how, strict_weights)
    # Caffe-converted COCO weights want BGR 0-255 input; the convention follows the requested
    # init even when a smoke run falls back to random weights, so both runs share one pipeline.
    convention = COCO_CAFFE if init == "coco" else IMAGENET
    model = DeepLabV2(make_body(), body_channels, num_classes, convention, aspp_legacy=aspp_legacy)
    if path is not None:
        (load_imagenet_weights if init == "imagenet" else load_coco_weights)(model, path)
    return model


@register(task="segmentation")
def deeplabv2_resnet101(
    num_classes: int,
    init: str = "none",
    weights_path: str | Path | None = None,
    strict_weights: bool = True,
    aspp_legacy: bool = False,
) -> DeepLabV2:
    """DeepLab-v2 with a dilated ResNet-101 (output stride 8), the model of DMT's segmentation runs.

    Args:
        num_classes: output logits per pixel.
        init: ``"none"`` (random), ``"imagenet"`` (torchvision ResNet-101 IMAGENET1K_V1, read from
            ``weights_path`` or torchvision's cache, never downloaded; ImageNet input convention)
            or ``"coco"`` (a file written by ``dmt convert-coco``; caffe BGR 0-255 convention).
        weights_path: the weights file; required for ``"coco"``.
        strict_weights: a missing file is an error (True) or a warning and random init (False).
        aspp_legacy: sum only the rate-6 and rate-12 ASPP branches, like the original code.

    Raises:
        UserError: bad ``init``, missing (with ``strict_weights``) or unreadable weights file.
    """
    return _deeplabv2(
        _dilated_resnet101, 2048, num_classes, init, weights_path, strict_weights, aspp_legacy, imagenet_cache_path()
    )


@register(task="segmentation")
def deeplabv2_tiny(
    num_classes: int,
    init: str = "none",
    weights_path: str | Path | None = None,
    strict_weights: bool = True,
    aspp_legacy: bool = False,
    width: int = 8,
) -> DeepLabV2:
    """The same DeepLab-v2 with a slim dilated ResNet body (about 0.5 M parameters), for tests and smoke runs.

    Built by torchvision's ResNet code with blocks ``[1, 1, 2, 2]`` and slim bottlenecks (512
    output channels), so stride, dilation and state-dict naming follow the ResNet-101 model.
    Arguments as for :func:`deeplabv2_resnet101`; ``init="imagenet"`` needs ``weights_path``.
    """
    if width < 1:
        raise UserError(f"model option width: expected a positive integer, got {width}")
    return _deeplabv2(
        lambda: _dilated_tiny(width), 512, num_classes, init, weights_path, strict_weights, aspp_legacy, None
    )
