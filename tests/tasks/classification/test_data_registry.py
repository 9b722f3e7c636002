"""The classification dataset registry and the run's split: STL-10's shape (a labelled train part
and extra unlabelled images in one pool), a folder's fixed split, optional test sets, pseudo statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dmt.tasks.classification.data as cls_data
from dmt.config import load_config
from dmt.data.arrays import UNLABELLED, ArrayDataset, ConcatSet
from dmt.data.splits import cifar_valtiny_split, per_class_labelled_split, read_split_file
from dmt.errors import UserError
from dmt.run.rundir import RunDir
from dmt.tasks.classification.data import (
    ClassificationSource,
    classification_datasets,
    evaluation_set,
    load_classification_data,
)
from dmt.tasks.classification.evaluate import pseudo_statistics
from dmt.tasks.classification.runner import ClassificationRunner
from dmt.tasks.context import StageContext

CLASSES = ["cat", "dog", "owl"]


def _set(labels: list[int] | np.ndarray, seed: int = 0) -> ArrayDataset:
    labels = np.asarray(labels, dtype=np.int64)
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 8, 8, 1), dtype=np.uint8)
    return ArrayDataset(pixels, labels, list(CLASSES))


TRAIN_LABELS = np.array([0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 2, 0, 0, 2, 1, 2, 1, 0], dtype=np.int64)  # 6 per class
EXTRA = 7  # images without a label after the 18 labelled ones


def _stl10_shape(d) -> ClassificationSource:
    """STL-10 as dmt reads it: train (labelled) + the extra unlabelled images in one pool, a test set."""
    pool = ConcatSet([_set(TRAIN_LABELS), _set(np.full(EXTRA, UNLABELLED), seed=1)])
    return ClassificationSource(pool, _set([0, 1, 2], seed=2))


def _folder_shape(d) -> ClassificationSource:
    """A folder of labelled and unlabelled images: the split is the folders'; a val set, no test set."""
    pool = _set([0, 0, 1, 1, 2, 2] + [UNLABELLED] * 10)
    return ClassificationSource(pool, None, val=_set([2, 1, 0, 0], seed=3), labelled=np.arange(6),
                                unlabelled=np.arange(6, 16))


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(cls_data._LOADERS, "stl10_shape", _stl10_shape)
    monkeypatch.setitem(cls_data._LOADERS, "folder_shape", _folder_shape)


def test_builtin_datasets_are_registered_and_an_unknown_name_is_one_line(tmp_path):
    assert classification_datasets()[:2] == ["cifar10", "digits"]
    with pytest.raises(UserError, match=r"'data.name': 'nope' is not a classification dataset \(cifar10, digits"):
        load_classification_data(load_config(None, ["task=classification", "data.name=nope"]), tmp_path)


def test_pool_with_extra_unlabelled_images_takes_labels_from_the_labelled_part(registered, tmp_path):
    cfg = load_config(None, ["task=classification", "data.name=stl10_shape", "data.labels_per_class=2",
                             "data.valtiny_per_class=1", "data.split_seed=3"])
    data = load_classification_data(cfg, tmp_path)
    # the protocol on the labelled train part alone: its positions are the pool's (the part comes first)
    candidates, valtiny = cifar_valtiny_split(TRAIN_LABELS, 1, seed=1)
    labelled, rest = per_class_labelled_split(TRAIN_LABELS, candidates, 2, 3)
    assert data.labelled.tolist() == labelled.tolist() and data.valtiny.tolist() == valtiny.tolist()
    assert data.unlabelled.tolist() == rest.tolist() + list(range(18, 18 + EXTRA))  # then every extra image
    assert np.bincount(TRAIN_LABELS[data.labelled]).tolist() == [2, 2, 2]
    assert sorted(np.concatenate([data.labelled, data.unlabelled, data.valtiny]).tolist()) == list(range(25))
    assert data.unlabelled_without_label() == EXTRA and data.num_classes == 3 and data.classes == CLASSES
    for name, idx in (("labelled", data.labelled), ("unlabelled", data.unlabelled), ("valtiny", data.valtiny)):
        assert read_split_file(tmp_path / f"{name}.txt") == [str(i) for i in idx]


def test_fixed_split_is_kept_and_limit_cuts_every_set(registered, tmp_path):
    cfg = load_config(None, ["task=classification", "data.name=folder_shape", "data.limit=3"])
    data = load_classification_data(cfg, tmp_path)
    assert data.labelled.tolist() == [0, 1, 2] and data.unlabelled.tolist() == [6, 7, 8]
    assert len(data.valtiny) == 0 and data.test is None and data.val.labels.tolist() == [2, 1, 0]
    assert read_split_file(tmp_path / "valtiny.txt") == []
    full = load_classification_data(load_config(None, ["task=classification", "data.name=folder_shape"]), tmp_path)
    assert full.labelled.tolist() == list(range(6)) and full.unlabelled.tolist() == list(range(6, 16))


def test_eval_set_is_the_test_set_else_val(registered):
    split, s = evaluation_set(load_config(None, ["task=classification", "data.name=folder_shape"]))
    assert split == "val" and s.labels.tolist() == [2, 1, 0, 0]
    assert evaluation_set(load_config(None, ["task=classification", "data.name=stl10_shape"]))[0] == "test"
    with pytest.raises(UserError, match="--split test: folder_shape has no test set"):
        evaluation_set(load_config(None, ["task=classification", "data.name=folder_shape"]), "test")
    with pytest.raises(UserError, match="--split 'train'"):
        evaluation_set(load_config(None, ["task=classification", "data.name=folder_shape"]), "train")


def test_oracle_is_refused_before_training_when_unlabelled_images_have_no_label(registered, tmp_path):
    cfg = load_config("demo-digits", ["data.name=stl10_shape", "data.labels_per_class=2", "data.valtiny_per_class=1"])
    with pytest.raises(UserError, match=r"'oracle.enabled'.* 7 of the 16 unlabelled images of stl10_shape have "
                                        r"none; set oracle.enabled=false"):
        ClassificationRunner(StageContext(cfg, RunDir(tmp_path), torch.device("cpu")))
    cfg.oracle.enabled = False
    runner = ClassificationRunner(StageContext(cfg, RunDir(tmp_path), torch.device("cpu")))
    assert runner.size == 8


def test_pseudo_accuracy_counts_only_kept_images_with_a_true_label():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])  # pseudo labels 0, 1, 0, 1
    stats = pseudo_statistics(probs, torch.tensor([0, 0, UNLABELLED, UNLABELLED]), 8)
    assert stats == {"pseudo_kept": 4, "pseudo_share": 0.5, "pseudo_accuracy": 0.5,
                     "pseudo_min_confidence": pytest.approx(0.6), "pseudo_scored": 2}
    labelled = pseudo_statistics(probs, torch.tensor([0, 1, 1, 1]), 4)
    assert labelled["pseudo_accuracy"] == 0.75 and "pseudo_scored" not in labelled  # all scored: as before
    none = pseudo_statistics(probs, torch.full((4,), UNLABELLED), 4)
    assert "pseudo_accuracy" not in none and none["pseudo_scored"] == 0
