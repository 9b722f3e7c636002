"""The community's published semi-supervised splits: ``labeled.txt`` and ``unlabeled.txt`` per split.

Every recent semi-supervised segmentation method (UniMatch, U2PL, CorrMatch, AugSeg ...) trains on
the same split files, one folder per split, e.g. UniMatch's ``splits/pascal/92/`` or
``splits/cityscapes/1_16/`` and U2PL's ``data/splits/pascal/92/`` or ``data/splits/cityscapes/186/``.
``data.split_dir`` names such a folder; its two lists decide the labelled and unlabelled images
(the paper's own protocol generator, :mod:`dmt.data.splits`, is for DMT's splits).

Lines come in the formats these repositories ship; each gives a dmt item name:

* VOC, UniMatch: ``JPEGImages/2007_000032.jpg SegmentationClass/2007_000032.png`` -> ``2007_000032``
* VOC, U2PL: ``2007_000032`` (also DeepLab's ``/JPEGImages/x.jpg /SegmentationClassAug/x.png``)
* Cityscapes, UniMatch: ``leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png
  gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png``
* Cityscapes, U2PL: ``leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png``

(both -> ``aachen/aachen_000000_000019``; dmt's own ``<city>/<frame>`` names are accepted too).
Only the image is taken from a line: masks are read from the dataset's own layout (VOC's
``SegmentationClassAug``, Cityscapes' ``gtFine`` labelIds mapped to train ids), which hold the
same labels as the ``SegmentationClass`` / ``labelTrainIds`` files the lines name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from dmt.data.splits import check_names, entry_name
from dmt.errors import UserError

log = logging.getLogger("dmt")

LABELLED_FILE = "labeled.txt"  # the community's spelling
UNLABELLED_FILE = "unlabeled.txt"
PUBLISHED = "published"  # data.labelled_split for presets that need data.split_dir
SPLIT_DIR_HINT = ("the folder of one published split holding labeled.txt and unlabeled.txt, e.g. UniMatch's "
                  "splits/pascal/92 or splits/cityscapes/1_16 (https://github.com/LiheYoung/UniMatch)")

_CITY_FRAME = re.compile(r"^([A-Za-z-]+)_(\d+)_(\d+)$")  # aachen_000000_000019: city, sequence, frame
_CITY_IMAGE_SUFFIX = "_leftImg8bit"


def cityscapes_entry_name(entry: str) -> str:
    """``<city>/<city>_<seq>_<frame>`` from a Cityscapes split line (image path, or dmt's name).

    Raises:
        ValueError: the line's first token is not a Cityscapes image path or name.
    """
    tokens = entry.split()
    if not tokens:
        raise ValueError("an empty line names no image")
    path = PurePosixPath(tokens[0])
    stem = path.name[: -len(".png")] if path.name.endswith(".png") else path.name
    stem = stem[: -len(_CITY_IMAGE_SUFFIX)] if stem.endswith(_CITY_IMAGE_SUFFIX) else stem
    found = _CITY_FRAME.match(stem)
    if not found:
        raise ValueError(f"{tokens[0]!r} is not a Cityscapes image (<city>_<seq>_<frame>_leftImg8bit.png)")
    city = found.group(1)
    parent = path.parent.name
    if parent and parent != city:
        raise ValueError(f"{tokens[0]!r}: the image of city {city!r} is in folder {parent!r}")
    return f"{city}/{stem}"


def published_entry_name(entry: str, dataset: str) -> str:
    """The dmt item name of one line of a published split file of ``dataset`` (see module doc)."""
    if dataset == "cityscapes":
        return cityscapes_entry_name(entry)
    if dataset == "voc":
        return entry_name(entry)
    tokens = entry.split()
    if not tokens:
        raise ValueError("an empty line names no image")
    return tokens[0]


def read_published_list(path: Path, dataset: str) -> list[str]:
    """Item names of one split file, in file order.

    Raises:
        UserError: naming the file when it is missing, unreadable or empty, when a line is not
            in a known format (with its line number), or when an image is listed twice.
    """
    if not path.is_file():
        raise UserError(f"{path}: no such file; data.split_dir must be {SPLIT_DIR_HINT}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the split file ({exc})") from None
    names = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            names.append(published_entry_name(line, dataset))
        except ValueError as exc:
            raise UserError(f"{path}: line {number}: {exc}") from None
    if not names:
        raise UserError(f"{path}: the split file lists no images")
    seen: set[str] = set()
    repeated = [n for n in names if n in seen or seen.add(n)]
    if repeated:
        raise UserError(f"{path}: images listed more than once, e.g. {', '.join(map(repr, repeated[:3]))}")
    return names


def published_split(split_dir: str | Path, dataset: str, train_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(labelled, unlabelled)`` names from a published split folder, checked against the training list.

    Args:
        split_dir: the folder with ``labeled.txt`` and ``unlabeled.txt``.
        dataset: ``data.name`` (``voc``, ``cityscapes``; other datasets take first tokens as names).
        train_names: the dataset's training list (VOC ``train_aug``, Cityscapes ``train``) as names.

    Raises:
        UserError: naming the folder or file that is missing, malformed, or names images that are
            not in the training list.
    """
    folder = Path(split_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"config key 'data.split_dir': {folder} is not a folder; expected {SPLIT_DIR_HINT}")
    labelled_path, unlabelled_path = folder / LABELLED_FILE, folder / UNLABELLED_FILE
    labelled = read_published_list(labelled_path, dataset)
    unlabelled = read_published_list(unlabelled_path, dataset)
    known = set(train_names)
    check_names(labelled, known, str(labelled_path))
    check_names(unlabelled, known, str(unlabelled_path))
    chosen = set(labelled)
    both = [n for n in unlabelled if n in chosen]
    if both:  # their ground truth is used; as pseudo-labelled images too they would count twice
        log.warning("%s: %d images are also in %s (e.g. %s); they are used as labelled images only",
                    unlabelled_path, len(both), LABELLED_FILE, both[0])
        unlabelled = [n for n in unlabelled if n not in chosen]
    return labelled, unlabelled


def split_from_config(split_dir: str | None, labelled_split: str, labelled_list: str | None, dataset: str,
                      train_names: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """The published split a run's ``data`` section asks for, or None when it asks for none.

    Raises:
        UserError: ``labelled_split: published`` without ``split_dir``, or ``split_dir`` together
            with ``labelled_list``; and everything :func:`published_split` raises.
    """
    if not split_dir:
        if labelled_split == PUBLISHED:
            raise UserError(f"config key 'data.split_dir': this preset trains on a published split; "
                            f"set data.split_dir=PATH, {SPLIT_DIR_HINT}")
        return None
    if labelled_list:
        raise UserError("config keys 'data.split_dir' and 'data.labelled_list' both choose the labelled images; "
                        "set only one")
    split = published_split(split_dir, dataset, train_names)
    log.info("published split %s: %d labelled, %d unlabelled", split_dir, len(split[0]), len(split[1]))
    return split
