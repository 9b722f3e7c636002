"""Segmentation data for a run: the source, the paper's splits, the per-model labelled sets.

Split protocol (identical in membership to the paper's, see :mod:`dmt.data.splits`): the full
training list (VOC and Cityscapes: its names, sorted, which gives the published splits from any
copy of the list), three cumulative shuffles under ``random.seed(7777)``, the first
``int(N / r)`` names of a shuffle labelled (one more when that count % 8 == 1). Users can pass
their own lists instead. The lists a run used are written, as names, to ``<run>/splits/``; a
resumed run whose lists would come out differently is refused.

With ``mutual.dms`` the two labelled subsets are for the baselines only: in every phase both
models train on the whole labelled list (with the other model's pseudo labels), as in the
paper's scripts.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dmt.config.schema import ExperimentConfig
from dmt.data.published_splits import PUBLISHED, split_from_config
from dmt.data.segmentation import SegItem, SegSource
from dmt.data.splits import (
    check_names,
    dms_subsets,
    entry_name,
    protocol_names,
    read_split_file,
    sbd_split,
    segmentation_splits,
    write_split_file,
)
from dmt.engine.distributed import ONE, Processes
from dmt.errors import UserError
from dmt.tasks.plan import Stage

log = logging.getLogger("dmt")

# The paper writes 1/106 and 1/30 for the ratios 105.82 and 29.75 of its split code.
NAMED_RATIOS = {"106": 105.82, "30": 29.75}
DMS_RATIOS = (8.0, 20.0, 50.0, 105.82)
TRAIN_LIST = {"voc": "train_aug", "cityscapes": "train", "folder": "train", "digit_scenes": "train"}
# Datasets with published splits: their training list is split as sorted names (see module doc).
SORTED_LISTS = ("voc", "cityscapes")


def parse_labelled_split(text: str) -> float | str:
    """``"1/8"`` -> 8.0, ``"1/106"`` -> 105.82; ``"all"`` and ``"sbd"`` pass through."""
    if text in ("all", "sbd"):
        return text
    num, _, den = text.partition("/")
    try:
        if num.strip() != "1":
            raise ValueError
        r = NAMED_RATIOS.get(den.strip(), None) or float(den)
    except ValueError:
        raise UserError(f"config key 'data.labelled_split': expected '1/r' (e.g. 1/8, 1/106), 'sbd' or 'all', "
                        f"got {text!r}") from None
    if r < 1:
        raise UserError(f"config key 'data.labelled_split': {text!r} labels more than everything")
    return r


def build_source(cfg: ExperimentConfig) -> SegSource:
    """The dataset named by ``data.name``, in its official (or the custom) layout, with ``data.max_pixels``."""
    return dataclasses.replace(_layout_source(cfg), max_pixels=cfg.data.max_pixels or None)


def _layout_source(cfg: ExperimentConfig) -> SegSource:
    d = cfg.data
    if d.name in ("voc", "cityscapes", "folder") and not d.root:
        raise UserError(f"config key 'data.root': the {d.name} dataset folder is required")
    if d.name == "voc":
        from dmt.data.voc import voc_source

        return voc_source(d.root, scale=d.scale or 1.0)
    if d.name == "cityscapes":
        from dmt.data.cityscapes import cityscapes_source

        return cityscapes_source(d.root, scale=d.scale or 0.5)
    if d.name == "folder":
        from dmt.data.folder import folder_source

        return folder_source(d.root, scale=d.scale or 1.0)
    if d.name == "digit_scenes":
        from dmt.demo.digit_scenes import digit_scenes_source

        return digit_scenes_source(num_train=d.num_scenes, num_val=d.val_scenes, size=tuple(d.scene_size),
                                   digits=tuple(d.scene_digits), seed=0)
    raise UserError(f"config key 'data.name': {d.name!r} is not a segmentation dataset "
                    "(voc, cityscapes, folder, digit_scenes)")


def pad_colour(cfg: ExperimentConfig, source: SegSource) -> tuple[float, float, float]:
    """Image padding colour, RGB in [0, 1], of ``data.pad_fill``: the dataset's mean, or black.

    The original pads with zeros before normalising, so its padding reaches the network as
    ``-mean / std``; the mean colour reaches it as about zero.
    """
    return (0.0, 0.0, 0.0) if cfg.data.pad_fill == "black" else tuple(source.mean)


@dataclass
class SegmentationData:
    """Items of a run. ``labelled`` maps a model ("" or "a"/"b") to its baseline's labelled items,
    ``phase_labelled`` to the labelled items its phases train on (different only with DMS)."""

    source: SegSource
    labelled: dict[str, list[SegItem]]
    unlabelled: list[SegItem]
    val: list[SegItem]
    heldout: dict[str, list[SegItem]] = field(default_factory=dict)
    all_train: list[SegItem] = field(default_factory=list)  # every labelled training item (oracle)
    phase_labelled: dict[str, list[SegItem]] = field(default_factory=dict)

    def labelled_for(self, stage: Stage) -> list[SegItem]:
        """The labelled items ``stage`` trains on: a phase's set, or its model's baseline set."""
        if stage.kind == "phase":
            return self.phase_labelled.get(stage.member, self.labelled[stage.member])
        return self.labelled[stage.member]


def load_segmentation_data(cfg: ExperimentConfig, splits_dir: Path, members: list[str],
                           processes: Processes = ONE) -> SegmentationData:
    """Apply the split protocol (or the user's lists) and write the lists into the run (rank 0 of ``processes``)."""
    d = cfg.data
    source = build_source(cfg)
    # VOC lists may be in DeepLab's "/JPEGImages/x.jpg /SegmentationClassAug/x.png" format: compare
    # and record names ("x"); other datasets' names are taken as written
    as_names = (lambda entries: [entry_name(e) for e in entries]) if d.name == "voc" else list
    raw_train = source.list_split(TRAIN_LIST[d.name])
    train_names = protocol_names(raw_train) if d.name in SORTED_LISTS else list(raw_train)
    # data.split_dir: the community's published labeled.txt / unlabeled.txt (UniMatch, U2PL)
    published = split_from_config(d.split_dir, d.labelled_split, d.labelled_list, d.name, train_names)
    split = PUBLISHED if published else parse_labelled_split(d.labelled_split)

    if published:
        labelled, unlabelled = published
    elif d.labelled_list:
        labelled = as_names(read_split_file(source.resolve(d.labelled_list)))
        check_names(labelled, train_names, d.labelled_list)  # labelled images need masks
        chosen = set(labelled)
        unlabelled = [n for n in train_names if n not in chosen]
        if d.unlabelled_list:
            unlabelled = as_names(read_split_file(source.resolve(d.unlabelled_list)))
            everything = as_names(source.list_split("all")) if "all" in source.split_names else train_names
            check_names(unlabelled, everything, d.unlabelled_list)
    elif split == "all":
        labelled, unlabelled = list(train_names), []
    elif split == "sbd":
        if d.name != "voc":
            raise UserError("config key 'data.labelled_split': 'sbd' needs data.name: voc")
        labelled, unlabelled = sbd_split(train_names, source.list_split("train"))
    else:
        if not 0 <= d.split_set < 3:
            raise UserError(f"config key 'data.split_set': expected 0, 1 or 2, got {d.split_set}")
        sets = segmentation_splits(train_names, [split], num_sets=3)
        labelled, unlabelled = sets[d.split_set][split]
    if d.name == "folder" and "unlabelled" in source.split_names and not d.unlabelled_list:
        unlabelled = unlabelled + source.list_split("unlabelled")  # images that have no mask

    if not labelled:
        raise UserError(f"data.labelled_split {d.labelled_split!r} of {len(train_names)} training images "
                        "labels none of them")
    per_member = {m: list(labelled) for m in members}
    dms = cfg.mutual.dms and members == ["a", "b"]
    if dms:
        if split not in DMS_RATIOS or d.labelled_list:
            raise UserError("config key 'mutual.dms': needs data.labelled_split 1/8, 1/20, 1/50 or 1/106")
        sets = segmentation_splits(train_names, DMS_RATIOS, num_sets=3)
        left, right = dms_subsets([{r: s[r][0] for r in DMS_RATIOS} for s in sets])[d.split_set][split]
        per_member = {"a": list(left), "b": list(right)}  # the baselines' subsets

    heldout: dict[str, list[str]] = {}
    if cfg.eval.select == "heldout":
        n = cfg.eval.heldout
        if n <= 0:
            raise UserError("config key 'eval.heldout': select: heldout needs a positive number of images")
        for m, names in per_member.items():
            if n >= len(names):
                raise UserError(f"config key 'eval.heldout': {n} of {len(names)} labelled images leaves none to train on")
            per_member[m], heldout[m] = names[:-n], names[-n:]
    # DMS phases train on the whole labelled list (less a model's held-out images), not its subset
    phase_labelled = {m: _without(labelled, heldout.get(m, [])) if dms else list(v) for m, v in per_member.items()}

    val_names = as_names(read_split_file(source.resolve(d.val_list)) if d.val_list else source.list_split("val"))
    if d.limit > 0:  # --smoke: a few images of every set
        per_member = {m: v[: d.limit] for m, v in per_member.items()}
        phase_labelled = {m: v[: d.limit] for m, v in phase_labelled.items()}
        heldout = {m: v[: d.limit] for m, v in heldout.items()}
        unlabelled, val_names, labelled = unlabelled[: d.limit], val_names[: d.limit], labelled[: d.limit]

    files = {f"labelled{'-' + m if m else ''}.txt": v for m, v in per_member.items()}
    if dms:
        files.update({f"phases-labelled-{m}.txt": v for m, v in phase_labelled.items()})
    files.update({f"heldout{'-' + m if m else ''}.txt": v for m, v in heldout.items()})
    files.update({"unlabelled.txt": unlabelled, "val.txt": val_names})
    processes.on_main(lambda: _record_splits(splits_dir, files))  # one writer; every process computes the same
    log.info("data %s: %s labelled, %d unlabelled, %d val", d.name,
             " / ".join(str(len(v)) for v in per_member.values()), len(unlabelled), len(val_names))
    if dms:
        log.info("DMS: the baselines train on the two subsets, every phase on all %d labelled images",
                 len(next(iter(phase_labelled.values()))))
    items = source.items_from_names
    all_train = items(list(train_names) if d.limit <= 0 else list(labelled) + list(unlabelled), "training list")
    return SegmentationData(
        source=source,
        labelled={m: items(v, "labelled list") for m, v in per_member.items()},
        phase_labelled={m: items(v, "labelled list") for m, v in phase_labelled.items()},
        unlabelled=items(unlabelled, "unlabelled list"),
        val=items(val_names, "val list"),
        heldout={m: items(v, "held-out list") for m, v in heldout.items()},
        all_train=[it for it in all_train if it.mask is not None],
    )


def _record_splits(splits_dir: Path, files: dict[str, list[str]]) -> None:
    """Write the run's lists; a resumed run must come out with the lists it started with.

    Raises:
        UserError: A list already in the run differs (the dataset's lists or dmt's split rules
            changed since the run started), naming the file.
    """
    for file_name, names in files.items():
        path = splits_dir / file_name
        if path.is_file():
            before = read_split_file(path)
            if before != list(names):
                raise UserError(
                    f"{path}: this run started with another list ({len(set(before) ^ set(names))} names differ, "
                    "or their order): the dataset's lists or dmt's split rules changed since (VOC and "
                    "Cityscapes lists are now sorted by name before splitting); use another --out")
        write_split_file(path, names)


def _without(names: list[str], drop: list[str]) -> list[str]:
    dropped = set(drop)
    return [n for n in names if n not in dropped]
