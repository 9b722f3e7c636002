"""The paper's data split protocols as pure functions, plus split-file reading and writing.

Each protocol reproduces the membership of the splits used by Feng et al. (DMT, 2022):

* CIFAR-10 *valtiny* (:func:`cifar_valtiny_split`) and the per-class labelled subsets
  (:func:`per_class_labelled_split`) use numpy's legacy global RNG, seeded as the protocol says.
* Segmentation labelled/unlabelled splits (:func:`segmentation_splits`) and the difference
  maximised sampling subsets (:func:`dms_subsets`) use Python's global ``random``.

The protocols shuffle with the *global* generators because that is what fixes their membership;
every function saves and restores the generator state around its shuffles, so callers see no
side effect. Functions return index arrays (classification) or name lists (segmentation).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import numpy as np

from dmt.atomic import write_text
from dmt.errors import UserError

CIFAR_VALTINY_PER_CLASS = 20  # 200-image small validation set
CIFAR_VALTINY_SEED = 1
CIFAR_LABELLED_PER_CLASS: tuple[int, ...] = (4, 25, 100, 400)  # 40 .. 4,000 labels
CIFAR_SPLIT_SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)
VOC_RATIOS: tuple[float, ...] = (105.82, 50, 20, 8, 4, 2)  # 105.82 -> 100 of 10,582 images
CITYSCAPES_RATIOS: tuple[float, ...] = (29.75, 20, 8, 4, 2)  # 29.75 -> 100 of 2,975 images
SEGMENTATION_SEED = 7777
SEGMENTATION_NUM_SETS = 3
# DMS shuffles these labelled lists, in this order, once per set; 105.82 is the paper's "1/106".
DMS_RATIOS: tuple[float, ...] = (8, 20, 50, 105.82)
DMS_COMMON_PORTION = 0.6  # share of a labelled list both DMS subsets keep; the rest is split 50-50


@contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's legacy global RNG for the block, then put its previous state back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextmanager
def _python_global_seed(seed: int) -> Iterator[None]:
    """Seed Python's global ``random`` for the block, then put its previous state back."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-d integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    return labels


def cifar_valtiny_split(
    labels: np.ndarray, per_class: int = CIFAR_VALTINY_PER_CLASS, seed: int = CIFAR_VALTINY_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a small class-balanced validation set (*valtiny*) from the CIFAR train images.

    Protocol: seed numpy's global RNG with ``seed``; for each class ``0 .. K-1`` in order, take
    that class's rows in file order, shuffle them with ``np.random.shuffle``; the last
    ``per_class`` go to valtiny, the others to train. Both outputs are concatenated class by
    class, keeping the shuffled order (which the labelled-subset protocol then depends on).

    Args:
        labels: Labels of the stacked train batches (``data_batch_1`` .. ``5``, in order).
        per_class: Valtiny images per class.
        seed: Seed of numpy's legacy global RNG.

    Returns:
        ``(train_idx, valtiny_idx)``: ``int64`` positions into ``labels``.

    Raises:
        UserError: If a class has no more than ``per_class`` images.
    """
    labels = _check_labels(labels)
    if per_class < 1:  # rows[:-0] would silently be empty
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    train, valtiny = [], []
    with _numpy_global_seed(seed):
        for c in range(int(labels.max()) + 1 if labels.size else 0):
            rows = np.flatnonzero(labels == c)
            if len(rows) <= per_class:
                raise UserError(
                    f"valtiny split: class {c} has {len(rows)} train images; need more than {per_class}"
                )
            # Same permutation as shuffling the class's data rows: one swap per position.
            np.random.shuffle(rows)
            train.append(rows[:-per_class])
            valtiny.append(rows[-per_class:])
    return _concat(train), _concat(valtiny)


def per_class_labelled_split(
    labels: np.ndarray, candidate_idx: np.ndarray, n_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` labelled items per class from the candidates; the rest are unlabelled.

    Protocol: seed numpy's global RNG with ``seed``; for each class ``0 .. K-1`` in order, take
    the candidates of that class in candidate order, shuffle them with ``np.random.shuffle``; the
    first ``n_per_class`` are labelled, the rest unlabelled, both concatenated class by class.
    The shuffles do not depend on ``n_per_class``, so for one seed the sizes are nested
    (4 ⊂ 25 ⊂ 100 ⊂ 400 on CIFAR-10).

    Args:
        labels: Labels of the full array the indices refer to; ``K = labels.max() + 1``.
        candidate_idx: Positions eligible for the split, in order (CIFAR: ``train_idx`` from
            :func:`cifar_valtiny_split`; order matters).
        n_per_class: Labelled items per class.
        seed: Seed of numpy's legacy global RNG (the paper uses 1..5).

    Returns:
        ``(labelled_idx, unlabelled_idx)``: ``int64`` positions into ``labels``.

    Raises:
        UserError: If a class has fewer than ``n_per_class`` candidates.
    """
    labels = _check_labels(labels)
    candidates = np.asarray(candidate_idx, dtype=np.int64)
    if candidates.ndim != 1:
        raise ValueError(f"candidate_idx must be 1-d, got shape {candidates.shape}")
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    candidate_labels = labels[candidates]
    labelled, unlabelled = [], []
    with _numpy_global_seed(seed):
        for c in range(int(labels.max()) + 1 if labels.size else 0):
            rows = candidates[candidate_labels == c]
            if len(rows) < n_per_class:
                raise UserError(
                    f"labelled split: class {c} has {len(rows)} candidate images; "
                    f"cannot draw {n_per_class} labelled per class"
                )
            np.random.shuffle(rows)
            labelled.append(rows[:n_per_class])
            unlabelled.append(rows[n_per_class:])
    return _concat(labelled), _concat(unlabelled)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


def labelled_count(total: int, ratio: float) -> int:
    """Labelled images for a ``1/ratio`` split of ``total``: ``int(total / ratio)``, plus one
    if that leaves a remainder of 1 modulo 8 (so no batch of 8 ends with a single image,
    which breaks batch norm)."""
    count = int(total / ratio)  # true division then floor, exactly as the protocol computes it
    if count % 8 == 1:
        count += 1
    return count


def segmentation_splits(
    names: Sequence[str],
    ratios: Sequence[float],
    num_sets: int = SEGMENTATION_NUM_SETS,
    seed: int = SEGMENTATION_SEED,
) -> list[dict[float, tuple[list[str], list[str]]]]:
    """Labelled/unlabelled splits of a segmentation training list, ``num_sets`` random sets.

    Protocol: seed Python's global ``random`` with ``seed``; copy the list once, then for each
    set shuffle that same copy again (so sets differ); within a set every ratio ``r`` takes the
    first :func:`labelled_count` ``(N, r)`` names as labelled and the rest as unlabelled, so a
    set's splits are nested. Only the shuffles consume the RNG, so neither the choice nor the
    order of ``ratios`` changes membership.

    Args:
        names: The full training list in file order (VOC ``train_aug``, Cityscapes ``train``).
        ratios: Denominators, e.g. :data:`VOC_RATIOS` or :data:`CITYSCAPES_RATIOS`.
        num_sets: Number of random sets.
        seed: Seed of Python's global ``random``.

    Returns:
        ``splits[set][ratio] == (labelled_names, unlabelled_names)``.
    """
    if any(r < 1 for r in ratios):
        raise ValueError(f"ratios must be >= 1 (a 1/r share of the data), got {list(ratios)}")
    shuffled = list(names)
    sets: list[dict[float, tuple[list[str], list[str]]]] = []
    with _python_global_seed(seed):
        for _ in range(num_sets):
            random.shuffle(shuffled)  # cumulative: each set reshuffles the previous set's order
            by_ratio = {}
            for r in ratios:
                k = labelled_count(len(shuffled), r)
                by_ratio[r] = (shuffled[:k], shuffled[k:])
            sets.append(by_ratio)
    return sets


def dms_subsets(
    labelled_sets: Sequence[Mapping[float, Sequence[str]]],
    ratios: Sequence[float] = DMS_RATIOS,
    seed: int = SEGMENTATION_SEED,
) -> list[dict[float, tuple[list[str], list[str]]]]:
    """Difference maximised sampling: two overlapping halves of each labelled list.

    Protocol: seed Python's global ``random`` with ``seed`` once; for each set in order, for each
    ratio in ``ratios`` order, shuffle a copy of that labelled list (in its split order), let
    ``n = ceil(0.2 N)``; the left subset is the first ``N - n`` names, the right one starts at
    index ``n``. They share the middle ``N - 2n`` (about 60 %) and differ in ``n`` names each.
    Every shuffle advances the shared RNG, so the sets and ratios must be exactly the paper's,
    in the paper's order, to reproduce its subsets.

    Args:
        labelled_sets: ``labelled_sets[set][ratio]`` is the labelled list from
            :func:`segmentation_splits` (e.g. ``{r: lab for r, (lab, _) in s.items()}``).
        ratios: Ratios to process per set, in order.
        seed: Seed of Python's global ``random``.

    Returns:
        ``subsets[set][ratio] == (left_names, right_names)``.
    """
    # (1 - 0.6) / 2 evaluates to exactly 0.2 in floating point; keep the expression's value.
    non_common = (1 - DMS_COMMON_PORTION) / 2
    result: list[dict[float, tuple[list[str], list[str]]]] = []
    with _python_global_seed(seed):
        for k, labelled in enumerate(labelled_sets):
            missing = [r for r in ratios if r not in labelled]
            if missing:
                raise ValueError(f"labelled set {k} has no list for ratio(s) {missing}")
            by_ratio = {}
            for r in ratios:
                names = list(labelled[r])
                random.shuffle(names)
                n = math.ceil(non_common * len(names))
                by_ratio[r] = (names[: len(names) - n], names[n:])
            result.append(by_ratio)
    return result


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def entry_name(entry: str) -> str:
    """The item name a list line stands for, in the plain or the DeepLab list format.

    Plain VOC lists hold one name per line (``2007_000032``); lists shipped with DeepLab ports
    hold an image and a mask path (``/JPEGImages/2007_000032.jpg /SegmentationClassAug/...png``).
    Both give ``2007_000032``. A line whose first token has no image suffix is returned as it
    is, so names with folders (Cityscapes' ``aachen/aachen_000000_000019``) pass unchanged.
    """
    tokens = entry.split()
    if not tokens:
        raise ValueError("an empty list entry names no item")
    token = tokens[0]
    if token.lower().endswith(IMAGE_SUFFIXES):
        return PurePosixPath(token).stem
    return token


def protocol_names(entries: Sequence[str]) -> list[str]:
    """A dataset's training list as the split protocol takes it: names, sorted.

    The protocol's shuffles start from the list's order, so the order decides membership.
    The published VOC and Cityscapes splits come from name-sorted lists; sorting first gives
    them back from any copy of the list, in either list format (:func:`entry_name`).
    """
    return sorted(entry_name(e) for e in entries)


def sbd_split(train_aug: Sequence[str], train: Sequence[str]) -> tuple[list[str], list[str]]:
    """The SBD experiment: VOC ``train`` is labelled, the rest of ``train_aug`` unlabelled.

    Lines are compared by the names they stand for (:func:`entry_name`), so a DeepLab-format
    ``train_aug.txt`` works with the plain ``train.txt`` of the VOC download.

    Args:
        train_aug: The 10,582-image augmented training list, in file order (either format).
        train: The 1,464-image VOC 2012 ``train`` list (either format).

    Returns:
        ``(labelled, unlabelled)`` names: ``train`` in its order, and ``train_aug`` minus
        ``train`` in ``train_aug`` order (9,118 names for the real lists).
    """
    labelled = [entry_name(e) for e in train]
    in_train = set(labelled)
    return labelled, [n for n in (entry_name(e) for e in train_aug) if n not in in_train]


def check_names(names: Sequence[str], known: Sequence[str] | set[str], source: str) -> None:
    """Check that a user-supplied list names only known items, each once.

    Args:
        names: The list to check.
        known: The valid names (e.g. the dataset's full training list).
        source: Where the list came from (a file path or option), used in the message.

    Raises:
        UserError: Naming ``source`` and the first few unknown or repeated entries.
    """
    known = known if isinstance(known, (set, frozenset)) else set(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise UserError(
            f"{source}: {len(unknown)} entr{'y is' if len(unknown) == 1 else 'ies are'} not in the "
            f"dataset, e.g. {', '.join(repr(n) for n in unknown[:5])}{more}"
        )
    seen: set[str] = set()
    repeated = [name for name in names if name in seen or seen.add(name)]
    if repeated:
        raise UserError(f"{source}: entries listed more than once, e.g. {', '.join(map(repr, repeated[:5]))}")


def write_split_file(path: str | os.PathLike, entries: Sequence[str] | Sequence[int] | np.ndarray) -> None:
    """Write names or indices one per line, atomically (:func:`dmt.atomic.write_text`).

    Args:
        path: Destination file.
        entries: Names or integer indices.
    """
    lines = [str(int(e)) if isinstance(e, (int, np.integer)) else str(e) for e in entries]
    bad = [line for line in lines if not line or line != line.strip() or "\n" in line]
    if bad:
        raise ValueError(f"split entries must be non-empty single lines without outer spaces: {bad[:3]}")
    write_text(path, "".join(line + "\n" for line in lines))


def read_split_file(path: str | os.PathLike) -> list[str]:
    """Read a split file: one entry per line, surrounding whitespace stripped, blank lines skipped.

    Raises:
        UserError: If the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read split file {path}: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_index_file(path: str | os.PathLike, num_items: int) -> np.ndarray:
    """Read a split file of integer indices into a dataset of ``num_items`` items.

    Raises:
        UserError: Naming the file and the first entry that is not an index in range.
    """
    entries = read_split_file(path)
    indices = []
    for line_no, entry in enumerate(entries, start=1):
        try:
            value = int(entry)
        except ValueError:
            value = -1
        if not 0 <= value < num_items:
            raise UserError(f"{path}: entry {line_no} ({entry!r}) is not an index in 0..{num_items - 1}")
        indices.append(value)
    if len(set(indices)) != len(indices):
        raise UserError(f"{path}: some indices are listed more than once")
    return np.asarray(indices, dtype=np.int64)
