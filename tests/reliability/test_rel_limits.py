"""Issue 19: any image meets one clear line: oversized files (decompression bombs), and --smoke
checks the whole set-up (every file the real run would read), not only the few images it trains on."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmt.cli.main import main

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import write_voc_tree  # noqa: E402
from test_images import png_header_only  # noqa: E402

TRAIN = [f"2007_{k:06d}" for k in range(40)]  # many more than --smoke's few images of each list
TINY = ["model.name=deeplabv2_tiny", "model.init=none", "mutual.init_b=none", "phases.ratios=[1.0]"]


@pytest.fixture
def voc(tmp_path):
    return write_voc_tree(tmp_path / "voc", splits={"train_aug": TRAIN, "train": TRAIN[:2],
                                                    "val": ["2008_000001", "2008_000003"]})


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error")]


def test_smoke_refuses_a_list_naming_a_missing_image_it_would_not_train_on(voc, tmp_path, capsys):
    """The last name of train_aug is past the few images --smoke trains on; the real run would read it."""
    (voc / "JPEGImages" / f"{TRAIN[-1]}.jpg").unlink()
    out = tmp_path / "run"
    assert main(["run", "voc-8-dmt", f"data.root={voc}", *TINY, "--smoke", "--out", str(out)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert f"{TRAIN[-1]}.jpg" in line and "not found" in line
    assert not out.exists()  # refused before anything was written
    assert main(["check", "voc-8-dmt", f"data.root={voc}", *TINY, "--smoke"]) == 2
    assert _error_lines(capsys.readouterr().err) == [line]


def test_a_bomb_in_the_lists_is_refused_by_the_preflight(voc, capsys):
    bomb = png_header_only(voc / "JPEGImages" / "bomb.png", 20000, 20000)
    (voc / "JPEGImages" / f"{TRAIN[5]}.jpg").unlink()
    bomb.rename(voc / "JPEGImages" / f"{TRAIN[5]}.jpg")  # a PNG named .jpg: Pillow reads the content
    assert main(["check", "voc-8-dmt", f"data.root={voc}", *TINY]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert f"{TRAIN[5]}.jpg is 20000x20000 (400.0 megapixels), over the limit of 89,478,485 pixels" in line
    # the limit is a config key: without it the header passes (nothing is decoded) and the next
    # check speaks: the mask is not the image's size
    assert main(["check", "voc-8-dmt", f"data.root={voc}", *TINY, "data.max_pixels=0"]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "is 20000x20000 (HxW); they must match" in line


def test_predict_skips_a_bomb_with_one_line_and_writes_the_rest(tmp_path, capsys):
    from dmt.models.files import save_model
    from dmt.models.small_seg import tiny_unet

    torch.manual_seed(0)
    model_file = tmp_path / "model.safetensors"
    save_model(model_file, tiny_unet(3).eval(), name="tiny_unet", num_classes=3, kwargs={})
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(folder / "ok.png")
    png_header_only(folder / "bomb.png", 20000, 20000)
    code = main(["predict", str(model_file), str(folder), "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "skipped 1 image(s)" in err
    assert "bomb.png is 20000x20000" in err
    assert (tmp_path / "out" / "masks" / "ok.png").is_file()
    assert not (tmp_path / "out" / "masks" / "bomb.png").exists()
