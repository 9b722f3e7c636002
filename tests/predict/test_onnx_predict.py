"""`dmt predict MODEL.onnx`: the shared batching, and writing what `dmt predict MODEL_FILE` writes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmt.cli.main import main
from dmt.predict.inputs import InputImage
from dmt.predict.batches import ImageFiles, batches

sys.path.insert(0, str(Path(__file__).parent))
from export_fixtures import needs_onnx, save_and_export, write_image  # noqa: E402


def test_batches_group_consecutive_images_of_one_size(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", h, w, i) for i, (h, w) in enumerate([(8, 9), (8, 9), (8, 9), (5, 6), (8, 9)])]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    images = [InputImage(p, p.stem) for p in paths[:2]] + [InputImage(tmp_path / "bad.png", "bad")] + \
        [InputImage(p, p.stem) for p in paths[2:]]
    found = list(batches(ImageFiles(images, 3, 1.0, None, None), batch_size=2))
    assert [b.index for b in found] == [[0, 1], [3], [4], [5]]
    assert [tuple(b.images.shape) for b in found] == [(2, 3, 8, 9), (1, 3, 8, 9), (1, 3, 5, 6), (1, 3, 8, 9)]
    assert all(b.images.dtype == torch.uint8 for b in found) and found[2].sizes == [(5, 6)]
    errors = [e for b in found for e in b.errors]
    assert [i for i, _ in errors] == [2] and "bad.png: cannot identify image file" in errors[0][1]
    half = next(batches(ImageFiles(images[:1], 3, 0.5, None, None), batch_size=2))
    assert tuple(half.images.shape) == (1, 3, 4, 5) and half.sizes == [(8, 9)]
    grey = next(batches(ImageFiles(images[:1], 1, 1.0, 4, None), batch_size=2))  # classification: size x size
    assert tuple(grey.images.shape) == (1, 1, 4, 4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny segmentation and classification model, their model files and .onnx exports, and images."""
    root = tmp_path_factory.mktemp("onnx_predict")
    save_and_export(root / "seg.safetensors", "deeplabv2_tiny")
    save_and_export(root / "cls.safetensors", "tiny_cnn", width=8)
    images = root / "images"
    for i, (h, w) in enumerate([(33, 47), (33, 47), (21, 18), (32, 32)]):
        write_image(images / ("sub" if i == 1 else "") / f"img{i}.png", h, w, seed=i)
    return root


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


@needs_onnx
def test_onnx_file_writes_the_model_files_masks_overlays_and_confidence(exported, tmp_path):
    seg = exported / "seg.safetensors"
    torch_out, onnx_out = tmp_path / "torch", tmp_path / "onnx"
    # other batch sizes: no path pads, so an image's masks do not depend on its batch
    assert main(["predict", str(seg), str(exported / "images"), "--out", str(torch_out), "--probs",
                 "--batch-size", "1", "--device", "cpu"]) == 0
    assert main(["predict", str(seg.with_suffix(".onnx")), str(exported / "images"), "--out", str(onnx_out),
                 "--probs", "--batch-size", "4"]) == 0
    for sub in ("masks", "overlays"):
        a, b = _masks(torch_out / sub), _masks(onnx_out / sub)
        assert a.keys() == b.keys() == {"img0.png", "sub/img1.png", "img2.png", "img3.png"}
        assert all(np.array_equal(a[k], b[k]) for k in a), sub
    a, b = _masks(torch_out / "probs"), _masks(onnx_out / "probs")
    assert all(np.abs(a[k].astype(int) - b[k]).max() <= 1 for k in a)  # float rounding of round(255 p)
    # windows recorded by the run or asked for: the same windows averaged
    for out, model in ((tmp_path / "tw", seg), (tmp_path / "ow", seg.with_suffix(".onnx"))):
        assert main(["predict", str(model), str(exported / "images" / "img0.png"), "--out", str(out),
                     "--window", "16", "24", "--stride", "8", "8", "--batch-size", "1", "--device", "cpu"]) == 0
    assert np.array_equal(*(np.asarray(Image.open(d / "masks" / "img0.png")) for d in (tmp_path / "tw", tmp_path / "ow")))


@needs_onnx
def test_onnx_file_writes_the_model_files_csv(exported, tmp_path):
    cls = exported / "cls.safetensors"
    rows = {}
    for model, out in ((cls, tmp_path / "t"), (cls.with_suffix(".onnx"), tmp_path / "o")):
        assert main(["predict", str(model), str(exported / "images"), "--out", str(out), "--top-k", "3",
                     "--device", "cpu"]) == 0
        with open(out / "predictions.csv", newline="") as f:
            rows[out.name] = list(csv.DictReader(f))
    assert [r["file"] for r in rows["t"]] == [r["file"] for r in rows["o"]] and len(rows["t"]) == 4
    for t, o in zip(rows["t"], rows["o"]):
        assert (t["class"], t["class_name"]) == (o["class"], o["class_name"])
        assert [p.split(":")[0] for p in t["top_k"].split(";")] == [p.split(":")[0] for p in o["top_k"].split(";")]
        # 32 x 32 images are read alike; others are resized by torchvision vs Pillow (within rounding)
        assert abs(float(t["probability"]) - float(o["probability"])) <= (2e-6 if "img3" in t["file"] else 1e-3)


@needs_onnx
def test_onnx_refusals_are_one_line(exported, tmp_path, capsys):
    onnx_file = str(exported / "seg.onnx")
    assert main(["predict", onnx_file, str(exported / "images"), "--out", str(tmp_path), "--classes", "x.txt"]) == 2
    assert "--classes does not apply to an .onnx file" in capsys.readouterr().err
    (tmp_path / "fake.onnx").write_bytes(b"garbage")
    assert main(["predict", str(tmp_path / "fake.onnx"), str(exported / "images"), "--out", str(tmp_path / "o")]) == 2
    assert "ONNX Runtime cannot load it" in capsys.readouterr().err
    assert main(["predict", str(exported / "cls.onnx"), str(exported / "images"), "--out", str(tmp_path / "o"),
                 "--size", "64"]) == 2
    assert "was exported for 32 x 32 images" in capsys.readouterr().err


@needs_onnx
def test_an_unreadable_image_is_reported_and_the_rest_written(exported, tmp_path, capsys):
    folder = tmp_path / "in"
    write_image(folder / "a.png", 12, 14, seed=1)
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is no image")
    write_image(folder / "c.png", 12, 14, seed=2)
    assert main(["predict", str(exported / "seg.onnx"), str(folder), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "predicted 2 image(s)" in captured.out and "b.png: cannot identify image file" in captured.err
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["a.png", "c.png"]


@needs_onnx
def test_onnx_file_on_a_folder_dataset_root_reads_its_images_only(exported, tmp_path, capsys):
    root = tmp_path / "data"  # a segmentation folder dataset: images/, masks/, classes.txt
    for i in range(2):
        write_image(root / "images" / f"p{i}.png", 32, 32, seed=i)
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "masks" / "p0.png")
    (root / "classes.txt").write_text("background\ncat\ndog\nfox\n")
    assert main(["predict", str(exported / "seg.onnx"), str(root), "--out", str(tmp_path / "seg")]) == 0
    assert sorted(_masks(tmp_path / "seg" / "masks")) == ["p0.png", "p1.png"]
    assert "classification model" not in capsys.readouterr().err
    assert main(["predict", str(exported / "cls.onnx"), str(root), "--out", str(tmp_path / "cls")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "segmentation folder dataset" in line]
    assert len(warnings) == 1 and "cls.onnx is a classification model" in warnings[0]
    with open(tmp_path / "cls" / "predictions.csv", newline="") as f:
        assert [Path(r["file"]).relative_to(root).as_posix() for r in csv.DictReader(f)] == ["images/p0.png",
                                                                                             "images/p1.png"]
