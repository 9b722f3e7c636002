"""Config values checked against their meaning, before anything is written: every check that needs no data.

The loader checks types; this module checks values: a negative gamma, an empty curriculum or a
decay of 1 pass the type check but make no sense. :func:`validate_config` raises a
:class:`~dmt.errors.UserError` naming the dotted key, what was expected and what was given.
Each rule is one line of :data:`RULES`, so a new key gets its rule next to its siblings; a key
that one task never reads is one line of :data:`ONE_TASK_KEYS`.

Checks that need the files stay where the files are read: ``data.root`` and a published split's
``data.split_dir`` (a preset names neither; the user must), the names of the lists and
``eval.heldout`` against the number of labelled images (``tasks/segmentation/data.py``, run by
the pre-flight check before anything is written), images and weights (``run/preflight.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from dmt.config.schema import DataConfig, ExperimentConfig
from dmt.errors import UserError

Check = Callable[[Any], bool]

# The paper writes 1/106 and 1/30 for the ratios 105.82 and 29.75 of its split code.
NAMED_RATIOS = {"106": 105.82, "30": 29.75}
# mutual.dms: the labelled splits the paper's Different Model Subsets exist for (dmt.data.splits.DMS_RATIOS)
DMS_SPLITS = ("1/8", "1/20", "1/50", "1/106")
# your own data: without a val set, these hold data.val_share of their labelled images out as val
HELD_OUT_VAL_DATASETS = ("folder", "imagefolder")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def positive(x: Any) -> bool:
    return _num(x) and x > 0


def non_negative(x: Any) -> bool:
    return _num(x) and x >= 0


def at_least_one(x: Any) -> bool:
    return _num(x) and x >= 1


def unit_open(x: Any) -> bool:
    """In [0, 1): a decay or a momentum."""
    return _num(x) and 0 <= x < 1


def unit_closed(x: Any) -> bool:
    return _num(x) and 0 <= x <= 1


def pair_of(check: Check) -> Check:
    def ok(x: Any) -> bool:
        return isinstance(x, (list, tuple)) and len(x) == 2 and all(check(v) for v in x)

    return ok


def increasing_ratios(x: Any) -> bool:
    """A non-empty list of curriculum ratios in (0, 1], in increasing order."""
    return (isinstance(x, (list, tuple)) and len(x) > 0 and all(_num(r) and 0 < r <= 1 for r in x)
            and all(a <= b for a, b in zip(x, x[1:])))


def scale_range(x: Any) -> bool:
    return pair_of(positive)(x) and x[0] <= x[1]


def digit_list(x: Any) -> bool:
    return (isinstance(x, (list, tuple)) and len(x) >= 2 and len(set(x)) == len(x)
            and all(isinstance(d, int) and 0 <= d <= 9 for d in x))


def optional(check: Check) -> Check:
    return lambda x: x is None or check(x)


def mapping_of(check: Check) -> Check:
    """A mapping of names to values that pass ``check`` (empty is fine)."""
    return lambda x: isinstance(x, dict) and all(isinstance(k, str) and check(v) for k, v in x.items())


_OPTIM = [
    ("epochs", positive, "a number > 0"),
    ("max_steps", non_negative, "an integer >= 0 (0: no limit)"),
    ("lr", positive, "a learning rate > 0"),
    ("momentum", unit_open, "a momentum in [0, 1)"),
    ("weight_decay", non_negative, "a number >= 0"),
    ("poly_power", positive, "a number > 0"),
    ("betas", pair_of(unit_open), "[beta1, beta2], both in [0, 1)"),
    ("lr_mult", mapping_of(positive), "a mapping of parameter group names to multipliers > 0"),
    ("group_weight_decay", mapping_of(non_negative), "a mapping of parameter group names to numbers >= 0"),
]
_TRAIN = [
    *_OPTIM,
    ("batch_size", at_least_one, "a batch size >= 1"),
    ("mixup_alpha", non_negative, "a number >= 0 (0: no mixup)"),
    ("ema_decay", unit_open, "a decay in [0, 1) (0: no EMA)"),
]

# (dotted key, check, what is expected)
RULES: list[tuple[str, Check, str]] = [
    ("checkpoint_seconds", positive, "a number of seconds > 0"),
    ("checkpoint_min_seconds", non_negative, "a number of seconds >= 0"),
    ("data.num_workers", non_negative, "an integer >= 0"),
    ("data.labels_per_class", at_least_one, "an integer >= 1"),
    ("data.valtiny_per_class", non_negative, "an integer >= 0"),
    ("data.crop_padding", non_negative, "an integer >= 0"),
    ("data.cutout", non_negative, "an integer >= 0 (0: none)"),
    ("data.image_size", non_negative, "a side in pixels >= 0 (0: the dataset's own size; imagefolder: 96)"),
    ("data.split_set", lambda x: x in (0, 1, 2), "0, 1 or 2"),
    ("data.crop_size", pair_of(positive), "[height, width], both > 0"),
    ("data.scale_range", scale_range, "[low, high] with 0 < low <= high"),
    ("data.eval_pad", optional(pair_of(positive)), "null or [height, width], both > 0"),
    ("data.test_per_class", at_least_one, "an integer >= 1"),
    ("data.num_scenes", at_least_one, "an integer >= 1"),
    ("data.val_scenes", at_least_one, "an integer >= 1"),
    ("data.scene_size", pair_of(positive), "[height, width], both > 0"),
    ("data.scene_digits", digit_list, "at least two different digits 0..9"),
    ("data.scale", non_negative, "a resize factor > 0 (0: the dataset's default)"),
    ("data.limit", non_negative, "an integer >= 0 (0: all)"),
    ("data.max_pixels", non_negative, "a number of pixels >= 0 (0: no limit)"),
    ("data.val_share", lambda x: _num(x) and 0 < x < 1, "a share in (0, 1), e.g. 0.2"),
    *[(f"baseline.{k}", c, e) for k, c, e in _TRAIN],
    *[(f"oracle.{k}", c, e) for k, c, e in _TRAIN],
    *[(f"phases.{k}", c, e) for k, c, e in _OPTIM],
    ("phases.ratios", increasing_ratios, "a non-empty list of ratios in (0, 1], increasing"),
    ("phases.batch_labelled", at_least_one, "a batch size >= 1"),
    ("phases.batch_pseudo", at_least_one, "a batch size >= 1"),
    ("phases.gamma1", non_negative, "an exponent >= 0"),
    ("phases.gamma2", non_negative, "an exponent >= 0"),
    ("phases.mixup_alpha", non_negative, "a number >= 0 (0: no mixup)"),
    ("phases.ema_decay", unit_open, "a decay in [0, 1) (0: no EMA)"),
    ("phases.online_threshold", unit_closed, "a confidence in [0, 1]"),
    ("phases.naive_gamma", non_negative, "an exponent >= 0"),
    ("eval.batch_size", at_least_one, "a batch size >= 1"),
    ("eval.heldout", non_negative, "an integer >= 0"),
    ("eval.every_epochs", at_least_one, "an integer >= 1"),
    ("eval.max_side", non_negative, "a side in pixels >= 0 (0: whole images, however large)"),
    ("train.skip_nonfinite", non_negative, "an integer >= 0"),
]


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, part):
            return _MISSING
        node = getattr(node, part)
    return node


_MISSING = object()


def check_window(window: Sequence[int] | None, stride: Sequence[int] | None) -> None:
    """Refuse a window/stride pair that is malformed or would leave pixels unpredicted.

    Raises:
        UserError: naming ``eval.window`` or ``eval.stride`` and what was expected.
    """
    if window is None:
        if stride is not None:
            raise UserError("config key 'eval.stride': needs eval.window (null: whole-image evaluation)")
        return
    if len(window) != 2 or min(window) < 1:
        raise UserError(f"config key 'eval.window': expected [height, width] of positive integers or null, "
                        f"got {window}")
    if stride is None:
        return
    if len(stride) != 2 or not all(1 <= s <= w for s, w in zip(stride, window)):
        raise UserError(f"config key 'eval.stride': expected [height, width] between 1 and eval.window {list(window)} "
                        f"(a larger step leaves pixels unpredicted), got {stride}")


def parse_labelled_split(text: str) -> float | str:
    """``"1/8"`` -> 8.0, ``"1/106"`` -> 105.82; ``"all"``, ``"sbd"`` and ``"published"`` pass through.

    Raises:
        UserError: naming ``data.labelled_split`` when ``text`` is none of these.
    """
    if text in ("all", "sbd", "published"):
        return text
    num, _, den = text.partition("/")
    try:
        if num.strip() != "1":
            raise ValueError
        r = NAMED_RATIOS.get(den.strip(), None) or float(den)
    except ValueError:
        raise UserError(f"config key 'data.labelled_split': expected '1/r' (e.g. 1/8, 1/106), 'sbd', 'published' or "
                        f"'all', got {text!r}") from None
    if r < 1:
        raise UserError(f"config key 'data.labelled_split': {text!r} labels more than everything")
    return r


def check_segmentation_split(cfg: Any) -> None:
    """The labelled split's form and what it combines with (segmentation; no list is read).

    Raises:
        UserError: a malformed ``data.labelled_split``, ``sbd`` on another dataset than VOC,
            ``mutual.dms`` without one of the paper's splits, ``eval.select: heldout`` with no
            ``eval.heldout`` images.
    """
    d = cfg.data
    split = parse_labelled_split(d.labelled_split)
    if split == "sbd" and d.name != "voc":
        raise UserError("config key 'data.labelled_split': 'sbd' needs data.name: voc")
    if cfg.mutual.dms and (split not in [parse_labelled_split(t) for t in DMS_SPLITS] or d.labelled_list
                           or d.split_dir):
        raise UserError(f"config key 'mutual.dms': needs data.labelled_split {', '.join(DMS_SPLITS)} "
                        "(no data.labelled_list or data.split_dir)")
    if cfg.eval.select == "heldout" and cfg.eval.heldout <= 0:
        raise UserError("config key 'eval.heldout': select: heldout needs a positive number of images")


# Keys that one task never reads: (dotted key, the task that reads it, values besides the schema's
# default that say "nothing" and so are accepted on the other task). Segmentation presets set the
# mixup alphas to 0, which is what segmentation does; any other value would be silently ignored.
_CLASSIFICATION_ONLY = ["data.labels_per_class", "data.split_seed", "data.valtiny_per_class", "data.crop_padding",
                        "data.hflip", "data.randaugment", "data.randaugment_policy", "data.cutout",
                        "data.test_per_class", "data.svhn_extra", "data.image_size", "data.train_csv",
                        "data.val_csv", "data.test_csv", "phases.selection"]
_SEGMENTATION_ONLY = ["data.labelled_split", "data.split_dir", "data.split_set", "data.labelled_list",
                      "data.unlabelled_list", "data.val_list", "data.crop_size", "data.scale_range", "data.eval_pad",
                      "data.pad_fill", "data.num_scenes", "data.val_scenes", "data.scene_size", "data.scene_digits",
                      "data.scale", "phases.online_threshold", "phases.naive_gamma",
                      "mutual.name_b", "mutual.kwargs_b", "mutual.init_b", "mutual.weights_b", "mutual.dms",
                      "eval.heldout", "eval.every_epochs", "eval.window", "eval.stride", "eval.max_side"]
ONE_TASK_KEYS: list[tuple[str, str, tuple]] = [
    *[(k, "classification", ()) for k in _CLASSIFICATION_ONLY],
    *[(f"{s}.mixup_alpha", "classification", (0,)) for s in ("baseline", "phases", "oracle")],
    *[(k, "segmentation", ()) for k in _SEGMENTATION_ONLY],
]


def check_task_keys(cfg: Any) -> None:
    """Refuse a key that does nothing for the run's task, set to something other than its default.

    Raises:
        UserError: one line naming the key, the task and what to do, e.g.
            ``config key 'baseline.mixup_alpha': 0.4 does nothing for segmentation ...``.
    """
    defaults = ExperimentConfig()
    for key, task, neutral in ONE_TASK_KEYS:
        value = _get(cfg, key)
        if cfg.task == task or value is _MISSING or value == _get(defaults, key) or value in neutral:
            continue
        keep = f"remove it (or set {', '.join(map(repr, neutral))})" if neutral else "remove it"
        raise UserError(f"config key {key!r}: {value!r} does nothing for {cfg.task} (only {task} runs read it); "
                        f"{keep}")


def check_list_files(cfg: Any) -> None:
    """Classification list files (``data.train_csv`` ...) are read by ``data.name: imagefolder`` alone.

    Raises:
        UserError: naming the first list-file key set for another dataset.
    """
    for key in ("train_csv", "val_csv", "test_csv"):
        if getattr(cfg.data, key, None) and cfg.data.name != "imagefolder":
            raise UserError(f"config key 'data.{key}': list files are read by data.name: imagefolder only, "
                            f"not {cfg.data.name!r}; remove it or set data.name: imagefolder")


def check_combinations(cfg: Any) -> None:
    """Rules that tie keys together (each names the key to change).

    Raises:
        UserError: ``mutual.name_b`` / ``kwargs_b`` with ``mutual.dms``; ``data.val_share`` for a
            dataset with its own val set; classification with
            ``eval.select`` other than ``last`` or with a ``model.init``; a malformed
            ``eval.window`` / ``eval.stride`` pair (see :func:`check_window`); a list file for another
            dataset than imagefolder (:func:`check_list_files`); a segmentation
            split (:func:`check_segmentation_split`); a key the task ignores (:func:`check_task_keys`).
    """
    if cfg.mutual.dms and (cfg.mutual.name_b is not None or cfg.mutual.kwargs_b is not None):
        key = "mutual.name_b" if cfg.mutual.name_b is not None else "mutual.kwargs_b"
        raise UserError(f"config key {key!r}: mutual.dms trains one network on two labelled subsets; "
                        "set it to null, or mutual.dms to false for two different networks")
    if cfg.data.svhn_extra and cfg.data.name != "svhn":
        raise UserError(f"config key 'data.svhn_extra': only SVHN has an extra set (data.name is {cfg.data.name!r}); "
                        "set it to false")
    if cfg.data.val_share != DataConfig.val_share and cfg.data.name not in HELD_OUT_VAL_DATASETS:
        raise UserError(f"config key 'data.val_share': only your own data (data.name folder or imagefolder) holds "
                        f"val images out of its labelled ones; {cfg.data.name!r} has its own val set: remove it")
    if cfg.task == "classification" and cfg.eval.select != "last":
        # the original CIFAR code reports, and labels with, each stage's final EMA model
        raise UserError(f"config key 'eval.select': {cfg.eval.select!r} is for segmentation; classification "
                        "keeps each stage's last model (the original's protocol too), so use 'last'")
    if cfg.task == "classification" and cfg.model.init != "none":
        # timm/<name> classifiers are pretrained exactly when model.weights names a file or hub
        raise UserError(f"config key 'model.init': {cfg.model.init!r} does nothing for classification; a timm/<name> "
                        "model starts from model.weights (a file, or hub) when it is set; remove model.init")
    check_window(cfg.eval.window, cfg.eval.stride)
    check_list_files(cfg)
    if cfg.task == "segmentation":
        check_segmentation_split(cfg)
    check_task_keys(cfg)


def validate_config(cfg: Any) -> None:
    """Check every numeric key of an :class:`~dmt.config.schema.ExperimentConfig` against its rule.

    Raises:
        UserError: the first key whose value breaks its rule, e.g.
            ``config key 'phases.gamma1': expected an exponent >= 0, got -1.0``.
    """
    for key, check, expected in RULES:
        value = _get(cfg, key)
        if value is _MISSING:  # a key another version of the schema does not have
            continue
        if not check(value):
            raise UserError(f"config key {key!r}: expected {expected}, got {value!r}")
    check_combinations(cfg)
