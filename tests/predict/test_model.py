"""`dmt.load_model` / `Model.predict`: PIL, numpy and tensor inputs at their own size, the run's windows,
and the same masks and classes as `dmt predict`."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmt.cli.main import main
from dmt.errors import UserError
from dmt.predict.model import Model, Prediction, load_model
from dmt.tasks.segmentation.inference import window_logits

sys.path.insert(0, str(Path(__file__).parent))
from export_fixtures import CLASSES, save_tiny, write_image  # noqa: E402


def test_segmentation_predictions_match_dmt_predict_for_every_input_kind(tmp_path):
    model_file, _ = save_tiny(tmp_path / "seg.safetensors", "deeplabv2_tiny")
    image = write_image(tmp_path / "in" / "a.png", 37, 45, seed=3)
    assert main(["predict", str(model_file), str(image), "--out", str(tmp_path / "out"), "--probs", "--device", "cpu"]) == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "a.png"))
    model = load_model(model_file, "cpu")
    assert isinstance(model, Model) and model.task == "segmentation" and model.class_names == CLASSES
    assert not model.network.training and model.input_convention is not None and model.window is None
    pil = Image.open(image)
    pixels = np.asarray(pil.convert("RGB"))
    one = model.predict(pil)
    assert isinstance(one, Prediction) and one.classes.shape == (37, 45) and one.classes.dtype == np.uint8
    assert np.array_equal(one.classes, mask) and one.probabilities is None and one.label is None
    confidence_png = np.asarray(Image.open(tmp_path / "out" / "probs" / "a.png")).astype(int)
    assert np.abs(np.rint(one.confidence * 255) - confidence_png).max() <= 1
    several = model.predict([pixels, torch.from_numpy(pixels.copy()).permute(2, 0, 1)])
    stacked = model.predict(np.stack([pixels, pixels]))  # N x H x W x C
    assert len(several) == 2 and len(stacked) == 2
    assert all(np.array_equal(p.classes, mask) for p in [*several, *stacked])


def test_classification_prediction_and_the_dmt_predict_csv(tmp_path):
    model_file, _ = save_tiny(tmp_path / "cls.safetensors", "tiny_cnn", width=8)
    image = write_image(tmp_path / "b.png", 32, 32, seed=4)
    assert main(["predict", str(model_file), str(image), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        row = next(csv.DictReader(f))
    p = load_model(model_file, "cpu").predict(Image.open(image))
    assert p.classes == int(row["class"]) and p.label == row["class_name"] == CLASSES[p.classes]
    assert f"{p.confidence:.6f}" == row["probability"] and p.probabilities.shape == (4,)
    assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-6)


def test_a_run_that_evaluated_in_windows_predicts_in_windows(tmp_path):
    run = tmp_path / "run"
    model_file, net = save_tiny(run / "stages" / "baseline" / "model.safetensors", "deeplabv2_tiny")
    (run / "config.yaml").write_text("data: {name: digit_scenes, scene_digits: [0, 1, 2]}\n"
                                     "eval: {window: [24, 24], stride: [16, 16]}\n")
    model = load_model(model_file, "cpu")
    assert model.window == [24, 24] and model.stride == [16, 16] and model.class_names == ("background", "0", "1", "2")
    pixels = np.asarray(Image.open(write_image(tmp_path / "c.png", 40, 52, seed=5)))
    x = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = window_logits(net, x, [24, 24], [16, 16]).argmax(1)[0].numpy()
    assert np.array_equal(model.predict(pixels).classes, expected)
    assert "windows [24, 24]" in repr(model)


def test_inputs_it_cannot_read_are_one_line(tmp_path):
    model_file, _ = save_tiny(tmp_path / "seg.safetensors", "tiny_unet", width=4)
    model = load_model(model_file, "cpu")
    with pytest.raises(UserError, match="H x W, H x W x 1 or H x W x 3 uint8"):
        model.predict(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(UserError, match="C x H x W uint8"):
        model.predict(torch.zeros(3, 8, 8))
    with pytest.raises(UserError, match="cannot predict a str"):
        model.predict("image.png")
    with pytest.raises(UserError, match="is an exported ONNX file"):
        load_model(tmp_path / "model.onnx")
    grey = model.predict(np.zeros((6, 7), np.uint8))  # a grey image for an RGB model: converted
    assert grey.classes.shape == (6, 7)
