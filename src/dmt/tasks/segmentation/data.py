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
from dmt.config.validate import parse_labelled_split
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

DMS_RATIOS = (8.0, 20.0, 50.0, 105.82)
TRAIN_LIST = {"voc": "train_aug", "cityscapes": "train", "folder": "train", "digit_scenes": "train"}
# Datasets with published splits: their training list is split as sorted names (see module doc).
SORTED_LISTS = ("voc", "cityscapes")


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

        # data.val_list is the folder's val split: its images leave the training list, as splits/val.txt's do
        return folder_source(d.root, split_files={"val": d.val_list} if d.val_list else None, scale=d.scale or 1.0,
                             val_share=d.val_share)
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


@dataclass
class RunLists:
    """The names of a run's sets (what ``<run>/splits/`` records), before they become items.

    ``per_member``: each model's baseline labelled names; ``phase_labelled``: what its phases
    train on (the whole labelled list with DMS, else its baseline's); ``heldout``: the labelled
    names held out for model selection; ``train``: the whole training list (never cut).
    """

    train: list[str]
    labelled: list[str]
    unlabelled: list[str]
    val: list[str]
    per_member: dict[str, list[str]]
    phase_labelled: dict[str, list[str]]
    heldout: dict[str, list[str]]
    dms: bool

    def limited(self, limit: int) -> RunLists:
        """The first ``limit`` names of every set (``--smoke``: a few images of each)."""
        def cut(sets: dict[str, list[str]]) -> dict[str, list[str]]:
            return {m: v[:limit] for m, v in sets.items()}

        return RunLists(self.train, self.labelled[:limit], self.unlabelled[:limit], self.val[:limit], cut(self.per_member),
                        cut(self.phase_labelled), cut(self.heldout), self.dms)

    def files(self) -> dict[str, list[str]]:
        """``splits/`` file name -> names, in the order the files are written."""
        files = {f"labelled{'-' + m if m else ''}.txt": v for m, v in self.per_member.items()}
        if self.dms:
            files.update({f"phases-labelled-{m}.txt": v for m, v in self.phase_labelled.items()})
        files.update({f"heldout{'-' + m if m else ''}.txt": v for m, v in self.heldout.items()})
        files.update({"unlabelled.txt": self.unlabelled, "val.txt": self.val})
        return files


def training_names(cfg: ExperimentConfig, source: SegSource) -> list[str]:
    """The training list the split protocol splits: sorted names for datasets with published splits."""
    raw = source.list_split(TRAIN_LIST[cfg.data.name])
    return protocol_names(raw) if cfg.data.name in SORTED_LISTS else list(raw)


def _as_names(cfg: ExperimentConfig, entries: list[str]) -> list[str]:
    # VOC lists may be in DeepLab's "/JPEGImages/x.jpg /SegmentationClassAug/x.png" format: compare
    # and record names ("x"); other datasets' names are taken as written
    return [entry_name(e) for e in entries] if cfg.data.name == "voc" else list(entries)


def labelled_and_unlabelled(cfg: ExperimentConfig, source: SegSource, train_names: list[str],
                            val: list[str] | None = None) -> tuple[list[str], list[str], float | str]:
    """``(labelled, unlabelled, split)``: a published split, the user's lists (naming no ``val``
    image), or the protocol's split."""
    d = cfg.data
    # data.split_dir: the community's published labeled.txt / unlabeled.txt (UniMatch, U2PL)
    published = split_from_config(d.split_dir, d.labelled_split, d.labelled_list, d.name, train_names)
    split = PUBLISHED if published else parse_labelled_split(d.labelled_split)
    if published:
        labelled, unlabelled = published
    elif d.labelled_list:
        labelled = _as_names(cfg, read_split_file(source.resolve(d.labelled_list)))
        _refuse_val_names(labelled, val, d.labelled_list)
        check_names(labelled, train_names, d.labelled_list)  # labelled images need masks
        chosen = set(labelled)
        unlabelled = [n for n in train_names if n not in chosen]
        if d.unlabelled_list:
            unlabelled = _as_names(cfg, read_split_file(source.resolve(d.unlabelled_list)))
            _refuse_val_names(unlabelled, val, d.unlabelled_list)
            everything = _as_names(cfg, source.list_split("all")) if "all" in source.split_names else train_names
            check_names(unlabelled, everything, d.unlabelled_list)
    elif split == "all":
        labelled, unlabelled = list(train_names), []
    elif split == "sbd":  # VOC only (config.validate)
        labelled, unlabelled = sbd_split(train_names, source.list_split("train"))
    else:
        sets = segmentation_splits(train_names, [split], num_sets=3)
        labelled, unlabelled = sets[d.split_set][split]
    if d.name == "folder" and "unlabelled" in source.split_names and not d.unlabelled_list:
        unlabelled = unlabelled + source.list_split("unlabelled")  # images that have no mask
    if not labelled:
        raise UserError(f"data.labelled_split {d.labelled_split!r} of {len(train_names)} training images "
                        "labels none of them")
    return labelled, unlabelled, split


def _refuse_val_names(names: list[str], val: list[str] | None, key: str) -> None:
    # said before check_names, which would call the image unknown (a folder's val leaves its training list)
    held = set(val or ())
    shared = [n for n in names if n in held]
    if shared:
        raise UserError(f"{key}: {len(shared)} of its images (e.g. {shared[0]!r}) are in the val set; a run never "
                        "trains on its evaluation images: remove them, or name the val images yourself "
                        "(splits/val.txt or data.val_list)")


def member_labelled(cfg: ExperimentConfig, split: float | str, train_names: list[str], labelled: list[str],
                    members: list[str]) -> dict[str, list[str]]:
    """Each model's baseline labelled names: the labelled list, or with DMS its two subsets."""
    if not (cfg.mutual.dms and members == ["a", "b"]):
        return {m: list(labelled) for m in members}
    # the split is one of the paper's (config.validate); the subsets come from its split code
    sets = segmentation_splits(train_names, DMS_RATIOS, num_sets=3)
    left, right = dms_subsets([{r: s[r][0] for r in DMS_RATIOS} for s in sets])[cfg.data.split_set][split]
    return {"a": list(left), "b": list(right)}


def hold_out(cfg: ExperimentConfig, per_member: dict[str, list[str]]
             ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``(training, heldout)`` per model: the last ``eval.heldout`` labelled names held out (select: heldout)."""
    if cfg.eval.select != "heldout":
        return per_member, {}
    n = cfg.eval.heldout  # > 0 (config.validate); against the list's length here, where it is known
    for m, names in per_member.items():
        if n >= len(names):
            raise UserError(f"config key 'eval.heldout': {n} of {len(names)} labelled images leaves none to train on")
    return {m: v[:-n] for m, v in per_member.items()}, {m: v[-n:] for m, v in per_member.items()}


def run_lists(cfg: ExperimentConfig, source: SegSource, members: list[str]) -> RunLists:
    """The names of every set of the run (split protocol or the user's lists; DMS; held out; --smoke)."""
    lists = _whole_lists(cfg, source, members)
    return lists.limited(cfg.data.limit) if cfg.data.limit > 0 else lists


def _whole_lists(cfg: ExperimentConfig, source: SegSource, members: list[str]) -> RunLists:
    d = cfg.data
    # a folder without a val list holds some masked images out for it (data.folder.held_out_val)
    val = _as_names(cfg, read_split_file(source.resolve(d.val_list)) if d.val_list else source.list_split("val"))
    train_names = training_names(cfg, source)
    labelled, unlabelled, split = labelled_and_unlabelled(cfg, source, train_names, val)
    dms = cfg.mutual.dms and members == ["a", "b"]
    per_member, heldout = hold_out(cfg, member_labelled(cfg, split, train_names, labelled, members))
    # DMS phases train on the whole labelled list (less a model's held-out images), not its subset
    phase_labelled = {m: _without(labelled, heldout.get(m, [])) if dms else list(v) for m, v in per_member.items()}
    return RunLists(train_names, labelled, unlabelled, val, per_member, phase_labelled, heldout, dms)


def load_segmentation_data(cfg: ExperimentConfig, splits_dir: Path, members: list[str],
                           processes: Processes = ONE) -> SegmentationData:
    """Apply the split protocol (or the user's lists) and write the lists into the run (rank 0 of ``processes``)."""
    source = build_source(cfg)
    whole = _whole_lists(cfg, source, members)
    lists = whole.limited(cfg.data.limit) if cfg.data.limit > 0 else whole
    files = lists.files()
    processes.on_main(lambda: _record_splits(splits_dir, files))  # one writer; every process computes the same
    if cfg.data.name == "folder":
        from dmt.data.folder import folder_summary

        log.info("%s", folder_summary(source, whole.labelled, whole.unlabelled, whole.val, cfg.data))
    else:
        log.info("data %s: %s labelled, %d unlabelled, %d val", cfg.data.name,
                 " / ".join(str(len(v)) for v in lists.per_member.values()), len(lists.unlabelled), len(lists.val))
    if lists.dms:
        log.info("DMS: the baselines train on the two subsets, every phase on all %d labelled images",
                 len(next(iter(lists.phase_labelled.values()))))
    items = source.items_from_names
    # the oracle's list: every training name, or under --smoke the few labelled and unlabelled ones
    every = lists.train if cfg.data.limit <= 0 else lists.labelled + lists.unlabelled
    all_train = items(list(every), "training list")
    return SegmentationData(
        source=source,
        labelled={m: items(v, "labelled list") for m, v in lists.per_member.items()},
        phase_labelled={m: items(v, "labelled list") for m, v in lists.phase_labelled.items()},
        unlabelled=items(lists.unlabelled, "unlabelled list"),
        val=items(lists.val, "val list"),
        heldout={m: items(v, "held-out list") for m, v in lists.heldout.items()},
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
