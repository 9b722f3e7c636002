"""One prediction path: ``Model.predict``, ``dmt predict MODEL_FILE`` and ``dmt predict MODEL.onnx`` give
the same classes and confidences on mixed-size images, one of them larger than the window, at full
read scale and at 0.5 (issue 23).

The API and the CLI run the same network through the same functions: equal to the bit. ONNX Runtime
computes the same graph in float32 with its own kernels: its confidences agree within
:data:`TOLERANCE` and its classes wherever the top two probabilities are more than that apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dmt.cli.main import main
from dmt.predict.model import load_model
from dmt.predict.render import confidence_bytes
from dmt.tasks.segmentation.inference import window_logits

sys.path.insert(0, str(Path(__file__).parent))
from export_fixtures import needs_onnx, save_and_export, save_tiny, write_image  # noqa: E402

TOLERANCE = 1e-4  # ONNX Runtime against PyTorch, float32, a probability
SIZES = [(33, 47), (33, 47), (21, 18), (70, 90)]  # 70 x 90 is larger than MAX_SIDE: windows
MAX_SIDE = 48


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("one_path")
    _, net = save_and_export(root / "seg.safetensors", "deeplabv2_tiny")  # and seg.onnx
    originals = [np.asarray(Image.open(write_image(root / "images" / f"img{i}.png", h, w, seed=i)))
                 for i, (h, w) in enumerate(SIZES)]
    return root, net, originals


@torch.no_grad()
def reference_probabilities(net, pixels: np.ndarray, scale: float) -> torch.Tensor:
    """``K x H x W`` probabilities as the old whole-image path computed them (window_logits, one
    interpolation of the whole map back to the image's size): only to tell near-ties apart."""
    from dmt.predict.batches import read_input

    x = read_input(pixels, scale).float().div(255)[None]
    window = (MAX_SIDE, MAX_SIDE) if max(x.shape[-2:]) > MAX_SIDE else None
    logits = window_logits(net, x, window)
    if tuple(logits.shape[-2:]) != pixels.shape[:2]:
        logits = F.interpolate(logits, size=pixels.shape[:2], mode="bilinear", align_corners=False)
    return logits.softmax(dim=1)[0]


def cli_maps(root: Path, model: Path, out: Path, scale: float) -> list[tuple[np.ndarray, np.ndarray]]:
    assert main(["predict", str(model), str(root / "images"), "--out", str(out), "--probs", "--device", "cpu",
                 "--batch-size", "4", "--max-side", str(MAX_SIDE), "--scale", str(scale)]) == 0
    return [(np.asarray(Image.open(out / "masks" / f"img{i}.png")), np.asarray(Image.open(out / "probs" / f"img{i}.png")))
            for i in range(len(SIZES))]


@needs_onnx
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_the_api_the_cli_and_onnx_give_the_same_classes_and_confidences(files, tmp_path, scale):
    root, net, originals = files
    model = load_model(root / "seg.safetensors", "cpu")
    model.scale, model.max_side = scale, MAX_SIDE  # as --scale and --max-side
    api = model.predict(list(originals))
    cli = cli_maps(root, root / "seg.safetensors", tmp_path / "cli", scale)
    onnx = cli_maps(root, root / "seg.onnx", tmp_path / "onnx", scale)
    for pixels, a, (cli_classes, cli_conf), (onnx_classes, onnx_conf) in zip(originals, api, cli, onnx):
        assert a.classes.shape == pixels.shape[:2] == cli_classes.shape == onnx_classes.shape
        assert np.array_equal(a.classes, cli_classes) and np.array_equal(confidence_bytes(a.confidence), cli_conf)
        top2 = reference_probabilities(net, pixels, scale).topk(2, dim=0).values
        clear = (top2[0] - top2[1]).numpy() > TOLERANCE
        assert clear.mean() > 0.95 and np.array_equal(onnx_classes[clear], cli_classes[clear])
        # uint8 round(255 p): a probability within TOLERANCE moves the byte by at most one
        assert np.abs(onnx_conf.astype(int) - cli_conf).max() <= 1
    # the reference is what the shared path computes: the API's confidences, to float rounding
    probs = reference_probabilities(net, originals[3], scale)
    assert np.abs(probs.max(dim=0).values.numpy() - api[3].confidence).max() < 1e-5


@needs_onnx
def test_an_image_predicts_alike_alone_or_in_a_batch(files):
    """No padding: an image's maps do not depend on the images sharing its batch."""
    root, _, originals = files
    model = load_model(root / "seg.safetensors", "cpu")
    together = model.predict(list(originals))
    alone = [model.predict(p) for p in originals]
    for a, b in zip(together, alone):
        assert np.array_equal(a.classes, b.classes) and np.allclose(a.confidence, b.confidence, atol=1e-6)


def test_one_precision_policy_autocast_on_cuda_only(tmp_path):
    from dmt.predict.scorers import autocast_policy

    assert autocast_policy(torch.device("cpu"), True).keywords["enabled"] is False  # the CPU runs float32
    model_file, _ = save_tiny(tmp_path / "seg.safetensors", "tiny_unet", width=4)
    assert load_model(model_file, "cpu").scorer.autocast.keywords["enabled"] is False
    assert load_model(model_file, "cpu", amp=False).scorer.autocast.keywords["enabled"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_api_and_the_cli_autocast_alike(tmp_path):
    """The API used to run float32 where the CLI autocast: on a GPU their masks differed."""
    model_file, _ = save_tiny(tmp_path / "seg.safetensors", "deeplabv2_tiny")
    images = [write_image(tmp_path / "images" / f"img{i}.png", h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    model = load_model(model_file, "cuda")
    assert model.scorer.autocast.keywords["enabled"] is True
    model.max_side = MAX_SIDE
    api = model.predict([Image.open(p) for p in images])
    assert main(["predict", str(model_file), str(tmp_path / "images"), "--out", str(tmp_path / "out"), "--probs",
                 "--device", "cuda", "--max-side", str(MAX_SIDE)]) == 0
    for i, a in enumerate(api):
        assert np.array_equal(a.classes, np.asarray(Image.open(tmp_path / "out" / "masks" / f"img{i}.png")))
        assert np.array_equal(confidence_bytes(a.confidence),
                              np.asarray(Image.open(tmp_path / "out" / "probs" / f"img{i}.png")))
