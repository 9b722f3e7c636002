"""DeepLab-v3+ (Chen et al., 2018) with a dilated ResNet-101: the model of the field's common benchmark.

Current semi-supervised segmentation work (UniMatch, U2PL, CorrMatch, AugSeg ...) reports on
PASCAL VOC 2012 and Cityscapes with this network, so DMT needs it to be compared with them.

``InputNormalization -> ResNet body -> ASPP (1x1, three dilated 3x3, image pooling) on the last
stage, decoder (48-channel projection of layer1 + ASPP features, two 3x3 convs) -> 1x1 classifier``.
Logits come out at the decoder's resolution, 1/4 of the input (``(H - 1) // 4 + 1``); the
pipeline upsamples them, bilinear with aligned corners, as it does DeepLab-v2's.

* Output stride 16 (``layer4`` dilated) with ASPP rates 6/12/18, or 8 (``layer3`` too) with the
  rates doubled to 12/24/36. ``eval_output_stride=8`` trains at 16 and predicts at 8: the same
  weights, only strides and dilations change when the model is put in ``eval()`` mode. The
  geometry of either stride is taken from torchvision's own ``replace_stride_with_dilation``, so
  it is exactly the network torchvision would build.
* The body is torchvision's ResNet-101 (V1.5, plain 7x7 stem; some papers use a deep-stem
  variant), so ``init="imagenet"`` reads torchvision's IMAGENET1K_V1 file: every body tensor must
  be filled, ``fc`` is dropped, ASPP, decoder and classifier keep their random initialisation.
* No dropout in the head (as in UniMatch's implementation).

State-dict names: ``backbone.<torchvision ResNet name>``, ``aspp.*``, ``decoder.*``, ``classifier.*``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from dmt.errors import UserError
from dmt.models.backbones.hub import URLFile
from dmt.models.backbones.resnet import (
    IMAGENET_WEIGHTS,
    dilation_plan,
    imagenet_cache_path,
    imagenet_how,
    load_imagenet_weights,
    resnet101_body,
    slim_resnet_body,
)
from dmt.models.backbones.weights import find_weights
from dmt.models.conventions import IMAGENET, InputConvention, InputNormalization
from dmt.models.heads.deeplab import ASPP, SKIP_CHANNELS, Decoder, aspp_rates
from dmt.models.registry import register

INITS = ("none", "imagenet")

BodyFactory = Callable[[int], nn.Sequential]


def _conv_geometry(body: nn.Module) -> dict[str, tuple[tuple[int, ...], ...]]:
    """``name -> (stride, padding, dilation)`` of every convolution of a body."""
    return {n: (m.stride, m.padding, m.dilation) for n, m in body.named_modules() if isinstance(m, nn.Conv2d)}


class DeepLabV3Plus(nn.Module):
    """Input normalisation, a ResNet body, :class:`ASPP`, :class:`Decoder` and a 1x1 classifier.

    Args:
        make_body: ``output_stride -> ResNet body`` (torchvision names ``conv1 .. layer4``).
        low_channels: channels of the body's ``layer1``.
        high_channels: channels of the body's ``layer4``.
        num_classes: output logits per pixel.
        output_stride: 16 or 8, used in training.
        eval_output_stride: 16 or 8, used in ``eval()`` mode (None: the training one).
        aspp_channels: channels of the ASPP branches and output.
        decoder_channels: channels of the decoder convs.
        skip_channels: channels of the projection of ``layer1``.
        convention: the input convention the body's weights expect.
    """

    def __init__(self, make_body: BodyFactory, low_channels: int, high_channels: int, num_classes: int,
                 output_stride: int = 16, eval_output_stride: int | None = None, aspp_channels: int = 256,
                 decoder_channels: int = 256, skip_channels: int = SKIP_CHANNELS,
                 convention: InputConvention = IMAGENET) -> None:
        super().__init__()
        eval_output_stride = eval_output_stride or output_stride
        for stride in (output_stride, eval_output_stride):
            dilation_plan(stride)  # refuses anything but 8 and 16
        self.input_convention = convention
        self.normalize = InputNormalization(convention)
        self.backbone = make_body(output_stride)
        self.aspp = ASPP(high_channels, aspp_channels, aspp_rates(output_stride))
        self.decoder = Decoder(low_channels, aspp_channels, decoder_channels, skip_channels)
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)
        self.train_output_stride, self.eval_output_stride = output_stride, eval_output_stride
        self._geometry = {output_stride: _conv_geometry(self.backbone)}
        if eval_output_stride != output_stride:
            with torch.device("meta"):  # only the strides and dilations torchvision would choose
                self._geometry[eval_output_stride] = _conv_geometry(make_body(eval_output_stride))
        self.output_stride = output_stride

    def set_output_stride(self, output_stride: int) -> None:
        """Re-dilate the body and the ASPP for output stride 8 or 16 (one of the two built for)."""
        if output_stride not in self._geometry:
            raise ValueError(f"built for output strides {sorted(self._geometry)}, not {output_stride}")
        convs = dict(self.backbone.named_modules())
        for name, (stride, padding, dilation) in self._geometry[output_stride].items():
            conv = convs[name]
            conv.stride, conv.padding, conv.dilation = stride, padding, dilation
        self.aspp.set_rates(aspp_rates(output_stride))
        self.output_stride = output_stride

    def train(self, mode: bool = True) -> "DeepLabV3Plus":
        """Set the mode, and with it the output stride (``eval_output_stride`` in eval mode)."""
        super().train(mode)
        wanted = self.train_output_stride if mode else self.eval_output_stride
        if wanted != self.output_stride:
            self.set_output_stride(wanted)
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Map RGB images in [0, 1] (``N x 3 x H x W``) to logits ``N x C x ((H-1)//4+1) x ((W-1)//4+1)``."""
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(self.normalize(x)))))
        low = b.layer1(x)
        high = b.layer4(b.layer3(b.layer2(low)))
        return self.classifier(self.decoder(low, self.aspp(high)))


def _tiny_body(width: int) -> BodyFactory:
    return lambda output_stride: slim_resnet_body(width, output_stride)


def _deeplabv3plus(make_body: BodyFactory, channels: tuple[int, int, int, int, int], num_classes: int, init: str,
                   weights_path: str | Path | None, strict_weights: bool, output_stride: int,
                   eval_output_stride: int | None, imagenet_default: Path | None) -> DeepLabV3Plus:
    if init not in INITS:
        raise UserError(f"model option init: expected one of {', '.join(INITS)}, got {init!r}"
                        + (" (no COCO-pretrained DeepLab-v3+ is published)" if init == "coco" else ""))
    path = None
    if init == "imagenet":  # find the file before building the network, so a missing file fails fast
        how = imagenet_how(imagenet_default)
        hub = URLFile(IMAGENET_WEIGHTS.url) if imagenet_default is not None else None  # torch.hub's cache
        path = find_weights(init, weights_path, imagenet_default, how, strict_weights, hub=hub)
    low, high, aspp, decoder, skip = channels
    model = DeepLabV3Plus(make_body, low, high, num_classes, output_stride, eval_output_stride, aspp, decoder, skip)
    if path is not None:
        try:
            load_imagenet_weights(model, path)
        except UserError as e:  # an unreadable or unfitting file: say where the right one comes from
            raise UserError(f"{e}; {how}") from None
    return model


@register(task="segmentation", smoke="deeplabv3plus_tiny")
def deeplabv3plus_resnet101(
    num_classes: int,
    init: str = "none",
    weights_path: str | Path | None = None,
    strict_weights: bool = True,
    output_stride: int = 16,
    eval_output_stride: int | None = None,
) -> DeepLabV3Plus:
    """DeepLab-v3+ with a dilated ResNet-101 (about 59.3 M parameters for 21 classes).

    Args:
        num_classes: output logits per pixel.
        init: ``"none"`` (random) or ``"imagenet"`` (torchvision ResNet-101 IMAGENET1K_V1 in the body,
            read from ``weights_path`` or torchvision's cache).
        weights_path: the ImageNet weights file (default: torchvision's cache; ``"hub"``: downloaded
            into that cache when absent and online).
        strict_weights: a missing file is an error (True) or a warning and random init (False).
        output_stride: 16 (the benchmark's setting) or 8, in training.
        eval_output_stride: 16 or 8 in ``eval()`` mode (evaluation, pseudo-labelling); None: as training.

    ``--smoke`` trains :func:`deeplabv3plus_tiny` in its place, from random weights; its pre-flight
    still loads the weights file here.

    Raises:
        UserError: bad ``init`` or stride, missing (with ``strict_weights``) or unfitting weights file.
    """
    return _deeplabv3plus(resnet101_body, (256, 2048, 256, 256, SKIP_CHANNELS), num_classes, init, weights_path,
                          strict_weights, output_stride, eval_output_stride, imagenet_cache_path())


@register(task="segmentation")
def deeplabv3plus_tiny(
    num_classes: int,
    init: str = "none",
    weights_path: str | Path | None = None,
    strict_weights: bool = True,
    output_stride: int = 16,
    eval_output_stride: int | None = None,
    width: int = 8,
) -> DeepLabV3Plus:
    """The same DeepLab-v3+ with a slim ResNet body and narrow head, for tests and smoke runs.

    The body is built by torchvision's ResNet code (blocks ``[1, 1, 2, 2]``, slim bottlenecks: 64
    channels after ``layer1``, 512 after ``layer4``), so strides, dilations and state-dict names
    follow the ResNet-101 model; the head has 32 channels and an 8-channel skip projection.
    Arguments as for :func:`deeplabv3plus_resnet101`; ``init="imagenet"`` needs ``weights_path``.
    """
    if width < 1:
        raise UserError(f"model option width: expected a positive integer, got {width}")
    return _deeplabv3plus(_tiny_body(width), (64, 512, 32, 32, 8), num_classes, init, weights_path, strict_weights,
                          output_stride, eval_output_stride, None)
