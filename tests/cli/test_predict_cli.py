"""`dmt predict` end to end on files it writes: palette masks, overlays, confidence maps, CSV, bad images."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import torch
from PIL import Image

from dmt.cli.main import main
from dmt.models import create_model
from dmt.models.files import save_model
from dmt.tasks.segmentation.inference import upsampled_logits


def _image(path, h, w, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def seg_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny_unet", 4, width=8).eval()
    path = tmp_path / "seg.safetensors"
    save_model(path, model, name="tiny_unet", num_classes=4, kwargs={"width": 8},
               info={"classes": ["background", "cat", "dog", "fox"]})
    return path, model


def _direct(model, path):
    x = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        return upsampled_logits(model, x).argmax(1)[0].numpy().astype(np.uint8)


def test_segmentation_masks_read_back_as_the_model_predicts(seg_model, tmp_path, capsys):
    path, model = seg_model
    images = [_image(tmp_path / "in" / "a.png", 20, 28, 1), _image(tmp_path / "in" / "sub" / "b.jpg", 33, 17, 2),
              _image(tmp_path / "in" / "c.png", 20, 28, 3)]
    out = tmp_path / "out"
    assert main(["predict", str(path), str(tmp_path / "in"), "--out", str(out), "--batch-size", "1", "--probs",
                 "--device", "cpu"]) == 0
    assert "predicted 3 image(s)" in capsys.readouterr().out
    for image, name in zip(images, ["a", "sub/b", "c"]):
        with Image.open(out / "masks" / f"{name}.png") as mask:
            assert mask.mode == "P" and mask.size == Image.open(image).size
            classes = np.asarray(mask)
        np.testing.assert_array_equal(classes, _direct(model, image))
        with Image.open(out / "overlays" / f"{name}.png") as overlay:
            assert overlay.height >= mask.height and overlay.width > mask.width  # legend on the right
        with Image.open(out / "probs" / f"{name}.png") as probs:
            assert probs.mode == "L" and probs.size == mask.size and np.asarray(probs).min() >= 255 // 4 - 1
    # batched with padding (two images of one size): the same masks as one at a time
    again = tmp_path / "batched"
    assert main(["predict", str(path), str(images[0]), str(images[2]), "--out", str(again), "--batch-size", "2",
                 "--device", "cpu"]) == 0
    for name in ("a", "c"):
        np.testing.assert_array_equal(np.asarray(Image.open(again / "masks" / f"{name}.png")),
                                      np.asarray(Image.open(out / "masks" / f"{name}.png")))


def test_windows_and_read_scale_keep_the_original_size(seg_model, tmp_path):
    path, model = seg_model
    image = _image(tmp_path / "big.png", 40, 52, 4)
    out = tmp_path / "out"
    assert main(["predict", str(path), str(image), "--out", str(out), "--window", "16", "16", "--stride", "8", "8",
                 "--scale", "0.5", "--device", "cpu"]) == 0
    with Image.open(out / "masks" / "big.png") as mask:
        assert mask.size == (52, 40) and np.asarray(mask).max() < 4


def test_one_unreadable_image_is_reported_and_the_rest_written(seg_model, tmp_path, capsys):
    path, _ = seg_model
    _image(tmp_path / "in" / "good1.png", 12, 12, 5)
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is no image")
    _image(tmp_path / "in" / "good2.png", 12, 12, 6)
    out = tmp_path / "out"
    assert main(["predict", str(path), str(tmp_path / "in"), "--out", str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "skipped 1 image(s)" in err and re.search(r"cannot read image \S*bad.png: ", err)
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["good1.png", "good2.png"]


def test_bad_model_file_or_input_is_one_line(seg_model, tmp_path, capsys):
    path, _ = seg_model
    assert main(["predict", str(path), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.png: no such image" in capsys.readouterr().err
    _image(tmp_path / "x.png", 8, 8, 0)
    (tmp_path / "fake.safetensors").write_bytes(b"junk")
    assert main(["predict", str(tmp_path / "fake.safetensors"), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "fake.safetensors" in capsys.readouterr().err


def test_classification_csv_has_a_row_per_image_with_top_k(tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny_cnn", 10, width=8).eval()
    path = tmp_path / "cls.safetensors"
    save_model(path, model, name="tiny_cnn", num_classes=10, kwargs={"width": 8})
    files = [_image(tmp_path / "in" / f"{i}.png", 32, 32, i) for i in range(3)]
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    out = tmp_path / "out"
    assert main(["predict", str(path), str(tmp_path / "in"), "--out", str(out), "--data", "cifar10", "--top-k", "3",
                 "--device", "cpu"]) == 1
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "class", "class_name", "probability", "top_k"]
    assert [r["file"] for r in rows] == [str(p) for p in files]
    for row, file in zip(rows, files):
        x = torch.from_numpy(np.array(Image.open(file))).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            probs = model(x).softmax(1)[0]
        assert int(row["class"]) == int(probs.argmax())
        assert abs(float(row["probability"]) - float(probs.max())) < 1e-5
        assert len(row["top_k"].split(";")) == 3 and row["top_k"].startswith(row["class_name"] + ":")
    assert rows[0]["class_name"] in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck")


def _folder_dataset(root):
    """A segmentation folder dataset (dmt.data.folder): images/, masks/ for one, classes.txt, splits/."""
    _image(root / "images" / "a.png", 32, 32, 7)
    _image(root / "images" / "b.jpg", 32, 32, 8)
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "masks" / "a.png")
    (root / "classes.txt").write_text("background\ncat\ndog\nfox\n")
    (root / "splits").mkdir()
    (root / "splits" / "val.txt").write_text("a\n")
    return root


def test_a_folder_dataset_root_predicts_its_images_only(seg_model, tmp_path, capsys):
    path, _ = seg_model
    root = _folder_dataset(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["predict", str(path), str(root), "--out", str(out), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "predicted 2 image(s)" in captured.out
    assert "predicting its images/ only" in captured.err and "classification model" not in captured.err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["masks/a.png", "masks/b.png", "overlays/a.png", "overlays/b.png"]


def test_a_classification_model_on_a_segmentation_folder_warns_and_skips_the_masks(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "cls.safetensors"
    save_model(path, create_model("tiny_cnn", 10, width=8).eval(), name="tiny_cnn", num_classes=10,
               kwargs={"width": 8})
    root = _folder_dataset(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["predict", str(path), str(root), "--out", str(out), "--data", "cifar10", "--device", "cpu"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "segmentation folder dataset" in line]
    assert len(warnings) == 1 and "classification model" in warnings[0] and "one class" in warnings[0]
    with open(out / "predictions.csv", newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == [str(root / "images" / "a.png"), str(root / "images" / "b.jpg")]
