"""Conversion of the COCO-pretrained DeepLab-v2 ResNet-101 checkpoint that DMT starts from.

AdvSemiSeg (Hung et al., 2018) converted the caffe DeepLab-v2 model pretrained on MS-COCO
into a PyTorch state dict (``resnet101COCO-41f33a49.pth``); DMT and most semi-supervised
segmentation work initialise from it. Its names follow torchvision's ResNet (``conv1``,
``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0`` ...), optionally under a ``Scale.``
prefix (AdvSemiSeg's multi-scale wrapper), with the ASPP head as
``layer5.conv2d_list.<i>.{weight,bias}`` and no ``num_batches_tracked`` counters.

The caffe model is a ResNet V1 (stride 2 in the first 1x1 conv of a bottleneck) while
torchvision's, and ours, is V1.5 (stride in the 3x3 conv). The tensors have the same shapes,
so they load anyway, and DMT trained exactly this way; the only effect is *where* the
downsampling happens in the first block of ``layer2``, which fine-tuning absorbs.

:func:`convert_coco_state_dict` is the pure key mapping; :func:`convert_coco_checkpoint`
reads the ``.pth`` safely, checks it against our model and writes safetensors, which
``deeplabv2_resnet101(init="coco", weights_path=...)`` reads.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from dmt.atomic import atomic_path
from dmt.errors import UserError
from dmt.models.backbones.resnet import COCO_WEIGHTS_FORMAT, backbone_key_problems
from dmt.models.backbones.weights import read_torch_state_dict
from dmt.models.conventions import COCO_CAFFE
from dmt.models.deeplabv2 import deeplabv2_resnet101

log = logging.getLogger(__name__)

_WRAPPER_PREFIXES = ("Scale.", "module.")  # AdvSemiSeg's MS-DeepLab wrapper; DataParallel
_ASPP_KEY = re.compile(r"^layer5\.conv2d_list\.(\d+)\.(weight|bias)$")
_HEAD_WEIGHT = "classifier.convs.0.weight"


@dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert_coco_checkpoint` wrote.

    Attributes:
        dst: the safetensors file.
        tensors: how many tensors it holds.
        head_classes: classes of the ASPP head kept in the file, or None when only the backbone was kept.
        dropped: our names of the source tensors left out (the head, when not kept).
    """

    dst: Path
    tensors: int
    head_classes: int | None
    dropped: tuple[str, ...]


def _our_name(key: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    aspp = _ASPP_KEY.match(key)
    if aspp:
        return f"classifier.convs.{aspp.group(1)}.{aspp.group(2)}"
    return f"backbone.{key}"


def _rename_all(src: dict[str, Tensor]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in src.items():
        name = _our_name(key)
        if name in out:  # e.g. both "Scale.conv1.weight" and "conv1.weight"
            raise UserError(f"COCO checkpoint: keys {key!r} and another both map to {name!r}; keep only one copy")
        out[name] = value
    return out


def coco_head_classes(src: dict[str, Tensor]) -> int | None:
    """Number of classes of the checkpoint's ASPP head (21 for AdvSemiSeg's file), or None if it has none."""
    head = _rename_all(src).get(_HEAD_WEIGHT)
    return None if head is None else int(head.shape[0])


def convert_coco_state_dict(src: dict[str, Tensor], num_classes: int | None) -> dict[str, Tensor]:
    """Rename an AdvSemiSeg-style DeepLab-v2 state dict onto our :class:`~dmt.models.deeplabv2.DeepLabV2` names.

    ``[Scale.]layer5.conv2d_list.<i>.*`` becomes ``classifier.convs.<i>.*`` and every other key
    ``backbone.<key>``. The head is kept only when it has ``num_classes`` outputs; otherwise
    (or with ``num_classes=None``) its tensors are dropped and logged, leaving the backbone.

    Args:
        src: the source state dict (not modified).
        num_classes: classes of the model the weights are meant for, or None for backbone only.

    Returns:
        A new dict sharing the source tensors.
    """
    out = _rename_all(src)
    head = out.get(_HEAD_WEIGHT)
    if head is not None and num_classes is not None and head.shape[0] == num_classes:
        return out
    dropped = sorted(k for k in out if k.startswith("classifier."))
    if dropped:
        classes = int(head.shape[0]) if head is not None else 0
        log.info("dropped the %d-class ASPP head (%s)", classes, ", ".join(dropped))
    return {k: v for k, v in out.items() if not k.startswith("classifier.")}


def _check_against(converted: dict[str, Tensor], reference: nn.Module, src_path: Path) -> None:
    """Every backbone tensor of ``reference`` must be produced, nothing else, with the same shapes."""
    problems = backbone_key_problems(converted, reference.state_dict(), backbone_only=False)
    if problems:
        raise UserError(f"{src_path}: not a COCO DeepLab-v2 checkpoint for this model: {'; '.join(problems)}")


def convert_coco_checkpoint(
    src_path: str | Path,
    dst_path: str | Path,
    *,
    keep_head: bool = True,
    reference: Callable[..., nn.Module] = deeplabv2_resnet101,
) -> ConversionReport:
    """Convert AdvSemiSeg's ``resnet101COCO-41f33a49.pth`` into a dmt safetensors file.

    The file gets metadata ``format = "dmt-deeplabv2-backbone"``, the ``input_convention``
    (JSON of :data:`~dmt.models.conventions.COCO_CAFFE`) and ``head_classes``. The ASPP head
    is kept by default: the model loader uses it only when its class count matches (21 for
    PASCAL VOC, as DMT did) and ignores it otherwise (e.g. Cityscapes' 19 classes).

    Args:
        src_path: the source ``.pth``; read with ``torch.load(weights_only=True)``.
        dst_path: the safetensors file to write (parent folders are created; written atomically).
        keep_head: keep the ASPP head tensors; False writes the backbone only.
        reference: factory ``f(num_classes)`` of the model to check the names and shapes against;
            built on the meta device, so checking against ResNet-101 costs no memory.

    Returns:
        A :class:`ConversionReport`.

    Raises:
        UserError: the source is missing, not a plain tensor file (doctored pickles are refused
            without running anything), or does not match the model's backbone.
    """
    from safetensors.torch import save_file

    src, dst = Path(src_path), Path(dst_path)
    if not src.is_file():
        raise UserError(f"{src}: no such file (expected the COCO DeepLab-v2 checkpoint, resnet101COCO-41f33a49.pth)")
    if dst.exists() and dst.resolve() == src.resolve():
        raise UserError(f"{dst}: the output must differ from the input")
    state = read_torch_state_dict(src, "the COCO DeepLab-v2 checkpoint")
    source_classes = coco_head_classes(state)
    head_classes = source_classes if keep_head else None
    converted = convert_coco_state_dict(state, head_classes)
    dropped = tuple(sorted(set(_rename_all(state)) - set(converted)))

    with torch.device("meta"):  # names and shapes only: no memory, no initialisation cost
        ref = reference(num_classes=head_classes if head_classes is not None else 1)
    _check_against(converted, ref, src)

    metadata = {
        "format": COCO_WEIGHTS_FORMAT,
        "input_convention": json.dumps(COCO_CAFFE.to_dict()),
        "head_classes": "" if head_classes is None else str(head_classes),
        "source": src.name,
    }
    # clone(): safetensors refuses tensors that share storage, which a re-saved .pth may contain.
    tensors = {k: v.detach().clone().contiguous() for k, v in converted.items()}
    with atomic_path(dst) as tmp:  # an interrupted conversion never leaves a half-written DST
        save_file(tensors, str(tmp), metadata=metadata)
    return ConversionReport(dst=dst, tensors=len(converted), head_classes=head_classes, dropped=dropped)
