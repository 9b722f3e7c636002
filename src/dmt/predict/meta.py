"""What a model's outputs mean and what inputs it saw: class names, colours, reading size.

For ``dmt predict``. Each setting comes from the first of:

1. the command's options (``--classes FILE``, ``--palette FILE``, ``--data NAME``, ``--scale``, ``--size``);
2. the dataset of the run the model file belongs to (``<run>/config.yaml``, found from
   ``<run>/stages/<stage>/model.safetensors``);
3. the model file (models record their class names; classification models their image size,
   which only ``--size`` overrides: the side a model trained at is a fact, a dataset's size a default);
4. a fallback: classes named by their index, VOC's colour map, no resize.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dmt.data.images import DEFAULT_MAX_PIXELS
from dmt.data.transforms import IMAGENET_MEAN
from dmt.errors import UserError
from dmt.run.rundir import read_run_config
from dmt.tasks.segmentation.windows import DEFAULT_MAX_SIDE

# Classification reading size (square) of the built-in datasets: what their models were trained on.
CLASSIFICATION_SIZE = {"cifar10": 32, "digits": 8}
DEFAULT_CLASSIFICATION_SIZE = 32


@dataclass
class PredictMeta:
    """Everything about the classes and the input a prediction needs beyond the weights.

    Attributes:
        class_names: one name per output class.
        palette: ``K x 3`` uint8 colours (segmentation).
        mean: RGB in [0, 1] that pads images batched together (the dataset's mean, as in evaluation).
        scale: segmentation: resize factor applied on reading (Cityscapes models: 0.5); outputs are
            restored to the image's own size.
        size: classification: images are resized to ``size x size``.
        window, stride: sliding-window inference as the run evaluated (its ``eval.window``), or
            ``None``: whole images.
        max_side: larger images are predicted in windows (the run's ``eval.max_side``).
        max_pixels: images of more pixels are skipped (the run's ``data.max_pixels``).
    """

    class_names: tuple[str, ...]
    palette: np.ndarray
    mean: tuple[float, float, float] = IMAGENET_MEAN
    scale: float = 1.0
    size: int = DEFAULT_CLASSIFICATION_SIZE
    window: list[int] | None = None
    stride: list[int] | None = None
    max_side: int = DEFAULT_MAX_SIDE
    max_pixels: int | None = DEFAULT_MAX_PIXELS


def run_config(model_file: Path) -> dict[str, Any] | None:
    """The ``config.yaml`` of the run directory holding ``<run>/stages/<stage>/<model>``, if any."""
    stages = model_file.resolve().parent.parent
    return read_run_config(stages.parent) if stages.name == "stages" else None


def dataset_meta(data: dict[str, Any]) -> dict[str, Any]:
    """Names, palette, mean, scale and size a built-in dataset defines, from a ``data`` config section.

    Only constants are used (and, for ``folder``, its ``classes.txt`` / ``palette.txt``): no
    dataset is listed or read.
    """
    name = data.get("name")
    scale = float(data.get("scale") or 0.0)
    if name == "voc":
        from dmt.data.voc import VOC_CLASSES, VOC_MEAN, voc_colormap

        return {"class_names": VOC_CLASSES, "palette": voc_colormap(256)[: len(VOC_CLASSES)], "mean": VOC_MEAN,
                "scale": scale or 1.0}
    if name == "cityscapes":
        from dmt.data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_MEAN, CITYSCAPES_PALETTE

        return {"class_names": CITYSCAPES_CLASSES, "palette": CITYSCAPES_PALETTE, "mean": CITYSCAPES_MEAN,
                "scale": scale or 0.5}
    if name == "digit_scenes":
        digits = data.get("scene_digits") or list(range(10))
        return {"class_names": ("background", *(str(int(d)) for d in digits)), "mean": (0.5, 0.5, 0.5)}
    if name == "cifar10":
        from dmt.data.cifar import CIFAR10_CLASSES

        return {"class_names": tuple(CIFAR10_CLASSES), "size": CLASSIFICATION_SIZE["cifar10"]}
    if name == "digits":
        return {"class_names": tuple(str(d) for d in range(10)), "size": CLASSIFICATION_SIZE["digits"]}
    if name == "folder" and data.get("root"):
        from dmt.data.folder import read_classes, read_palette

        root = Path(data["root"])
        out: dict[str, Any] = {"scale": scale or 1.0}
        if (root / "classes.txt").is_file():
            out["class_names"] = read_classes(root / "classes.txt")
            if (root / "palette.txt").is_file():
                out["palette"] = read_palette(root / "palette.txt", len(out["class_names"]))
        return out
    return {}


def resolve_meta(model_file: Path, model_meta: dict[str, Any], *, data: str | None = None,
                 classes_file: str | None = None, palette_file: str | None = None,
                 scale: float | None = None, size: int | None = None) -> PredictMeta:
    """Combine the options, the run's dataset, the model file and the fallbacks (see module doc)."""
    from dmt.data.folder import read_classes, read_palette
    from dmt.data.voc import voc_colormap

    num_classes = int(model_meta["num_classes"])
    found: dict[str, Any] = {}
    if model_meta.get("classes"):
        found["class_names"] = tuple(model_meta["classes"])
    cfg = run_config(model_file)
    if cfg is not None and isinstance(cfg.get("data"), dict):
        found.update(dataset_meta(cfg["data"]))
        evaluation = cfg.get("eval") if isinstance(cfg.get("eval"), dict) else {}
        found.update({k: evaluation[k] for k in ("window", "stride") if evaluation.get(k)})
        if isinstance(evaluation.get("max_side"), int):
            found["max_side"] = evaluation["max_side"]
        if isinstance(cfg["data"].get("max_pixels"), int):
            found["max_pixels"] = cfg["data"]["max_pixels"] or None
    if data is not None:
        named = dataset_meta({"name": data})
        if not named:
            raise UserError(f"--data {data!r}: expected voc, cityscapes, digit_scenes, cifar10 or digits")
        found.update(named)
    if isinstance(model_meta.get("image_size"), int):
        # classification models record the size they trained at: it wins over a dataset's usual size
        # (a CIFAR-10 run with data.image_size=224 was not trained at 32); only --size overrides it
        found["size"] = model_meta["image_size"]
    if classes_file is not None:
        found["class_names"] = read_classes(Path(classes_file))
    names = tuple(found.get("class_names") or (str(c) for c in range(num_classes)))
    if len(names) != num_classes:
        origin = classes_file or data or "the run's dataset"
        raise UserError(f"{origin}: names {len(names)} classes, but {model_file} is a {num_classes}-class model")
    if palette_file is not None:
        found["palette"] = read_palette(Path(palette_file), num_classes)
    palette = found.get("palette")
    if palette is None or len(palette) != num_classes:
        palette = voc_colormap(num_classes)
    if scale is not None and not scale > 0:
        raise UserError(f"--scale: expected a positive factor, got {scale}")
    if size is not None and size < 1:
        raise UserError(f"--size: expected a positive number of pixels, got {size}")
    return PredictMeta(class_names=names, palette=np.asarray(palette, dtype=np.uint8),
                       mean=tuple(found.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
                       scale=scale if scale is not None else float(found.get("scale", 1.0)),
                       size=size if size is not None else int(found.get("size", DEFAULT_CLASSIFICATION_SIZE)),
                       window=found.get("window"), stride=found.get("stride"),
                       max_side=int(found.get("max_side", DEFAULT_MAX_SIDE)),
                       max_pixels=found.get("max_pixels", DEFAULT_MAX_PIXELS))
