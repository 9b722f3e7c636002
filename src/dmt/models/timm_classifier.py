"""Any timm classification model with a new classifier for the dataset's classes: ``model.name: timm/<name>``.

``timm/resnet18``, ``timm/convnext_atto``, ``timm/efficientnet_b0``, ``timm/vit_small_patch14_dinov2.lvd142m``
... (``dmt models --timm PATTERN`` lists them): ``InputNormalization -> timm model`` built by
``timm.create_model(name, pretrained=False, num_classes=<the dataset's>, **model.kwargs)``. timm never
downloads or reads a file here; ``model.weights`` does, through our safe path:

* ``weights_path``: a file (timm's ``model.safetensors`` or a ``.pth`` state dict in timm's names;
  Meta's DINOv2 files through timm's conversion), or ``"hub"``: the model's own file on the Hugging
  Face hub (``pretrained_cfg["hf_hub_id"]``, the tag in the name or timm's default tag),
  :mod:`dmt.models.backbones.hub`. Read by :func:`~dmt.models.backbones.weights.read_state_dict`
  (safetensors, or ``torch.load(weights_only=True)``), passed through the architecture's own
  ``checkpoint_filter_fn`` where timm has one (the ViT family's converts Meta's and OpenCLIP's
  files), the file's classifier dropped (ImageNet's 1000 classes), then every other tensor of the
  model must be filled: a missing, unexpected or other-shape tensor is one line naming the file.
  A ViT built at another ``img_size`` than the file's gets its position embedding resampled
  once, as timm fine-tunes at a new resolution; a patch embedding of another size is refused.
* ``model.init`` is not read: weights given means pretrained, none means random.
* ViTs take a fixed ``img_size`` (timm's default: 518 for DINOv2, 224 for most) unless built with
  ``dynamic_img_size=True`` (``model.kwargs``), which interpolates the position embedding to any
  input size at each forward pass; the pretrained presets use that, so ``data.image_size`` alone
  sets the resolution and the hub file's position embedding loads unchanged.
* :meth:`TimmClassifier.param_groups`: ``head`` (timm's ``get_classifier()``) and ``encoder`` (the
  rest), for ``lr_mult`` / ``group_weight_decay``; ``set_grad_checkpointing`` is timm's.

State-dict names: ``net.<timm name>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from dmt.errors import UserError
from dmt.models.backbones.hub import HF_WEIGHTS_FILE, HFHubFile
from dmt.models.backbones.vit import encoder_convention
from dmt.models.backbones.weights import find_weights, key_preview, key_problems, read_state_dict
from dmt.models.conventions import InputConvention, InputNormalization
from dmt.models.registry import register_family

#: timm arguments that would make timm itself read or fetch weights; model.weights does that here
_REFUSED_KWARGS = ("pretrained", "checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay")


def timm_convention(net: nn.Module) -> InputConvention:
    """The input convention of the model's pretraining (timm's ``pretrained_cfg`` mean and std)."""
    rgb = encoder_convention(net)
    mean, std = rgb.mean, rgb.std
    channels = int(getattr(net, "in_chans", 0) or len(mean))
    if channels == len(mean):
        return rgb
    # in_chans=1 on grey data: the channels' average, as timm adapts the first conv
    return InputConvention("RGB", 1.0, (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels)


class TimmClassifier(nn.Module):
    """Input normalisation and a timm classification model.

    Args:
        net: from ``timm.create_model`` (any classifier with ``get_classifier()``).
        arch: its timm name, with the pretrained tag if one was given (recorded in model files).
    """

    def __init__(self, net: nn.Module, arch: str) -> None:
        super().__init__()
        self.input_convention = timm_convention(net)
        self.normalize = InputNormalization(self.input_convention)
        self.net, self.arch = net, arch
        # a ViT takes one size only (or, with dynamic_img_size, multiples of its patch): say so in one
        # line, not in timm's assertion deep in the forward pass
        embed = getattr(net, "patch_embed", None)
        strict = bool(getattr(embed, "strict_img_size", False))
        self.fixed_size = tuple(embed.img_size) if strict else None
        self.multiple = (tuple(embed.patch_size) if embed is not None and not strict
                         and not getattr(embed, "dynamic_img_pad", True) else None)

    def forward(self, x: Tensor) -> Tensor:
        """Map RGB images in [0, 1] (``N x 3 x H x W``) to logits ``N x C``."""
        size = tuple(x.shape[-2:])
        if self.fixed_size is not None and size != self.fixed_size:
            raise UserError(f"timm/{self.arch} takes {self.fixed_size[0]}x{self.fixed_size[1]} images, got "
                            f"{size[0]}x{size[1]}: set model.kwargs {{img_size: {size[0]}}} or "
                            "{dynamic_img_size: true}, or another image size")
        if self.multiple is not None and (size[0] % self.multiple[0] or size[1] % self.multiple[1]):
            raise UserError(f"timm/{self.arch} takes sides that are multiples of its {self.multiple[0]}-pixel patches, "
                            f"got {size[0]}x{size[1]}: change the image size, or set model.kwargs "
                            "{dynamic_img_pad: true}")
        return self.net(self.normalize(x))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """The optimizer's named groups: timm's classifier (``head``) and everything else (``encoder``)."""
        head = list(self.net.get_classifier().parameters())
        ids = {id(p) for p in head}
        return {"encoder": [p for p in self.net.parameters() if id(p) not in ids], "head": head}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """timm's activation checkpointing (each block recomputed in the backward pass)."""
        try:
            self.net.set_grad_checkpointing(enable)
        except (AssertionError, NotImplementedError):
            raise UserError(f"config key 'model.grad_checkpointing': timm's {self.arch} has no activation "
                            "checkpointing; set it to false") from None

    def describe(self) -> dict:
        """What a model file records besides the weights: the timm architecture and its pretrained tag."""
        cfg = self.net.pretrained_cfg
        return {"timm": cfg.get("architecture") or self.arch.split(".")[0], "pretrained_tag": cfg.get("tag"),
                "hf_hub_id": cfg.get("hf_hub_id"), "classifier": _module_name(self.net, self.net.get_classifier())}


def _module_name(root: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in root.named_modules() if m is module), "")


def _known(arch: str) -> None:
    """Refuse, in one line, a name timm does not know (its tag is checked when the model is built)."""
    import timm  # here, not at the top: every dmt command imports the models, few build a timm one

    if not timm.is_model(arch.split(".")[0]):
        raise UserError(f"config key 'model.name': timm has no model {arch!r}; list them with "
                        f"`dmt models --timm '{arch.split('.')[0][:6]}*'`")


def build_timm(arch: str, num_classes: int, **kwargs) -> nn.Module:
    """``timm.create_model(arch, pretrained=False, num_classes=...)``; a bad name or argument is one line."""
    import timm  # here, not at the top: every dmt command imports the models, few build a timm one

    refused = [k for k in _REFUSED_KWARGS if k in kwargs]
    if refused:
        raise UserError(f"config key 'model.kwargs': {', '.join(refused)} would let timm read weights itself; "
                        "set model.weights (a file or hub) instead")
    _known(arch)
    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    except RuntimeError as e:  # an unknown pretrained tag
        raise UserError(f"config key 'model.name': timm/{arch}: {str(e).strip()}") from None
    except (TypeError, ValueError, AssertionError) as e:  # an argument the architecture does not take
        raise UserError(f"config key 'model.kwargs': timm's {arch} refused them "
                        f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None


def hub_source(arch: str) -> HFHubFile | None:
    """The published weights of ``arch``: its tag's (or timm's default tag's) ``hf_hub_id``; ``None``: none."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(arch)
    except RuntimeError as e:  # an unknown pretrained tag
        raise UserError(f"config key 'model.name': timm/{arch}: {str(e).strip()}") from None
    repo = cfg.hf_hub_id if cfg is not None else None
    return HFHubFile(repo, cfg.hf_hub_filename or HF_WEIGHTS_FILE) if repo else None


def _classifier_keys(names: list[str], net: nn.Module) -> set[str]:
    """Of ``names``, those of the classifier: timm's ``pretrained_cfg["classifier"]`` and ``get_classifier()``."""
    heads = net.pretrained_cfg.get("classifier") or ()
    heads = [heads] if isinstance(heads, str) else list(heads)
    heads.append(_module_name(net, net.get_classifier()))
    return {k for k in names for h in heads if h and (k == h or k.startswith(h + "."))}


def _filter(net: nn.Module):
    """timm's ``checkpoint_filter_fn`` of the model's module (conversion of other formats), if any."""
    return getattr(sys.modules[type(net).__module__], "checkpoint_filter_fn", None)


def load_timm_weights(net: nn.Module, path: str | Path, arch: str) -> None:
    """Fill every tensor of ``net`` but its classifier from a file (the file's classifier is dropped).

    Raises:
        UserError: one line naming the file and the first missing / unexpected / other-shape keys,
            or why the file cannot be read or converted.
    """
    path = Path(path)
    state = read_state_dict(path, f"timm {arch} weights")
    own = net.state_dict()
    refuse = f"{path}: weights do not fit timm's {arch}"
    patch = "patch_embed.proj.weight"  # timm's filter would resample a kernel of another patch size
    if patch in state and patch in own and state[patch].ndim == 4 and state[patch].shape != own[patch].shape:
        raise UserError(f"{refuse} (other shape: {patch} {tuple(state[patch].shape)} vs {tuple(own[patch].shape)})")
    convert = _filter(net)
    if convert is not None:
        try:
            state = convert(state, net)
        except Exception as e:  # noqa: BLE001 - a foreign file can break timm's conversion anywhere
            raise UserError(f"{refuse}: timm's conversion failed ({type(e).__name__}: "
                            f"{(str(e).strip().splitlines() or [''])[0]})") from None
    head = _classifier_keys(list(own), net)
    state = {k: v for k, v in state.items() if k not in _classifier_keys(list(state), net)}
    body = {k: v for k, v in own.items() if k not in head}
    # BatchNorm's step counters are not weights; timm's own files often leave them out
    problems = key_problems(state, body, [k for k in body if not k.endswith("num_batches_tracked")])
    if problems:
        raise UserError(f"{refuse} ({'; '.join(problems)})")
    with torch.no_grad():
        missing, unexpected = net.load_state_dict(state, strict=False)
    left = [k for k in missing if k not in head and not k.endswith("num_batches_tracked")]
    if left or unexpected:  # key_problems has ruled this out; kept as the strict load's own check
        raise UserError(f"{refuse} (missing: {key_preview(left)}; unexpected: {key_preview(list(unexpected))})")


#: what a timm ViT (timm's vision_transformer and eva code: DINOv2, DINOv3 ...) trains as under --smoke
SMOKE_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 2}


def timm_smoke_standin(arch: str, kwargs: dict) -> tuple[str, dict] | None:
    """``--smoke``'s stand-in of a timm ViT: the same architecture, 32-d tokens, 2 blocks (a ViT-S/14 at
    224 takes 5-15 s a training step of 8 images on a 2-core CPU). Other architectures train as themselves."""
    from timm.models import is_model_in_modules

    if not is_model_in_modules(arch.split(".")[0], ["vision_transformer", "eva"]):
        return None
    return arch, {**kwargs, **SMOKE_VIT}


@register_family("timm", smoke=timm_smoke_standin)
def timm_classifier(num_classes: int, arch: str, weights_path: str | Path | None = None,
                    strict_weights: bool = True, **timm_kwargs) -> TimmClassifier:
    """A timm classification model with a new ``num_classes`` classifier (``timm/<arch>``).

    Args:
        num_classes: the dataset's classes.
        arch: timm's name, optionally with a pretrained tag (``vit_small_patch14_dinov2.lvd142m``):
            the tag picks the input convention and the hub file.
        weights_path: a weights file, ``"hub"`` (the tag's file on the Hugging Face hub, cached), or
            ``None`` (random initialisation).
        strict_weights: a missing file is an error (True) or a warning and random init (False, ``--smoke``).
        timm_kwargs: ``timm.create_model`` arguments (``img_size``, ``dynamic_img_size``, ``drop_path_rate``
            ...; ``model.kwargs``), recorded in model files.

    Raises:
        UserError: an unknown architecture or tag, an argument timm refuses, a missing (strict) or
            unfitting weights file, or ``hub`` for a model without published weights.
    """
    path = None
    if weights_path is not None:  # find the file before building the network, so a missing file fails fast
        _known(arch)
        how = (f"pass weights_path=FILE (timm's weights of {arch}; `dmt models --timm '{arch.split('.')[0]}*'` lists "
               "the architectures with hub weights)")
        path = find_weights(f"timm {arch}", weights_path, None, how, strict_weights, hub=hub_source(arch))
    model = TimmClassifier(build_timm(arch, num_classes, **timm_kwargs), arch)
    if path is not None:
        load_timm_weights(model.net, path, arch)
    return model


def timm_architectures(pattern: str = "*") -> list[tuple[str, list[str]]]:
    """``(architecture, tags with weights on the Hugging Face hub)`` of timm's models matching ``pattern``.

    The default tag (what ``timm/<arch>`` with ``weights: hub`` fetches) comes first.
    """
    import timm
    from timm.models import get_pretrained_cfg

    pattern = pattern.split(".")[0]  # the pattern names architectures; tags are listed for each
    tagged: dict[str, list[str]] = {}
    for name in timm.list_models(pattern, pretrained=True):
        arch, _, tag = name.partition(".")
        cfg = get_pretrained_cfg(name)
        if cfg is not None and cfg.hf_hub_id:
            tagged.setdefault(arch, []).append(tag)
    out = []
    for arch in timm.list_models(pattern):
        tags = tagged.get(arch, [])
        default = get_pretrained_cfg(arch)
        if default is not None and default.tag in tags:
            tags = [default.tag] + [t for t in tags if t != default.tag]
        out.append((arch, tags))
    return out
