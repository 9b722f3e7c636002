"""Classification data for a run: the image sets of ``data.name`` and the run's split of them.

A registry of plain loader functions, ``data.name -> loader(cfg.data) -> ClassificationSource``:
the training pool (any image set; label -1 where an image has none), the test set and the val set
when the dataset has them, and, where the dataset fixes it (a folder of labelled and unlabelled
images), its labelled / unlabelled split. Otherwise the paper's protocol (:mod:`dmt.data.splits`)
draws valtiny and the labelled images from the pool's labelled images; every other pool image is
unlabelled. The split is recorded in the run. Adding a dataset is one decorated function::

    @classification_dataset("mine")
    def mine(d: DataConfig) -> ClassificationSource:
        from dmt.data.mine import load_mine
        train, test = load_mine(root_of(d, "the folder holding mine/"))
        return ClassificationSource(train, test)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmt.atomic import write_text
from dmt.config.schema import DataConfig, ExperimentConfig
from dmt.data.arrays import UNLABELLED, ArrayDataset, ConcatSet, ImageSet, IndexedSet
from dmt.data.image_files import ResizedSet
from dmt.data.splits import cifar_valtiny_split, per_class_labelled_split, write_split_file
from dmt.engine.distributed import ONE, Processes
from dmt.errors import UserError

log = logging.getLogger("dmt")


@dataclass
class ClassificationSource:
    """What a dataset's loader returns.

    Attributes:
        pool: every training image (labelled, unlabelled, valtiny candidates); label -1 where an
            image has none (STL-10's extra images, a folder's unlabelled ones).
        test: the held-out test set (labelled), or None when the dataset has none.
        val: a labelled validation set, or None.
        labelled, unlabelled: a split the dataset fixes (positions in ``pool``); both None: the
            paper's protocol draws it from the pool's labelled images.
        val_held_out: ``val`` is a share of the labelled images held out of the pool (a folder
            without a val or test set), said in the log.
    """

    pool: ImageSet
    test: ImageSet | None
    val: ImageSet | None = None
    labelled: np.ndarray | None = None
    unlabelled: np.ndarray | None = None
    val_held_out: bool = False


CLASSIFICATION_SPLITS = ("test", "val")  # the sets `dmt eval` scores classification models on
Loader = Callable[[DataConfig], ClassificationSource]
_LOADERS: dict[str, Loader] = {}


def classification_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register ``loader`` as ``data.name: <name>`` of classification runs."""
    def wrap(loader: Loader) -> Loader:
        if name in _LOADERS:
            raise ValueError(f"classification dataset {name!r} is registered twice")
        _LOADERS[name] = loader
        return loader
    return wrap


def classification_datasets() -> list[str]:
    """The ``data.name`` values classification runs accept, in registration order."""
    return list(_LOADERS)


def root_of(d: DataConfig, what: str) -> str:
    """``data.root``, or one line saying it is required and what it must hold."""
    if not d.root:
        raise UserError(f"config key 'data.root': {what} is required")
    return d.root


@classification_dataset("cifar10")
def cifar10(d: DataConfig) -> ClassificationSource:
    from dmt.data.cifar import load_cifar10

    return ClassificationSource(*load_cifar10(root_of(d, "the folder holding cifar-10-batches-py")))


@classification_dataset("digits")
def digits(d: DataConfig) -> ClassificationSource:
    from dmt.demo.digits import digits_test_split, load_digits_data

    everything = load_digits_data()
    pool, test_idx = digits_test_split(everything.labels, d.test_per_class)
    return ClassificationSource(everything.subset(pool), everything.subset(test_idx))


@classification_dataset("cifar100")
def cifar100(d: DataConfig) -> ClassificationSource:
    from dmt.data.cifar100 import load_cifar100

    return ClassificationSource(*load_cifar100(root_of(d, "the folder holding cifar-100-python")))


@classification_dataset("svhn")
def svhn(d: DataConfig) -> ClassificationSource:
    from dmt.data.svhn import load_svhn

    return ClassificationSource(*load_svhn(root_of(d, "the folder holding train_32x32.mat and test_32x32.mat"),
                                           extra=d.svhn_extra))


@classification_dataset("stl10")
def stl10(d: DataConfig) -> ClassificationSource:
    from dmt.data.stl10 import load_stl10

    stl = load_stl10(root_of(d, "the folder holding stl10_binary"))
    # the 100,000 extra images (memory-mapped, never read whole) join the pool without a label; the
    # protocol draws the labelled images from the 5,000 training images, and the rest of them are
    # unlabelled too, as in USB's benchmark
    extra = ArrayDataset(stl.unlabelled, np.full(len(stl.unlabelled), UNLABELLED, np.int64), list(stl.train.classes))
    return ClassificationSource(ConcatSet([stl.train, extra]), stl.test)


@classification_dataset("imagefolder")
def imagefolder(d: DataConfig) -> ClassificationSource:
    from dmt.data.class_folders import load_imagefolder

    f = load_imagefolder(d)  # read at data.image_size already
    return ClassificationSource(f.train, f.test, val=f.val, labelled=f.labelled, unlabelled=f.unlabelled,
                                val_held_out=f.val_held_out)


def load_source(d: DataConfig) -> ClassificationSource:
    """Read ``data.name``'s sets through its registered loader."""
    if d.name not in _LOADERS:
        raise UserError(f"config key 'data.name': {d.name!r} is not a classification dataset "
                        f"({', '.join(classification_datasets())})")
    source = _LOADERS[d.name](d)
    if d.image_size > 0 and len(source.pool) and source.pool.image(0).shape[0] != d.image_size:
        # arrays of another side (CIFAR's 32 for a ViT at 224): every set read at data.image_size
        source = ClassificationSource(*(None if s is None else ResizedSet(s, d.image_size)
                                        for s in (source.pool, source.test, source.val)),
                                      labelled=source.labelled, unlabelled=source.unlabelled,
                                      val_held_out=source.val_held_out)
    for what, s in (("test", source.test), ("val", source.val)):
        if s is not None and len(s) and int(np.asarray(s.labels).min()) < 0:  # a loader's bug, not the user's
            raise ValueError(f"{d.name}: the {what} set has images without a label")
    if (source.labelled is None) != (source.unlabelled is None):
        raise ValueError(f"{d.name}: a fixed split needs both labelled and unlabelled indices")
    return source


def evaluation_set(cfg: ExperimentConfig, split: str | None = None) -> tuple[str, ImageSet]:
    """The set ``dmt eval`` scores: ``split`` ("test" or "val"); by default the test set, else val.

    Raises:
        UserError: the dataset has no such set, or ``split`` is another name.
    """
    if split is not None and split not in CLASSIFICATION_SPLITS:
        raise UserError(f"--split {split!r}: classification models are scored on the test or the val set")
    source = load_source(cfg.data)
    sets = {"test": source.test, "val": source.val}
    for name in ([split] if split else CLASSIFICATION_SPLITS):
        if sets[name] is not None:
            return name, sets[name]  # type: ignore[return-value]
    raise UserError(f"--split {split or 'test'}: {cfg.data.name} has no {split or 'test or val'} set")


@dataclass
class ClassificationData:
    """The sets of a run and its split of the pool (indices into ``pool``)."""

    pool: ImageSet
    test: ImageSet | None
    val: ImageSet | None
    labelled: np.ndarray
    unlabelled: np.ndarray
    valtiny: np.ndarray

    @property
    def classes(self) -> list[str]:
        return list(self.pool.classes)

    @property
    def num_classes(self) -> int:
        return len(self.pool.classes)

    @property
    def oracle(self) -> np.ndarray:
        """Every training image with its true label (labelled and unlabelled, not valtiny)."""
        return np.sort(np.concatenate([self.labelled, self.unlabelled]))

    def unlabelled_without_label(self) -> int:
        """Unlabelled images that have no true label (the oracle cannot train on them)."""
        return int((np.asarray(self.pool.labels)[self.unlabelled] < 0).sum())


def protocol_split(labels: np.ndarray, d: DataConfig, classes: list[str] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labelled, unlabelled, valtiny)`` positions by the paper's protocol.

    Valtiny and the labelled images are drawn from the images that have a label, exactly as on
    CIFAR-10 (where all have one, the positions are the protocol's own); the unlabelled set is the
    rest of them followed by every image without a label.

    Raises:
        UserError: a class (named from ``classes``) has too few images for ``data.valtiny_per_class``
            or ``data.labels_per_class``: one line naming the key.
    """
    labels = np.asarray(labels, dtype=np.int64)
    known = np.flatnonzero(labels >= 0)
    _check_class_sizes(labels[known], d, classes)
    if d.valtiny_per_class > 0:
        candidates, valtiny = cifar_valtiny_split(labels[known], d.valtiny_per_class, seed=1)
    else:
        candidates, valtiny = np.arange(len(known)), np.zeros(0, dtype=np.int64)
    labelled, unlabelled = per_class_labelled_split(labels[known], candidates, d.labels_per_class, d.split_seed)
    extra = np.flatnonzero(labels < 0)
    return known[labelled], np.concatenate([known[unlabelled], extra]).astype(np.int64), known[valtiny]


def _check_class_sizes(labels: np.ndarray, d: DataConfig, classes: list[str] | None) -> None:
    """A class too small for the protocol, in the config's words (a small folder in benchmark mode
    meets CIFAR-10's default of 20 valtiny images per class)."""
    for c, n in enumerate(np.bincount(labels)):
        name = repr(classes[c]) if classes is not None and c < len(classes) else str(c)
        if d.valtiny_per_class > 0 and n <= d.valtiny_per_class:  # the protocol keeps one at least
            raise UserError(f"config key 'data.valtiny_per_class': class {name} has {n} training images with a "
                            f"label; holding {d.valtiny_per_class} of each class back as valtiny needs more (lower it; "
                            "0 holds none back)")
        if n - d.valtiny_per_class < d.labels_per_class:
            held = f" ({d.valtiny_per_class} held back as valtiny)" if d.valtiny_per_class > 0 else ""
            raise UserError(f"config key 'data.labels_per_class': class {name} has {n} training images with a "
                            f"label{held}; cannot draw {d.labels_per_class} labelled images of it")


def load_classification_data(cfg: ExperimentConfig, splits_dir: Path, processes: Processes = ONE) -> ClassificationData:
    """Read the dataset, split it (fixed, or the paper's protocol) and record the splits in the run
    (rank 0 of ``processes``)."""
    d = cfg.data
    source = load_source(d)
    test, val = source.test, source.val
    val_paths = getattr(val, "paths", None)  # a folder's or list's files
    if source.labelled is not None and source.unlabelled is not None:
        labelled, unlabelled = np.asarray(source.labelled, np.int64), np.asarray(source.unlabelled, np.int64)
        valtiny = np.zeros(0, dtype=np.int64)
        if len(labelled) and int(np.asarray(source.pool.labels)[labelled].min()) < 0:
            raise ValueError(f"{d.name}: the fixed labelled split holds images without a label")
    else:
        labelled, unlabelled, valtiny = protocol_split(source.pool.labels, d, list(source.pool.classes))
    if d.limit > 0:  # --smoke: a few images of each set, split as usual
        labelled, unlabelled, valtiny = labelled[: d.limit], unlabelled[: d.limit], valtiny[: d.limit]
        test, val = (None if s is None else IndexedSet(s, np.arange(min(d.limit, len(s)))) for s in (test, val))
        val_paths = None if val_paths is None else val_paths[: d.limit]
    if processes.is_main:  # one writer; every process computes the same split
        paths = getattr(source.pool, "paths", None)  # a folder's or list's files
        for name, idx in (("labelled", labelled), ("unlabelled", unlabelled), ("valtiny", valtiny)):
            write_split_file(splits_dir / f"{name}.txt", idx)
            if paths is not None:  # the same split by file, "path<TAB>class" (unlabelled: no class)
                classes, labels = list(source.pool.classes), np.asarray(source.pool.labels)
                write_text(splits_dir / f"{name}_files.txt", "".join(
                    f"{paths[i]}\t{classes[labels[i]] if labels[i] >= 0 else ''}\n" for i in idx))
        if val_paths is not None and val is not None:  # the images scored as val, "path<TAB>class"
            classes, labels = list(val.classes), np.asarray(val.labels)
            write_text(splits_dir / "val_files.txt", "".join(
                f"{path}\t{classes[label]}\n" for path, label in zip(val_paths, labels)))
    held = (f" (held out: {d.val_share:.0%} of each class's labelled images, as there is no val or test set)"
            if source.val_held_out else "")
    log.info("data %s: %d labelled, %d unlabelled, %d valtiny, %s val%s, %s test", d.name, len(labelled),
             len(unlabelled), len(valtiny), "no" if val is None else len(val), held,
             "no" if test is None else len(test))
    return ClassificationData(source.pool, test, val, labelled, unlabelled, valtiny)
