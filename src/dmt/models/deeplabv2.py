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

from pathlib import Path
from typing import Callable

from torch import Tensor, nn

from dmt.errors import UserError
from dmt.models.backbones.hub import URLFile
from dmt.models.backbones.resnet import (
    IMAGENET_WEIGHTS,
    coco_how,
    imagenet_cache_path,
    imagenet_how,
    load_coco_weights,
    load_imagenet_weights,
    resnet101_body,
    slim_resnet_body,
)
from dmt.models.backbones.weights import find_weights
from dmt.models.conventions import COCO_CAFFE, IMAGENET, InputConvention, InputNormalization
from dmt.models.heads.deeplab import ASPPv2
from dmt.models.registry import register

INITS = ("none", "imagenet", "coco")


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
    path, how = None, ""
    if init == "imagenet":
        how = imagenet_how(imagenet_default)
        hub = URLFile(IMAGENET_WEIGHTS.url) if imagenet_default is not None else None  # torch.hub's cache
        path = find_weights(init, weights_path, imagenet_default, how, strict_weights, hub=hub)
    elif init == "coco":
        how = coco_how()
        path = find_weights(init, weights_path, None, how, strict_weights)  # no published file: hub is as missing
    # Caffe-converted COCO weights want BGR 0-255 input; the convention follows the requested
    # init even when a smoke run falls back to random weights, so both runs share one pipeline.
    convention = COCO_CAFFE if init == "coco" else IMAGENET
    model = DeepLabV2(make_body(), body_channels, num_classes, convention, aspp_legacy=aspp_legacy)
    if path is not None:
        try:
            (load_imagenet_weights if init == "imagenet" else load_coco_weights)(model, path)
        except UserError as e:  # an unreadable or unfitting file: say where the right one comes from
            raise UserError(f"{e}; {how}") from None
    return model


@register(task="segmentation", smoke="deeplabv2_tiny")
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
            ``weights_path`` or torchvision's cache; ImageNet input convention)
            or ``"coco"`` (a file written by ``dmt convert-coco``; caffe BGR 0-255 convention).
        weights_path: the weights file; required for ``"coco"``. ``"hub"`` (imagenet only): torchvision's
            file from torch.hub's cache, downloaded into it when absent and online.
        strict_weights: a missing file is an error (True) or a warning and random init (False).
        aspp_legacy: sum only the rate-6 and rate-12 ASPP branches, like the original code.

    ``--smoke`` trains :func:`deeplabv2_tiny` in its place, from random weights (171 MB model files
    at every stage are what made the smoke heavy); its pre-flight still loads the weights file here.

    Raises:
        UserError: bad ``init``, missing (with ``strict_weights``) or unreadable weights file.
    """
    return _deeplabv2(
        lambda: resnet101_body(8), 2048, num_classes, init, weights_path, strict_weights, aspp_legacy, imagenet_cache_path()
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
        lambda: slim_resnet_body(width, 8), 512, num_classes, init, weights_path, strict_weights, aspp_legacy, None
    )
