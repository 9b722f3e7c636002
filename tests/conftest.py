"""Suite-wide settings and fixtures that write tiny official-layout datasets into ``tmp_path``.

``cifar_root``: a ``cifar-10-batches-py`` folder of 300 train images (5 batches of 60, 30 per
class in shuffled class order) and 20 test images. Every image carries its own id in two
pixels, so a test can tell which original image a row is after any shuffling:
``id = image[0, 0, 0] * 256 + image[0, 1, 0]`` (HWC), i.e. ``row[0] * 256 + row[1]`` for a raw
channel-planar row. The id is the image's position in the stacked train (or test) set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from dmt.data.cifar import CIFAR10_FOLDER, write_cifar_folder

# Tiny models on a 2-core machine: intra-op threads cost more than they give, and two threads
# competing with another process make tiny loops ~10x slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _children_write_temporary_files_under_pytest(tmp_path_factory: pytest.TempPathFactory):
    """Child processes (torchrun's per-job ``torchelastic_*`` folders, benchmark children) take
    their temporary folders under pytest's own base folder, which pytest prunes, not in ``/tmp``:
    a CI machine runs the suite many times."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("children-tmp")))
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _no_hub_downloads(tmp_path_factory: pytest.TempPathFactory):
    """The suite never reaches the network: ``weights: hub`` (the default of the pretrained presets)
    sees an empty Hugging Face cache and ``HF_HUB_OFFLINE=1``, here and in child processes.
    huggingface_hub reads both when it is imported, so its constants are set too; a test that
    fabricates a cache monkeypatches them again (``tests/models/backbones/hub_fixtures.py``)."""
    from huggingface_hub import constants

    home = tmp_path_factory.mktemp("hf-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_HOME", str(home))
    patch.setenv("HF_HUB_CACHE", str(home / "hub"))
    patch.setenv("HF_HUB_OFFLINE", "1")
    patch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    patch.setattr(constants, "HF_HUB_OFFLINE", True)
    yield
    patch.undo()


TINY_CIFAR_TRAIN_PER_CLASS = 30
TINY_CIFAR_TEST_PER_CLASS = 2


@dataclass
class TinyCifar:
    """The arrays written by the ``cifar_root`` fixture."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def _id_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = rng.integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    ids = np.arange(len(labels))
    images[:, 0, 0, 0] = ids // 256
    images[:, 0, 1, 0] = ids % 256
    return images


@pytest.fixture
def tiny_cifar() -> TinyCifar:
    """Tiny CIFAR-10 arrays with per-image ids (see module docstring)."""
    rng = np.random.default_rng(2024)
    train_labels = rng.permutation(np.repeat(np.arange(10), TINY_CIFAR_TRAIN_PER_CLASS)).astype(np.int64)
    test_labels = rng.permutation(np.repeat(np.arange(10), TINY_CIFAR_TEST_PER_CLASS)).astype(np.int64)
    return TinyCifar(_id_images(train_labels, rng), train_labels, _id_images(test_labels, rng), test_labels)


@pytest.fixture
def cifar_root(tmp_path: Path, tiny_cifar: TinyCifar) -> Path:
    """A ``data.root`` folder holding ``cifar-10-batches-py`` written from ``tiny_cifar``."""
    root = tmp_path / "cifar_root"
    write_cifar_folder(
        root / CIFAR10_FOLDER,
        tiny_cifar.train_images,
        tiny_cifar.train_labels,
        tiny_cifar.test_images,
        tiny_cifar.test_labels,
    )
    return root


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, offline; returns its folder (``HF_HUB_CACHE``)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # the library read the environment at import
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # torch.hub.get_dir() reads it on each call

    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return cache


@pytest.fixture
def eval_read_sizes(monkeypatch) -> list[int]:
    """The ``data.image_size`` each ``dmt eval`` of a classification model loads its set at, in order
    (a spy on ``evaluation_set``: the side an evaluation reads the images at)."""
    from dmt.tasks.classification import data as cls_data

    sizes: list[int] = []
    real = cls_data.evaluation_set

    def spy(cfg, split=None):
        sizes.append(cfg.data.image_size)
        return real(cfg, split)

    monkeypatch.setattr(cls_data, "evaluation_set", spy)
    return sizes
