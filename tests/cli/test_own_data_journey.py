"""A newcomer's first steps with their own data, replayed through the README's own commands.

A fabricated folder as a user brings it (30 images, 10 masks, 3 classes, ``classes.txt``, no
``splits/val.txt``) goes through the README's own-data command (``dmt check`` and ``dmt run`` with
``--smoke``), ``dmt predict`` on the dataset root, and a misspelt key, checking what the issue "your
own data, right the first time" asked: every masked image used (labelled or val) and the two
disjoint, one warning line per missing weights file, an out-of-range mask anywhere in the folder
refused by ``--smoke`` in one line naming it, nothing predicted for ``masks/``, "did you mean".
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from dmt.cli.main import main

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import tree_hashes, write_folder_tree  # noqa: E402

README = Path(__file__).parents[2] / "README.md"
MASKED = [f"img{i:02d}" for i in range(10)]
UNMASKED = [f"u{i:02d}" for i in range(20)]


def readme_command(prefix: str, root: Path) -> list[str]:
    """The README's code line starting with ``prefix`` as ``dmt`` arguments, its example folder replaced."""
    lines = [ln.split("#")[0].strip() for ln in README.read_text(encoding="utf-8").splitlines()]
    found = [ln for ln in lines if ln.startswith(prefix)]
    assert found, f"README.md has no command starting with {prefix!r}"
    args = [a for a in shlex.split(found[0])[1:] if a != "--smoke"]  # drop "dmt"; each step says --smoke itself
    assert any(a.startswith("data.root=") for a in args)
    return [f"data.root={root}" if a.startswith("data.root=") else a for a in args]


@pytest.fixture
def mine(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    masks = {stem: rng.integers(0, 3, (16, 20)).astype(np.uint8) for stem in MASKED}
    return write_folder_tree(tmp_path / "mine", masks, unlabelled=UNMASKED, image_ext=".jpg")


def weights_warnings(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "--smoke (" in ln and "random weights" in ln]


def test_own_data_journey_through_the_readme(mine, tmp_path, capsys):
    command = readme_command("dmt run folder-dmt", mine)
    before = tree_hashes(mine)

    # 1. dmt check --smoke: ok, and one warning line per missing weights file (COCO for A, ImageNet for B)
    assert main(["check", *command[1:], "--smoke"]) == 0
    err = capsys.readouterr().err
    warned = weights_warnings(err)
    assert len(warned) == 2, err
    assert any("model.weights" in w and "resnet101COCO-41f33a49.pth" in w for w in warned)
    assert any("mutual.weights_b" in w and "download.pytorch.org" in w for w in warned)

    # 2. the README's run under --smoke: every mask used, labelled and val disjoint, warnings once per file
    run = tmp_path / "run"
    assert main([*command, "--smoke", "--out", str(run)]) == 0
    log = (run / "log.txt").read_text()
    assert "data folder: 10 masked images -> 8 labelled, 2 val" in log and "20 without a mask -> unlabelled" in log
    assert len(weights_warnings(log)) == 2
    val = (run / "splits" / "val.txt").read_text().split()
    labelled = (run / "splits" / "labelled-a.txt").read_text().split()
    assert val and labelled and not set(val) & set(labelled) and set(val + labelled) <= set(MASKED)
    assert sum(p.stat().st_size for p in run.rglob("*") if p.is_file()) < 100 * 2**20
    assert tree_hashes(mine) == before  # the dataset is read-only to us
    # the stand-ins are fed as the real members will be: A in COCO's caffe convention, B in ImageNet's
    orders = {m: json.loads(safe_open(run / "stages" / f"phase5-{m}" / "model.safetensors", "pt").metadata()["state"])
              ["meta"]["input_convention"]["channel_order"] for m in "ab"}
    assert orders == {"a": "BGR", "b": "RGB"}
    capsys.readouterr()

    # 3. predict on the dataset root: the 30 images, nothing for masks/
    model = run / "stages" / "phase5-a" / "model.safetensors"
    out = tmp_path / "pred"
    assert main(["predict", str(model), str(mine), "--out", str(out)]) == 0
    written = sorted(p.stem for p in (out / "masks").rglob("*.png"))
    assert written == sorted(MASKED + UNMASKED)
    assert not (out / "masks" / "masks").exists()
    capsys.readouterr()

    # 4. a mask out of range in an image the smoke never trains on: refused by --smoke in one line
    last = sorted(MASKED)[-1]
    bad = np.zeros((16, 20), np.uint8)
    bad[0, :2] = [3, 7]
    Image.fromarray(bad).save(mine / "masks" / f"{last}.png")
    for cmd in (["check", *command[1:], "--smoke"], [*command, "--smoke", "--out", str(tmp_path / "run2")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and f"{last}.png" in err[-1] and "[3, 7]" in err[-1]
    assert not (tmp_path / "run2").exists()

    # 5. a misspelt key: "did you mean"
    assert main([*[a.replace("data.root=", "data.roott=") for a in command], "--smoke"]) == 2
    assert "did you mean 'data.root'" in capsys.readouterr().err
