"""Issue 10, items 1, 2, 4 and 8: bad data, bad weights and bad names meet one clear line.

Datasets are tiny VOC trees in the official layout (``write_voc_tree``); runs go through the
command line with DataLoader workers on, as real runs have them (``--smoke`` turns them off).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmt.cli.main import main
from dmt.data.segmentation import read_image
from dmt.errors import UserError

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from seg_fixtures import save_palette_png, tree_hashes, write_voc_tree  # noqa: E402

TRAIN = ["2007_000032", "2007_000039", "2008_000002", "2011_003276"]
# a real (not --smoke) run, kept tiny: 2 steps of 2 crops, every training image read once
TINY_VOC = ["model.name=deeplabv2_tiny", "model.init=none", "data.crop_size=[17, 17]", "data.labelled_split=all",
            "data.eval_pad=[40, 40]", "baseline.batch_size=2", "baseline.max_steps=2", "eval.batch_size=2",
            "device=cpu", "amp=false", "data.num_workers=2"]


@pytest.fixture
def voc(tmp_path):
    return write_voc_tree(tmp_path / "voc", splits={"train_aug": TRAIN, "train": TRAIN[:2],
                                                    "val": ["2008_000001", "2008_000003"]})


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error")]


def _break(voc: Path, how: str) -> Path:
    """Spoil item 2008_000002 (a training image) the way ``how`` says; returns the spoiled file."""
    name = "2008_000002"
    if how == "truncated jpeg":
        path = voc / "JPEGImages" / f"{name}.jpg"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "mask of another size":
        path = voc / "SegmentationClassAug" / f"{name}.png"
        save_palette_png(np.zeros((10, 10), np.uint8), path)
    else:  # mask value outside the classes
        path = voc / "SegmentationClassAug" / f"{name}.png"
        mask = np.asarray(Image.open(path)).copy()
        mask[3, 3] = 50
        save_palette_png(mask, path)
    return path


@pytest.mark.parametrize("how, says", [("truncated jpeg", "cannot read image"),
                                       ("mask of another size", "they must match"),
                                       ("mask value outside the classes", "values [50] outside 0..20")])
def test_bad_file_read_by_a_worker_is_one_line(voc, tmp_path, capsys, how, says):
    bad = _break(voc, how)
    before = tree_hashes(voc)
    # data.check=none: the pre-flight check would find most of these first; here the workers meet them
    code = main(["run", "voc-20-baseline", f"data.root={voc}", *TINY_VOC, "data.check=none",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and "DataLoader worker" not in err
    (line,) = _error_lines(err)
    assert str(bad) in line and says in line
    assert tree_hashes(voc) == before  # the dataset is only read


def test_preflight_finds_a_bad_val_mask_before_anything_is_written(voc, tmp_path, capsys):
    bad = voc / "SegmentationClassAug" / "2008_000003.png"  # read only at the first evaluation
    save_palette_png(np.zeros((5, 7), np.uint8), bad)
    out = tmp_path / "run"
    assert main(["run", "voc-20-baseline", f"data.root={voc}", *TINY_VOC, "--out", str(out)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert str(bad) in line and "5x7" in line
    assert not out.exists()  # the error came before anything ran: no run directory

    assert main(["check", "voc-20-baseline", f"data.root={voc}", *TINY_VOC]) == 2
    (again,) = _error_lines(capsys.readouterr().err)
    assert again == line


def test_check_alone_and_its_full_scan(voc, capsys):
    assert main(["check", "voc-20-dmt", f"data.root={voc}", *TINY_VOC, "mutual.init_b=none"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 6 images and 6 masks (headers read)")
    _break(voc, "mask value outside the classes")  # only decoding finds this one
    assert main(["check", "voc-20-dmt", f"data.root={voc}", *TINY_VOC, "mutual.init_b=none"]) == 0
    capsys.readouterr()
    assert main(["check", "voc-20-dmt", f"data.root={voc}", *TINY_VOC, "mutual.init_b=none", "--full"]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "2008_000002.png has values [50]" in line


def test_weights_file_of_model_b_is_checked_first(voc, tmp_path, capsys):
    good = tmp_path / "no-such-file.safetensors"
    garbage = tmp_path / "b.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    # model A from scratch; model B's weights would only be opened after A's baseline trained
    args = ["run", "voc-20-dmt", f"data.root={voc}", *TINY_VOC, "model.init=none", "mutual.init_b=imagenet",
            f"mutual.weights_b={garbage}", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith("error: config key 'mutual.weights_b'") and str(garbage) in line
    assert not (tmp_path / "run").exists()

    args = ["check", "voc-20-dmt", f"data.root={voc}", *TINY_VOC, "model.init=coco", f"model.weights={good}"]
    assert main(args) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "'model.weights'" in line and str(good) in line
    assert "weights_path" not in line and "strict_weights" not in line  # config keys, not the factory's


def test_doctored_weights_never_suggest_weights_only_false(voc, tmp_path, capsys):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    assert main(["check", "voc-20-dmt", f"data.root={voc}", *TINY_VOC, "mutual.init_b=imagenet",
                 f"mutual.weights_b={evil}"]) == 2
    err = capsys.readouterr().err
    (line,) = _error_lines(err)
    assert str(evil) in line and "refused" in line
    assert "weights_only" not in err and not (tmp_path / "pwned").exists()


def test_16_bit_grey_png_is_scaled_not_white(tmp_path):
    values = np.array([[0, 257, 128 * 257], [65535, 1000, 40000]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    rgb = read_image(path, "grey16")
    expected = np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], expected)


def test_16_bit_grey_png_trains_as_its_8_bit_twin(tmp_path):
    """A dataset whose images are 16-bit PNGs gives the same samples as its 8-bit copy."""
    from dmt.data.folder import folder_source
    from dmt.data.segmentation import SegmentationDataset

    rng = np.random.default_rng(0)
    grey8 = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    roots = []
    for bits in (8, 16):
        root = tmp_path / f"f{bits}"
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
        image = grey8 if bits == 8 else grey8.astype(np.uint16) * 257
        Image.fromarray(image).save(root / "images" / "a.png")
        Image.fromarray(np.zeros((12, 16), np.uint8)).save(root / "masks" / "a.png")
        (root / "classes.txt").write_text("background\nthing\n")
        roots.append(root)
    samples = []
    for root in roots:
        source = folder_source(root)
        samples.append(SegmentationDataset(source.items("all"), source)[0]["image"])
    assert torch.equal(samples[0], samples[1])


def test_misspelt_preset_gets_a_suggestion(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "voc-20-dm", "--out", str(out)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "did you mean 'voc-20-dmt'" in line
    assert not out.exists()


def test_eval_refuses_an_unknown_split(capsys, tmp_path):
    assert main(["eval", str(tmp_path / "model.safetensors"), "--data", "cifar10", "--split", "foo"]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "--split 'foo'" in line


def test_missing_dataset_does_not_create_out(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "voc-20-baseline", f"data.root={tmp_path / 'nowhere'}", *TINY_VOC, "--out", str(out)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "nowhere" in line
    assert not out.exists()


def test_worker_error_unwrapping_keeps_other_errors():
    from dmt.errors import unwrap_worker_error

    assert unwrap_worker_error(UserError("mask x.png is bad")) is None  # raised here: already one line
    assert unwrap_worker_error(ValueError("Caught UserError in DataLoader worker process 0.")) is None
    wrapped = UserError("Caught UserError in DataLoader worker process 1.\nOriginal Traceback (most recent call "
                        "last):\n  File ...\ndmt.errors.UserError: mask /d/x.png is 3x3 but image ...\n")
    assert str(unwrap_worker_error(wrapped)) == "mask /d/x.png is 3x3 but image ..."
