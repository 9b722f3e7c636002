"""``dmt predict`` on images larger than a window: the same masks as windowed logits, band by band,
the read-time resize undone band by band, and memory that does not grow with the image (issue 19)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dmt.cli.main import main
from dmt.models.files import save_model
from dmt.models.small_seg import tiny_unet
from dmt.predict.assemble import RowResize
from dmt.predict.render import confidence_bytes
from dmt.tasks.segmentation.inference import window_logits


@pytest.fixture
def unet_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_model(path, tiny_unet(3, width=4).eval(), name="tiny_unet", num_classes=3, kwargs={"width": 4})
    return path


def _image(tmp_path, h: int, w: int):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    Image.fromarray(pixels).save(folder / "big.png")
    return folder, pixels


@torch.no_grad()
def test_an_image_four_windows_wide_gives_the_windowed_masks(unet_file, tmp_path):
    folder, pixels = _image(tmp_path, 64, 61)
    out = tmp_path / "out"
    assert main(["predict", str(unet_file), str(folder), "--out", str(out), "--device", "cpu", "--max-side", "16",
                 "--probs"]) == 0
    model = tiny_unet(3, width=4)
    from dmt.models.files import load_model

    model, _ = load_model(unet_file)
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    from torchvision.transforms.v2 import functional as TF

    x = TF.to_dtype(x, torch.float32, scale=True)  # as dmt predict reads it
    confidence, classes = window_logits(model, x, (16, 16)).float().softmax(dim=1).max(dim=1)
    assert np.array_equal(np.asarray(Image.open(out / "masks" / "big.png")), classes[0].numpy().astype(np.uint8))
    assert np.array_equal(np.asarray(Image.open(out / "probs" / "big.png")), confidence_bytes(confidence[0].numpy()))
    # a max side that covers the image: the whole-image masks, as without windows
    whole = tmp_path / "whole"
    assert main(["predict", str(unet_file), str(folder), "--out", str(whole), "--device", "cpu", "--max-side", "0"]) == 0
    covered = tmp_path / "covered"
    assert main(["predict", str(unet_file), str(folder), "--out", str(covered), "--device", "cpu",
                 "--max-side", "64"]) == 0
    assert np.array_equal(np.asarray(Image.open(whole / "masks" / "big.png")),
                          np.asarray(Image.open(covered / "masks" / "big.png")))


@pytest.mark.parametrize("in_h, out_h, bands", [(20, 41, [7, 7, 6]), (33, 16, [5, 11, 17]), (9, 9, [9]), (12, 37, [1] * 12)])
def test_row_resize_in_bands_equals_one_interpolation(in_h, out_h, bands):
    torch.manual_seed(0)
    logits = torch.randn(1, 4, in_h, 13)
    want = F.interpolate(logits, size=(out_h, 29), mode="bilinear", align_corners=False)
    resize, top, got = RowResize(in_h, (out_h, 29)), 0, []
    for k in bands:
        first, rows = resize.push(top, logits[:, :, top : top + k])
        assert first == sum(r.shape[2] for r in got)
        got.append(rows)
        top += k
    torch.testing.assert_close(torch.cat(got, dim=2), want, atol=1e-5, rtol=1e-5)


def test_a_resized_image_in_windows_matches_the_whole_image_prediction(unet_file, tmp_path):
    """--scale 0.5: the logits are brought back to the image's size band by band; a pointwise
    model makes windowed and whole logits equal, so the masks agree but for float rounding."""
    folder, _ = _image(tmp_path, 80, 50)
    runs = {}
    for side in ("0", "16"):
        out = tmp_path / f"out{side}"
        assert main(["predict", str(unet_file), str(folder), "--out", str(out), "--device", "cpu", "--scale", "0.5",
                     "--max-side", side]) == 0
        runs[side] = np.asarray(Image.open(out / "masks" / "big.png"))
    assert runs["0"].shape == runs["16"].shape == (80, 50)
    assert (runs["0"] == runs["16"]).mean() > 0.9  # the U-Net sees other context in windows


CHILD = textwrap.dedent("""
    import json, sys
    from dmt.bench.harness import peak_rss_bytes
    from dmt.cli.main import main
    model, small, big, out = sys.argv[1:5]
    # a small image first: every module the command imports is loaded before the measurement
    main(["predict", model, small, "--out", out + "-small", "--device", "cpu", "--max-side", "128"])
    before = peak_rss_bytes()  # this process's own (ru_maxrss would carry pytest's size over)
    code = main(["predict", model, big, "--out", out, "--device", "cpu", "--max-side", "128", "--probs"])
    print(json.dumps({"code": code, "grew_mib": (peak_rss_bytes() - before) / 2**20}))
""")


def test_predict_memory_is_bounded_by_the_window(tmp_path):
    """A 2000 x 2000 image with a 21-class network at full resolution: its full-size float32 logits
    alone would take 320 MiB (a whole-image pass grows by about 1 GiB); predicted in 128-pixel
    windows the process grows by the image's own bytes, its outputs and a few rows of windows."""
    torch.manual_seed(0)
    model = tmp_path / "model.safetensors"
    save_model(model, tiny_unet(21, width=4).eval(), name="tiny_unet", num_classes=21, kwargs={"width": 4})
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(small)
    folder, _ = _image(tmp_path, 2000, 2000)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run([sys.executable, str(script), str(model), str(small), str(folder), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["code"] == 0
    assert figures["grew_mib"] < 2000 * 2000 * 21 * 4 / 2**20, figures
