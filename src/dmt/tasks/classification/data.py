"""Classification data for a run: the training and test images of ``data.name`` and the paper's split of them.

CIFAR-10 / CIFAR-100 (official python pickles), SVHN (official .mat files) or the offline demo's
digits; the labelled / unlabelled / valtiny indices follow the paper's protocol
(:mod:`dmt.data.splits`) and are recorded in the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmt.config.schema import ExperimentConfig
from dmt.data.arrays import ArrayDataset
from dmt.data.splits import cifar_valtiny_split, per_class_labelled_split, write_split_file
from dmt.engine.distributed import ONE, Processes
from dmt.errors import UserError

log = logging.getLogger("dmt")


@dataclass
class ClassificationData:
    """Images and the run's split of them (indices into ``train``)."""

    train: ArrayDataset
    test: ArrayDataset
    labelled: np.ndarray
    unlabelled: np.ndarray
    valtiny: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def oracle(self) -> np.ndarray:
        """Every training image with its true label (labelled and unlabelled, not valtiny)."""
        return np.sort(np.concatenate([self.labelled, self.unlabelled]))


def load_train_test(cfg: ExperimentConfig) -> tuple[ArrayDataset, ArrayDataset]:
    """The training images and the held-out test set of ``data.name``."""
    d = cfg.data
    if d.name == "cifar10":
        from dmt.data.cifar import load_cifar10

        if not d.root:
            raise UserError("config key 'data.root': the folder holding cifar-10-batches-py is required")
        return load_cifar10(d.root)
    if d.name == "cifar100":
        from dmt.data.cifar100 import load_cifar100

        if not d.root:
            raise UserError("config key 'data.root': the folder holding cifar-100-python is required")
        return load_cifar100(d.root)
    if d.name == "svhn":
        from dmt.data.svhn import load_svhn

        if not d.root:
            raise UserError("config key 'data.root': the folder holding train_32x32.mat and test_32x32.mat is required")
        return load_svhn(d.root, extra=d.svhn_extra)
    if d.name == "digits":
        from dmt.demo.digits import digits_test_split, load_digits_data

        everything = load_digits_data()
        pool, test_idx = digits_test_split(everything.labels, d.test_per_class)
        return everything.subset(pool), everything.subset(test_idx)
    raise UserError(f"config key 'data.name': {d.name!r} is not a classification dataset (cifar10, cifar100, svhn, digits)")


def load_test_set(cfg: ExperimentConfig) -> ArrayDataset:
    """The test set alone (``dmt eval``)."""
    return load_train_test(cfg)[1]


def load_classification_data(cfg: ExperimentConfig, splits_dir: Path, processes: Processes = ONE) -> ClassificationData:
    """Read the dataset, apply the paper's split protocol and record the splits in the run (rank 0 of ``processes``)."""
    d = cfg.data
    train, test = load_train_test(cfg)

    if d.valtiny_per_class > 0:
        train_idx, valtiny = cifar_valtiny_split(train.labels, d.valtiny_per_class, seed=1)
    else:
        train_idx, valtiny = np.arange(len(train)), np.zeros(0, dtype=np.int64)
    labelled, unlabelled = per_class_labelled_split(train.labels, train_idx, d.labels_per_class, d.split_seed)
    if d.limit > 0:  # --smoke: a few images of each set, split as usual
        labelled, unlabelled, valtiny = labelled[: d.limit], unlabelled[: d.limit], valtiny[: d.limit]
        test = test.subset(np.arange(min(d.limit, len(test))))
    if processes.is_main:  # one writer; every process computes the same split
        for name, idx in (("labelled", labelled), ("unlabelled", unlabelled), ("valtiny", valtiny)):
            write_split_file(splits_dir / f"{name}.txt", idx)
    log.info("data %s: %d labelled, %d unlabelled, %d valtiny, %d test", d.name, len(labelled),
             len(unlabelled), len(valtiny), len(test))
    return ClassificationData(train, test, labelled, unlabelled, valtiny)
