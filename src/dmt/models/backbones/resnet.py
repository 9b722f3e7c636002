"""ResNet bodies for segmentation: torchvision's ResNet without its classifier, dilated to an output stride.

Shared by DeepLab-v2 (output stride 8) and DeepLab-v3+ (16 or 8), with the weight files they
start from: torchvision's ImageNet ResNet-101 (``IMAGENET1K_V1``, read from a local file or torch.hub's
cache; ``weights: hub`` downloads it there, :mod:`dmt.models.backbones.hub`), the COCO-pretrained DeepLab-v2 as ``dmt convert-coco`` writes it
(:mod:`dmt.models.coco`). Reading and checking a file is :mod:`dmt.models.backbones.weights`.

* The body is torchvision's ResNet (V1.5: stride in the 3x3 conv) with the strides of the last
  stages replaced by dilation (torchvision's own ``replace_stride_with_dilation``). As in
  torchvision, the *first* block of a dilated stage keeps the previous dilation.
* The slim body (:class:`SlimBottleneck`, blocks ``[1, 1, 2, 2]``) is the same code with 4x
  fewer channels, for tests and smoke runs: strides, dilations and state-dict names match.
* State-dict names are ``backbone.<torchvision ResNet name>`` in every model that uses a body.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from torch import Tensor, nn
from torchvision.models import ResNet101_Weights, resnet101
from torchvision.models.resnet import Bottleneck, ResNet

from dmt.errors import UserError
from dmt.models.backbones.hub import URLFile
from dmt.models.backbones.weights import key_problems, read_torch_state_dict

IMAGENET_WEIGHTS = ResNet101_Weights.IMAGENET1K_V1
#: ``metadata["format"]`` of the safetensors files written by ``dmt convert-coco`` (:mod:`dmt.models.coco`).
COCO_WEIGHTS_FORMAT = "dmt-deeplabv2-backbone"
#: AdvSemiSeg's COCO-pretrained DeepLab-v2 (Hung et al.), the file the original DMT code
#: (voldemortX/DST-CBC, ``segmentation/prepare_coco.sh``) downloads from this address.
COCO_SOURCE_FILE = "resnet101COCO-41f33a49.pth"
COCO_SOURCE_URL = f"http://vllab1.ucmerced.edu/~whung/adv-semi-seg/{COCO_SOURCE_FILE}"
OUTPUT_STRIDES = (8, 16)


def coco_how() -> str:
    """Where the COCO DeepLab-v2 weights come from and what to do with them (for messages)."""
    return (f"download AdvSemiSeg's {COCO_SOURCE_FILE} from {COCO_SOURCE_URL} (the file the original DMT "
            "code starts from), convert it once with `dmt convert-coco SRC DST`, then pass weights_path=DST")


def imagenet_how(default: Path | None) -> str:
    """Where torchvision's ImageNet ResNet-101 comes from (for messages); ``default=None``: a slim body,
    for which no published file exists."""
    if default is None:
        return "no published ImageNet weights exist for this body: pass weights_path=FILE"
    return (f"pass weights_path=hub (torchvision's {IMAGENET_WEIGHTS.url}, downloaded into {default.parent} "
            "when online), or download that file yourself and pass weights_path=FILE")


def resnet_body(resnet: ResNet) -> nn.Sequential:
    """The convolutional part of a torchvision ResNet (``avgpool`` and ``fc`` dropped), names kept."""
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    return nn.Sequential(OrderedDict((n, getattr(resnet, n)) for n in names))


class SlimBottleneck(Bottleneck):
    # torchvision's Bottleneck unchanged except expansion 4 -> 1: stage outputs shrink from
    # 256..2048 to 64..512 channels, keeping the block code and the dilation logic identical.
    expansion = 1


def dilation_plan(output_stride: int) -> list[bool]:
    """torchvision's ``replace_stride_with_dilation`` for ``layer2..4`` at an output stride of 8 or 16."""
    if output_stride not in OUTPUT_STRIDES:
        raise UserError(f"model option output_stride: expected 8 or 16, got {output_stride}")
    return [False, output_stride == 8, True]


def resnet101_body(output_stride: int) -> nn.Sequential:
    """torchvision's ResNet-101 body dilated to ``output_stride`` (8 or 16)."""
    return resnet_body(resnet101(weights=None, replace_stride_with_dilation=dilation_plan(output_stride)))


def slim_resnet_body(width: int, output_stride: int) -> nn.Sequential:
    """A slim ResNet body (about 0.5 M parameters; 64 channels after ``layer1``, 512 after ``layer4``)."""
    return resnet_body(ResNet(SlimBottleneck, [1, 1, 2, 2], width_per_group=width,
                              replace_stride_with_dilation=dilation_plan(output_stride)))


def imagenet_cache_path() -> Path:
    """Where torchvision keeps the ResNet-101 ImageNet weights once downloaded (fetched only by ``weights: hub``)."""
    return URLFile(IMAGENET_WEIGHTS.url).cache_path()


def backbone_key_problems(state: dict[str, Tensor], own: dict[str, Tensor], backbone_only: bool = True) -> list[str]:
    """What keeps ``state`` from filling every backbone tensor of a model whose state dict is ``own``.

    Every ``backbone.*`` tensor (counters aside) must be present with its shape; keys ``own`` does
    not have are unexpected. With ``backbone_only`` the head (``classifier.*``) is not checked.

    Returns:
        One ``"label: keys"`` entry per kind of problem; empty when the weights fit.
    """
    required = [k for k in own if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    return key_problems(state, own, required, lambda k: k.startswith("backbone.") or not backbone_only)


def load_backbone_state(model: nn.Module, state: dict[str, Tensor], source: str) -> bool:
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


def load_imagenet_weights(model: nn.Module, path: str | Path) -> None:
    """Load a torchvision ResNet ImageNet state dict (``conv1.weight`` ... ``fc.bias``) into the body."""
    state = read_torch_state_dict(path, "ImageNet ResNet weights")
    load_backbone_state(model, {f"backbone.{k}": v for k, v in state.items() if not k.startswith("fc.")}, str(path))


def load_coco_weights(model: nn.Module, path: str | Path) -> bool:
    """Load a safetensors file written by ``dmt convert-coco``; returns whether the head was loaded."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            fmt = (f.metadata() or {}).get("format")
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a safetensors file written by `dmt convert-coco` ({reason})") from None
    if fmt != COCO_WEIGHTS_FORMAT:
        raise UserError(f"{path}: metadata format is {fmt!r}, expected {COCO_WEIGHTS_FORMAT!r} (dmt convert-coco)")
    return load_backbone_state(model, state, str(path))
